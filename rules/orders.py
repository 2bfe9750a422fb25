"""Rules on trips and dispatch orders: trip without an order, outside the window, off hours, order never
executed, wrong destination, mileage above the approved route, not back at the depot."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from rules.alert import Alert, AlertKind, Anchor, Evidence, Severity, coordinates, figure
from rules.config import RuleConfig
from rules.facts import Facts, at_depot, fix_coordinates
from tracks.conform import route_length_m
from tracks.geo import plane_m

S = 1_000_000  # µs per second


def no_order(facts: Facts, config: RuleConfig) -> tuple[Alert, ...]:
    """无单出车: a trip attributed to no dispatch order of its vehicle."""
    trips = facts.trips
    rows = np.flatnonzero(facts.trip_order < 0)
    _, home_m = at_depot(
        config.vehicles, trips.vehicle_id[rows], trips.start_lon[rows], trips.start_lat[rows]
    )
    return tuple(
        Alert(
            kind=AlertKind.NO_ORDER,
            severity=Severity.HIGH,
            vehicle_id=int(trips.vehicle_id[k]),
            start_us=int(trips.start_us[k]),
            end_us=int(trips.end_us[k]),
            anchor=Anchor.TRIP,
            anchor_value=int(trips.start_us[k]),
            trip_start_us=int(trips.start_us[k]),
            evidence=Evidence(
                thresholds=(figure("attribution_tolerance_s", config.orders.attribution_tolerance_s, "s"),),
                measured=(
                    figure("distance_m", trips.distance_m[k], "m"),
                    figure("duration_s", trips.duration_s[k], "s"),
                    *(() if np.isnan(home_m[i]) else (figure("start_from_depot_m", home_m[i], "m"),)),
                ),
                segments=(fix_coordinates(facts.fixes, int(trips.from_row[k]), int(trips.to_row[k])),),
            ),
        )
        for i, k in enumerate(rows.tolist())
    )


def outside_window(facts: Facts, config: RuleConfig) -> tuple[Alert, ...]:
    """A trip of an order that runs before the window's start or after its end, beyond the grace."""
    trips, orders = facts.trips, facts.orders
    rows = np.flatnonzero(facts.trip_order >= 0)
    order = facts.trip_order[rows]
    grace = int(config.orders.window_grace_s * S)
    lo, hi = orders.window_start_us[order] - grace, orders.window_end_us[order] + grace
    s, e = trips.start_us[rows], trips.end_us[rows]
    early_us = np.maximum(np.minimum(e, lo) - s, 0)
    late_us = np.maximum(e - np.maximum(s, hi), 0)
    out = np.flatnonzero(early_us + late_us > 0)
    alerts = []
    for i in out.tolist():
        k, o = int(rows[i]), int(order[i])
        start = int(s[i]) if early_us[i] > 0 else int(max(s[i], hi[i]))
        end = int(e[i]) if late_us[i] > 0 else int(min(e[i], lo[i]))
        alerts.append(
            Alert(
                kind=AlertKind.OUTSIDE_WINDOW,
                severity=Severity.MEDIUM,
                vehicle_id=int(trips.vehicle_id[k]),
                start_us=start,
                end_us=end,
                anchor=Anchor.TRIP,
                anchor_value=int(trips.start_us[k]),
                trip_start_us=int(trips.start_us[k]),
                order_id=int(orders.order_id[o]),
                evidence=Evidence(
                    thresholds=(figure("window_grace_s", config.orders.window_grace_s, "s"),),
                    measured=(
                        figure("before_window_s", early_us[i] / S, "s"),
                        figure("after_window_s", late_us[i] / S, "s"),
                        figure("window_start_us", orders.window_start_us[o], "us", 0),
                        figure("window_end_us", orders.window_end_us[o], "us", 0),
                    ),
                    segments=(fix_coordinates(facts.fixes, int(trips.from_row[k]), int(trips.to_row[k])),),
                ),
            )
        )
    return tuple(alerts)


