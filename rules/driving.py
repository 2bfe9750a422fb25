"""How the car was driven and reported: sustained overspeed, a silent terminal, a padded odometer."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from rules.alert import Alert, AlertKind, Anchor, Evidence, Severity, coordinates, figure
from rules.config import RuleConfig
from rules.facts import Facts, first_at_or_after, fix_coordinates, last_at_or_before
from rules.geo import road_index, road_limit_kmh
from tracks.geo import plane_m
from tracks.ranges import reduce_ranges
from tracks.track import continues

S = 1_000_000
_JUNCTION_NEIGHBOURS = 24  # road samples (10 m apart) around a fix: every road through a junction


def fix_speed_kmh(facts: Facts) -> NDArray[np.float64]:
    """Per fix: the terminal's speed, or where it reports none the speed implied by the leg into it."""
    fixes = facts.fixes
    dt_s = np.zeros(len(fixes))
    dt_s[1:] = np.diff(fixes.t_us) / S
    dt_s[~continues(fixes.vehicle_id)] = 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        implied = np.where(dt_s > 0, facts.leg_m / dt_s * 3.6, np.nan)
    return np.where(np.isnan(fixes.speed_kmh), implied, fixes.speed_kmh)


def overspeed(facts: Facts, config: RuleConfig) -> tuple[Alert, ...]:
    """Speed above ``ratio`` x the road's limit from one fix to another at least ``min_s`` later.

    The limit of a fix is the highest of the roads near it (``SpeedLimits``); fixes under the
    threshold for at most ``bridge_s`` do not break a run. One alert per trip lists its runs.
    """
    params, fixes = config.overspeed, facts.fixes
    speed = fix_speed_kmh(facts)
    index = road_index(config.speed)
    floor = [config.speed.default_limit_kmh] if config.speed.default_limit_kmh is not None else []
    lowest = min([*config.speed.limit_kmh.tolist(), *floor], default=np.inf)
    with np.errstate(invalid="ignore"):
        rows = np.flatnonzero(speed > params.ratio * lowest)
    if len(rows) == 0:
        return ()
    if index is None:
        limit = np.full(len(rows), np.nan if not floor else float(floor[0]))
    else:
        limit = road_limit_kmh(index, fixes.lon[rows], fixes.lat[rows])
        with np.errstate(invalid="ignore"):
            check = np.flatnonzero(speed[rows] > params.ratio * limit)
        limit[check] = road_limit_kmh(
            index, fixes.lon[rows[check]], fixes.lat[rows[check]], neighbours=_JUNCTION_NEIGHBOURS
        )
    with np.errstate(invalid="ignore"):
        over = speed[rows] > params.ratio * limit
    rows, limit = rows[over], limit[over]
    if len(rows) == 0:
        return ()
    v, t = fixes.vehicle_id[rows], fixes.t_us[rows]
    new = np.ones(len(rows), np.bool_)
    dt = t[1:] - t[:-1]
    under_between = rows[1:] - rows[:-1] > 1  # a kept fix under the threshold lies between
    new[1:] = (
        (v[1:] != v[:-1]) | (under_between & (dt > params.bridge_s * S)) | (dt > params.max_silence_s * S)
    )
    heads = np.flatnonzero(new)
    tails = np.append(heads[1:], len(rows)) - 1
    t0 = _crossing(
        facts, speed, rows[heads], threshold=params.ratio * limit[heads], side=-1, max_s=params.bridge_s
    )
    t1 = _crossing(
        facts, speed, rows[tails], threshold=params.ratio * limit[tails], side=1, max_s=params.bridge_s
    )
    long_runs = np.flatnonzero((t1 - t0) >= (params.min_s - params.timing_allowance_s) * S)
    if len(long_runs) == 0:
        return ()
    trips = facts.trips
    trip = np.searchsorted(trips.first_row, rows[heads[long_runs]], side="right") - 1
    trip_ok = (trip >= 0) & (np.append(trips.vehicle_id, -1)[trip] == v[heads[long_runs]])
    trip = np.where(trip_ok, trip, -1)
    alerts = []
    for key in np.unique(trip).tolist():
        mine = long_runs[trip == key]
        a, b = heads[mine], tails[mine]
        top = [float(np.max(speed[rows[x : y + 1]])) for x, y in zip(a.tolist(), b.tolist(), strict=True)]
        at = [float(np.min(limit[x : y + 1])) for x, y in zip(a.tolist(), b.tolist(), strict=True)]
        anchor_us = int(trips.start_us[key]) if key >= 0 else int(t[a[0]])
        alerts.append(
            Alert(
                kind=AlertKind.OVERSPEED,
                severity=Severity.HIGH
                if max(s / lim for s, lim in zip(top, at, strict=True)) >= 1.5
                else Severity.MEDIUM,
                vehicle_id=int(v[a[0]]),
                start_us=int(t0[mine[0]]),
                end_us=int(t1[mine[-1]]),
                anchor=Anchor.TRIP,
                anchor_value=anchor_us,
                trip_start_us=int(trips.start_us[key]) if key >= 0 else None,
                evidence=Evidence(
                    thresholds=(
                        figure("limit_kmh", min(at), "km/h"),
                        figure("ratio", params.ratio, "", 3),
                        figure("min_s", params.min_s, "s"),
                    ),
                    measured=(
                        figure("max_speed_kmh", max(top), "km/h"),
                        figure("over_s", float(np.sum(t1[mine] - t0[mine])) / S, "s"),
                        figure("runs", len(mine), "", 0),
                    ),
                    segments=tuple(
                        fix_coordinates(fixes, int(rows[x]), int(rows[y]))
                        for x, y in zip(a.tolist(), b.tolist(), strict=True)
                    ),
                ),
            )
        )
    return tuple(alerts)


