"""Trips ↔ dispatch orders: main, positioning and return links, merged dispatch, unmatched both ways."""

from __future__ import annotations

import numpy as np

from tracks.match import ROLE_CODE, DispatchOrder, LinkRole, match_orders, orders_table
from tracks.params import Params
from tracks.pipeline import Context, VehicleResult, run_vehicle
from tracks.synth import Row, at_us, local_track, metres_to_lonlat

P = Params()
DEPOT, OFFICE, HOTEL = 0.0, 6_000.0, 12_000.0  # metres east of the origin


def clock(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def day() -> list[Row]:
    """Depot → office (08:00-08:10), wait, office → hotel (09:00-09:10), hotel → depot (10:00-10:20)."""
    rows: list[Row] = []
    position, t = DEPOT, 7 * 3600 + 30 * 60
    for leave, target in ((8 * 3600, OFFICE), (9 * 3600, HOTEL), (10 * 3600, DEPOT)):
        rows += [(clock(s), position, 0) for s in range(t, leave + 1, 60)]
        step = 100.0 if target > position else -100.0
        n = round(abs(target - position) / 100)
        rows += [(clock(leave + 10 * k), position + step * k, 0) for k in range(1, n)]
        position, t = target, leave + 10 * n
    rows += [(clock(s), position, 0) for s in range(t, t + 1_800, 60)]
    return rows


def order(
    order_id: int, start: str, end: str, origin: float, destination: float, *, vehicle: int = 1
) -> DispatchOrder:
    lon, lat = metres_to_lonlat(np.array([origin, destination]), np.zeros(2))
    return DispatchOrder(
        order_id=order_id,
        vehicle_id=vehicle,
        window_start_us=at_us(start),
        window_end_us=at_us(end),
        origin_lon=float(lon[0]),
        origin_lat=float(lat[0]),
        destination_lon=float(lon[1]),
        destination_lat=float(lat[1]),
        route_lon=lon,
        route_lat=lat,
    )


def links(result: VehicleResult) -> set[tuple[int, int, str]]:
    roles = {code: role.value for role, code in ROLE_CODE.items()}
    found = result.matches.links
    return {
        (int(t), int(o), roles[int(r)]) for t, o, r in zip(found.trip, found.order, found.role, strict=True)
    }


def test_an_order_links_its_journey_the_positioning_and_the_return() -> None:
    orders = orders_table([order(1, "08:30", "09:50", OFFICE, HOTEL)])  # with 30 min either side
    result = run_vehicle(local_track(*day()), Context(orders=orders), P)
    assert len(result.trips) == 3
    assert links(result) == {(0, 0, "positioning"), (1, 0, "main"), (2, 0, "return")}
    assert len(result.matches.trips_without_order) == 0
    assert len(result.matches.orders_not_executed) == 0


def test_a_trip_without_an_order_is_reported() -> None:
    orders = orders_table([order(1, "08:30", "09:50", OFFICE, HOTEL)])
    result = run_vehicle(local_track(*day()), Context(orders=orders), P)
    far_later = orders_table([order(1, "18:00", "19:00", OFFICE, HOTEL)])  # beyond late_tolerance_s
    late = run_vehicle(local_track(*day()), Context(orders=far_later), P)
    assert len(result.matches.trips_without_order) == 0
    assert list(late.matches.trips_without_order) == [0, 1, 2]
    assert list(late.matches.orders_not_executed) == [0]


def test_an_outing_hours_outside_its_window_is_still_that_orders() -> None:
    """Driven from the origin to the destination five hours early: linked (0 s inside the window), so
    the rules report it as outside the approved window, not as a trip without an order."""
    early = orders_table([order(1, "14:00", "15:00", OFFICE, HOTEL)])
    result = run_vehicle(local_track(*day()), Context(orders=early), P)
    assert list(result.matches.trips_without_order) == []
    assert list(result.matches.orders_not_executed) == []
    assert {(1, 0, "main")} <= links(result)
    assert float(result.matches.links.overlap_s.max()) == 0.0


def test_orders_of_another_vehicle_do_not_match() -> None:
    orders = orders_table([order(1, "08:45", "09:30", OFFICE, HOTEL, vehicle=2)])
    result = run_vehicle(local_track(*day()), Context(orders=orders), P)
    assert len(result.matches.links) == 0
    assert list(result.matches.orders_not_executed) == [0]


def test_merged_dispatch_links_one_trip_to_two_orders() -> None:
    orders = orders_table(
        [order(1, "08:50", "09:20", OFFICE, HOTEL), order(2, "08:55", "09:15", OFFICE, HOTEL)]
    )
    result = run_vehicle(local_track(*day()), Context(orders=orders), P)
    assert {(1, 0, "main"), (1, 1, "main")} <= links(result)


def test_an_order_whose_car_never_went_is_not_executed() -> None:
    orders = orders_table(
        [order(1, "08:45", "09:30", OFFICE, HOTEL), order(2, "13:00", "14:00", HOTEL, OFFICE)]
    )
    result = run_vehicle(local_track(*day()), Context(orders=orders), P)
    assert list(result.matches.orders_not_executed) == [1]


def test_matching_with_no_orders_or_no_trips() -> None:
    empty = orders_table([])
    result = run_vehicle(local_track(*day()), Context(orders=empty), P)
    assert list(result.matches.trips_without_order) == [0, 1, 2]
    none = match_orders(run_vehicle(local_track(("08:00", 0, 0)), Context(), P).trips, empty, P.match)
    assert len(none.links) == 0 and len(none.orders_not_executed) == 0


def test_role_codes_are_stable() -> None:
    assert [ROLE_CODE[r] for r in LinkRole] == [0, 1, 2]
