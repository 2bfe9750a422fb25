"""The ingest worker: take a batch from MQTT, have it committed to TimescaleDB, then acknowledge it.

Nothing is acknowledged before its rows (or its quarantine rows) are committed, so a crash at any
point leaves the broker holding every message whose outcome is not durable; the broker re-sends
them and the write is idempotent (the position key; quarantine keyed on the payload digest).

This process runs the MQTT side (paho's network thread, batching, acknowledgements); a second
process (ingest.store_process) decodes, screens and commits. At most two batches are with the store
process at a time; beyond that the inbox fills to the broker's in-flight window (receive maximum)
and the broker stops sending: back-pressure, not an unbounded queue.
"""

from __future__ import annotations

import logging
import threading
from collections import deque

from ingest.metrics import IngestMetrics
from ingest.mqtt import Delivery, Subscription, SubscriptionConfig
from ingest.settings import IngestSettings
from ingest.store_process import StoreProcess, StoreProcessError

log = logging.getLogger(__name__)

_BATCHES_IN_FLIGHT = 2  # one committing, one waiting: the store process never idles between batches


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


class _Acknowledger(threading.Thread):
    """Reads committed outcomes from the store process, in order, and acknowledges their messages."""

    def __init__(
        self, store: StoreProcess, subscription: Subscription, metrics: IngestMetrics, stop: threading.Event
    ) -> None:
        super().__init__(name="ingest-ack", daemon=True)
        self.store, self.subscription, self.metrics, self.stop = store, subscription, metrics, stop
        self.in_flight: deque[list[Delivery]] = deque()
        self.slots = threading.Semaphore(_BATCHES_IN_FLIGHT)
        self.finishing = threading.Event()
        self.error: StoreProcessError | None = None

    def run(self) -> None:
        while True:
            try:
                outcome = self.store.result(timeout_s=1.0)
            except StoreProcessError as error:
                if not (self.finishing.is_set() and not self.in_flight):
                    self.error = error
                    self.stop.set()
                return
            if outcome is None:
                self.metrics.maybe_log()
                continue
            deliveries = self.in_flight.popleft()
            self.subscription.ack(deliveries)
            self.metrics.observe(outcome)
            self.slots.release()


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
    store = StoreProcess(settings)
    while not store.wait_ready(1.0):
        if stop.is_set():
            store.finish()
            store.join()
            return metrics
    subscription = Subscription(subscription_config(settings))
    acknowledger = _Acknowledger(store, subscription, metrics, stop)
    acknowledger.start()
    subscription.start()
    try:
        while not stop.is_set():
            if ready is not None and not ready.is_set() and subscription.subscribed.is_set():
                ready.set()  # however long the broker took to grant it (start() waits 10 s at most)
            if not acknowledger.slots.acquire(timeout=0.5):
                continue
            batch = subscription.take(
                max_messages=settings.max_batch_messages,
                max_bytes=settings.max_batch_bytes,
                max_wait_s=settings.flush_interval_s,
            )
            if not batch:
                acknowledger.slots.release()
                continue
            acknowledger.in_flight.append(batch)
            store.submit([d.message for d in batch])
    finally:
        acknowledger.finishing.set()
        store.finish()
        acknowledger.join(timeout=60)
        subscription.close()
        store.join()
        log.info("ingest worker %s stopped; totals %s", settings.worker_name, dict(metrics.totals))
    if acknowledger.error is not None:
        raise acknowledger.error
    return metrics
