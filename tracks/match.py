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

from tracks.columns import freeze_columns
from tracks.conform import Routes, routes_from
from tracks.geo import distance_m, plane_m
from tracks.measure import Trips
from tracks.params import MatchParams
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

    trip: NDArray[np.int64]  # index into Trips
    order: NDArray[np.int64]  # index into Orders
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


def link_orders(trips: Trips, orders: Orders, params: MatchParams) -> Links:
    """Every (trip, order) link; orders of vehicles without trips here are simply never linked."""
    trip, order = _same_vehicle_pairs(trips.vehicle_id, orders.vehicle_id)
    tolerance_us = params.time_tolerance_s * 1e6
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
    main = (plane_m(s_lon, s_lat, o_lon, o_lat) <= near) | (plane_m(e_lon, e_lat, d_lon, d_lat) <= near)
    positioning = ~main & (plane_m(e_lon, e_lat, o_lon, o_lat) <= near)
    back = ~main & ~positioning & (plane_m(s_lon, s_lat, d_lon, d_lat) <= near)
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
        overlap_s=overlap_s[keep],
        start_distance_m=distance_m(s_lon[keep], s_lat[keep], o_lon[keep], o_lat[keep]),
        end_distance_m=distance_m(e_lon[keep], e_lat[keep], d_lon[keep], d_lat[keep]),
    )


def _same_vehicle_pairs(
    trip_vehicle: NDArray[np.int64], order_vehicle: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """All (trip, order) index pairs of the same vehicle, by trip then order."""
    by_vehicle = np.argsort(order_vehicle, kind="stable")
    sorted_vehicle = order_vehicle[by_vehicle]
    lo = np.searchsorted(sorted_vehicle, trip_vehicle, side="left")
    count = np.searchsorted(sorted_vehicle, trip_vehicle, side="right") - lo
    trip = np.repeat(np.arange(len(trip_vehicle), dtype=np.int64), count)
    order = by_vehicle[expand(lo, count)].astype(np.int64)
    return trip, order
