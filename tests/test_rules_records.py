"""Fuel-card and maintenance records against the car's track: card used elsewhere, more than the
tank, consumption far above the norm, repaired while elsewhere — positive and negative cases."""

from __future__ import annotations

from rules.alert import Anchor
from rules.records import fuel_card_elsewhere, fuel_consumption, fuel_over_tank, maintenance_elsewhere
from rules.synth import DEPOT, Drive, Fill, Park, Repair, Scene, itinerary, scene_facts

STATION, SHOP, FAR = (2000.0, 0.0), (0.0, 3000.0), (20_000.0, 0.0)


def to_station_and_back() -> Scene:
    day = itinerary(
        Park("09:00"), Drive([DEPOT, STATION]), Park("09:30"), Drive([STATION, DEPOT]), Park("23:00")
    )
    return Scene(days={1: day})


def test_a_card_used_while_the_car_was_elsewhere_is_reported() -> None:
    scene = to_station_and_back()
    facts, config = scene_facts(
        Scene(days=scene.days, fills=[Fill(record_id=3, at="12:00", where=STATION, litres=40.0)])
    )
    (alert,) = fuel_card_elsewhere(facts, config)
    assert alert.anchor is Anchor.FUEL_RECORD and alert.anchor_value == 3 and alert.fuel_record_id == 3
    assert 1900 < alert.evidence.value("car_to_station_m") < 2100


def test_a_card_used_where_the_car_stood_is_not() -> None:
    scene = to_station_and_back()
    facts, config = scene_facts(
        Scene(days=scene.days, fills=[Fill(record_id=3, at="09:15", where=STATION, litres=40.0)])
    )
    assert fuel_card_elsewhere(facts, config) == ()


def test_without_a_recent_fix_the_place_is_not_judged() -> None:
    day = itinerary(Park("09:00", every_s=7200), Park("23:00", every_s=7200))  # a fix every 2 h
    facts, config = scene_facts(
        Scene(days={1: day}, fills=[Fill(record_id=1, at="10:00", where=FAR, litres=30.0)])
    )
    assert fuel_card_elsewhere(facts, config) == ()


def test_more_litres_than_the_tank_holds_is_reported() -> None:
    scene = to_station_and_back()
    fills = [
        Fill(record_id=1, at="09:15", where=STATION, litres=70.0),
        Fill(record_id=2, at="09:16", where=STATION, litres=56.0),
    ]
    facts, config = scene_facts(Scene(days=scene.days, fills=fills))
    (alert,) = fuel_over_tank(facts, config)  # 56 L is within the 5 % tolerance of a 55 L tank
    assert alert.fuel_record_id == 1 and alert.evidence.value("tank_l") == 55.0


def long_drive() -> Scene:
    day = itinerary(Park("09:00"), Drive([DEPOT, (60_000.0, 0.0), DEPOT], speed_kmh=100), Park("23:00"))
    return Scene(days={1: day})


def test_fuel_far_above_the_norm_for_the_distance_is_reported() -> None:
    fills = [
        Fill(record_id=1, at="08:30", where=DEPOT, litres=20.0),
        Fill(record_id=2, at="14:00", where=DEPOT, litres=30.0),
    ]
    facts, config = scene_facts(Scene(days=long_drive().days, fills=fills))
    (alert,) = fuel_consumption(facts, config)
    assert alert.fuel_record_id == 2 and 24 < alert.evidence.value("l_per_100km") < 26
    assert 119 < alert.evidence.value("km_since_previous_fill") < 121


def test_fuel_at_the_norm_or_over_a_short_distance_is_not() -> None:
    normal = [
        Fill(record_id=1, at="08:30", where=DEPOT, litres=20.0),
        Fill(record_id=2, at="14:00", where=DEPOT, litres=11.0),
    ]
    facts, config = scene_facts(Scene(days=long_drive().days, fills=normal))
    assert fuel_consumption(facts, config) == ()
    short = [
        Fill(record_id=1, at="08:30", where=DEPOT, litres=20.0),
        Fill(record_id=2, at="14:00", where=DEPOT, litres=30.0),
    ]
    facts, config = scene_facts(Scene(days=to_station_and_back().days, fills=short))  # 4 km: too short to say
    assert fuel_consumption(facts, config) == ()


def test_a_repair_while_the_car_stood_elsewhere_is_reported() -> None:
    day = itinerary(Park("23:00"))
    facts, config = scene_facts(
        Scene(days={1: day}, repairs=[Repair(record_id=9, start="10:00", end="12:00", where=SHOP)])
    )
    (alert,) = maintenance_elsewhere(facts, config)
    assert alert.maintenance_record_id == 9 and alert.anchor is Anchor.MAINTENANCE_RECORD
    assert 2900 < alert.evidence.value("nearest_m") < 3100


def test_a_repair_while_the_car_was_at_the_shop_is_not() -> None:
    day = itinerary(Park("09:00"), Drive([DEPOT, SHOP]), Park("13:00"), Drive([SHOP, DEPOT]), Park("23:00"))
    facts, config = scene_facts(
        Scene(days={1: day}, repairs=[Repair(record_id=9, start="10:00", end="12:00", where=SHOP)])
    )
    assert maintenance_elsewhere(facts, config) == ()
