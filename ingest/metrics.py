"""Ingest counters: exposed for Prometheus and summarised in the log every interval."""

from __future__ import annotations

import logging
import time
from collections import Counter

from prometheus_client import CollectorRegistry, Gauge, Histogram, start_http_server
from prometheus_client import Counter as PromCounter

from ingest.reasons import Reason
from ingest.write import BatchOutcome

log = logging.getLogger(__name__)


class IngestMetrics:
    def __init__(self, worker: str, log_every_s: float = 10.0) -> None:
        self.registry = CollectorRegistry()
        labels = {"worker": worker}
        self._received = PromCounter(
            "fleetwatch_ingest_fixes_received",
            "Fixes decoded from messages",
            ["worker"],
            registry=self.registry,
        ).labels(**labels)
        self._messages = PromCounter(
            "fleetwatch_ingest_messages", "MQTT messages handled", ["worker"], registry=self.registry
        ).labels(**labels)
        self._stored = PromCounter(
            "fleetwatch_ingest_fixes_stored", "Fixes newly stored", ["worker"], registry=self.registry
        ).labels(**labels)
        self._duplicate = PromCounter(
            "fleetwatch_ingest_fixes_duplicate",
            "Fixes already stored (replays)",
            ["worker"],
            registry=self.registry,
        ).labels(**labels)
        self._quarantined = PromCounter(
            "fleetwatch_ingest_quarantined",
            "Fixes or messages quarantined, by reason",
            ["worker", "reason"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "fleetwatch_ingest_batch_latency_seconds",
            "First message of a batch received → batch committed",
            ["worker"],
            buckets=(0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0),
            registry=self.registry,
        ).labels(**labels)
        self._lag = Gauge(
            "fleetwatch_ingest_lag_seconds",
            "Commit time − newest fix time of the last batch",
            ["worker"],
            registry=self.registry,
        ).labels(**labels)
        self.worker = worker
        self.log_every_s = log_every_s
        self.totals: Counter[str] = Counter()
        self._window: Counter[str] = Counter()
        self._window_latency_max = 0.0
        self._window_started = time.monotonic()

    def serve(self, port: int, addr: str = "127.0.0.1") -> None:
        start_http_server(port, addr=addr, registry=self.registry)
        log.info("metrics for Prometheus on http://%s:%d/metrics", addr, port)

    def observe(self, outcome: BatchOutcome) -> None:
        self._messages.inc(outcome.messages)
        self._received.inc(outcome.fixes_received)
        self._stored.inc(outcome.fixes_stored)
        self._duplicate.inc(outcome.fixes_duplicate)
        quarantined: Counter[Reason] = outcome.fixes_quarantined + outcome.messages_quarantined
        for reason, count in quarantined.items():
            self._quarantined.labels(worker=self.worker, reason=reason.value).inc(count)
        self._latency.observe(outcome.latency_s)
        if outcome.newest_fix_lag_s is not None:
            self._lag.set(outcome.newest_fix_lag_s)
        for counts in (self.totals, self._window):
            counts["messages"] += outcome.messages
            counts["received"] += outcome.fixes_received
            counts["stored"] += outcome.fixes_stored
            counts["duplicate"] += outcome.fixes_duplicate
            counts["quarantined"] += sum(quarantined.values())
            for reason, count in quarantined.items():
                counts[f"q:{reason.value}"] += count
        self._window_latency_max = max(self._window_latency_max, outcome.latency_s)
        self.maybe_log(outcome.newest_fix_lag_s)

    def maybe_log(self, lag_s: float | None = None) -> None:
        elapsed = time.monotonic() - self._window_started
        if elapsed < self.log_every_s:
            return
        w = self._window
        if w["messages"]:
            reasons = ", ".join(f"{k[2:]} {v}" for k, v in sorted(w.items()) if k.startswith("q:")) or "none"
            log.info(
                "last %.0f s: %d messages, %d fixes received, %d stored (%.0f/s), %d duplicate, "
                "quarantined: %s; max batch latency %.2f s, lag %s",
                elapsed,
                w["messages"],
                w["received"],
                w["stored"],
                w["stored"] / elapsed,
                w["duplicate"],
                reasons,
                self._window_latency_max,
                "n/a" if lag_s is None else f"{lag_s:.1f} s",
            )
        self._window = Counter()
        self._window_latency_max = 0.0
        self._window_started = time.monotonic()
