"""What the rules share: positions at given times (both search paths), outings chained from depot to
depot, and which order each trip is attributed to."""

from __future__ import annotations

import numpy as np

from rules.facts import first_at_or_after, last_at_or_before
from rules.synth import DEPOT, Drive, Park, Scene, itinerary, order, scene_facts

OFFICE, HOTEL = (3000.0, 0.0), (3000.0, 4000.0)


def test_rows_at_or_around_a_time_per_vehicle() -> None:
    vehicle = np.array([1, 1, 1, 2, 2], np.int64)
    for shift in (0, 1 << 61):  # the second makes the (vehicle, time) key too wide: the merge-sort path
        t = np.array([10, 20, 30, 15, 25 + shift], np.int64)
        qv, qt = np.array([1, 1, 1, 1, 2, 2, 3]), np.array([5, 10, 15, 35, 15, 26 + shift, 1])
        assert last_at_or_before(vehicle, t, qv, qt).tolist() == [-1, 0, 0, 2, 3, 4, -1]
        assert first_at_or_after(vehicle, t, qv, qt).tolist() == [0, 0, 1, -1, 3, -1, -1]


def test_outings_run_from_depot_to_depot() -> None:
    day = itinerary(
        Park("08:00"),
        Drive([DEPOT, OFFICE]),
        Park("08:30"),
        Drive([OFFICE, DEPOT]),
        Park("10:00"),
        Drive([DEPOT, HOTEL]),
        Park("11:00"),
        Drive([HOTEL, OFFICE]),
        Park("12:00"),
        Drive([OFFICE, DEPOT]),
        Park("23:00"),
    )
    facts, _ = scene_facts(Scene(days={1: day}))
    assert facts.trip_outing.tolist() == [0, 0, 1, 1, 1]


def test_each_outing_takes_the_order_it_drove_even_when_another_window_is_nearer() -> None:
    """An early outing for order 2 starts while order 1's window (whose outing is over) is still open."""
    west = (-3000.0, 0.0)
    day = itinerary(
        Park("08:00"),
        Drive([DEPOT, west]),
        Park("08:30"),
        Drive([west, DEPOT]),
        Park("09:20"),
        Drive([DEPOT, OFFICE]),
        Park("09:40"),
        Drive([OFFICE, HOTEL]),
        Park("10:00"),
        Drive([HOTEL, OFFICE, DEPOT]),
        Park("23:00"),
    )
    orders = [order(1, ("07:50", "09:30"), DEPOT, west), order(2, ("11:00", "12:30"), OFFICE, HOTEL)]
    facts, _ = scene_facts(Scene(days={1: day}, orders=orders))
    assert facts.orders.order_id[facts.trip_order].tolist() == [1, 1, 2, 2, 2]


def test_a_trip_far_from_every_window_has_no_order() -> None:
    day = itinerary(
        Park("08:00"), Drive([DEPOT, OFFICE]), Park("08:30"), Drive([OFFICE, DEPOT]), Park("23:00")
    )
    facts, _ = scene_facts(Scene(days={1: day}, orders=[order(1, ("14:00", "15:00"), DEPOT, HOTEL)]))
    assert facts.trip_order.tolist() == [-1, -1]


def test_an_order_served_already_does_not_take_the_next_outing_that_overlaps_it_more() -> None:
    """Order 2's car leaves 70 min early, still inside order 1's window, whose outing is over."""
    west = (-3000.0, 0.0)
    day = itinerary(
        Park("08:00"),
        Drive([DEPOT, west]),
        Park("08:20"),
        Drive([west, DEPOT]),
        Park("09:20"),
        Drive([DEPOT, OFFICE]),
        Park("09:40"),
        Drive([OFFICE, HOTEL]),
        Park("10:40"),
        Drive([HOTEL, OFFICE, DEPOT]),
        Park("23:00"),
    )
    orders = [order(1, ("07:50", "10:00"), DEPOT, west), order(2, ("10:30", "12:00"), OFFICE, HOTEL)]
    facts, _ = scene_facts(Scene(days={1: day}, orders=orders))
    assert facts.orders.order_id[facts.trip_order].tolist() == [1, 1, 2, 2, 2]
