"""Late records are judged: a fuel-card transaction imported after the car's day was computed re-queues
the car, and the running engine (tracks + rules) raises fuel_card_elsewhere for it."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import LiteralString

import psycopg

from ingest.imports.kinds import KINDS
from ingest.imports.read import Table, read_path
from ingest.imports.run import Actor, run_import
from rules.worker import RulesStep
from tests.conftest import wait_until
from tracks.params import Params
from tracks.worker import run_engine

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "import"
ADMIN = Actor(api_user_id=None, name="test-admin")
# a drive of 粤B12345 on 2026-03-02, 08:00-10:00 China time: out east from its depot for an hour, back
DRIVE_START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)


def _import(url: str, kind: str, table: Table) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        result = run_import(conn, KINDS[kind], table, actor=ADMIN)
    assert not result.refused, result.errors


def _drive(url: str) -> int:
    """Fixes every 10 s (as a terminal would send them) and the engine mark ingest would set."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT v.vehicle_id, t.terminal_no FROM vehicle AS v JOIN terminal AS t USING (vehicle_id)"
            " WHERE v.plate = '粤B12345'"
        ).fetchone()
        assert row is not None
        vehicle_id, terminal_no = row
        conn.execute(
            "INSERT INTO position (vehicle_id, fix_at, received_at, terminal_no, lon, lat, speed_kmh, valid)"
            " SELECT %(v)s, %(start)s + make_interval(secs => 10 * i),"
            "        %(start)s + make_interval(secs => 10 * i), %(t)s,"
            "        114.0579 + 0.0003 * least(i, 720 - i), 22.5431,"
            "        CASE WHEN i IN (0, 720) THEN 0 ELSE 11 END, true"
            " FROM generate_series(0, 720) AS i",
            {"v": vehicle_id, "t": terminal_no, "start": DRIVE_START},
        )
        conn.execute(
            "INSERT INTO engine_queue (vehicle_id, dirty_from, dirty_to, dirty_at)"
            " VALUES (%s, %s, %s + interval '2 hours', clock_timestamp())",
            (vehicle_id, DRIVE_START, DRIVE_START),
        )
        return int(vehicle_id)


def _count(url: str, statement: LiteralString) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(statement).fetchone()
        assert row is not None
        return int(row[0])


def test_late_fuel_record_raises_fuel_card_elsewhere_in_the_running_engine(db: str) -> None:
    for kind in ("agencies", "pools", "depots", "vehicles", "fuel_cards"):
        _import(db, kind, read_path(EXAMPLES / f"{kind}.csv"))
    vehicle_id = _drive(db)
    stop = threading.Event()
    engine = threading.Thread(
        target=run_engine,
        args=(db, "engine-test", Params(), stop),
        kwargs={"poll_s": 0.1, "after": RulesStep()},
        daemon=True,
    )
    engine.start()
    try:
        wait_until(lambda: _count(db, "SELECT count(*) FROM engine_queue") == 0, 120, "the drive computed")
        assert _count(db, "SELECT count(*) FROM trip") >= 1
        assert _count(db, "SELECT count(*) FROM alert WHERE kind = 'fuel_card_elsewhere'") == 0

        # the station reports a fill on the car's card at 08:30, 20 km from where the car was
        late = Table(
            header=("card", "fuelled_at", "station", "lon", "lat", "litres", "amount_fen"),
            rows=[["FC0001", "2026-03-02T08:30:00+08:00", "远郊加油站", "114.30", "22.70", "40", "31200"]],
            source="late-fuel.csv",
        )
        _import(db, "fuel", late)
        wait_until(
            lambda: _count(db, "SELECT count(*) FROM alert WHERE kind = 'fuel_card_elsewhere'") == 1,
            120,
            "fuel_card_elsewhere raised for the late record",
        )
        with psycopg.connect(db) as conn:
            alert = conn.execute(
                "SELECT a.vehicle_id, a.anchor, f.station FROM alert AS a"
                " JOIN fuel_record AS f ON f.fuel_record_id = a.anchor_value"
                " WHERE a.kind = 'fuel_card_elsewhere'"
            ).fetchone()
        assert alert == (vehicle_id, "fuel_record", "远郊加油站")

        # a work order of a car that never sent a fix queues it too: the engine takes it and carries on
        _import(db, "maintenance", read_path(EXAMPLES / "maintenance.csv"))
        wait_until(
            lambda: _count(db, "SELECT count(*) FROM engine_queue") == 0, 120, "the work orders judged"
        )
        assert engine.is_alive()
        assert _count(db, "SELECT count(*) FROM rule_failure") == 0
    finally:
        stop.set()
        engine.join(timeout=60)
    assert not engine.is_alive(), "the engine did not stop"
