"""Match trips to dispatch orders: 0, 1 or n orders per trip, 0, 1 or n trips per order.

A trip and an order of the same vehicle are linked when at least ``min_overlap_share`` of the trip
falls inside the order's approved window widened by ``time_tolerance_s``, and the trip touches one
of the order's places (within ``proximity_m``):

- ``main``: it starts near the origin or ends near the destination (the approved journey);
- ``positioning``: it ends near the origin (the car fetching the passenger);
- ``return``: it starts near the destination (the car going back).

An order is *executed* when it has a main trip; a trip with no link at all is a trip without an order
(无单出车). Whether an unexecuted order is overdue depends on the clock, so that is the caller's call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray

from tracks.columns import Rows, freeze_columns, spec
from tracks.conform import Routes, routes_from
from tracks.geo import distance_m, pairs_within, plane_m
from tracks.measure import Trips
from tracks.params import MatchParams
from tracks.places import Places
from tracks.ranges import expand


@dataclass(frozen=True, slots=True, kw_only=True)
class DispatchOrder:
    """An approved use of a car: its window, places and route (WGS-84; convert GCJ-02 at the edge)."""

    order_id: int
    vehicle_id: int
    window_start_us: int
    window_end_us: int
    origin_lon: float
    origin_lat: float
    destination_lon: float
    destination_lat: float
    route_lon: NDArray[np.float64]  # the approved route's vertices; empty when none was drawn
    route_lat: NDArray[np.float64]

    def __post_init__(self) -> None:
        freeze_columns(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class Orders:
    """Dispatch orders as columns; ``routes`` holds order k's route as route k."""

    order_id: NDArray[np.int64]
    vehicle_id: NDArray[np.int64]
    window_start_us: NDArray[np.int64]
    window_end_us: NDArray[np.int64]
    origin_lon: NDArray[np.float64]
    origin_lat: NDArray[np.float64]
    destination_lon: NDArray[np.float64]
    destination_lat: NDArray[np.float64]
    routes: Routes

    def __post_init__(self) -> None:
        if freeze_columns(self) != len(self.routes):
            raise ValueError("Orders needs exactly one route (possibly empty) per order")

    def __len__(self) -> int:
        return len(self.order_id)


def orders_table(orders: Sequence[DispatchOrder]) -> Orders:
    def ints(name: str) -> NDArray[np.int64]:
        return np.array([getattr(o, name) for o in orders], dtype=np.int64)

    def floats(name: str) -> NDArray[np.float64]:
        return np.array([getattr(o, name) for o in orders], dtype=np.float64)

    return Orders(
        order_id=ints("order_id"),
        vehicle_id=ints("vehicle_id"),
        window_start_us=ints("window_start_us"),
        window_end_us=ints("window_end_us"),
        origin_lon=floats("origin_lon"),
        origin_lat=floats("origin_lat"),
        destination_lon=floats("destination_lon"),
        destination_lat=floats("destination_lat"),
        routes=routes_from([o.route_lon for o in orders], [o.route_lat for o in orders]),
    )


class LinkRole(StrEnum):
    MAIN = "main"
    POSITIONING = "positioning"
    RETURN = "return"


ROLE_CODE: dict[LinkRole, int] = {role: code for code, role in enumerate(LinkRole)}


@dataclass(frozen=True, slots=True, kw_only=True)
class Links:
    """One row per (trip, order) link."""

    trip: NDArray[np.int64] = spec(index=Rows.TRIP)
    order: NDArray[np.int64] = spec(index=Rows.ORDER)
    role: NDArray[np.uint8]  # ROLE_CODE
    overlap_s: NDArray[np.float64]  # of the trip with the widened window
    start_distance_m: NDArray[np.float64]  # trip start ↔ order origin
    end_distance_m: NDArray[np.float64]  # trip end ↔ order destination

    def __post_init__(self) -> None:
        freeze_columns(self)

    def __len__(self) -> int:
        return len(self.trip)


@dataclass(frozen=True, slots=True, kw_only=True)
class Matches:
    links: Links
    trips_without_order: NDArray[np.int64]  # indices into Trips
    orders_not_executed: NDArray[np.int64]  # indices into Orders: no main trip

    def __post_init__(self) -> None:
        freeze_columns(self, same_length=False)


def match_orders(trips: Trips, orders: Orders, params: MatchParams) -> Matches:
    return matches_from(link_orders(trips, orders, params), len(trips), len(orders))


