"""Alerts in the database: raised by the engine's rounds, idempotent, reviewed ones never rewritten."""

from __future__ import annotations

import time
from typing import Any

import psycopg

from ingest.decode import DecodeLimits, Message
from ingest.filters import FilterParams
from ingest.mqtt_publish import Publisher
from ingest.write import create_stage, load_terminals, write_batch
from rules.publish import publish_new_alerts
from rules.worker import RulesStep
from simulators.database import load_run
from simulators.dates import recent_working_days
from simulators.output import messages
from simulators.run import SimParams, simulate
from simulators.violations import ViolationRates
from simulators.world import build_world
from tests.conftest import Broker
from tracks.params import Params
from tracks.worker import process_dirty, recompute


def _alerts(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT kind, vehicle_id, anchor, anchor_value, status, retracted_at IS NOT NULL"
        " FROM alert ORDER BY 1, 2, 4"
    ).fetchall()


def test_engine_rounds_raise_alerts_once_and_leave_reviewed_ones_alone(db: str, broker: Broker) -> None:
    rates = ViolationRates().scaled(4.0)
    day = recent_working_days(1, back_min=2)
    run = simulate(build_world(12, 5), SimParams(start=day, days=1, rates=rates))
    load_run(db, run)
    rules = RulesStep()
    with psycopg.connect(db, autocommit=True) as conn:
        create_stage(conn)
        terminals = load_terminals(conn)
        sent = list(messages(run))
        for lo in range(0, len(sent), 2_000):
            batch = [
                Message(topic=t, payload=p, received_at_us=time.time_ns() // 1000)
                for _, t, p in sent[lo : lo + 2_000]
            ]
            write_batch(conn, batch, terminals, worker="t", params=FilterParams(), limits=DecodeLimits())
            while process_dirty(conn, "t", Params(), after=rules) is not None:
                pass
        live = _alerts(conn)
        assert len(live) >= 3, "violations at 4× the usual rates raise alerts"
        kinds = {row[0] for row in live}
        assert kinds & {"no_order", "outside_window", "detour", "overspeed", "mileage_excess", "off_hours"}

        # a supervisor confirms one; a full recompute raises the same alerts, no duplicates, no rewrite
        first = conn.execute(
            "SELECT alert_id, evidence, updated_at FROM alert ORDER BY alert_id LIMIT 1"
        ).fetchone()
        assert first is not None
        conn.execute(
            "UPDATE alert SET status = 'confirmed', evidence = '{\"by\": \"hand\"}' WHERE alert_id = %s",
            (first[0],),
        )
        start_us = int(run.start_s * 1e6) - 86_400_000_000
        recompute(conn, start_us, start_us + 3 * 86_400_000_000, Params(), after=rules)
        again = _alerts(conn)
        assert len(again) == len({r[:4] for r in again}), "one row per natural key"
        assert {r[:4] for r in again} >= {r[:4] for r in live}, (
            "what the rounds raised is kept (maybe retracted)"
        )
        # recomputing the same range again changes nothing: same rows, same evidence, nothing touched
        before = conn.execute("SELECT alert_id, updated_at, retracted_at FROM alert ORDER BY 1").fetchall()
        recompute(conn, start_us, start_us + 3 * 86_400_000_000, Params(), after=rules)
        assert (
            conn.execute("SELECT alert_id, updated_at, retracted_at FROM alert ORDER BY 1").fetchall()
            == before
        )
        kept = conn.execute("SELECT status, evidence FROM alert WHERE alert_id = %s", (first[0],)).fetchone()
        assert kept == ("confirmed", {"by": "hand"})

        # new alerts go out over MQTT under alerts/<agency>/<kind>, once
        publisher = Publisher(port=broker.port, client_id="alerts-test")
        try:
            assert publisher.wait_connected()
            published = publish_new_alerts(conn, publisher)
            assert published > 0
            assert publish_new_alerts(conn, publisher) == 0
        finally:
            publisher.close()
