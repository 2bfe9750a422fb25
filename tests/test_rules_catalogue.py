"""The catalogue and ``evaluate``: one rule per kind, a failing rule isolated (logged with its name and
context, the others still run, only the vehicles it fails on lose its alerts), natural keys unique and
the same whatever window the data came in, evidence as GeoJSON."""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import pytest

from rules.alert import Alert, AlertKind, Anchor, Evidence, Severity, coordinates
from rules.catalogue import RULES, Rule, evaluate, evaluate_facts
from rules.config import RuleConfig
from rules.facts import Facts
from rules.orders import no_order
from rules.synth import (
    DEPOT,
    Agency,
    Day,
    Drive,
    Park,
    Scene,
    agency_config,
    itinerary,
    scene_facts,
    scene_inputs,
)

OFFICE = (3000.0, 0.0)


def two_errands() -> Day:
    return itinerary(
        Park("08:00"),
        Drive([DEPOT, OFFICE]),
        Park("09:00"),
        Drive([OFFICE, DEPOT]),
        Park("14:00"),
        Drive([DEPOT, OFFICE]),
        Park("15:00"),
        Drive([OFFICE, DEPOT]),
        Park("23:00"),
    )


def test_every_kind_has_exactly_one_rule_with_a_unique_name() -> None:
    assert sorted(r.kind.value for r in RULES) == sorted(k.value for k in AlertKind)
    assert len({r.name for r in RULES}) == len(RULES)
    assert all(r.check.__doc__ for r in RULES)


def broken(facts: Facts, config: RuleConfig) -> tuple[Alert, ...]:
    """Always raises."""
    raise ZeroDivisionError("a bug")


def test_a_raising_rule_is_logged_and_the_others_still_run(caplog: pytest.LogCaptureFixture) -> None:
    facts, config = scene_facts(Scene(days={1: two_errands()}))
    rules = (RULES[0], Rule(name="broken", kind=AlertKind.OVERSPEED, check=broken), *RULES[1:])
    with caplog.at_level(logging.ERROR, logger="rules.catalogue"):
        result = evaluate_facts(facts, config, rules)
    assert [a.kind for a in result.alerts].count(AlertKind.NO_ORDER) == 4
    assert [(f.rule, f.vehicle_id, f.error) for f in result.failures] == [
        ("broken", 1, "ZeroDivisionError: a bug")
    ]
    assert "rule broken raised on a batch of 1 vehicles" in caplog.text
    assert "rule broken failed on 1 of 1 vehicles" in caplog.text


def fails_on_vehicle_2(facts: Facts, config: RuleConfig) -> tuple[Alert, ...]:
    """No order, but breaks on vehicle 2's data."""
    if 2 in facts.fixes.vehicle_id:
        raise ValueError("vehicle 2's data breaks me")
    return no_order(facts, config)


def test_a_rule_failing_on_one_vehicle_still_alerts_for_the_others() -> None:
    scene = Scene(days={1: two_errands(), 2: two_errands()}, agency=Agency(vehicles=2))
    facts, config = scene_facts(scene)
    result = evaluate_facts(
        facts, config, (Rule(name="picky", kind=AlertKind.NO_ORDER, check=fails_on_vehicle_2),)
    )
    assert {a.vehicle_id for a in result.alerts} == {1}
    assert len(result.alerts) == 4
    (failure,) = result.failures
    assert failure.rule == "picky" and failure.vehicle_id == 2 and "vehicle 2" in failure.error


def test_alert_keys_are_unique_and_evaluation_is_repeatable() -> None:
    config = agency_config(Agency())
    inputs = scene_inputs(Scene(days={1: two_errands()}))
    first, again = evaluate(inputs, config), evaluate(inputs, config)
    assert first == again
    keys = [a.key for a in first.alerts]
    assert len(keys) == len(set(keys)) == 4
    assert keys[0] == ("no_order", 1, "trip", first.alerts[0].start_us)


def test_the_same_trip_has_the_same_key_in_another_window() -> None:
    day = two_errands()
    afternoon = np.flatnonzero(day.t_s >= 12 * 3600)
    late = replace(
        day,
        **{
            name: getattr(day, name)[afternoon]
            for name in ("t_s", "x_m", "y_m", "speed_kmh", "ignition", "odometer_km")
        },
        reports_s=day.reports_s[day.reports_s >= 12 * 3600],
    )
    config = agency_config(Agency())
    whole = evaluate(scene_inputs(Scene(days={1: day})), config)
    window = evaluate(scene_inputs(Scene(days={1: late}, window=("12:00", "48:00"))), config)
    assert {a.key for a in window.alerts} == {
        a.key for a in whole.alerts if a.start_us > window.alerts[0].start_us - 1
    }
    assert len(window.alerts) == 2


def test_evidence_is_geojson_ready() -> None:
    point = coordinates([118.8], [32.06])
    path = coordinates([118.8, 118.81], [32.06, 32.07])
    assert Evidence().geojson() is None
    assert Evidence(segments=(point,)).geojson() == {"type": "Point", "coordinates": [118.8, 32.06]}
    assert Evidence(segments=(path,)).geojson() == {
        "type": "LineString",
        "coordinates": [[118.8, 32.06], [118.81, 32.07]],
    }
    multi = Evidence(segments=(path, point)).geojson()
    assert multi is not None and multi["type"] == "MultiLineString"


def test_an_alert_is_a_hashable_value_with_its_natural_key() -> None:
    alert = Alert(
        kind=AlertKind.FUEL_OVER_TANK,
        severity=Severity.HIGH,
        vehicle_id=7,
        start_us=1,
        end_us=1,
        anchor=Anchor.FUEL_RECORD,
        anchor_value=42,
        fuel_record_id=42,
    )
    assert alert.key == ("fuel_over_tank", 7, "fuel_record", 42)
    assert len({alert, replace(alert)}) == 1
