"""Decide the expected alerts of a batch of cars from the truth (see simulators.truth for the schema)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import shapely
from numpy.typing import NDArray

from rules.alert import AlertKind
from rules.calendar import WorkCalendar, local_midnight_s
from simulators.drive import Legs, speed_runs_over, time_at
from simulators.outings import Outing
from simulators.plane import Plane, cumulative_m
from simulators.schedule import Timeline
from simulators.truth import ExpectedAlert, off_hours_spans
from simulators.violations import ViolationParams
from simulators.world import World
from tracks.geo import haversine_m

Floats = NDArray[np.float64]


@dataclass(frozen=True, slots=True, kw_only=True)
class Batch:
    """What the labels are decided from, for one batch of cars."""

    world: World
    outings: Sequence[Outing]
    timeline: Timeline
    legs: Legs
    trip_id: NDArray[np.int64]  # per leg
    window_start_s: Floats  # per outing (NaN without an order)
    window_end_s: Floats
    approved: Sequence[tuple[Floats, Floats] | None]  # per outing: the approved route, if any
    silent_from_s: Floats  # per leg, NaN if the terminal was not silenced
    silent_to_s: Floats
    odometer_factor: Floats  # per leg
    first_day: date
    days: int


def _alert(
    batch: Batch,
    kind: AlertKind,
    leg: int,
    start_s: float,
    end_s: float,
    *,
    value: float,
    limit: float | None = None,
    unit: str,
    place_id: int | None = None,
) -> ExpectedAlert:
    outing = batch.outings[int(batch.timeline.leg_outing[leg])]
    return ExpectedAlert(
        kind=kind,
        vehicle=outing.vehicle,
        start_s=float(start_s),
        end_s=float(end_s),
        trip_id=int(batch.trip_id[leg]),
        order_id=outing.order_id,
        place_id=place_id,
        value=value,
        limit=limit,
        unit=unit,
    )


def trip_alerts(batch: Batch, p: ViolationParams, calendar: WorkCalendar) -> list[ExpectedAlert]:
    tl, legs = batch.timeline, batch.legs
    alerts: list[ExpectedAlert] = []
    for k in range(len(tl.depart_s)):
        outing = batch.outings[int(tl.leg_outing[k])]
        a, b = float(tl.depart_s[k]), float(tl.arrive_s[k])
        if outing.order_id is None:
            alerts.append(_alert(batch, AlertKind.NO_ORDER, k, a, b, value=float(legs.length_m[k]), unit="m"))
        else:
            ws, we = batch.window_start_s[tl.leg_outing[k]], batch.window_end_s[tl.leg_outing[k]]
            lo, hi = ws - p.window_grace_s, we + p.window_grace_s
            for s, e in ((a, min(b, lo)), (max(a, hi), b)):
                if e > s:
                    alerts.append(
                        _alert(
                            batch,
                            AlertKind.OUTSIDE_WINDOW,
                            k,
                            s,
                            e,
                            value=e - s,
                            limit=p.window_grace_s,
                            unit="s",
                        )
                    )
        for s, e in off_hours_spans(a, b, calendar):
            alerts.append(_alert(batch, AlertKind.OFF_HOURS, k, s, e, value=e - s, unit="s"))
        for s, e in speed_runs_over(legs, k, p.overspeed_ratio):
            if e - s >= p.overspeed_min_s:
                g0, g1 = legs.grid_start[k], legs.grid_start[k + 1]
                top = float(np.max(legs.grid_v_mps[g0:g1] * 3.6))
                alerts.append(
                    _alert(
                        batch,
                        AlertKind.OVERSPEED,
                        k,
                        a + s,
                        a + e,
                        value=round(top, 1),
                        limit=float(
                            np.min(
                                legs.grid_limit_kmh[g0:g1][
                                    legs.grid_v_mps[g0:g1] * 3.6
                                    > p.overspeed_ratio * legs.grid_limit_kmh[g0:g1]
                                ]
                            )
                        ),
                        unit="km/h",
                    )
                )
        if not np.isnan(batch.silent_from_s[k]):
            s, e = float(batch.silent_from_s[k]), float(batch.silent_to_s[k])
            moved = _distance_between(legs, k, s - a, e - a)
            if e - s >= p.silent_min_s and moved >= p.silent_min_m:
                alerts.append(
                    _alert(
                        batch,
                        AlertKind.SILENT_TERMINAL,
                        k,
                        s,
                        e,
                        value=round(moved, 1),
                        limit=p.silent_min_m,
                        unit="m",
                    )
                )
        excess = float(legs.length_m[k] * (batch.odometer_factor[k] - 1.0))
        if excess > max(p.padding_ratio * legs.length_m[k], p.padding_min_m):
            alerts.append(
                _alert(
                    batch,
                    AlertKind.MILEAGE_PADDING,
                    k,
                    a,
                    b,
                    value=round(excess, 1),
                    limit=max(p.padding_ratio * float(legs.length_m[k]), p.padding_min_m),
                    unit="m",
                )
            )
    return alerts + _route_alerts(batch, p) + _stay_alerts(batch, p)


def _distance_between(legs: Legs, k: int, t0: float, t1: float) -> float:
    clock = legs.time_base[k] + np.clip(np.array([t0, t1]), 0.0, legs.duration_s[k])
    s = np.interp(clock, legs.grid_clock_s, legs.grid_axis_m)
    return float(s[1] - s[0])


def _route_alerts(batch: Batch, p: ViolationParams) -> list[ExpectedAlert]:
    """Detours (path off the approved route) and wrong destinations, for outings that left their plan."""
    tl, legs = batch.timeline, batch.legs
    plane: Plane = batch.world.city.network.plane
    alerts: list[ExpectedAlert] = []
    for j, outing in enumerate(batch.outings):
        route = batch.approved[j]
        if route is None or outing.visits == outing.planned:
            continue
        line = shapely.LineString(np.column_stack(plane.to_xy(*route)))
        for leg in np.flatnonzero(tl.leg_outing == j).tolist():
            lon, lat = legs.path(leg)
            cum = cumulative_m(lon, lat)
            s = np.unique(np.concatenate((np.arange(0.0, cum[-1], 10.0), [cum[-1]])))
            x, y = plane.to_xy(np.interp(s, cum, lon), np.interp(s, cum, lat))
            off = np.asarray(shapely.distance(shapely.points(x, y), line), dtype=np.float64)
            far = off > p.corridor_m
            if far.any():
                edges = np.diff(np.concatenate(([0], far.astype(np.int8), [0])))
                for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1, strict=True):
                    if s[b] - s[a] >= p.min_off_route_m:
                        t = time_at(legs, leg, s[[a, b]]) + float(tl.depart_s[leg])
                        alerts.append(
                            _alert(
                                batch,
                                AlertKind.DETOUR,
                                leg,
                                float(t[0]),
                                float(t[1]),
                                value=round(float(off[a : b + 1].max()), 1),
                                limit=p.corridor_m,
                                unit="m",
                            )
                        )
        main = outing.main_leg
        driven, approved = outing.visits[main], outing.planned[main]
        if driven.place_id != approved.place_id:
            a_place, b_place = batch.world.place(driven.place_id), batch.world.place(approved.place_id)
            gap = float(haversine_m(a_place.lon, a_place.lat, b_place.lon, b_place.lat))
            if gap > p.destination_radius_m:
                k: int = np.flatnonzero((tl.leg_outing == j) & (tl.leg_visit == main)).tolist()[0]
                leave = (
                    tl.depart_s[k + 1]
                    if k + 1 < len(tl.depart_s) and tl.leg_outing[k + 1] == j
                    else tl.off_s[k]
                )
                alerts.append(
                    _alert(
                        batch,
                        AlertKind.WRONG_DESTINATION,
                        k,
                        tl.arrive_s[k],
                        leave,
                        place_id=driven.place_id,
                        value=round(gap, 1),
                        limit=p.destination_radius_m,
                        unit="m",
                    )
                )
    return alerts


def _stay_alerts(batch: Batch, p: ViolationParams) -> list[ExpectedAlert]:
    """Stays inside forbidden places, and cars away from their depot at 03:00 local."""
    tl, world = batch.timeline, batch.world
    alerts: list[ExpectedAlert] = []
    # the trip that arrived before each stay (the leg whose ignition went off at the stay's start)
    key = tl.leg_vehicle * 1e10 + tl.off_s
    arrived = np.searchsorted(key, tl.park_vehicle * 1e10 + tl.park_start_s + 1e-6, side="right") - 1
    arrived_ok = (arrived >= 0) & (np.append(tl.leg_vehicle, -1)[arrived] == tl.park_vehicle)
    for i in range(len(tl.park_start_s)):
        place = world.place(int(tl.park_place_id[i]))
        stay = float(tl.park_end_s[i] - tl.park_start_s[i])
        if place.forbidden and stay >= p.forbidden_min_dwell_s and arrived_ok[i]:
            alerts.append(
                _alert(
                    batch,
                    AlertKind.FORBIDDEN_PLACE,
                    int(arrived[i]),
                    tl.park_start_s[i],
                    tl.park_end_s[i],
                    place_id=place.place_id,
                    value=round(stay, 1),
                    limit=p.forbidden_min_dwell_s,
                    unit="s",
                )
            )
    checks = np.array(
        [
            local_midnight_s(batch.first_day + timedelta(days=d)) + p.night_check_local_s
            for d in range(batch.days)
        ],
        dtype=np.float64,
    )
    for i in range(len(tl.park_start_s)):
        inside = checks[(checks >= tl.park_start_s[i]) & (checks < tl.park_end_s[i])]
        if len(inside) == 0 or not arrived_ok[i]:
            continue
        vehicle = world.fleet.vehicles[int(tl.park_vehicle[i])]
        depot = world.depot_of(vehicle)
        gap = float(haversine_m(tl.park_lon[i], tl.park_lat[i], depot.lon, depot.lat))
        if gap > depot.radius_m:
            alerts.append(
                _alert(
                    batch,
                    AlertKind.OVERNIGHT_AWAY,
                    int(arrived[i]),
                    tl.park_start_s[i],
                    tl.park_end_s[i],
                    place_id=int(tl.park_place_id[i]),
                    value=round(gap, 1),
                    limit=depot.radius_m,
                    unit="m",
                )
            )
    return alerts