def _crossing(
    facts: Facts,
    speed: NDArray[np.float64],
    row: NDArray[np.int64],
    *,
    threshold: NDArray[np.float64],
    side: int,
    max_s: float,
) -> NDArray[np.int64]:
    """When the speed crossed ``threshold`` between fix ``row`` (over) and its neighbour on ``side``
    (-1 before, +1 after, under the threshold); the fix's own time without a usable neighbour.

    Speeding starts and ends abruptly, so the car drove at the neighbour's speed, then at the fix's,
    and the distance between the two fixes says when it switched. That distance is the two positions'
    difference, each averaged with the next fix away from the step where the speed stays steady
    (within ``_STEADY``) less what the reported speeds account for: GNSS noise of ±5 m per position
    would otherwise move the crossing by about a second.
    """
    fixes = facts.fixes
    n = len(fixes)
    last = max(n - 1, 0)
    t = fixes.t_us[row]
    other = row + side
    o = np.clip(other, 0, last)
    dt_s = np.abs(fixes.t_us[o] - t).astype(np.float64) / S
    ok = (other >= 0) & (other < n) & (fixes.vehicle_id[o] == fixes.vehicle_id[row])
    ok &= (dt_s <= max_s) & ~np.isnan(speed[o]) & (speed[o] < threshold)
    # distance along the fixes less the distance their speeds account for: constant while the speed
    # is steady (but for the GNSS noise), so a position's value can be averaged with its neighbour's
    told = np.zeros(n)
    told[1:] = 0.5 / 3.6 * (np.nan_to_num(speed[1:]) + np.nan_to_num(speed[:-1])) * np.diff(fixes.t_us) / 1e6
    told = np.where(continues(fixes.vehicle_id), told, 0.0)
    residual = np.cumsum(facts.leg_m) - np.cumsum(told)

    def steady_mean(start: NDArray[np.int64], step: int) -> NDArray[np.float64]:
        nxt = np.clip(start + step, 0, last)
        near = (
            (start + step >= 0) & (start + step <= last) & (fixes.vehicle_id[nxt] == fixes.vehicle_id[start])
        )
        near &= np.abs(fixes.t_us[nxt] - fixes.t_us[start]) <= max_s * S
        with np.errstate(invalid="ignore"):
            near &= np.abs(speed[nxt] - speed[start]) <= _STEADY * np.maximum(speed[start], 1.0)
        return np.where(near, 0.5 * (residual[start] + residual[nxt]), residual[start])

    gap_m = (steady_mean(row, -side) - steady_mean(o, side)) * -side + told[np.maximum(row, o)]
    fast, slow = speed[row] / 3.6, speed[o] / 3.6
    with np.errstate(invalid="ignore", divide="ignore"):
        over_s = np.clip((gap_m - slow * dt_s) / (fast - slow), 0.0, dt_s)
    over_s = np.where(np.isfinite(over_s), over_s, 0.0)
    return np.asarray(np.where(ok, t + side * np.round(over_s * S), t), dtype=np.int64)


