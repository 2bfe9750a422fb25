"""Route deviation: stretches of an order's trips outside the approved route's corridor.

Every fix of every trip attributed to an order with a route is measured against that route (the
order's whole approved path). A stretch is a run of consecutive fixes farther than ``corridor_m``;
its length runs along the track and includes the parts of the legs into and out of it that lie
outside (the crossing point is interpolated on the distance to the route), and so do its times. A
trip with a stretch of at least ``min_off_route_m`` raises one alert listing all its stretches.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from rules.alert import Alert, AlertKind, Anchor, Evidence, Severity, figure
from rules.config import Polylines, RuleConfig
from rules.facts import Facts, fix_coordinates
from rules.geo import distance_to_lines
from tracks.ranges import expand

S = 1_000_000


def detour(facts: Facts, config: RuleConfig) -> tuple[Alert, ...]:
    """An order's trip left the approved route's corridor along a stretch of ``min_off_route_m``."""
    trips, orders, fixes = facts.trips, facts.orders, facts.fixes
    routed = np.flatnonzero(facts.trip_order >= 0)
    routed = routed[orders.routes.vertex_count[facts.trip_order[routed]] >= 2]
    if len(routed) == 0:
        return ()
    params = config.route
    first, last = trips.from_row[routed], trips.to_row[routed]
    count = last - first + 1
    rows = expand(first, count)
    owner = np.repeat(np.arange(len(routed)), count)
    lines = Polylines(offset=orders.routes.offset, lon=orders.routes.lon, lat=orders.routes.lat)
    d = distance_to_lines(lines, facts.trip_order[routed][owner], fixes.lon[rows], fixes.lat[rows])
    corridor = params.corridor_m
    off = d > corridor
    runs = _runs(off, owner, d, corridor=corridor, leg_m=facts.leg_m[rows], t_us=fixes.t_us[rows])
    if runs is None:
        return ()
    run_owner, run_first, run_last, length_m, t0, t1, deepest = runs
    long_enough = (length_m >= params.min_off_route_m) & (
        run_last - run_first + 1 >= params.min_off_route_fixes
    )
    alerts = []
    for j in np.unique(run_owner[long_enough]).tolist():
        mine = np.flatnonzero((run_owner == j) & long_enough)
        k = int(routed[j])
        o = int(facts.trip_order[k])
        alerts.append(
            Alert(
                kind=AlertKind.DETOUR,
                severity=Severity.HIGH,
                vehicle_id=int(trips.vehicle_id[k]),
                start_us=int(t0[mine[0]]),
                end_us=int(t1[mine[-1]]),
                anchor=Anchor.TRIP,
                anchor_value=int(trips.start_us[k]),
                trip_start_us=int(trips.start_us[k]),
                order_id=int(orders.order_id[o]),
                evidence=Evidence(
                    thresholds=(
                        figure("corridor_m", corridor, "m"),
                        figure("min_off_route_m", params.min_off_route_m, "m"),
                    ),
                    measured=(
                        figure("off_route_m", float(np.sum(length_m[mine])), "m"),
                        figure("max_deviation_m", float(np.max(deepest[mine])), "m"),
                        figure("stretches", len(mine), "", 0),
                        figure("trip_distance_m", trips.distance_m[k], "m"),
                    ),
                    segments=tuple(
                        fix_coordinates(fixes, int(rows[a]), int(rows[b]))
                        for a, b in zip(run_first[mine].tolist(), run_last[mine].tolist(), strict=True)
                    ),
                ),
            )
        )
    return tuple(alerts)


Runs = tuple[
    NDArray[np.int64],
    NDArray[np.int64],
    NDArray[np.int64],
    NDArray[np.float64],
    NDArray[np.int64],
    NDArray[np.int64],
    NDArray[np.float64],
]


def _runs(
    off: NDArray[np.bool_],
    owner: NDArray[np.int64],
    d: NDArray[np.float64],
    *,
    corridor: float,
    leg_m: NDArray[np.float64],
    t_us: NDArray[np.int64],
) -> Runs | None:
    """Runs of consecutive ``off`` positions of one owner: (owner, first, last position, length m,
    start µs, end µs, largest distance m). ``leg_m[i]`` is the leg into position i."""
    n = len(off)
    same = np.zeros(n, np.bool_)
    same[1:] = owner[1:] == owner[:-1]
    prev_off = np.zeros(n, np.bool_)
    prev_off[1:] = off[:-1] & same[1:]
    next_off = np.zeros(n, np.bool_)
    next_off[:-1] = off[1:] & same[1:]
    head = off & ~prev_off
    if not head.any():
        return None
    run = np.cumsum(head) - 1
    first = np.flatnonzero(head)
    last = np.flatnonzero(off & ~next_off)
    # the share of each leg (into position i) outside the corridor, by linear interpolation
    inside_prev = np.zeros(n, np.bool_)
    inside_prev[1:] = same[1:] & ~off[:-1]
    d_prev = np.empty(n)
    d_prev[0] = np.nan
    d_prev[1:] = d[:-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        entry = np.clip((d - corridor) / (d - d_prev), 0.0, 1.0)  # fraction of the leg into i that is out
    full = off & prev_off
    enter = off & inside_prev
    length = np.bincount(run[off], weights=np.where(full, leg_m, np.where(enter, entry * leg_m, 0.0))[off])
    # legs out of a run: the leg into last + 1
    after = last + 1
    has_after = (after < n) & np.append(same[1:], False)[last]
    a = np.minimum(after, n - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        exit_share = np.clip((d[last] - corridor) / (d[last] - d[a]), 0.0, 1.0)
    length = length + np.where(has_after, exit_share * leg_m[a], 0.0)
    t0 = t_us[first] - np.where(
        enter[first], entry[first] * (t_us[first] - t_us[np.maximum(first - 1, 0)]), 0
    )
    t1 = t_us[last] + np.where(has_after, exit_share * (t_us[a] - t_us[last]), 0)
    deepest = np.maximum.reduceat(np.where(off, d, 0.0), first) if len(first) else np.zeros(0)
    return (
        owner[first].astype(np.int64),
        first.astype(np.int64),
        last.astype(np.int64),
        np.asarray(length, dtype=np.float64),
        np.asarray(np.round(t0), dtype=np.int64),
        np.asarray(np.round(t1), dtype=np.int64),
        np.asarray(deepest, dtype=np.float64),
    )
