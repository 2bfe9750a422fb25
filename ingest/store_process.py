"""The ingest worker's second process: decode, screen and commit batches that the MQTT side hands it.

Receiving MQTT (paho parses every packet in Python) and decoding JSON are both CPU work under one GIL;
running them in two processes lets a 2-core machine do both at once. The MQTT side sends raw
messages; this process answers each batch, in order, with its outcome once it is committed, and only
then does the MQTT side acknowledge it. If this process dies, nothing more is acknowledged.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import queue
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, TypeVar

import psycopg

from ingest.decode import DecodeLimits, Message, terminal_of, vehicle_ids_of
from ingest.filters import Anchors
from ingest.reasons import Reason
from ingest.settings import IngestSettings
from ingest.write import (
    BatchOutcome,
    PreparedBatch,
    create_stage,
    load_anchors,
    load_terminals,
    prepare_batch,
    quarantine_row,
    store_batch,
)
from store import fixcolumns
from store.fixcolumns import FixColumn
from store.queries import query
from store.retry import retry

log = logging.getLogger(__name__)

_REGISTRY_REFRESH_S = 5.0  # an unknown terminal triggers a registry reload at most this often

RawMessage = tuple[str, bytes, int]  # topic, payload, received_at_us
T = TypeVar("T")


class StoreProcessError(RuntimeError):
    """The store process failed or went away; its batches were not acknowledged."""


def connect(database_url: str) -> psycopg.Connection[Any]:
    """A connection with the staging tables, retried (``store.retry``) until it succeeds."""

    def attempt() -> psycopg.Connection[Any]:
        conn = psycopg.connect(database_url, autocommit=True)
        try:
            create_stage(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    return retry(attempt, what="ingest: connecting to the database", logger=log)


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


def _retrying(
    database_url: str,
    conn: psycopg.Connection[Any],
    what: str,
    count: int,
    action: Callable[[psycopg.Connection[Any]], T],
) -> tuple[T, psycopg.Connection[Any]]:
    """Run ``action``; on a lost connection reconnect and run it again (the batch is still unacknowledged)."""
    current = [conn]

    def attempt() -> T:
        if current[0].closed:
            current[0] = connect(database_url)
        return action(current[0])

    def drop(_error: BaseException) -> None:
        current[0].close()

    result = retry(
        attempt, what=f"ingest: {what} ({count} messages unacknowledged)", on_failure=drop, logger=log
    )
    return result, current[0]


class _Preparer:
    """Registry, anchors and prepare_batch, on a connection of its own."""

    def __init__(self, settings: IngestSettings) -> None:
        self.settings = settings
        self.limits = DecodeLimits(
            max_payload_bytes=settings.max_payload_bytes, max_fixes_per_message=settings.max_fixes_per_message
        )
        self.conn = connect(settings.database_url)
        self.terminals = load_terminals(self.conn)
        self.refreshed_at = time.monotonic()
        log.info("ingest worker %s: %d terminals registered", settings.worker_name, len(self.terminals))

    def prepare(self, messages: Sequence[Message]) -> _Job:
        topics = [terminal_of(m.topic) for m in messages]

        def look_up(conn: psycopg.Connection[Any]) -> Anchors:
            if time.monotonic() - self.refreshed_at > _REGISTRY_REFRESH_S and any(
                t is not None and t not in self.terminals for t in topics
            ):
                self.terminals = load_terminals(conn)
                self.refreshed_at = time.monotonic()
            vehicles, _ = vehicle_ids_of(topics, self.terminals)
            return load_anchors(conn, vehicles[vehicles > 0])

        anchors, self.conn = _retrying(
            self.settings.database_url, self.conn, "preparing", len(messages), look_up
        )
        terminals = self.terminals

        def prepare(part: Sequence[Message]) -> PreparedBatch:
            return prepare_batch(
                part,
                terminals,
                anchors,
                now_us=time.time_ns() // 1000,
                params=self.settings.filters,
                limits=self.limits,
            )

        return _Job(prepared=prepare(messages), prepare=prepare)


@dataclass(frozen=True, slots=True)
class _Job:
    prepared: PreparedBatch
    prepare: Callable[[Sequence[Message]], PreparedBatch]  # again, on part of the batch, when bisecting


class _Writer(threading.Thread):
    """Commits prepared batches in order and reports each outcome to the MQTT side."""

    def __init__(self, settings: IngestSettings, results: Connection) -> None:
        super().__init__(name="ingest-commit", daemon=True)
        self.settings, self.results = settings, results
        self.jobs: queue.Queue[_Job | None] = queue.Queue(maxsize=1)
        self.conn = connect(settings.database_url)

    def run(self) -> None:
        try:
            while (job := self.jobs.get()) is not None:

                def commit(conn: psycopg.Connection[Any], job: _Job = job) -> BatchOutcome:
                    return self._store(conn, job.prepared, job.prepare)

                started = time.perf_counter()
                outcome, self.conn = _retrying(
                    self.settings.database_url, self.conn, "committing", len(job.prepared.messages), commit
                )
                self.results.send(("done", outcome))
                log.debug(
                    "committed %d messages in %.0f ms",
                    outcome.messages,
                    (time.perf_counter() - started) * 1e3,
                )
        except Exception as error:
            log.exception("store process failed while committing")
            self.results.send(("failed", f"{type(error).__name__}: {error}"))

    def _store(
        self,
        conn: psycopg.Connection[Any],
        prepared: PreparedBatch,
        prepare: Callable[[Sequence[Message]], PreparedBatch],
    ) -> BatchOutcome:
        """Store a batch; if the database refuses it (not a lost connection), bisect to find the message
        it refuses and quarantine that one as store_error, so one poison message cannot stall ingest."""
        try:
            return store_batch(conn, prepared, worker=self.settings.worker_name)
        except (psycopg.OperationalError, psycopg.InterfaceError):
            raise  # the connection, not the data: retried whole by _retrying
        except psycopg.Error as error:
            messages = prepared.messages
            if len(messages) == 1:
                log.error(
                    "database refused a message on %s: %s; quarantined as store_error",
                    messages[0].topic,
                    error,
                )
                return _quarantine_store_error(conn, messages[0], error)
            half = len(messages) // 2
            total = self._store(conn, prepare(messages[:half]), prepare)
            total.merge(self._store(conn, prepare(messages[half:]), prepare))
            return total


def _main(
    settings_values: dict[str, Any],
    declared: tuple[FixColumn, ...],
    batches: Connection,
    results: Connection,
) -> None:
    """Child process: batches in, committed outcomes out, in order, until the MQTT side says None or goes.

    This thread prepares batch k+1 while the writer thread commits batch k. ``declared``: the parent's
    fix declaration (store.fixcolumns), adopted here."""
    fixcolumns.adopt(declared)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the MQTT side decides when to stop
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(
        level=settings_values.pop("_log_level"), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = IngestSettings(**settings_values)
        preparer = _Preparer(settings)
        writer = _Writer(settings, results)
        writer.start()
        results.send(("ready", None))
        while True:
            try:
                batch: list[RawMessage] | None = batches.recv()
            except EOFError:
                batch = None  # the MQTT side is gone: nothing more will be acknowledged anyway
            if batch is None:
                break
            started = time.perf_counter()
            job = preparer.prepare([Message(topic=t, payload=p, received_at_us=r) for t, p, r in batch])
            log.debug("prepared %d messages in %.0f ms", len(batch), (time.perf_counter() - started) * 1e3)
            while writer.is_alive():
                try:
                    writer.jobs.put(job, timeout=1.0)
                    break
                except queue.Full:
                    continue
        writer.jobs.put(None)
        writer.join()
    except Exception as error:
        log.exception("store process failed")
        results.send(("failed", f"{type(error).__name__}: {error}"))


class StoreProcess:
    """The parent's handle on the store process."""

    def __init__(self, settings: IngestSettings) -> None:
        context = multiprocessing.get_context("spawn")
        batches_out, self._batches = context.Pipe(duplex=False)
        self._pipe, results_in = context.Pipe(duplex=False)
        values = settings.model_dump()
        values["_log_level"] = logging.getLogger().getEffectiveLevel()
        self._process = context.Process(
            target=_main,
            args=(values, fixcolumns.fix_columns(), batches_out, results_in),
            name="ingest-store",
            daemon=True,
        )
        self._process.start()
        batches_out.close()
        results_in.close()

    def wait_ready(self, timeout_s: float) -> bool:
        if not self._pipe.poll(timeout_s):
            return False
        kind, _ = self._receive()
        return kind == "ready"

    def submit(self, messages: Sequence[Message]) -> None:
        self._batches.send([(m.topic, m.payload, m.received_at_us) for m in messages])

    def result(self, timeout_s: float) -> BatchOutcome | None:
        """The outcome of the oldest submitted batch, once committed; None if not yet."""
        if not self._pipe.poll(timeout_s):
            if not self._process.is_alive():
                raise StoreProcessError(f"store process exited with code {self._process.exitcode}")
            return None
        _kind, value = self._receive()
        assert isinstance(value, BatchOutcome)
        return value

    def _receive(self) -> tuple[str, object]:
        try:
            kind, value = self._pipe.recv()
        except EOFError as error:
            raise StoreProcessError(f"store process exited with code {self._process.exitcode}") from error
        if kind == "failed":
            raise StoreProcessError(str(value))
        return kind, value

    def finish(self) -> None:
        """No more batches: the process commits what it has, answers, and exits."""
        with contextlib.suppress(OSError):
            self._batches.send(None)

    def join(self, timeout_s: float = 30.0) -> None:
        self._process.join(timeout_s)
        if self._process.is_alive():
            # it ignores SIGTERM (the MQTT side decides when it stops), so SIGTERM would not end it and
            # the interpreter would wait for it at exit; what it had not committed is not acknowledged
            log.warning("store process did not finish in %.0f s; killing it", timeout_s)
            self._process.kill()
            self._process.join(5)
        self._pipe.close()
        self._batches.close()