_STEADY = 0.05  # a neighbouring fix whose speed is within 5 % shares the averaged position


def silent_terminal(facts: Facts, config: RuleConfig) -> tuple[Alert, ...]:
    """No report at all for ``min_s`` or more while the car moved ``min_m`` or more (the straight line
    between the kept fixes around the silence, or the odometer's advance if larger): an unplugged or
    shielded terminal.

    A terminal that kept reporting without a valid position (a tunnel) is not silent: pass every
    report's time in ``RuleInputs.reports``.
    """
    params, reports, fixes = config.silent, facts.reports, facts.fixes
    dt = np.diff(reports.t_us)
    gap = np.flatnonzero((reports.vehicle_id[1:] == reports.vehicle_id[:-1]) & (dt >= params.min_s * S))
    if len(gap) == 0:
        return ()
    v = reports.vehicle_id[gap]
    t0, t1 = reports.t_us[gap], reports.t_us[gap + 1]
    # the silence itself is shorter than the gap between reports: it began after the last report and
    # ended before the next, by about one reporting interval in all (the one before the gap)
    interval = np.where(
        (gap >= 1) & (reports.vehicle_id[np.maximum(gap - 1, 0)] == v),
        t0 - reports.t_us[np.maximum(gap - 1, 0)],
        0,
    )
    silent_us = np.maximum(t1 - t0 - np.minimum(interval, t1 - t0), 0)
    before = last_at_or_before(fixes.vehicle_id, fixes.t_us, v, t0)
    after = first_at_or_after(fixes.vehicle_id, fixes.t_us, v, t1)
    b, a = np.maximum(before, 0), np.maximum(after, 0)
    # where the car was at the reports around the silence: only known when those reports were kept
    # fixes (or kept fixes close to them); a report without a valid position (a tunnel) says nothing
    slack_us = params.edge_slack_s * S
    known = (before >= 0) & (after >= 0)
    known &= (t0 - fixes.t_us[b] <= slack_us) & (fixes.t_us[a] - t1 <= slack_us)
    known &= silent_us >= params.min_s * S
    straight = np.where(known, plane_m(fixes.lon[b], fixes.lat[b], fixes.lon[a], fixes.lat[a]), 0.0)
    far = np.flatnonzero(straight >= params.min_m)  # the least over neighbouring fixes can only be less
    straight[far] = _displacement(facts, before[far], after[far])
    # the odometer says how far the car went, loops included (a terminal that lost power reports the
    # jump when it comes back); positive readings that do not go back only
    odo_b, odo_a = fixes.odometer_km[b], fixes.odometer_km[a]
    with np.errstate(invalid="ignore"):
        odo_m = np.where(known & (odo_b > 0) & (odo_a >= odo_b), (odo_a - odo_b) * 1000.0, 0.0)
    moved = np.maximum(straight, odo_m)
    hit = np.flatnonzero(known & (moved >= params.min_m))
    trips = facts.trips
    trip = last_at_or_before(trips.vehicle_id, trips.start_us, v, t1)
    within = (trip >= 0) & (np.append(trips.end_us, 0)[trip] >= t0)
    alerts = []
    for i in hit.tolist():
        silent_s = silent_us[i] / S
        alerts.append(
            Alert(
                kind=AlertKind.SILENT_TERMINAL,
                severity=Severity.HIGH,
                vehicle_id=int(v[i]),
                start_us=int(t0[i]),
                end_us=int(t1[i]),
                anchor=Anchor.GAP,
                anchor_value=int(t0[i]),
                trip_start_us=int(trips.start_us[trip[i]]) if within[i] else None,
                evidence=Evidence(
                    thresholds=(figure("min_s", params.min_s, "s"), figure("min_m", params.min_m, "m")),
                    measured=(
                        figure("silent_s", silent_s, "s"),
                        figure("between_reports_s", (t1[i] - t0[i]) / S, "s"),
                        figure("moved_m", moved[i], "m"),
                        figure("straight_m", straight[i], "m"),
                        figure("odometer_m", odo_m[i], "m"),
                        figure("implied_speed_kmh", moved[i] / max(silent_s, 1.0) * 3.6, "km/h"),
                    ),
                    segments=(
                        coordinates([fixes.lon[b[i]], fixes.lon[a[i]]], [fixes.lat[b[i]], fixes.lat[a[i]]]),
                    ),
                ),
            )
        )
    return tuple(alerts)


