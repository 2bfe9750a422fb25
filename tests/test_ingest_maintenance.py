"""Operator jobs: replaying quarantined input, retention by dropping whole chunks."""

from __future__ import annotations

import time

import orjson
import psycopg

from ingest.decode import DecodeLimits, Message
from ingest.filters import FilterParams
from ingest.maintenance import apply_retention, replay_quarantine
from ingest.reasons import Reason
from ingest.write import create_stage, load_terminals, write_batch
from tests.conftest import register_fleet, scalar

LON, LAT = 119.97, 31.81


def _fix(t_s: float, lon: float = LON) -> bytes:
    return orjson.dumps({"time": round(t_s * 1000), "lon": lon, "lat": LAT})


def test_replay_stores_a_registered_terminal_and_requarantines_the_rest(db: str) -> None:
    fleet = register_fleet(db, 1)
    now = time.time()
    received = time.time_ns() // 1000
    messages = [
        Message(topic="fleet/NEW1/pos", payload=_fix(now - 30), received_at_us=received),
        Message(topic="fleet/NEW1/pos", payload=_fix(now - 20), received_at_us=received),
        Message(topic="fleet/GHOST/pos", payload=_fix(now - 10), received_at_us=received),
    ]
    with psycopg.connect(db, autocommit=True) as conn:
        create_stage(conn)
        write_batch(
            conn, messages, load_terminals(conn), worker="t", params=FilterParams(), limits=DecodeLimits()
        )
        assert scalar(db, "SELECT count(*) FROM quarantine WHERE reason = 'unknown_terminal'") == 3
        conn.execute(
            "INSERT INTO terminal (terminal_id, vehicle_id) VALUES ('NEW1', %s)", (fleet.vehicle_ids[0],)
        )
        outcome = replay_quarantine(
            conn, [Reason.UNKNOWN_TERMINAL], params=FilterParams(), limits=DecodeLimits()
        )
    assert outcome.messages == 3
    assert outcome.fixes_stored == 2
    assert scalar(db, "SELECT count(*) FROM position") == 2
    assert scalar(db, "SELECT terminal_id FROM quarantine") == "GHOST"


def test_retention_drops_old_chunks_and_keeps_recent_ones(db: str) -> None:
    fleet = register_fleet(db, 1)
    vid = fleet.vehicle_ids[0]
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO position (vehicle_id, fix_at, received_at, terminal_no, lon, lat, valid)"
            " SELECT %s, now() - make_interval(days => d), now(), 1, 119.9, 31.8, true"
            " FROM unnest(ARRAY[1, 2, 40, 41]) AS d",
            (vid,),
        )
        before = scalar(
            db, "SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_name = 'position'"
        )
        dropped = apply_retention(conn, keep_days=30)
    assert dropped["position_chunks"] >= 1
    assert scalar(db, "SELECT count(*) FROM position") == 2
    after = scalar(
        db, "SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_name = 'position'"
    )
    assert after == before - dropped["position_chunks"]
