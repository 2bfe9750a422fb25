"""The rules read the imported data on the database path: a document, a threshold version or a
calendar day written after the trips were judged re-queues the affected vehicles and days, and the
engine's next rounds judge them by it (version and documents named in the evidence); the daily sweep
raises document_expiring once per document and expiry."""

from __future__ import annotations

import time
from datetime import date, timedelta
from typing import Any

import psycopg

from ingest.decode import DecodeLimits, Message
from ingest.filters import FilterParams
from ingest.write import create_stage, load_terminals, write_batch
from rules.alert import AlertKind, Anchor
from rules.worker import RulesStep, empty_result, sweep_documents
from simulators.database import load_run
from simulators.dates import recent_working_days
from simulators.output import messages
from simulators.run import SimParams, SimRun, simulate
from simulators.violations import CLEAN
from simulators.world import build_world
from tests.conftest import register_fleet
from tracks.match import orders_table
from tracks.params import Params
from tracks.pipeline import Context
from tracks.places import StopKind, places
from tracks.worker import process_dirty


def test_every_alert_kind_and_anchor_is_allowed_by_the_alert_table(db: str) -> None:
    with psycopg.connect(db) as conn:
        checks: dict[str, str] = dict(
            conn.execute(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
                " WHERE conrelid = 'alert'::regclass AND contype = 'c'"
            ).fetchall()
        )
    for kind in AlertKind:
        assert f"'{kind.value}'" in checks["alert_kind_check"], kind
    for anchor in Anchor:
        assert f"'{anchor.value}'" in checks["alert_anchor_check"], anchor


def _drive(conn: psycopg.Connection[Any], run: SimRun, rules: RulesStep) -> None:
    create_stage(conn)
    terminals = load_terminals(conn)
    sent = list(messages(run))
    for lo in range(0, len(sent), 4_000):
        batch = [
            Message(topic=t, payload=p, received_at_us=time.time_ns() // 1000)
            for _, t, p in sent[lo : lo + 4_000]
        ]
        write_batch(conn, batch, terminals, worker="t", params=FilterParams(), limits=DecodeLimits())
    _settle(conn, rules)


def _settle(conn: psycopg.Connection[Any], rules: RulesStep) -> None:
    """Engine rounds until nothing is queued (bounded: a bug must fail, not hang)."""
    for _ in range(1_000):
        if process_dirty(conn, "t", Params(), after=rules, settle_s=0.0) is None:
            return
    raise AssertionError("the engine queue did not drain")


def _queued(conn: psycopg.Connection[Any]) -> set[int]:
    return {row[0] for row in conn.execute("SELECT vehicle_id FROM engine_queue")}


def _alerts(conn: psycopg.Connection[Any], kind: str) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT vehicle_id, anchor_value, evidence FROM alert WHERE kind = %s AND retracted_at IS NULL"
        " ORDER BY vehicle_id, anchor_value",
        (kind,),
    ).fetchall()


def test_late_documents_thresholds_and_calendar_days_requeue_and_are_judged(db: str) -> None:
    day = recent_working_days(1, back_min=2)
    run = simulate(build_world(6, 3), SimParams(start=day, days=1, rates=CLEAN))
    load_run(db, run)
    rules = RulesStep(reload_s=3_600.0)  # only the stamp can make it reload in this test
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("DELETE FROM vehicle_document")  # the clean run's documents are all valid anyway
        _drive(conn, run, rules)
        assert _queued(conn) == set()
        drivers = [r[0] for r in conn.execute("SELECT DISTINCT vehicle_id FROM trip ORDER BY 1")]
        assert len(drivers) >= 2
        assert _alerts(conn, "vehicle_unfit") == [] and _alerts(conn, "off_hours") == []

        # 1. an inspection that lapsed before the day, imported late: that vehicle, judged again
        car = drivers[0]
        conn.execute(
            "INSERT INTO vehicle_document (vehicle_id, kind, number, valid_from, expires_on)"
            " VALUES (%s, 'inspection', 'JY-LATE-1', %s, %s)",
            (car, day - timedelta(days=730), day - timedelta(days=3)),
        )
        assert _queued(conn) == {car}
        _settle(conn, rules)
        unfit = _alerts(conn, "vehicle_unfit")
        trips = conn.execute("SELECT count(*) FROM trip WHERE vehicle_id = %s", (car,)).fetchone()
        assert trips is not None and len(unfit) == trips[0] > 0
        assert {r[0] for r in unfit} == {car}
        (named,) = unfit[0][2]["documents"]
        assert named["number"] == "JY-LATE-1" and named["kind"] == "inspection"
        assert named["expires_on"] == (day - timedelta(days=3)).isoformat()
        assert unfit[0][2]["version"] == "default"

        # 2. a threshold version of the car's agency from the day before: its vehicles judged again,
        #    every alert names the version
        agency, code = conn.execute(
            "SELECT a.agency_id, a.code FROM vehicle AS v JOIN pool AS p USING (pool_id)"
            " JOIN agency AS a ON a.agency_id = coalesce(v.agency_id, p.agency_id) WHERE v.vehicle_id = %s",
            (car,),
        ).fetchone() or (None, None)
        effective = day - timedelta(days=1)
        conn.execute(
            "INSERT INTO rule_threshold (agency_id, name, value, effective_from)"
            " VALUES (%s, 'overspeed.ratio', 1.25, %s)",
            (agency, effective),
        )
        assert car in _queued(conn)
        _settle(conn, rules)
        versions = {r[2]["version"] for r in _alerts(conn, "vehicle_unfit")}
        assert versions == {f"{code}@{effective.isoformat()}"}

        # 3. the day declared a holiday afterwards: every vehicle that drove that day, judged again
        conn.execute(
            "INSERT INTO calendar_day (day, kind, name) VALUES (%s, 'holiday', 'test')"
            " ON CONFLICT (day) DO UPDATE SET kind = 'holiday'",
            (day,),
        )
        assert _queued(conn) == set(drivers)
        _settle(conn, rules)
        off = _alerts(conn, "off_hours")
        assert {r[0] for r in off} == set(drivers)


