"""The alert publisher never gives up: its database connection killed (pg_terminate_backend), it
reconnects by the one retry policy (store.retry) and goes on publishing new alerts, each once."""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import UTC, datetime
from functools import partial
from typing import Any

import orjson
import paho.mqtt.client as paho
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from rules.publish import run_alert_publisher
from tests.conftest import Broker, register_fleet, scalar, wait_until

DEADLINE_S = 60.0  # generous: the machine may be busy


def insert_alert(url: str, vehicle_id: int, anchor_value: int) -> int:
    at = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO alert (kind, severity, vehicle_id, anchor, anchor_value, start_at, end_at, evidence)"
            " VALUES ('no_order', 'high', %s, 'trip', %s, %s, %s, '{}') RETURNING alert_id",
            (vehicle_id, anchor_value, at, at),
        ).fetchone()
    assert row is not None
    return int(row[0])


OTHER_CLIENTS = (
    "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    " AND backend_type = 'client backend'"
)


def client_pids(url: str) -> set[int]:
    """The other client connections to the test's database (the publisher's)."""
    with psycopg.connect(url, autocommit=True) as conn:
        return {int(r[0]) for r in conn.execute("SELECT pid " + OTHER_CLIENTS).fetchall()}


def kill(url: str, pids: set[int]) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", (sorted(pids),))


def gone(url: str, pids: set[int]) -> bool:
    return not pids & client_pids(url)


def test_publisher_survives_a_killed_database_connection(
    db: str, broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="rules.publish")
    fleet = register_fleet(db, 1, prefix=f"P{uuid.uuid4().hex[:6]}")
    vehicle_id = int(fleet.vehicle_ids[0])
    received: list[int] = []
    lock = threading.Lock()
    subscribed = threading.Event()

    def on_message(_c: Any, _u: Any, message: Any) -> None:
        with lock:
            received.append(int(orjson.loads(message.payload)["alert_id"]))

    def got() -> list[int]:
        with lock:
            return list(received)

    subscriber = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"alerts-sub-{uuid.uuid4().hex[:8]}"
    )
    subscriber.on_message = on_message
    subscriber.on_subscribe = lambda *_args: subscribed.set()
    subscriber.on_connect = lambda c, *_args: c.subscribe("alerts/#", qos=1)
    subscriber.connect("127.0.0.1", broker.port)
    subscriber.loop_start()
    stop = threading.Event()
    publisher = threading.Thread(
        target=run_alert_publisher,
        args=(db, "127.0.0.1", broker.port, stop),
        kwargs={"client_id": f"alerts-pub-{uuid.uuid4().hex[:8]}", "poll_s": 0.1},
        daemon=True,
    )
    try:
        assert subscribed.wait(30), "subscriber got no SUBACK"
        publisher.start()
        expected: list[int] = []
        for outage in range(2):
            expected.append(insert_alert(db, vehicle_id, anchor_value=outage))
            wait_until(lambda: got() == expected, DEADLINE_S, f"alert {expected[-1]} published")
            wait_until(lambda: bool(client_pids(db)), DEADLINE_S, "the publisher connected")
            pids = client_pids(db)
            kill(db, pids)
            wait_until(partial(gone, db, pids), DEADLINE_S, "the publisher's connection gone")
        expected.append(insert_alert(db, vehicle_id, anchor_value=99))
        wait_until(lambda: got() == expected, DEADLINE_S, "alerts published after the connection was killed")
        assert publisher.is_alive(), "the publisher gave up"
        wait_until(
            lambda: scalar(db, "SELECT count(*) FROM alert WHERE published_at IS NULL") == 0,
            DEADLINE_S,
            "every alert marked published",
        )
    finally:
        stop.set()
        publisher.join(timeout=40)
        subscriber.disconnect()
        subscriber.loop_stop()
    assert not publisher.is_alive(), "the publisher did not stop"
    assert got() == expected, "each alert once, in order"
    messages = [r.getMessage() for r in caplog.records if r.name == "rules.publish"]
    assert any("alert publisher failing" in m for m in messages), messages
    assert any("alert publisher works again" in m for m in messages), messages