def off_hours(facts: Facts, config: RuleConfig) -> tuple[Alert, ...]:
    """Driving outside working hours or on a rest day (holidays and make-up workdays as data)."""
    trips, params = facts.trips, config.off_hours
    which, lo, hi = config.calendar.off_hours_spans(trips.start_us, trips.end_us)
    if len(which) == 0:
        return ()
    heads = np.flatnonzero(np.concatenate(([True], which[1:] != which[:-1])))
    trip = which[heads]
    first, last = lo[heads], np.maximum.reduceat(hi, heads)
    off_s = np.add.reduceat(hi - lo, heads) / S
    approved = facts.trip_order[trip] >= 0
    keep = (off_s > params.min_off_hours_s) & (params.include_approved | ~approved)
    alerts = []
    for i in np.flatnonzero(keep).tolist():
        k = int(trip[i])
        o = int(facts.trip_order[k])
        alerts.append(
            Alert(
                kind=AlertKind.OFF_HOURS,
                severity=Severity.LOW if o >= 0 else Severity.HIGH,
                vehicle_id=int(trips.vehicle_id[k]),
                start_us=int(first[i]),
                end_us=int(last[i]),
                anchor=Anchor.TRIP,
                anchor_value=int(trips.start_us[k]),
                trip_start_us=int(trips.start_us[k]),
                order_id=int(facts.orders.order_id[o]) if o >= 0 else None,
                evidence=Evidence(
                    thresholds=(
                        figure("work_start_local_s", config.calendar.hours.start_s, "s", 0),
                        figure("work_end_local_s", config.calendar.hours.end_s, "s", 0),
                    ),
                    measured=(
                        figure("off_hours_s", off_s[i], "s"),
                        figure("approved", 1.0 if o >= 0 else 0.0, ""),
                    ),
                    segments=(fix_coordinates(facts.fixes, int(trips.from_row[k]), int(trips.to_row[k])),),
                ),
            )
        )
    return tuple(alerts)


def _order_trips(facts: Facts) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """(orders with trips, first index into ``by_order``, trips sorted by order then time)."""
    rows = np.flatnonzero(facts.trip_order >= 0)
    by_order = rows[np.lexsort((facts.trips.start_us[rows], facts.trip_order[rows]))]
    owner = facts.trip_order[by_order]
    heads = np.flatnonzero(np.concatenate(([True], owner[1:] != owner[:-1]))) if len(owner) else owner
    return owner[heads], heads, by_order


def _over(facts: Facts, config: RuleConfig) -> NDArray[np.bool_]:
    """Per order: its window (with grace) ended inside the data, so it can be judged as a whole."""
    end = facts.orders.window_end_us + int(config.orders.window_grace_s * S)
    return np.asarray(end <= facts.end_us, dtype=np.bool_)


def order_not_executed(facts: Facts, config: RuleConfig) -> tuple[Alert, ...]:
    """An approved, dispatched order whose window passed (with grace) inside the data without a trip
    (orders with a route shorter than ``not_executed_min_route_m`` are not judged)."""
    orders = facts.orders
    executed = np.zeros(len(orders), np.bool_)
    executed[facts.trip_order[facts.trip_order >= 0]] = True
    grace = int(config.orders.not_executed_grace_s * S)
    judged = (orders.window_start_us >= facts.start_us) & (orders.window_end_us + grace <= facts.end_us)
    # an order whose whole approved route is shorter than a trip the engine can see cannot be judged
    routed = orders.routes.vertex_count >= 2
    length_m = route_length_m(orders.routes)
    judged &= ~routed | (length_m >= config.orders.not_executed_min_route_m)
    return tuple(
        Alert(
            kind=AlertKind.ORDER_NOT_EXECUTED,
            severity=Severity.MEDIUM,
            vehicle_id=int(orders.vehicle_id[o]),
            start_us=int(orders.window_start_us[o]),
            end_us=int(orders.window_end_us[o]),
            anchor=Anchor.ORDER,
            anchor_value=int(orders.order_id[o]),
            order_id=int(orders.order_id[o]),
            evidence=Evidence(
                thresholds=(figure("not_executed_grace_s", config.orders.not_executed_grace_s, "s"),),
                measured=(figure("trips", 0, ""),),
                segments=(
                    coordinates(
                        [orders.origin_lon[o], orders.destination_lon[o]],
                        [orders.origin_lat[o], orders.destination_lat[o]],
                    ),
                ),
            ),
        )
        for o in np.flatnonzero(judged & ~executed).tolist()
    )


