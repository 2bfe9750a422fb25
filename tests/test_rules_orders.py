"""Rules on trips and orders, each positive and negative on a hand-made day through the real engine:
trip without an order, outside the window, off hours (calendar as data), order never executed, wrong
destination, mileage above the approved route, not back at the depot."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from rules.alert import Alert, AlertKind, Anchor, Severity
from rules.config import OffHoursParams, RuleConfig
from rules.orders import (
    mileage_excess,
    no_order,
    not_returned,
    off_hours,
    order_not_executed,
    outside_window,
    wrong_destination,
)
from rules.synth import DEPOT, Day, Drive, Park, Scene, itinerary, order, scene_facts
from tracks.synth import at_us

OFFICE, HOTEL, ELSEWHERE = (3000.0, 0.0), (3000.0, 4000.0), (-4000.0, 3000.0)


def errand(leave: str = "08:00", back: str = "10:00") -> Day:
    """Depot → office → hotel → (wait) → office → depot, leaving at ``leave``."""
    h, m = (int(p) for p in leave.split(":"))
    t = h * 60 + m
    return itinerary(
        Park(leave),
        Drive([DEPOT, OFFICE]),
        Park(f"{(t + 20) // 60:02d}:{(t + 20) % 60:02d}"),
        Drive([OFFICE, HOTEL]),
        Park(back),
        Drive([HOTEL, OFFICE, DEPOT]),
        Park("23:00"),
    )


def kinds(alerts: tuple[Alert, ...]) -> list[str]:
    return [a.kind.value for a in alerts]


def test_a_trip_without_any_order_is_no_order() -> None:
    facts, config = scene_facts(Scene(days={1: errand()}))
    alerts = no_order(facts, config)
    assert len(alerts) == 3
    first = alerts[0]
    assert first.kind is AlertKind.NO_ORDER and first.severity is Severity.HIGH
    assert first.anchor is Anchor.TRIP and first.anchor_value == first.trip_start_us == first.start_us
    assert first.evidence.value("distance_m") > 2900
    assert first.evidence.geojson() is not None


def test_trips_of_an_order_are_not_no_order() -> None:
    facts, config = scene_facts(
        Scene(days={1: errand()}, orders=[order(1, ("07:50", "11:30"), OFFICE, HOTEL)])
    )
    assert no_order(facts, config) == ()
    assert set(facts.trip_order.tolist()) == {0}


def test_an_order_of_another_vehicle_does_not_cover_the_trip() -> None:
    scene = Scene(days={1: errand()}, orders=[order(1, ("07:50", "11:30"), OFFICE, HOTEL, vehicle=2)])
    facts, config = scene_facts(replace(scene, agency=replace(scene.agency, vehicles=2)))
    assert len(no_order(facts, config)) == 3


def test_an_outing_hours_early_is_outside_the_window_not_without_an_order() -> None:
    """The car did the order's journey (office → hotel) two hours before its window."""
    facts, config = scene_facts(
        Scene(days={1: errand("06:00", "07:30")}, orders=[order(1, ("08:30", "10:30"), OFFICE, HOTEL)])
    )
    assert no_order(facts, config) == ()
    early = outside_window(facts, config)
    assert len(early) == 3
    assert all(a.order_id == 1 and a.evidence.value("before_window_s") > 0 for a in early)
    assert early[0].end_us <= at_us("08:15")  # the part before window start - grace


def test_trips_inside_the_window_with_grace_are_not_outside_it() -> None:
    facts, config = scene_facts(
        Scene(days={1: errand()}, orders=[order(1, ("08:10", "10:10"), OFFICE, HOTEL)])
    )
    assert outside_window(facts, config) == ()  # 10 min early and late: within the 15 min grace


def test_a_late_return_is_outside_the_window() -> None:
    facts, config = scene_facts(
        Scene(days={1: errand(back="12:00")}, orders=[order(1, ("07:50", "10:00"), OFFICE, HOTEL)])
    )
    late = outside_window(facts, config)
    assert len(late) == 1 and late[0].start_us == at_us("12:00")  # the whole return trip
    assert 650 < late[0].evidence.value("after_window_s") < 750


def test_driving_in_the_evening_of_a_working_day_is_off_hours() -> None:
    facts, config = scene_facts(Scene(days={1: errand("20:30", "22:00")}))
    alerts = off_hours(facts, config)
    assert len(alerts) == 3 and all(a.severity is Severity.HIGH for a in alerts)


def test_driving_at_noon_on_a_working_day_is_not_off_hours() -> None:
    facts, config = scene_facts(Scene(days={1: errand("12:00", "13:30")}))
    assert off_hours(facts, config) == ()


def test_the_part_after_20_00_is_the_span() -> None:
    day = itinerary(Park("19:55"), Drive([DEPOT, (6000.0, 0.0)]), Park("23:00"))  # 10 min at 36 km/h
    facts, config = scene_facts(Scene(days={1: day}))
    (alert,) = off_hours(facts, config)
    assert alert.start_us == at_us("20:00") and 280 < alert.evidence.value("off_hours_s") < 320


def test_a_holiday_is_off_hours_all_day_and_a_make_up_workday_is_not() -> None:
    may_day, make_up = date(2026, 5, 1), date(2026, 5, 9)  # 劳动节 (a Friday); 调休上班 (a Saturday)
    holiday, _ = scene_facts(Scene(days={1: errand("10:00", "11:30")}, day=may_day))
    workday, config = scene_facts(Scene(days={1: errand("10:00", "11:30")}, day=make_up))
    assert len(off_hours(holiday, config)) == 3
    assert off_hours(workday, config) == ()