def matches_from(links: Links, trips: int, orders: int) -> Matches:
    """The trips without an order and the orders without a main trip, given all links."""
    linked_trips = np.bincount(links.trip, minlength=trips)
    executed = np.bincount(links.order[links.role == ROLE_CODE[LinkRole.MAIN]], minlength=orders)
    return Matches(
        links=links,
        trips_without_order=np.flatnonzero(linked_trips == 0),
        orders_not_executed=np.flatnonzero(executed == 0),
    )


def link_orders(trips: Trips, orders: Orders, params: MatchParams, depots: Places | None = None) -> Links:
    """Every (trip, order) link; orders of vehicles without trips here are simply never linked.

    First the timely links (inside the widened window). Then, for trips and orders still unlinked,
    the outings that ran far outside their window (the 'outside the approved window' violation): a
    trip of the same vehicle within ``late_tolerance_s`` that drives from the origin to the destination
    (or back) is linked, and so are the trip just before it that ends at the origin and the trip just
    after it that starts at one of the order's places. Such a link is a finding for the rules, not an
    alibi: its overlap with the window is 0 or small.
    """
    timely = _links(trips, orders, params, tolerance_s=params.time_tolerance_s, strong=False)
    linked_trip = np.zeros(len(trips), dtype=np.bool_)
    linked_trip[timely.trip] = True
    executed = np.zeros(len(orders), dtype=np.bool_)
    executed[timely.order[timely.role == ROLE_CODE[LinkRole.MAIN]]] = True
    late = _links(trips, orders, params, tolerance_s=params.late_tolerance_s, strong=True)
    late = _take(late, ~linked_trip[late.trip] & ~executed[late.order])
    late = _take(late, _nearest_per_trip(trips, orders, late))
    links = _join_links(timely, late)
    for _ in range(2):  # a return leg, and a second one (destination → origin → depot)
        linked_trip[links.trip] = True
        links = _join_links(links, _neighbours(trips, orders, links, linked_trip, params, late_main=late))
    if depots is not None and len(depots):
        linked_trip[links.trip] = True
        links = _join_links(
            links,
            _rest_of_outing(
                trips, orders=orders, links=links, linked_trip=linked_trip, depots=depots, params=params
            ),
        )
    return links


def _rest_of_outing(
    trips: Trips,
    *,
    orders: Orders,
    links: Links,
    linked_trip: NDArray[np.bool_],
    depots: Places,
    params: MatchParams,
) -> Links:
    """An outing (出车) runs from a depot back to a depot. When its linked trips name exactly one order,
    its unlinked trips within ``late_tolerance_s`` of that order's window belong to it too: the leg
    that went early, the detour home from somewhere else. A trip that starts at a depot opens a new
    outing, so a private outing from the depot stays a trip without an order."""
    empty = _take(links, np.zeros(len(links), np.bool_))
    if not len(trips) or not len(links):
        return empty
    at_depot = np.zeros(len(trips), dtype=np.bool_)
    trip, place, d = pairs_within(
        trips.start_lon,
        trips.start_lat,
        depots.lon,
        depots.lat,
        float(np.max(depots.radius_m)) + params.proximity_m,
    )
    at_depot[trip[d <= depots.radius_m[place] + params.proximity_m / 2]] = True
    new_vehicle = np.append(True, trips.vehicle_id[1:] != trips.vehicle_id[:-1])
    outing = np.cumsum(at_depot | new_vehicle) - 1
    # the one order of each outing (outings whose links name two orders are left alone)
    linked_outing, order = outing[links.trip], links.order
    lo = np.full(outing[-1] + 1, np.iinfo(np.int64).max)
    hi = np.full(outing[-1] + 1, -1)
    np.minimum.at(lo, linked_outing, order)
    np.maximum.at(hi, linked_outing, order)
    one = (lo == hi) & (hi >= 0)
    candidate = ~linked_trip & one[outing]
    trip = np.flatnonzero(candidate)
    order = hi[outing[trip]]
    tolerance_us = params.late_tolerance_s * 1e6
    soon = (trips.end_us[trip] >= orders.window_start_us[order] - tolerance_us) & (
        trips.start_us[trip] <= orders.window_end_us[order] + tolerance_us
    )
    trip, order = trip[soon], order[soon]
    first_linked = np.full(outing[-1] + 1, len(trips))
    np.minimum.at(first_linked, linked_outing, links.trip)
    role = np.where(
        trip < first_linked[outing[trip]], ROLE_CODE[LinkRole.POSITIONING], ROLE_CODE[LinkRole.RETURN]
    )
    return Links(
        trip=trip.astype(np.int64),
        order=order.astype(np.int64),
        role=role.astype(np.uint8),
        overlap_s=_window_overlap_s(trips, orders, trip, order),
        start_distance_m=distance_m(
            trips.start_lon[trip], trips.start_lat[trip], orders.origin_lon[order], orders.origin_lat[order]
        ),
        end_distance_m=distance_m(
            trips.end_lon[trip],
            trips.end_lat[trip],
            orders.destination_lon[order],
            orders.destination_lat[order],
        ),
    )


