"""Scoring the rules against the simulator's truth, in-process: the matching of raised to expected
alerts, and a small seeded fleet with many violations (a smoke test of the whole chain; the figures
for the 200-car week are in ``fleetwatch rules score``)."""

from __future__ import annotations

import numpy as np

from rules.catalogue import RULES
from rules.facts import derive_facts
from simulators.rule_inputs import alerts_of
from simulators.run import SimParams, simulate
from simulators.score import Spans, clean_week_alerts, match, score_run
from simulators.violations import CLEAN, ViolationRates
from simulators.world import build_world

S = 1_000_000


def spans(*rows: tuple[str, int, float, float]) -> Spans:
    return Spans(
        kind=np.array([r[0] for r in rows], dtype=np.str_),
        vehicle_id=np.array([r[1] for r in rows], dtype=np.int64),
        start_us=np.array([round(r[2] * S) for r in rows], dtype=np.int64),
        end_us=np.array([round(r[3] * S) for r in rows], dtype=np.int64),
    )


def test_a_match_needs_the_same_kind_vehicle_and_overlapping_times() -> None:
    expected = spans(("detour", 1, 100, 200), ("detour", 2, 100, 200), ("overspeed", 1, 1000, 1100))
    raised = spans(
        ("detour", 1, 250, 300),  # 50 s after: within the tolerance
        ("detour", 2, 900, 950),  # far from vehicle 2's
        ("no_order", 1, 1000, 1100),  # another kind
    )
    hit_e, hit_r = match(expected, raised, tolerance_s=60)
    assert hit_e.tolist() == [True, False, False]
    assert hit_r.tolist() == [True, False, False]
    _, explained = match(expected, raised, 60, explains={"no_order": ("overspeed",)})
    assert explained.tolist() == [False, False, True]


def test_a_small_fleet_with_many_violations_scores_high_and_a_clean_one_raises_nothing() -> None:
    world = build_world(30, 3)
    scored = score_run(simulate(world, SimParams(days=2, rates=ViolationRates().scaled(8))))
    assert scored["rule_failures"] == 0
    assert isinstance(scored["alert_recall"], float) and scored["alert_recall"] >= 0.95
    assert isinstance(scored["alert_precision"], float) and scored["alert_precision"] >= 0.95
    per_kind = scored["per_kind"]
    assert isinstance(per_kind, dict) and set(per_kind) >= {"no_order", "detour", "fuel_consumption"}
    assert clean_week_alerts(simulate(world, SimParams(days=2, rates=CLEAN))) == {"total": 0}


def test_every_rule_gives_a_vehicle_the_same_alerts_alone_as_in_the_fleet() -> None:
    """What a failing rule's vehicle-by-vehicle retry relies on: ``Facts.only`` loses nothing."""
    found = alerts_of(simulate(build_world(30, 3), SimParams(days=2, rates=ViolationRates().scaled(8))))
    facts = derive_facts(found.inputs, found.config)
    for rule in RULES:
        fleet = rule.check(facts, found.config)
        for vehicle in facts.vehicle_ids.tolist()[::3]:
            alone = set(rule.check(facts.only(vehicle), found.config))
            assert alone == {a for a in fleet if a.vehicle_id == vehicle}, (rule.name, vehicle)
