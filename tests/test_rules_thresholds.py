"""Thresholds per agency as versioned data: the version in force on an alert's day judges it and is
named in its evidence; a zone's own minimum dwell; working hours per agency."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import numpy as np
import pytest

from rules.alert import AlertKind
from rules.calendar import WorkHours, day_number
from rules.config import ForbiddenZones, RuleConfig
from rules.facts import NO_DAY
from rules.stays import forbidden_place
from rules.synth import DEPOT, Agency, Drive, Park, Scene, agency_config, itinerary, scene_facts, scene_inputs
from rules.thresholds import (
    AgencyConfigs,
    ThresholdError,
    ThresholdRow,
    apply_thresholds,
    evaluate_dated,
    schedule_of,
)
from tracks.synth import DAY, at_us

ZONE = (-3000.0, 3000.0)
FORBIDDEN = Agency(forbidden=[(44, ZONE, 200.0)])
CODES = {10: "A10", 1: "CITY"}


def row(agency: int, name: str, value: float, day: date) -> ThresholdRow:
    return ThresholdRow(agency_id=agency, name=name, value=value, effective_from=day)


def two_days_in_the_zone() -> Scene:
    """Ten minutes parked in the forbidden zone on DAY and again on the next day."""
    day = itinerary(
        Park("10:00"),
        Drive([DEPOT, ZONE]),
        Park("10:20"),
        Drive([ZONE, DEPOT]),
        Park("34:00"),
        Drive([DEPOT, ZONE]),
        Park("34:20"),
        Drive([ZONE, DEPOT]),
        Park("40:00"),
    )
    return Scene(days={1: day}, agency=FORBIDDEN)


def test_apply_thresholds_sets_parameters_by_name_and_refuses_unknown_ones() -> None:
    config = apply_thresholds(
        RuleConfig(), {"overspeed.ratio": 1.5, "documents.expiring_lead_days": 45}, "X@1"
    )
    assert config.overspeed.ratio == 1.5 and config.documents.expiring_lead_days == 45
    assert config.version == "X@1" and config.stay == RuleConfig().stay
    with pytest.raises(ThresholdError, match="unknown threshold"):
        apply_thresholds(RuleConfig(), {"overspeed.nonsense": 1.0}, "X@1")
    with pytest.raises(ThresholdError, match="whole number"):
        apply_thresholds(RuleConfig(), {"documents.expiring_lead_days": 1.5}, "X@1")


def test_the_version_in_force_is_the_newest_by_effective_date_then_the_parents() -> None:
    rows = [
        row(1, "overspeed.ratio", 1.3, date(2026, 1, 1)),  # the city (parent)
        row(1, "stay.forbidden_min_dwell_s", 600.0, date(2026, 1, 1)),
        row(10, "overspeed.ratio", 1.1, date(2026, 2, 1)),  # the agency's own, later
        row(10, "overspeed.ratio", 1.15, date(2026, 3, 1)),
    ]
    schedule = schedule_of(RuleConfig(), rows, (10, 1), CODES)
    assert [d.from_day for d in schedule] == [
        NO_DAY,
        day_number(date(2026, 1, 1)),
        day_number(date(2026, 2, 1)),
        day_number(date(2026, 3, 1)),
    ]
    versions = [
        (d.config.version, d.config.overspeed.ratio, d.config.stay.forbidden_min_dwell_s) for d in schedule
    ]
    assert versions == [
        ("default", 1.2, 300.0),
        ("CITY@2026-01-01", 1.3, 600.0),
        ("A10@2026-02-01", 1.1, 600.0),
        ("A10@2026-03-01", 1.15, 600.0),
    ]


def test_each_alert_is_judged_by_the_version_of_its_day_and_names_it() -> None:
    scene = two_days_in_the_zone()
    base = agency_config(scene.agency)
    rows = [
        row(10, "stay.forbidden_min_dwell_s", 500.0, DAY - timedelta(days=10)),
        row(10, "stay.forbidden_min_dwell_s", 5000.0, DAY + timedelta(days=1)),
    ]
    configs = AgencyConfigs(
        default=base, schedules={10: schedule_of(base, rows, (10,), CODES)}, vehicle_agency={1: 10}
    )
    found = [
        a for a in evaluate_dated(scene_inputs(scene), configs).alerts if a.kind is AlertKind.FORBIDDEN_PLACE
    ]
    (alert,) = found  # the second day's stay is shorter than 5000 s
    assert alert.start_us < at_us("24:00", DAY)
    assert alert.evidence.version == f"A10@{(DAY - timedelta(days=10)).isoformat()}"
    assert alert.evidence.value("forbidden_min_dwell_s") == 500.0
    # a vehicle of another agency is judged by the defaults
    other = replace(configs, vehicle_agency={1: 99})
    defaults = [
        a for a in evaluate_dated(scene_inputs(scene), other).alerts if a.kind is AlertKind.FORBIDDEN_PLACE
    ]
    assert len(defaults) == 2 and {a.evidence.version for a in defaults} == {"default"}


def test_a_zone_with_its_own_minimum_dwell_overrides_the_default() -> None:
    scene = two_days_in_the_zone()
    facts, config = scene_facts(scene)
    assert len(forbidden_place(facts, config)) == 2
    zones = config.forbidden
    strict = replace(
        config,
        forbidden=ForbiddenZones(zone_id=zones.zone_id, rings=zones.rings, min_dwell_s=np.array([3600.0])),
    )
    assert forbidden_place(facts, strict) == ()
    lenient = replace(
        config,
        forbidden=ForbiddenZones(zone_id=zones.zone_id, rings=zones.rings, min_dwell_s=np.array([np.nan])),
    )
    (first, _) = forbidden_place(facts, lenient)
    assert first.evidence.value("forbidden_min_dwell_s") == 300.0


def test_working_hours_of_the_agency_judge_off_hours() -> None:
    evening = itinerary(
        Park("18:30"),
        Drive([DEPOT, (3000.0, 0.0)]),
        Park("19:00"),
        Drive([(3000.0, 0.0), DEPOT]),
        Park("23:00"),
    )
    scene = Scene(days={1: evening}, window=("00:00", "24:00"))
    base = agency_config(scene.agency)
    assert not [
        a
        for a in evaluate_dated(scene_inputs(scene), AgencyConfigs(default=base)).alerts
        if a.kind is AlertKind.OFF_HOURS
    ]
    short = replace(base, calendar=replace(base.calendar, hours=WorkHours(start_s=8 * 3600, end_s=18 * 3600)))
    configs = AgencyConfigs(
        default=base, schedules={10: schedule_of(short, [], (10,), CODES)}, vehicle_agency={1: 10}
    )
    off = [a for a in evaluate_dated(scene_inputs(scene), configs).alerts if a.kind is AlertKind.OFF_HOURS]
    assert len(off) == 2 and off[0].evidence.value("work_end_local_s") == 18 * 3600


def test_agencies_inheriting_one_version_are_judged_alike_and_name_it() -> None:
    scene = two_days_in_the_zone()
    scene = Scene(
        days={1: scene.days[1], 2: scene.days[1]}, agency=Agency(vehicles=2, forbidden=FORBIDDEN.forbidden)
    )
    base = agency_config(scene.agency)
    rows = [row(1, "stay.forbidden_min_dwell_s", 5000.0, DAY + timedelta(days=1))]  # the city, from day 2
    codes = {**CODES, 11: "A11"}
    schedules = {a: schedule_of(base, rows, (a, 1), codes) for a in (10, 11)}
    configs = AgencyConfigs(default=base, schedules=schedules, vehicle_agency={1: 10, 2: 11})
    found = [
        a for a in evaluate_dated(scene_inputs(scene), configs).alerts if a.kind is AlertKind.FORBIDDEN_PLACE
    ]
    assert sorted(a.vehicle_id for a in found) == [1, 2]  # day 1 only: day 2 needs 5000 s
    assert {a.evidence.version for a in found} == {"default"}
    lenient = [row(1, "stay.forbidden_min_dwell_s", 60.0, DAY)]
    schedules = {a: schedule_of(base, lenient, (a, 1), codes) for a in (10, 11)}
    again = evaluate_dated(scene_inputs(scene), replace(configs, schedules=schedules)).alerts
    later = [a for a in again if a.kind is AlertKind.FORBIDDEN_PLACE]
    assert len(later) == 4 and {a.evidence.version for a in later} == {f"CITY@{DAY.isoformat()}"}