def wrong_destination(facts: Facts, config: RuleConfig) -> tuple[Alert, ...]:
    """An order over whose trips never stopped within ``destination_radius_m`` of its destination.

    Where the car stopped: the end and the start of each of the order's trips. The alert names the
    trip that took the passengers elsewhere: the first that ends away from the origin and the depot.
    """
    trips, orders, stops = facts.trips, facts.orders, facts.stops
    owned, heads, by_order = _order_trips(facts)
    over = _over(facts, config)
    radius = config.route.destination_radius_m
    bounds = np.append(heads, len(by_order))
    # the car was at the destination if one of the order's trips ended there, or left from there (a
    # hop to it shorter than the engine's minimum trip is part of a stop)
    dest_lon = orders.destination_lon[facts.trip_order[by_order]]
    dest_lat = orders.destination_lat[facts.trip_order[by_order]]
    end_m = plane_m(trips.end_lon[by_order], trips.end_lat[by_order], dest_lon, dest_lat)
    start_m = plane_m(trips.start_lon[by_order], trips.start_lat[by_order], dest_lon, dest_lat)
    closest = np.minimum(end_m, start_m)
    nearest = np.minimum.reduceat(closest, heads) if len(heads) else closest
    from_origin = plane_m(
        trips.end_lon[by_order],
        trips.end_lat[by_order],
        orders.origin_lon[facts.trip_order[by_order]],
        orders.origin_lat[facts.trip_order[by_order]],
    )
    home, _ = at_depot(
        config.vehicles, trips.vehicle_id[by_order], trips.end_lon[by_order], trips.end_lat[by_order]
    )
    alerts = []
    for j in np.flatnonzero(over[owned] & (nearest > radius)).tolist():
        o = int(owned[j])
        mine = np.arange(bounds[j], bounds[j + 1])
        away = mine[(from_origin[mine] > config.orders.journey_radius_m) & ~home[mine]]
        pick = int(away[0]) if len(away) else int(mine[np.argmax(end_m[mine])])
        k = int(by_order[pick])
        stop = int(facts.trip_next_stop[k])
        leave = int(stops.end_us[stop]) if stop >= 0 else int(trips.end_us[k])
        alerts.append(
            Alert(
                kind=AlertKind.WRONG_DESTINATION,
                severity=Severity.HIGH,
                vehicle_id=int(orders.vehicle_id[o]),
                start_us=int(trips.end_us[k]),
                end_us=max(leave, int(trips.end_us[k])),
                anchor=Anchor.ORDER,
                anchor_value=int(orders.order_id[o]),
                trip_start_us=int(trips.start_us[k]),
                order_id=int(orders.order_id[o]),
                evidence=Evidence(
                    thresholds=(figure("destination_radius_m", radius, "m"),),
                    measured=(
                        figure("nearest_stop_m", nearest[j], "m"),
                        figure("stopped_from_destination_m", end_m[pick], "m"),
                    ),
                    segments=(
                        fix_coordinates(facts.fixes, int(trips.from_row[k]), int(trips.to_row[k])),
                        coordinates([orders.destination_lon[o]], [orders.destination_lat[o]]),
                    ),
                ),
            )
        )
    return tuple(alerts)


