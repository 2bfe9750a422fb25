"""The decoder and filters never raise on input, and every message and fix is accounted for."""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

import numpy as np
import orjson
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.decode import DecodeLimits, Message, decode, terminal_of
from ingest.filters import Anchors, FilterParams, screen
from ingest.reasons import Reason
from ingest.write import Terminal, create_stage, prepare_batch, write_batch

TERMINALS = {
    "T1": Terminal(terminal_no=1, vehicle_id=1),
    "alice:phone": Terminal(terminal_no=2, vehicle_id=2),
}
TOPICS = st.sampled_from(["fleet/T1/pos", "owntracks/alice/phone", "fleet/UNKNOWN/pos", "fleet/T1", "x/y/z"])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=6)
    ),
    max_leaves=30,
)
fix_like = st.fixed_dictionaries(
    {
        "time": st.one_of(st.integers(), st.floats(), st.text(max_size=30), st.none()),
        "lon": st.one_of(st.floats(), st.integers(), st.text(max_size=5)),
        "lat": st.one_of(st.floats(), st.integers(), st.none()),
    },
    optional=dict.fromkeys(
        (
            "speed_kmh",
            "heading_deg",
            "satellites",
            "hdop",
            "valid",
            "ignition",
            "odometer_km",
            "seq",
            "_type",
        ),
        json_values,
    ),
)
payloads = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    fix_like.map(lambda f: json.dumps(f).encode()),
    st.lists(fix_like, max_size=5).map(lambda fixes: json.dumps({"fixes": fixes}).encode()),
    fix_like.map(lambda f: json.dumps({"_type": "location", **f}).encode()),
)


def account(messages: list[Message]) -> None:
    decoded = decode(messages, TERMINALS)
    fixes = decoded.fixes
    vehicle_id = np.array([1] * len(fixes), dtype=np.int32)
    reason, detail = screen(fixes, vehicle_id, time.time_ns() // 1000, Anchors.empty(), FilterParams())
    rejected_messages = {r.message_index for r in decoded.rejected}
    with_fixes = set(fixes.message_index.tolist())
    assert rejected_messages.isdisjoint(with_fixes)
    assert rejected_messages | with_fixes == set(range(len(messages))), "a message vanished"
    assert set(np.flatnonzero(reason).tolist()) == set(detail), "every rejected fix says why"


@given(st.lists(st.tuples(TOPICS, payloads), max_size=8))
@settings(max_examples=400, deadline=None)
def test_decoder_never_raises_and_loses_nothing(items: list[tuple[str, bytes]]) -> None:
    account([Message(topic=t, payload=p, received_at_us=0) for t, p in items])


@given(st.binary(max_size=500))
@settings(max_examples=300, deadline=None)
def test_arbitrary_bytes_never_raise(payload: bytes) -> None:
    account([Message(topic="fleet/T1/pos", payload=payload, received_at_us=0)])


@given(st.lists(st.tuples(TOPICS, payloads), min_size=1, max_size=6))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_worker_write_path_never_raises_on_input(db: str, items: list[tuple[str, bytes]]) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        create_stage(conn)
        messages = [Message(topic=t, payload=p, received_at_us=time.time_ns() // 1000) for t, p in items]
        outcome = write_batch(
            conn, messages, TERMINALS, worker="fuzz", params=FilterParams(), limits=DecodeLimits()
        )
        quarantined_fixes = sum(outcome.fixes_quarantined.values())
        assert outcome.fixes_received == outcome.fixes_stored + outcome.fixes_duplicate + quarantined_fixes
        assert outcome.messages == len(messages)


def test_topics_name_the_terminal() -> None:
    assert terminal_of("fleet/T-01.a_b/pos") == "T-01.a_b"
    assert terminal_of("owntracks/alice/phone") == "alice:phone"
    for bad in (
        "fleet/+/pos",
        "fleet/#/pos",
        "fleet//pos",
        "fleet/a/b/pos",
        "fleet/a/fix",
        "owntracks/a",
        "",
    ):
        assert terminal_of(bad) is None


def test_times_in_epoch_ms_and_iso_8601() -> None:
    docs: list[Any] = [
        {"time": 1_764_230_400_000, "lon": 1, "lat": 1},
        {"time": "2025-11-27T08:00:00Z", "lon": 1, "lat": 1},
        {"time": "2025-11-27T16:00:00+08:00", "lon": 1, "lat": 1},
        {"time": "2025-11-27T08:00:00", "lon": 1, "lat": 1},  # no offset: UTC, as the protocol says
        {"time": "yesterday", "lon": 1, "lat": 1},
    ]
    decoded = decode([Message(topic="fleet/T1/pos", payload=orjson.dumps(docs), received_at_us=0)], TERMINALS)
    t = decoded.fixes.t_us
    assert t[0] == 1_764_230_400_000_000
    assert t[1] == t[2] == t[3] == 1_764_230_400_000_000
    assert decoded.fixes.reason.tolist()[:4] == [0, 0, 0, 0]
    assert "ISO 8601" in decoded.fixes.detail[4]


def test_a_prepared_batch_cannot_be_changed_after_it_is_built() -> None:
    now_us = time.time_ns() // 1000
    t_ms = now_us // 1000 - 60_000
    messages = [
        Message(
            topic="fleet/T1/pos",
            payload=orjson.dumps({"time": t_ms, "lon": 119.9, "lat": 31.8}),
            received_at_us=now_us,
        ),
        Message(topic="fleet/T1/pos", payload=b"{not json", received_at_us=now_us),
        Message(
            topic="fleet/T1/pos",
            payload=orjson.dumps({"time": t_ms + 1, "lon": 0, "lat": 0}),
            received_at_us=now_us,
        ),
    ]
    prepared = prepare_batch(
        messages, TERMINALS, Anchors.empty(), now_us=now_us, params=FilterParams(), limits=DecodeLimits()
    )
    assert prepared.accepted.tolist() == [0] and len(prepared.quarantine) == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        prepared.quarantine = ()  # type: ignore[misc]
    for name, values in [("accepted", prepared.accepted), *prepared.rows.items()]:
        assert not values.flags.writeable, name
    assert not prepared.decoded.fixes.lon.flags.writeable
    with pytest.raises(TypeError):
        prepared.rows["lon"] = np.zeros(2)  # type: ignore[index]
    with pytest.raises(TypeError):
        prepared.messages_quarantined[Reason.MALFORMED_JSON] += 1  # type: ignore[index]
    assert isinstance(prepared.quarantine, tuple)
    assert dict(prepared.messages_quarantined) == {Reason.MALFORMED_JSON: 1}
    assert dict(prepared.fixes_quarantined) == {Reason.NULL_ISLAND: 1}
