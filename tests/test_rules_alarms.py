"""JT/T 808 alarm bits → one alert per episode, with evidence; other bits and missing words raise nothing."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from gateway.jt808.location import ALARM_BIT
from rules.alarms import ALARM_BITS, alarm_collision, alarm_emergency, alarm_episodes
from rules.alert import AlertKind, Anchor
from rules.catalogue import RULES, evaluate_facts
from rules.facts import Facts
from rules.synth import DEPOT, Drive, Park, Scene, itinerary, scene_facts

EAST = (8000.0, 0.0)


def facts_with_alarms(set_rows: dict[int, int]) -> Facts:
    """A day's facts; the alarm word of fix row r is set_rows[r], 0 elsewhere (-1: not reported at row 0)."""
    day = itinerary(Park("10:00"), Drive([DEPOT, EAST], speed_kmh=40.0), Park("12:00"))
    facts, _ = scene_facts(Scene(days={1: day}))
    word = np.zeros(len(facts.fixes), dtype=np.int64)
    word[0] = -1
    for row, value in set_rows.items():
        word[row] = value
    return replace(facts, fixes=replace(facts.fixes, extra={"alarm_word": word}))


def test_bits_match_the_gateway_table() -> None:
    for kind, bit in ALARM_BITS.items():
        assert ALARM_BIT[kind.value.removeprefix("alarm_").replace("antenna_cut", "gnss_antenna_cut")] == bit


def test_one_alert_per_episode_with_evidence() -> None:
    facts0, config = scene_facts(
        Scene(days={1: itinerary(Park("10:00"), Drive([DEPOT, EAST], speed_kmh=40.0), Park("12:00"))})
    )
    t = facts0.fixes.t_us
    rows = np.arange(len(t))
    first = rows[(t >= t[0] + 3_600 * 10**6)][:5]  # five reports in a row
    later = rows[(t >= t[first[-1]] + 400 * 10**6)][:3]  # > 300 s after: a new episode
    facts = facts_with_alarms({int(r): 0b1 for r in (*first, *later)})
    alerts = alarm_emergency(facts, config)
    assert len(alerts) == 2
    a = alerts[0]
    assert a.kind is AlertKind.ALARM_EMERGENCY and a.anchor is Anchor.ALARM
    assert a.anchor_value == a.start_us == int(t[first[0]]) and a.end_us == int(t[first[-1]])
    assert a.evidence.value("reports") == 5 and a.evidence.value("alarm_word") == 1
    assert a.evidence.value("duration_s") == (t[first[-1]] - t[first[0]]) / 1e6
    assert len(a.evidence.segments[0]) == 5
    assert alarm_collision(facts, config) == ()


def test_no_alarm_word_or_other_bits_raise_nothing() -> None:
    facts, config = scene_facts(Scene(days={1: itinerary(Park("10:00"), Park("12:00"))}))
    assert alarm_emergency(facts, config) == ()  # no alarm_word column at all (MQTT-only fleets)
    facts = facts_with_alarms({5: 1 << 29, 6: 1 << 29})
    assert alarm_emergency(facts, config) == ()
    (collision,) = alarm_episodes(facts, config, AlertKind.ALARM_COLLISION)
    assert collision.evidence.value("reports") == 2


def test_alarms_are_listed_in_the_catalogue() -> None:
    facts, config = scene_facts(
        Scene(days={1: itinerary(Park("10:00"), Drive([DEPOT, EAST], speed_kmh=40.0), Park("12:00"))})
    )
    word = np.zeros(len(facts.fixes), dtype=np.int64)
    word[20:25] = (1 << 8) | (1 << 30)
    facts = replace(facts, fixes=replace(facts.fixes, extra={"alarm_word": word}))
    kinds = [a.kind for a in evaluate_facts(facts, config, RULES).alerts if a.kind.value.startswith("alarm_")]
    assert sorted(kinds) == [AlertKind.ALARM_POWER_CUT, AlertKind.ALARM_ROLLOVER]