def test_the_daily_sweep_raises_document_expiring_once_per_document_and_expiry(db: str) -> None:
    fleet = register_fleet(db, 3)
    day = date(2026, 3, 2)
    with psycopg.connect(db, autocommit=True) as conn:
        ids = sorted(fleet.vehicle_ids)
        rows = [
            (ids[0], "insurance", "P-1", day + timedelta(days=10)),  # due
            (ids[1], "inspection", "J-2", day + timedelta(days=40)),  # not yet
            (ids[2], "insurance", "P-3", day - timedelta(days=1)),  # expired: not "expiring"
        ]
        for vehicle, kind, number, expires in rows:
            conn.execute(
                "INSERT INTO vehicle_document (vehicle_id, kind, number, expires_on) VALUES (%s, %s, %s, %s)",
                (vehicle, kind, number, expires),
            )
        first = sweep_documents(conn, day)
        assert first.raised == 1
        again = sweep_documents(conn, day + timedelta(days=1))
        assert again.raised == 0 and again.updated == 1  # the same alert, one day fewer left
        (alert,) = _alerts(conn, "document_expiring")
        assert alert[0] == ids[0] and alert[2]["documents"][0]["number"] == "P-1"
        assert alert[2]["measured"] == [{"name": "days_left", "value": 9.0, "unit": "d"}]
        later = sweep_documents(conn, day + timedelta(days=12))
        assert later.raised == 1  # J-2 is now due; P-1 expired and stays as it was
        assert len(_alerts(conn, "document_expiring")) == 2
        # the expiry date corrected by a re-import: a new alert for the new date
        conn.execute(
            "UPDATE vehicle_document SET expires_on = %s WHERE number = 'J-2'", (day + timedelta(days=20),)
        )
        assert sweep_documents(conn, day + timedelta(days=12)).raised == 1


def test_the_live_engine_sweeps_once_per_local_day(db: str) -> None:
    fleet = register_fleet(db, 1)
    day = date(2026, 3, 2)
    clock = [day]
    rules = RulesStep(sweep_daily=True, today=lambda: clock[0])
    context = Context(orders=orders_table([]), places=places(StopKind.DEPOT, [], [], []))

    def round_() -> None:
        rules(
            conn, empty_result(), context=context, vehicle_ids=[], after_us=[], window_us=(0, 1), until_us=[]
        )

    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO vehicle_document (vehicle_id, kind, number, expires_on)"
            " VALUES (%s, 'insurance', 'P-9', %s)",
            (fleet.vehicle_ids[0], day + timedelta(days=5)),
        )
        round_()
        assert len(_alerts(conn, "document_expiring")) == 1
        conn.execute(
            "UPDATE alert SET evidence = '{}'::jsonb"
        )  # a second sweep the same day would rewrite it
        round_()
        assert _alerts(conn, "document_expiring")[0][2] == {}
        clock[0] = day + timedelta(days=1)
        round_()
        assert _alerts(conn, "document_expiring")[0][2]["measured"][0]["value"] == 4.0