def _links(trips: Trips, orders: Orders, params: MatchParams, *, tolerance_s: float, strong: bool) -> Links:
    """Links in time with the window widened by ``tolerance_s``. ``strong``: only trips that drive from
    one of the order's places to the other (origin → destination, or destination → origin)."""
    trip, order = same_vehicle_pairs(trips.vehicle_id, orders.vehicle_id)
    tolerance_us = tolerance_s * 1e6
    window_start = orders.window_start_us[order] - tolerance_us
    window_end = orders.window_end_us[order] + tolerance_us
    start_us, end_us = trips.start_us[trip], trips.end_us[trip]
    overlap_s = np.maximum(np.minimum(end_us, window_end) - np.maximum(start_us, window_start), 0) / 1e6
    in_time = (overlap_s > 0) & (overlap_s >= params.min_overlap_share * (end_us - start_us) / 1e6)

    s_lon, s_lat, e_lon, e_lat = (
        trips.start_lon[trip],
        trips.start_lat[trip],
        trips.end_lon[trip],
        trips.end_lat[trip],
    )
    o_lon, o_lat = orders.origin_lon[order], orders.origin_lat[order]
    d_lon, d_lat = orders.destination_lon[order], orders.destination_lat[order]
    near = params.proximity_m
    start_origin, end_destination = (
        plane_m(s_lon, s_lat, o_lon, o_lat) <= near,
        plane_m(e_lon, e_lat, d_lon, d_lat) <= near,
    )
    end_origin, start_destination = (
        plane_m(e_lon, e_lat, o_lon, o_lat) <= near,
        plane_m(s_lon, s_lat, d_lon, d_lat) <= near,
    )
    if strong:
        main = start_origin & end_destination
        positioning = np.zeros_like(main)
        back = ~main & start_destination & end_origin
    else:
        main = start_origin | end_destination
        positioning = ~main & end_origin
        back = ~main & ~positioning & start_destination
    keep = in_time & (main | positioning | back)
    role = np.select(
        [main, positioning],
        [ROLE_CODE[LinkRole.MAIN], ROLE_CODE[LinkRole.POSITIONING]],
        ROLE_CODE[LinkRole.RETURN],
    ).astype(np.uint8)
    return Links(
        trip=trip[keep],
        order=order[keep],
        role=role[keep],
        overlap_s=overlap_s[keep]
        if not strong
        else _window_overlap_s(trips, orders, trip[keep], order[keep]),
        start_distance_m=distance_m(s_lon[keep], s_lat[keep], o_lon[keep], o_lat[keep]),
        end_distance_m=distance_m(e_lon[keep], e_lat[keep], d_lon[keep], d_lat[keep]),
    )


def _window_overlap_s(
    trips: Trips, orders: Orders, trip: NDArray[np.int64], order: NDArray[np.int64]
) -> NDArray[np.float64]:
    """Seconds of the trip inside the order's own (unwidened) window."""
    start = np.maximum(trips.start_us[trip], orders.window_start_us[order])
    end = np.minimum(trips.end_us[trip], orders.window_end_us[order])
    return np.asarray(np.maximum(end - start, 0) / 1e6, dtype=np.float64)


def _nearest_per_trip(trips: Trips, orders: Orders, links: Links) -> NDArray[np.bool_]:
    """One link per trip: the order whose window is nearest in time to the trip."""
    middle = (trips.start_us[links.trip] + trips.end_us[links.trip]) / 2
    window_middle = (orders.window_start_us[links.order] + orders.window_end_us[links.order]) / 2
    by = np.lexsort((np.abs(middle - window_middle), links.trip))
    first = np.append(True, links.trip[by][1:] != links.trip[by][:-1]) if len(by) else np.zeros(0, np.bool_)
    keep = np.zeros(len(links), dtype=np.bool_)
    keep[by[first]] = True
    return keep


