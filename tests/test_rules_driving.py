"""How the car was driven and reported: sustained overspeed (not one noisy fix), a silent terminal
(not a parked one, not a tunnel), a padded odometer — positive and negative cases."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from rules.alert import Anchor
from rules.driving import mileage_padding, overspeed, silent_terminal
from rules.synth import DEPOT, Agency, Day, Drive, Park, Scene, itinerary, scene_facts
from tracks.synth import at_us

EAST = (8000.0, 0.0)
ROADS = Agency(roads=[([DEPOT, EAST], 60.0), ([(4000.0, -2000.0), (4000.0, 2000.0)], 40.0)])


def fast_day(speed_kmh: float) -> Day:
    return itinerary(Park("10:00"), Drive([DEPOT, EAST], speed_kmh=speed_kmh), Park("12:00"))


def test_sustained_speed_above_the_limit_is_overspeed() -> None:
    facts, config = scene_facts(Scene(days={1: fast_day(90.0)}, agency=ROADS))
    (alert,) = overspeed(facts, config)
    assert alert.anchor is Anchor.TRIP and alert.anchor_value == facts.trips.start_us[0]
    assert alert.evidence.value("limit_kmh") == 60.0  # the crossing 40 km/h street does not count
    assert alert.evidence.value("max_speed_kmh") == 90.0
    assert alert.evidence.value("over_s") > 300


def test_speed_under_ratio_times_the_limit_is_not_overspeed() -> None:
    facts, config = scene_facts(Scene(days={1: fast_day(70.0)}, agency=ROADS))  # 70 < 1.2 x 60
    assert overspeed(facts, config) == ()


def test_one_noisy_fix_is_not_overspeed() -> None:
    day = fast_day(50.0)
    speed = day.speed_kmh.copy()
    speed[np.flatnonzero(speed > 0)[10]] = 130.0
    facts, config = scene_facts(Scene(days={1: replace(day, speed_kmh=speed)}, agency=ROADS))
    assert overspeed(facts, config) == ()


def test_a_short_burst_under_min_s_is_not_overspeed() -> None:
    burst = itinerary(
        Park("10:00"),
        Drive([DEPOT, (1000.0, 0.0)], speed_kmh=50),
        Drive([(1000.0, 0.0), (2000.0, 0.0)], speed_kmh=90),  # 40 s
        Drive([(2000.0, 0.0), EAST], speed_kmh=50),
        Park("12:00"),
    )
    facts, config = scene_facts(Scene(days={1: burst}, agency=ROADS))
    assert overspeed(facts, config) == ()


def test_off_the_road_layer_the_default_limit_applies() -> None:
    far = itinerary(
        Park("10:00"),
        Drive([(0.0, 5000.0), (9000.0, 5000.0)], speed_kmh=150),
        Park("12:00"),
        at=(0.0, 5000.0),
    )
    facts, config = scene_facts(Scene(days={1: far}, agency=ROADS))
    (alert,) = overspeed(facts, config)
    assert alert.evidence.value("limit_kmh") == 120.0
    facts, config = scene_facts(Scene(days={1: far}, agency=replace(ROADS, default_limit_kmh=None)))
    assert overspeed(facts, config) == ()


def test_no_report_while_the_car_moved_is_a_silent_terminal() -> None:
    day = itinerary(Park("10:00"), Drive([DEPOT, EAST], silent=(100.0, 500.0)), Park("12:00"))
    facts, config = scene_facts(Scene(days={1: day}))
    (alert,) = silent_terminal(facts, config)
    assert alert.anchor is Anchor.GAP and alert.start_us == at_us("10:01:30")
    assert 4100 < alert.evidence.value("moved_m") < 4300
    assert alert.trip_start_us == facts.trips.start_us[0]


def test_a_silence_that_ends_where_it_began_is_caught_by_the_odometer() -> None:
    loop = [DEPOT, (2000.0, 0.0), (2000.0, 1500.0), (2100.0, 1500.0), (2100.0, 0.0), EAST]
    day = itinerary(Park("10:00"), Drive(loop, silent=(220.0, 480.0)), Park("12:00"))
    facts, config = scene_facts(Scene(days={1: day}))
    (alert,) = silent_terminal(facts, config)
    assert alert.evidence.value("straight_m") < 500 < alert.evidence.value("odometer_m")


def test_a_parked_terminal_reporting_every_10_minutes_is_not_silent() -> None:
    day = itinerary(Park("10:00", every_s=600), Drive([DEPOT, EAST]), Park("14:00", every_s=600))
    facts, config = scene_facts(Scene(days={1: day}))
    assert silent_terminal(facts, config) == ()


def test_a_tunnel_is_not_a_silence() -> None:
    """The terminal kept reporting, without a valid position (quarantined): not an unplugged one."""
    day = itinerary(Park("10:00"), Drive([DEPOT, EAST], no_fix=(100.0, 500.0)), Park("12:00"))
    facts, config = scene_facts(Scene(days={1: day}))
    assert silent_terminal(facts, config) == ()


def test_an_odometer_running_fast_is_mileage_padding() -> None:
    day = itinerary(Park("10:00"), Drive([DEPOT, EAST], odometer_factor=1.4), Park("12:00"))
    facts, config = scene_facts(Scene(days={1: day}))
    (alert,) = mileage_padding(facts, config)
    assert 3000 < alert.evidence.value("excess_m") < 3400
    assert alert.anchor is Anchor.TRIP


def test_an_honest_odometer_or_a_silence_is_not_padding() -> None:
    honest = itinerary(Park("10:00"), Drive([DEPOT, EAST]), Park("12:00"))
    loop = [DEPOT, (2000.0, 0.0), (2000.0, 1500.0), (2100.0, 1500.0), (2100.0, 0.0), EAST]
    silent = itinerary(Park("10:00"), Drive(loop, silent=(220.0, 480.0)), Park("12:00"))
    for day in (honest, silent):
        facts, config = scene_facts(Scene(days={1: day}))
        assert mileage_padding(facts, config) == ()


def test_a_run_is_timed_between_fixes_from_the_distance_driven() -> None:
    """90 km/h for exactly 80 s between fixes 10 s apart: its ends are placed inside the legs."""
    burst = itinerary(
        Park("10:00"),
        Drive([DEPOT, (1000.0, 0.0)], speed_kmh=50, every_s=10),
        Drive([(1000.0, 0.0), (3000.0, 0.0)], speed_kmh=90, every_s=10),
        Drive([(3000.0, 0.0), EAST], speed_kmh=50, every_s=10),
        Park("12:00"),
    )
    facts, config = scene_facts(Scene(days={1: burst}, agency=ROADS))
    (alert,) = overspeed(facts, config)
    assert abs(alert.evidence.value("over_s") - 80.0) < 2.0
