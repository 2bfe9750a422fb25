"""New alerts to MQTT, under ``alerts/<agency code>/<kind>`` (a tree no terminal may write to: the
broker's ACL gives terminals ``fleet/%u/#`` only). QoS 1; an alert is marked published once the broker
acknowledged it, so a crash re-publishes (at least once) rather than loses."""

from __future__ import annotations

import logging
import threading
from typing import Any

import orjson
import psycopg

from ingest.mqtt_publish import Publisher
from store.queries import query
from store.retry import TRANSIENT, Backoff

log = logging.getLogger(__name__)


def alert_messages(rows: list[tuple[Any, ...]]) -> list[tuple[str, bytes]]:
    messages = []
    for alert_id, agency, kind, severity, vehicle_id, plate, order_id, start_at, end_at, evidence in rows:
        payload = {
            "alert_id": alert_id,
            "kind": kind,
            "severity": severity,
            "vehicle_id": vehicle_id,
            "plate": plate,
            "dispatch_order_id": order_id,
            "start_at": start_at.isoformat(),
            "end_at": end_at.isoformat(),
            "evidence": orjson.loads(evidence),
        }
        messages.append((f"alerts/{agency}/{kind}", orjson.dumps(payload)))
    return messages


def publish_new_alerts(conn: psycopg.Connection[Any], publisher: Publisher, limit: int = 500) -> int:
    rows = conn.execute(query("unpublished_alerts"), {"limit": limit}).fetchall()
    if not rows:
        return 0
    result = publisher.publish(alert_messages(rows), timeout_s=30)
    if result.acknowledged < result.messages:
        log.warning(
            "broker acknowledged %d of %d alerts; the rest go again", result.acknowledged, result.messages
        )
        return 0
    conn.execute(query("mark_published"), {"alert_ids": [r[0] for r in rows]})
    return len(rows)


def run_alert_publisher(
    database_url: str, host: str, port: int, stop: threading.Event, *, client_id: str, poll_s: float = 0.5
) -> None:
    """Publish new alerts until ``stop``. A lost database connection is retried by the one policy
    (``store.retry``): the publisher never gives up; what was not acknowledged goes again."""
    publisher = Publisher(host, port, client_id=client_id)
    backoff = Backoff("alert publisher", logger=log)
    conn: psycopg.Connection[Any] | None = None
    try:
        while not stop.is_set():
            try:
                if conn is None:
                    conn = psycopg.connect(database_url, autocommit=True)
                published = publish_new_alerts(conn, publisher)
                backoff.succeeded()
                if published == 0:
                    stop.wait(poll_s)
            except TRANSIENT as error:
                if conn is not None:
                    conn.close()
                conn = None
                stop.wait(backoff.failed(error))
    finally:
        if conn is not None:
            conn.close()
        publisher.close()