def _neighbours(
    trips: Trips,
    orders: Orders,
    links: Links,
    linked_trip: NDArray[np.bool_],
    params: MatchParams,
    *,
    late_main: Links,
) -> Links:
    """The unlinked trip just before a late main trip that ends at the origin (positioning), and the
    unlinked trip just after each order's last linked trip that starts at one of the order's places
    within ``late_tolerance_s`` of the window (return: the car waited at the destination for hours)."""
    taken = linked_trip
    near = params.proximity_m
    last = _last_trip_per_order(links)
    rows: list[tuple[NDArray[np.int64], NDArray[np.int64], int]] = []
    for step, link_role in ((-1, LinkRole.POSITIONING), (1, LinkRole.RETURN)):
        if step < 0:
            mains = late_main.role == ROLE_CODE[LinkRole.MAIN]
            trip, order = late_main.trip[mains] + step, late_main.order[mains]
        else:
            trip, order = links.trip[last] + step, links.order[last]
        inside = (trip >= 0) & (trip < len(trips))
        trip, order = trip[inside], order[inside]
        same = (trips.vehicle_id[trip] == orders.vehicle_id[order]) & ~taken[trip]
        if step < 0:
            at_place = (
                plane_m(
                    trips.end_lon[trip],
                    trips.end_lat[trip],
                    orders.origin_lon[order],
                    orders.origin_lat[order],
                )
                <= near
            )
        else:
            at_place = (
                plane_m(
                    trips.start_lon[trip],
                    trips.start_lat[trip],
                    orders.destination_lon[order],
                    orders.destination_lat[order],
                )
                <= near
            ) | (
                plane_m(
                    trips.start_lon[trip],
                    trips.start_lat[trip],
                    orders.origin_lon[order],
                    orders.origin_lat[order],
                )
                <= near
            )
        soon = trips.start_us[trip] <= orders.window_end_us[order] + params.late_tolerance_s * 1e6
        keep = same & at_place & soon
        rows.append((trip[keep], order[keep], ROLE_CODE[link_role]))
    trip = np.concatenate([r[0] for r in rows])
    order = np.concatenate([r[1] for r in rows])
    role = np.concatenate([np.full(len(r[0]), r[2], np.uint8) for r in rows])
    return Links(
        trip=trip,
        order=order,
        role=role,
        overlap_s=_window_overlap_s(trips, orders, trip, order),
        start_distance_m=distance_m(
            trips.start_lon[trip], trips.start_lat[trip], orders.origin_lon[order], orders.origin_lat[order]
        ),
        end_distance_m=distance_m(
            trips.end_lon[trip],
            trips.end_lat[trip],
            orders.destination_lon[order],
            orders.destination_lat[order],
        ),
    )


def _last_trip_per_order(links: Links) -> NDArray[np.intp]:
    """Per order with links, the row of its latest linked trip."""
    if not len(links):
        return np.zeros(0, np.intp)
    by = np.lexsort((links.trip, links.order))
    last = np.append(links.order[by][1:] != links.order[by][:-1], True)
    return np.asarray(by[last], dtype=np.intp)


def _take(links: Links, keep: NDArray[np.bool_]) -> Links:
    return Links(
        trip=links.trip[keep],
        order=links.order[keep],
        role=links.role[keep],
        overlap_s=links.overlap_s[keep],
        start_distance_m=links.start_distance_m[keep],
        end_distance_m=links.end_distance_m[keep],
    )


def _join_links(a: Links, b: Links) -> Links:
    """Both sets of links, ordered by trip then order (as the timely links alone are)."""
    trip, order = np.concatenate((a.trip, b.trip)), np.concatenate((a.order, b.order))
    by = np.lexsort((order, trip))
    return Links(
        trip=trip[by],
        order=order[by],
        role=np.concatenate((a.role, b.role))[by],
        overlap_s=np.concatenate((a.overlap_s, b.overlap_s))[by],
        start_distance_m=np.concatenate((a.start_distance_m, b.start_distance_m))[by],
        end_distance_m=np.concatenate((a.end_distance_m, b.end_distance_m))[by],
    )


def same_vehicle_pairs(
    left_vehicle: NDArray[np.int64], right_vehicle: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """All (left, right) index pairs of the same vehicle, by left then right (e.g. trips × orders)."""
    by_vehicle = np.argsort(right_vehicle, kind="stable")
    sorted_vehicle = right_vehicle[by_vehicle]
    lo = np.searchsorted(sorted_vehicle, left_vehicle, side="left")
    count = np.searchsorted(sorted_vehicle, left_vehicle, side="right") - lo
    left = np.repeat(np.arange(len(left_vehicle), dtype=np.int64), count)
    right = by_vehicle[expand(lo, count)].astype(np.int64)
    return left, right