def _displacement(facts: Facts, before: NDArray[np.int64], after: NDArray[np.int64]) -> NDArray[np.float64]:
    """How far the car moved from fix ``before`` to fix ``after``: the least over those fixes and their
    outer neighbours (same vehicle), so that one GNSS jump at either end does not make a silence."""
    fixes = facts.fixes
    n = len(fixes)
    b1, a0 = np.clip(before, 0, n - 1), np.clip(after, 0, n - 1)
    b0 = np.where((b1 >= 1) & (fixes.vehicle_id[np.maximum(b1 - 1, 0)] == fixes.vehicle_id[b1]), b1 - 1, b1)
    a1 = np.where(
        (a0 + 1 < n) & (fixes.vehicle_id[np.minimum(a0 + 1, n - 1)] == fixes.vehicle_id[a0]), a0 + 1, a0
    )
    best = np.full(len(before), np.inf)
    for x in (b0, b1):
        for y in (a0, a1):
            best = np.minimum(best, plane_m(fixes.lon[x], fixes.lat[x], fixes.lon[y], fixes.lat[y]))
    return best


def mileage_padding(facts: Facts, config: RuleConfig) -> tuple[Alert, ...]:
    """The odometer advanced more than the GNSS track by ``padding_ratio`` and ``padding_min_m``.

    Compared leg by leg over the trip: on legs whose two fixes both carry a positive odometer reading
    and are at most ``max_leg_s`` apart (across a longer silence the GNSS straight line says nothing
    about the road driven). A reading that goes back (a reset, a swapped terminal) voids the trip.
    """
    params, fixes, trips = config.odometer, facts.fixes, facts.trips
    if len(trips) == 0:
        return ()
    odometer = fixes.odometer_km
    with np.errstate(invalid="ignore"):
        valid = odometer > 0
    leg_ok = np.zeros(len(fixes), np.bool_)
    leg_ok[1:] = valid[1:] & valid[:-1] & (np.diff(fixes.t_us) <= params.max_leg_s * S)
    leg_ok &= continues(fixes.vehicle_id)
    delta_m = np.zeros(len(fixes))
    delta_m[1:] = (odometer[1:] - odometer[:-1]) * 1000.0
    delta_m = np.where(leg_ok, delta_m, 0.0)
    lo, hi = trips.from_row + 1, trips.to_row + 1  # the legs into rows from_row+1 .. to_row
    odometer_m = reduce_ranges(np.add, delta_m, lo, hi, empty=0.0)
    gnss_m = reduce_ranges(np.add, np.where(leg_ok, facts.leg_m, 0.0), lo, hi, empty=0.0)
    went_back = reduce_ranges(np.add, (delta_m < 0).astype(np.float64), lo, hi, empty=0.0) > 0
    legs = reduce_ranges(np.add, leg_ok.astype(np.float64), lo, hi, empty=0.0)
    threshold_m = np.maximum(params.padding_ratio * gnss_m, params.padding_min_m)
    excess_m = odometer_m - gnss_m
    hit = (legs > 0) & ~went_back & (excess_m > threshold_m)
    return tuple(
        Alert(
            kind=AlertKind.MILEAGE_PADDING,
            severity=Severity.MEDIUM,
            vehicle_id=int(trips.vehicle_id[k]),
            start_us=int(trips.start_us[k]),
            end_us=int(trips.end_us[k]),
            anchor=Anchor.TRIP,
            anchor_value=int(trips.start_us[k]),
            trip_start_us=int(trips.start_us[k]),
            evidence=Evidence(
                thresholds=(
                    figure("padding_ratio", params.padding_ratio, "", 3),
                    figure("padding_min_m", params.padding_min_m, "m"),
                    figure("threshold_m", threshold_m[k], "m"),
                ),
                measured=(
                    figure("odometer_m", odometer_m[k], "m"),
                    figure("gnss_m", gnss_m[k], "m"),
                    figure("excess_m", excess_m[k], "m"),
                    figure("trip_distance_m", trips.distance_m[k], "m"),
                ),
                segments=(fix_coordinates(fixes, int(trips.from_row[k]), int(trips.to_row[k])),),
            ),
        )
        for k in np.flatnonzero(hit).tolist()
    )