def test_approved_off_hours_use_is_low_severity_or_left_out() -> None:
    scene = Scene(days={1: errand("20:30", "22:00")}, orders=[order(1, ("20:20", "22:30"), OFFICE, HOTEL)])
    facts, config = scene_facts(scene)
    assert {a.severity for a in off_hours(facts, config)} == {Severity.LOW}
    assert all(a.order_id == 1 for a in off_hours(facts, config))
    only_unapproved = replace(config, off_hours=OffHoursParams(include_approved=False))
    assert off_hours(facts, only_unapproved) == ()


def test_an_order_no_trip_executed_is_reported_once_its_window_is_over() -> None:
    day = itinerary(Park("23:00"))
    scene = Scene(
        days={1: day}, orders=[order(5, ("09:00", "11:00"), OFFICE, HOTEL)], window=("00:00", "23:00")
    )
    facts, config = scene_facts(scene)
    (alert,) = order_not_executed(facts, config)
    assert alert.order_id == 5 and alert.anchor is Anchor.ORDER and alert.anchor_value == 5
    not_over = replace(scene, window=("00:00", "11:10"))  # the 30 min grace has not passed
    facts, config = scene_facts(not_over)
    assert order_not_executed(facts, config) == ()


def test_an_executed_order_is_not_reported_as_never_executed() -> None:
    facts, config = scene_facts(
        Scene(days={1: errand()}, orders=[order(1, ("07:50", "11:30"), OFFICE, HOTEL)])
    )
    assert order_not_executed(facts, config) == ()


def wrong_errand() -> Day:
    return itinerary(
        Park("08:00"),
        Drive([DEPOT, OFFICE]),
        Park("08:20"),
        Drive([OFFICE, ELSEWHERE]),
        Park("10:00"),
        Drive([ELSEWHERE, DEPOT]),
        Park("23:00"),
    )


def test_going_elsewhere_than_the_approved_destination_is_reported() -> None:
    facts, config = scene_facts(
        Scene(days={1: wrong_errand()}, orders=[order(1, ("07:50", "11:30"), OFFICE, HOTEL)])
    )
    (alert,) = wrong_destination(facts, config)
    assert alert.order_id == 1 and alert.evidence.value("nearest_stop_m") > 3900
    assert alert.start_us == facts.trips.end_us[1]  # the stop at the wrong place
    assert alert.trip_start_us == facts.trips.start_us[1]


def test_reaching_the_destination_is_not_a_wrong_destination() -> None:
    facts, config = scene_facts(
        Scene(days={1: errand()}, orders=[order(1, ("07:50", "11:30"), OFFICE, HOTEL)])
    )
    assert wrong_destination(facts, config) == ()


def test_the_destination_is_judged_only_once_the_window_is_over() -> None:
    scene = Scene(
        days={1: wrong_errand()},
        orders=[order(1, ("07:50", "11:30"), OFFICE, HOTEL)],
        window=("00:00", "11:00"),
    )
    facts, config = scene_facts(scene)
    assert wrong_destination(facts, config) == ()


def test_an_order_driven_much_longer_than_its_route_is_mileage_excess() -> None:
    loop = [DEPOT, OFFICE, (8000.0, 0.0), (8000.0, 4000.0), HOTEL]  # 10 km more than office → hotel
    day = itinerary(
        Park("08:00"), Drive(loop, speed_kmh=50), Park("10:00"), Drive([HOTEL, OFFICE, DEPOT]), Park("23:00")
    )
    facts, config = scene_facts(Scene(days={1: day}, orders=[order(1, ("07:50", "11:30"), OFFICE, HOTEL)]))
    (alert,) = mileage_excess(facts, config)
    assert alert.evidence.value("detour_ratio") > 1.5
    straight, cfg = scene_facts(
        Scene(days={1: errand()}, orders=[order(1, ("07:50", "11:30"), OFFICE, HOTEL)])
    )
    assert mileage_excess(straight, cfg) == ()


def test_parked_away_from_the_depot_after_the_order_is_not_returned() -> None:
    day = itinerary(
        Park("08:00"), Drive([DEPOT, OFFICE]), Park("08:20"), Drive([OFFICE, HOTEL]), Park("23:00")
    )
    facts, config = scene_facts(
        Scene(days={1: day}, orders=[order(1, ("07:50", "09:30"), OFFICE, HOTEL)], window=("00:00", "23:00"))
    )
    (alert,) = not_returned(facts, config)
    assert alert.order_id == 1 and alert.evidence.value("from_depot_m") > 4000
    home, cfg = scene_facts(Scene(days={1: errand()}, orders=[order(1, ("07:50", "11:30"), OFFICE, HOTEL)]))
    assert not_returned(home, cfg) == ()


def test_rules_see_nothing_on_an_empty_day() -> None:
    facts, config = scene_facts(Scene(days={1: itinerary(Park("06:00"))}))
    for rule in (
        no_order,
        outside_window,
        off_hours,
        order_not_executed,
        wrong_destination,
        mileage_excess,
        not_returned,
    ):
        assert rule(facts, config) == ()
    assert isinstance(config, RuleConfig)
