"""The ingest worker: take a batch from MQTT, commit it to TimescaleDB, then acknowledge it.

Nothing is acknowledged before its rows (or its quarantine rows) are committed, so a crash at any
point leaves the broker holding every message whose outcome is not durable; the broker re-sends
them and the write is idempotent (ON CONFLICT DO NOTHING, quarantine keyed on the payload digest).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import psycopg

from fleetwatch.settings import IngestSettings
from ingest.decode import DecodeLimits, Message, terminal_of
from ingest.metrics import IngestMetrics
from ingest.mqtt import Subscription, SubscriptionConfig
from ingest.reasons import Reason
from ingest.write import BatchOutcome, Terminal, create_stage, load_terminals, utc_from_us, write_batch
from store.queries import query

log = logging.getLogger(__name__)

_REGISTRY_REFRESH_S = 5.0  # an unknown terminal triggers a registry reload at most this often


def subscription_config(settings: IngestSettings) -> SubscriptionConfig:
    return SubscriptionConfig(
        host=settings.mqtt_host,
        port=settings.mqtt_port,
        client_id=f"fleetwatch-{settings.worker_name}",
        share_group=settings.share_group or None,
        username=settings.mqtt_username,
        password=settings.mqtt_password,
        receive_maximum=settings.receive_maximum,
        session_expiry_s=settings.session_expiry_s,
    )


def _connect(settings: IngestSettings, stop: threading.Event) -> psycopg.Connection[Any] | None:
    delay_s = 0.5
    while not stop.is_set():
        try:
            conn = psycopg.connect(settings.database_url, autocommit=True)
            create_stage(conn)
            return conn
        except psycopg.OperationalError as error:
            log.warning("database not reachable (%s); retrying in %.1f s", str(error).strip(), delay_s)
            stop.wait(delay_s)
            delay_s = min(delay_s * 2, 10.0)
    return None


def _merge(total: BatchOutcome, part: BatchOutcome) -> None:
    total.messages += part.messages
    total.fixes_received += part.fixes_received
    total.fixes_stored += part.fixes_stored
    total.fixes_duplicate += part.fixes_duplicate
    total.fixes_quarantined += part.fixes_quarantined
    total.messages_quarantined += part.messages_quarantined
    total.latency_s = max(total.latency_s, part.latency_s)
    lags = [x for x in (total.max_lag_s, part.max_lag_s) if x is not None]
    total.max_lag_s = max(lags) if lags else None
    total.newest_fix_lag_s = part.newest_fix_lag_s or total.newest_fix_lag_s


def _quarantine_store_error(
    conn: psycopg.Connection[Any], message: Message, error: psycopg.Error
) -> BatchOutcome:

    with conn.transaction():
        conn.execute(
            query("insert_quarantine"),
            {
                "received_at": utc_from_us(message.received_at_us),
                "topic": message.topic,
                "terminal_id": terminal_of(message.topic),
                "reason": Reason.STORE_ERROR.value,
                "detail": f"{type(error).__name__}: {str(error).strip()[:300]}",
                "fix_index": None,
                "payload": message.payload[: 64 * 1024],
                "payload_bytes": len(message.payload),
            },
        )
    outcome = BatchOutcome(messages=1)
    outcome.messages_quarantined[Reason.STORE_ERROR] += 1
    return outcome


def store_messages(
    conn: psycopg.Connection[Any],
    messages: Sequence[Message],
    terminals: dict[str, Terminal],
    settings: IngestSettings,
) -> BatchOutcome:
    """Write a batch; if the database refuses it (not a lost connection), bisect to find the message it
    refuses and quarantine that one with reason store_error, so one poison message cannot stall ingest."""
    limits = DecodeLimits(
        max_payload_bytes=settings.max_payload_bytes, max_fixes_per_message=settings.max_fixes_per_message
    )
    try:
        return write_batch(
            conn, messages, terminals, worker=settings.worker_name, params=settings.filters, limits=limits
        )
    except psycopg.OperationalError:
        raise
    except psycopg.Error as error:
        if len(messages) == 1:
            log.error(
                "database refused a message on %s: %s; quarantined as store_error", messages[0].topic, error
            )
            return _quarantine_store_error(conn, messages[0], error)
        half = len(messages) // 2
        total = store_messages(conn, messages[:half], terminals, settings)
        _merge(total, store_messages(conn, messages[half:], terminals, settings))
        return total


def run(
    settings: IngestSettings,
    stop: threading.Event,
    metrics: IngestMetrics | None = None,
    ready: threading.Event | None = None,
) -> IngestMetrics:
    """Consume until ``stop`` is set; returns the metrics (totals) of this run.

    ``ready`` is set once the broker has granted the subscription."""
    metrics = metrics or IngestMetrics(settings.worker_name, settings.log_every_s)
    if settings.metrics_port:
        metrics.serve(settings.metrics_port)
    conn = _connect(settings, stop)
    if conn is None:
        return metrics
    terminals = load_terminals(conn)
    refreshed_at = time.monotonic()
    log.info("ingest worker %s: %d terminals registered", settings.worker_name, len(terminals))
    subscription = Subscription(subscription_config(settings))
    subscription.start()
    if ready is not None and subscription.subscribed.is_set():
        ready.set()
    try:
        while not stop.is_set():
            batch = subscription.take(
                max_messages=settings.max_batch_messages,
                max_bytes=settings.max_batch_bytes,
                max_wait_s=settings.flush_interval_s,
            )
            if not batch:
                metrics.maybe_log()
                continue
            messages = [d.message for d in batch]
            outcome = None
            while outcome is None and not stop.is_set():
                try:
                    if time.monotonic() - refreshed_at > _REGISTRY_REFRESH_S and any(
                        (t := terminal_of(m.topic)) is not None and t not in terminals for m in messages
                    ):
                        terminals = load_terminals(conn)
                        refreshed_at = time.monotonic()
                    outcome = store_messages(conn, messages, terminals, settings)
                except psycopg.OperationalError as error:
                    log.warning(
                        "database lost (%s); %d messages stay unacknowledged, reconnecting",
                        str(error).strip(),
                        len(messages),
                    )
                    conn.close()
                    reconnected = _connect(settings, stop)
                    if reconnected is None:
                        break
                    conn = reconnected
            if outcome is None:
                break  # stopping with the batch unacknowledged: the broker keeps it
            subscription.ack(batch)
            metrics.observe(outcome)
    finally:
        subscription.close()
        conn.close()
        log.info("ingest worker %s stopped; totals %s", settings.worker_name, dict(metrics.totals))
    return metrics
