"""Shared test plumbing: a migrated template database cloned per test, private Mosquitto brokers.

Everything talks to the real services: PostgreSQL + TimescaleDB from FLEETWATCH_DATABASE_URL (the
machine's cluster) and Mosquitto instances this suite starts itself on free loopback ports, so a test
may restart or stop its broker without touching the machine's own (stopped by pid, never by name).
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, LiteralString

import psycopg
import pytest
from psycopg import sql

from fleetwatch.mosquitto import MosquittoProcess
from ingest.metrics import IngestMetrics
from ingest.settings import IngestSettings
from ingest.worker import run
from simulators.load import LoadFleet, register_load_fleet
from store.db import create_database, drop_database, with_dbname
from store.migrate import migrate
from store.settings import StoreSettings

TEMPLATE = f"fleetwatch_tpl_{os.getpid()}"  # per test session: sessions may run side by side


@pytest.fixture(scope="session")
def base_url() -> str:
    return StoreSettings().database_url


@pytest.fixture(scope="session")
def template_db(base_url: str) -> Iterator[str]:
    url = with_dbname(base_url, TEMPLATE)
    create_database(url, drop_existing=True)
    migrate(url)
    with psycopg.connect(with_dbname(base_url, "postgres"), autocommit=True) as admin:
        # a template must have no sessions while it is copied: TimescaleDB's background-worker scheduler
        # connects to every database with the extension, and would come back if allowed to
        admin.execute(
            sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(sql.Identifier(TEMPLATE))
        )
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (TEMPLATE,)
        )
        wait_until(
            lambda: (
                admin.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (TEMPLATE,)
                ).fetchone()
                == (0,)
            ),
            10,
            "template sessions gone",
        )
    yield url
    with psycopg.connect(with_dbname(base_url, "postgres"), autocommit=True) as admin:
        admin.execute(
            sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true").format(sql.Identifier(TEMPLATE))
        )
    drop_database(url)


@pytest.fixture
def db(template_db: str, base_url: str) -> Iterator[str]:
    """A fresh, migrated database for one test."""
    url = with_dbname(base_url, f"fleetwatch_t_{uuid.uuid4().hex[:12]}")
    create_database(url, template=TEMPLATE)
    yield url
    drop_database(url)


Broker = MosquittoProcess


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    folder = tmp_path / "mosquitto"
    folder.mkdir()
    instance = Broker(folder=folder)
    instance.start()
    yield instance
    instance.stop()


Fleet = LoadFleet


def register_fleet(url: str, n: int, prefix: str = "T") -> Fleet:
    """n vehicles of a city pool, each with one terminal ``<prefix>000001`` … (simulators.load's registry)."""
    with psycopg.connect(url, autocommit=True) as conn:
        return register_load_fleet(conn, n, prefix)


@pytest.fixture
def worker_env(db: str) -> dict[str, str]:
    """Environment for a `fleetwatch ingest` subprocess pointed at this test's database."""
    env = dict(os.environ)
    env["FLEETWATCH_DATABASE_URL"] = db
    env["FLEETWATCH_METRICS_PORT"] = "0"
    return env


def ingest_settings(db: str, broker: Broker, **overrides: object) -> IngestSettings:
    values: dict[str, object] = {
        "database_url": db,
        "mqtt_host": "127.0.0.1",
        "mqtt_port": broker.port,
        "worker_name": f"test-{uuid.uuid4().hex[:8]}",
        "metrics_port": 0,
        "flush_interval_s": 0.2,
    }
    values.update(overrides)
    return IngestSettings(**values)  # type: ignore[arg-type]


@contextmanager
def running_worker(settings: IngestSettings) -> Iterator[IngestMetrics]:
    """An ingest worker in a thread of this process, stopped (gracefully) on exit."""
    stop, ready = threading.Event(), threading.Event()
    metrics = IngestMetrics(settings.worker_name, settings.log_every_s)
    thread = threading.Thread(target=run, args=(settings, stop, metrics, ready), daemon=True)
    thread.start()
    try:  # stopped whatever happens: a worker left running would outlive its test's database
        assert ready.wait(60), "ingest worker did not subscribe within 60 s"
        yield metrics
    finally:
        stop.set()
        thread.join(timeout=120)
        assert not thread.is_alive(), "ingest worker did not stop within 120 s"


def wait_until(predicate: Callable[[], bool], timeout_s: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def scalar(url: str, sql: LiteralString, params: tuple[object, ...] = ()) -> Any:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql, params).fetchone()
        return row[0] if row else None
