"""Where the car went and stayed: off the approved route, away from the depot at night, inside a
forbidden zone — each positive and negative on a hand-made day through the real engine."""

from __future__ import annotations

from rules.alert import Anchor
from rules.route import detour
from rules.stays import forbidden_place, overnight_away
from rules.synth import DEPOT, Agency, Drive, Park, Scene, itinerary, order, scene_facts
from tracks.synth import at_us

OFFICE, HOTEL = (3000.0, 0.0), (3000.0, 4000.0)
ZONE = (-3000.0, 3000.0)  # a golf club, 400 m square
FORBIDDEN = Agency(forbidden=[(44, ZONE, 200.0)])


def test_a_stretch_off_the_route_is_a_detour() -> None:
    # office → hotel by way of a junction 1.5 km east of the approved straight road
    day = itinerary(
        Park("08:00"),
        Drive([DEPOT, OFFICE]),
        Park("08:20"),
        Drive([OFFICE, (4500.0, 2000.0), HOTEL]),
        Park("10:00"),
        Drive([HOTEL, OFFICE, DEPOT]),
        Park("23:00"),
    )
    facts, config = scene_facts(Scene(days={1: day}, orders=[order(1, ("07:50", "11:30"), OFFICE, HOTEL)]))
    (alert,) = detour(facts, config)
    assert alert.order_id == 1 and alert.anchor is Anchor.TRIP
    assert alert.trip_start_us == facts.trips.start_us[1]
    assert 1300 < alert.evidence.value("max_deviation_m") < 1600
    assert alert.evidence.value("off_route_m") > 2000
    assert at_us("08:20") < alert.start_us < alert.end_us < at_us("08:40")
    assert alert.evidence.geojson() is not None


def test_following_the_route_is_not_a_detour() -> None:
    day = itinerary(
        Park("08:00"),
        Drive([DEPOT, OFFICE]),
        Park("08:20"),
        Drive([OFFICE, HOTEL]),
        Park("10:00"),
        Drive([HOTEL, OFFICE, DEPOT]),
        Park("23:00"),
    )
    facts, config = scene_facts(Scene(days={1: day}, orders=[order(1, ("07:50", "11:30"), OFFICE, HOTEL)]))
    assert detour(facts, config) == ()


def test_a_short_step_outside_the_corridor_is_not_a_detour() -> None:
    # round a block 300 m east of the road: 400 m of path outside the 200 m corridor, under 500 m
    block = [(3000.0, 1500.0), (3300.0, 1500.0), (3300.0, 1700.0), (3000.0, 1700.0)]
    day = itinerary(
        Park("08:00"),
        Drive([DEPOT, OFFICE, *block, HOTEL]),
        Park("10:00"),
        Drive([HOTEL, OFFICE, DEPOT]),
        Park("23:00"),
    )
    facts, config = scene_facts(Scene(days={1: day}, orders=[order(1, ("07:50", "11:30"), OFFICE, HOTEL)]))
    assert detour(facts, config) == ()


def test_parked_away_from_the_depot_at_3_am_is_overnight_away() -> None:
    day = itinerary(
        Park("19:00"),
        Drive([DEPOT, (5000.0, 0.0)]),
        Park("31:00"),
        Drive([(5000.0, 0.0), DEPOT]),
        Park("33:00"),
    )
    facts, config = scene_facts(Scene(days={1: day}))
    (alert,) = overnight_away(facts, config)
    assert alert.anchor is Anchor.NIGHT and alert.anchor_value == at_us("27:00")
    assert alert.evidence.value("from_depot_m") > 4900
    assert alert.trip_start_us == facts.trips.start_us[0]


def test_parked_at_the_depot_at_3_am_is_not_overnight_away() -> None:
    day = itinerary(
        Park("19:00"),
        Drive([DEPOT, (5000.0, 0.0)]),
        Park("20:00"),
        Drive([(5000.0, 0.0), DEPOT]),
        Park("33:00"),
    )
    facts, config = scene_facts(Scene(days={1: day}))
    assert overnight_away(facts, config) == ()


def test_a_stay_inside_a_forbidden_zone_is_reported_with_its_dwell() -> None:
    day = itinerary(Park("10:00"), Drive([DEPOT, ZONE]), Park("11:30"), Drive([ZONE, DEPOT]), Park("23:00"))
    facts, config = scene_facts(Scene(days={1: day}, agency=FORBIDDEN))
    (alert,) = forbidden_place(facts, config)
    assert alert.place_id == 44 and alert.anchor is Anchor.STOP
    assert alert.evidence.value("dwell_s") > 80 * 60
    assert alert.trip_start_us == facts.trips.start_us[0]


def test_driving_through_a_forbidden_zone_or_stopping_outside_it_is_not() -> None:
    through = itinerary(
        Park("10:00"), Drive([DEPOT, (-3000.0, 2500.0), (-3000.0, 3500.0), (-3000.0, 6000.0)]), Park("23:00")
    )
    beside = itinerary(Park("10:00"), Drive([DEPOT, (-3000.0, 2500.0)]), Park("23:00"))  # 300 m south
    for day in (through, beside):
        facts, config = scene_facts(Scene(days={1: day}, agency=FORBIDDEN))
        assert forbidden_place(facts, config) == ()
