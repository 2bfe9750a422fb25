"""The ingest worker: take a batch from MQTT, commit it to TimescaleDB, then acknowledge it.

Nothing is acknowledged before its rows (or its quarantine rows) are committed, so a crash at any
point leaves the broker holding every message whose outcome is not durable; the broker re-sends
them and the write is idempotent (the position key; quarantine keyed on the payload digest).

Two threads: this one takes and prepares batch k+1 (decode, screen, COPY payloads) while the writer
commits batch k; a queue of one prepared batch between them. When the database is slow the queue is
full, this thread waits, the inbox fills to the broker's in-flight window and the broker stops sending.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from fleetwatch.settings import IngestSettings
from ingest.decode import DecodeLimits, Message, terminal_of, vehicle_ids_of
from ingest.filters import Anchors
from ingest.metrics import IngestMetrics
from ingest.mqtt import Delivery, Subscription, SubscriptionConfig
from ingest.reasons import Reason
from ingest.write import (
    BatchOutcome,
    PreparedBatch,
    Terminal,
    create_stage,
    load_anchors,
    load_terminals,
    prepare_batch,
    quarantine_row,
    store_batch,
)
from store.queries import query

log = logging.getLogger(__name__)

_REGISTRY_REFRESH_S = 5.0  # an unknown terminal triggers a registry reload at most this often

Prepare = Callable[[Sequence[Message]], PreparedBatch]


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


def connect(settings: IngestSettings, stop: threading.Event) -> psycopg.Connection[Any] | None:
    """A connection with the staging tables, retried with back-off until ``stop``."""
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


def _quarantine_store_error(
    conn: psycopg.Connection[Any], message: Message, error: psycopg.Error
) -> BatchOutcome:
    row = quarantine_row(
        message,
        Reason.STORE_ERROR,
        f"{type(error).__name__}: {str(error).strip()[:300]}",
        message.payload,
        terminal_id=terminal_of(message.topic),
        fix_index=None,
    )
    with conn.transaction():
        conn.execute(query("insert_quarantine"), row)
    outcome = BatchOutcome(messages=1)
    outcome.messages_quarantined[Reason.STORE_ERROR] += 1
    return outcome


def store_isolating(
    conn: psycopg.Connection[Any], prepared: PreparedBatch, prepare: Prepare, worker: str
) -> BatchOutcome:
    """Store a batch; if the database refuses it (not a lost connection), bisect to find the message it
    refuses and quarantine that one as store_error, so one poison message cannot stall ingest."""
    try:
        return store_batch(conn, prepared, worker=worker)
    except psycopg.OperationalError:
        raise
    except psycopg.Error as error:
        messages = prepared.messages
        if len(messages) == 1:
            log.error(
                "database refused a message on %s: %s; quarantined as store_error", messages[0].topic, error
            )
            return _quarantine_store_error(conn, messages[0], error)
        half = len(messages) // 2
        total = store_isolating(conn, prepare(messages[:half]), prepare, worker)
        total.merge(store_isolating(conn, prepare(messages[half:]), prepare, worker))
        return total


@dataclass(frozen=True, slots=True)
class _Job:
    deliveries: list[Delivery]
    prepared: PreparedBatch
    prepare: Prepare


class _Writer(threading.Thread):
    """Commits prepared batches in order, then acknowledges them."""

    def __init__(
        self,
        settings: IngestSettings,
        stop: threading.Event,
        subscription: Subscription,
        metrics: IngestMetrics,
    ) -> None:
        super().__init__(name="ingest-writer", daemon=True)
        self.settings, self.stop, self.subscription, self.metrics = settings, stop, subscription, metrics
        self.jobs: queue.Queue[_Job | None] = queue.Queue(maxsize=1)
        self.error: BaseException | None = None

    def run(self) -> None:
        conn = connect(self.settings, self.stop)
        try:
            while conn is not None:
                try:
                    job = self.jobs.get(timeout=1.0)
                except queue.Empty:
                    self.metrics.maybe_log()
                    continue
                if job is None:
                    break
                outcome, conn = self._store(conn, job)
                if outcome is None:
                    break  # stopping while the database is away: the batch stays unacknowledged
                self.subscription.ack(job.deliveries)
                self.metrics.observe(outcome)
        except BaseException as error:
            self.error = error
            self.stop.set()
        finally:
            if conn is not None:
                conn.close()

    def _store(
        self, conn: psycopg.Connection[Any], job: _Job
    ) -> tuple[BatchOutcome | None, psycopg.Connection[Any] | None]:
        while True:
            try:
                return store_isolating(conn, job.prepared, job.prepare, self.settings.worker_name), conn
            except psycopg.OperationalError as error:
                log.warning(
                    "database lost (%s); %d messages stay unacknowledged, reconnecting",
                    str(error).strip(),
                    len(job.deliveries),
                )
                conn.close()
                reconnected = connect(self.settings, self.stop)
                if reconnected is None:
                    return None, None
                conn = reconnected


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
    reader = connect(settings, stop)
    if reader is None:
        return metrics
    terminals = load_terminals(reader)
    refreshed_at = time.monotonic()
    log.info("ingest worker %s: %d terminals registered", settings.worker_name, len(terminals))
    limits = DecodeLimits(
        max_payload_bytes=settings.max_payload_bytes, max_fixes_per_message=settings.max_fixes_per_message
    )
    subscription = Subscription(subscription_config(settings))
    writer = _Writer(settings, stop, subscription, metrics)
    writer.start()
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
                continue
            messages = [d.message for d in batch]
            try:
                topics = [terminal_of(m.topic) for m in messages]
                if time.monotonic() - refreshed_at > _REGISTRY_REFRESH_S and any(
                    t is not None and t not in terminals for t in topics
                ):
                    terminals = load_terminals(reader)
                    refreshed_at = time.monotonic()
                vehicles, _ = vehicle_ids_of(topics, terminals)
                anchors = load_anchors(reader, vehicles[vehicles > 0])
            except psycopg.OperationalError as error:
                log.warning(
                    "database lost while preparing (%s); batch left to the broker", str(error).strip()
                )
                reader.close()
                reconnected = connect(settings, stop)
                if reconnected is None:
                    break
                reader = reconnected
                continue  # these messages stay unacknowledged; the broker re-sends them after a restart

            def prepare(
                part: Sequence[Message],
                terminals: dict[str, Terminal] = terminals,
                anchors: Anchors = anchors,
            ) -> PreparedBatch:
                return prepare_batch(
                    part,
                    terminals,
                    anchors,
                    now_us=time.time_ns() // 1000,
                    params=settings.filters,
                    limits=limits,
                )

            job = _Job(batch, prepare(messages), prepare)
            while not stop.is_set():
                try:
                    writer.jobs.put(job, timeout=0.5)
                    break
                except queue.Full:
                    continue
    finally:
        writer.jobs.put(None)
        writer.join(timeout=60)
        subscription.close()
        reader.close()
        log.info("ingest worker %s stopped; totals %s", settings.worker_name, dict(metrics.totals))
    if writer.error is not None:
        raise RuntimeError("ingest writer failed") from writer.error
    return metrics