def mileage_excess(facts: Facts, config: RuleConfig) -> tuple[Alert, ...]:
    """An order over whose trips drove more than its approved route by the tolerance (and a minimum)."""
    trips, orders = facts.trips, facts.orders
    owned, heads, by_order = _order_trips(facts)
    if len(owned) == 0:
        return ()
    driven_m = np.add.reduceat(trips.distance_m[by_order], heads)
    has_route = orders.routes.vertex_count[owned] >= 2
    approved_m = np.where(has_route, route_length_m(orders.routes)[owned], np.nan)
    params = config.route
    with np.errstate(invalid="ignore"):
        excess = (driven_m > approved_m * (1 + params.mileage_tolerance)) & (
            driven_m - approved_m >= params.mileage_min_excess_m
        )
    bounds = np.append(heads, len(by_order))
    alerts = []
    for j in np.flatnonzero(_over(facts, config)[owned] & has_route & excess).tolist():
        o = int(owned[j])
        mine = by_order[bounds[j] : bounds[j + 1]]
        alerts.append(
            Alert(
                kind=AlertKind.MILEAGE_EXCESS,
                severity=Severity.MEDIUM,
                vehicle_id=int(orders.vehicle_id[o]),
                start_us=int(trips.start_us[mine[0]]),
                end_us=int(trips.end_us[mine[-1]]),
                anchor=Anchor.ORDER,
                anchor_value=int(orders.order_id[o]),
                order_id=int(orders.order_id[o]),
                evidence=Evidence(
                    thresholds=(
                        figure("mileage_tolerance", params.mileage_tolerance, "", 3),
                        figure("mileage_min_excess_m", params.mileage_min_excess_m, "m"),
                    ),
                    measured=(
                        figure("driven_m", driven_m[j], "m"),
                        figure("approved_m", approved_m[j], "m"),
                        figure("detour_ratio", driven_m[j] / approved_m[j], "", 3),
                        figure("trips", len(mine), "", 0),
                    ),
                    segments=tuple(
                        fix_coordinates(facts.fixes, int(trips.from_row[k]), int(trips.to_row[k]), 50)
                        for k in mine.tolist()
                    ),
                ),
            )
        )
    return tuple(alerts)


def not_returned(facts: Facts, config: RuleConfig) -> tuple[Alert, ...]:
    """After an order's last trip the car parked away from its depot for ``not_returned_min_s``."""
    trips, orders, stops = facts.trips, facts.orders, facts.stops
    owned, heads, by_order = _order_trips(facts)
    if len(owned) == 0:
        return ()
    last = by_order[np.append(heads[1:], len(by_order)) - 1]
    stop = facts.trip_next_stop[last]
    s = np.maximum(stop, 0)
    home, depot_m = at_depot(config.vehicles, trips.vehicle_id[last], stops.lon[s], stops.lat[s])
    away_s = (stops.end_us[s] - stops.start_us[s]) / S
    known = ~np.isnan(depot_m)
    hit = (
        (stop >= 0) & known & ~home & (away_s >= config.stay.not_returned_min_s) & _over(facts, config)[owned]
    )
    alerts = []
    for j in np.flatnonzero(hit).tolist():
        o, k, p = int(owned[j]), int(last[j]), int(stop[j])
        alerts.append(
            Alert(
                kind=AlertKind.NOT_RETURNED,
                severity=Severity.MEDIUM,
                vehicle_id=int(orders.vehicle_id[o]),
                start_us=int(stops.start_us[p]),
                end_us=int(stops.end_us[p]),
                anchor=Anchor.ORDER,
                anchor_value=int(orders.order_id[o]),
                trip_start_us=int(trips.start_us[k]),
                order_id=int(orders.order_id[o]),
                evidence=Evidence(
                    thresholds=(figure("not_returned_min_s", config.stay.not_returned_min_s, "s"),),
                    measured=(
                        figure("away_s", away_s[j], "s"),
                        figure("from_depot_m", depot_m[j], "m"),
                    ),
                    segments=(coordinates([stops.lon[p]], [stops.lat[p]]),),
                ),
            )
        )
    return tuple(alerts)
