"""The engine against the database: live rounds interleaved with ingest give the same trips as a batch
recompute and as the engine run once on the whole stored history."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import psycopg

from ingest.decode import DecodeLimits, Message
from ingest.filters import FilterParams
from ingest.write import create_stage, load_terminals, write_batch
from simulators.database import load_run
from simulators.dates import recent_working_days
from simulators.output import messages
from simulators.run import SimParams, simulate
from simulators.world import build_world
from store.epoch import utc
from store.fixsql import fix_query
from store.queries import query
from tests.conftest import register_fleet
from tracks.params import Params
from tracks.pipeline import run_fleet
from tracks.worker import load_context, process_dirty, read_track, recompute


def _trips(conn: psycopg.Connection[Any]) -> list[tuple[int, int, int, int]]:
    rows = conn.execute(
        "SELECT vehicle_id, (extract(epoch FROM start_at) * 1e6)::bigint,"
        " (extract(epoch FROM end_at) * 1e6)::bigint, round(distance_m)::bigint FROM trip ORDER BY 1, 2"
    ).fetchall()
    return [tuple(int(x) for x in r) for r in rows]  # type: ignore[misc]


def test_live_rounds_recompute_and_whole_history_agree(db: str) -> None:
    run = simulate(build_world(8, 3), SimParams(start=recent_working_days(1, back_min=2), days=1))
    load_run(db, run)
    params = Params()
    sent = list(messages(run))
    with psycopg.connect(db, autocommit=True) as conn:
        create_stage(conn)
        terminals = load_terminals(conn)
        rounds = 0
        for lo in range(0, len(sent), 700):  # ingest in send order; the engine runs between batches
            batch = [
                Message(topic=t, payload=p, received_at_us=time.time_ns() // 1000)
                for _, t, p in sent[lo : lo + 700]
            ]
            write_batch(conn, batch, terminals, worker="t", params=FilterParams(), limits=DecodeLimits())
            while process_dirty(conn, "test", params) is not None:
                rounds += 1
        assert rounds > 10
        assert conn.execute("SELECT count(*) FROM engine_queue").fetchone() == (0,)
        live = _trips(conn)
        assert len(live) > 20
        links = conn.execute("SELECT count(*) FROM trip_order").fetchone()
        assert links is not None and links[0] > 0

        first_us = int(run.start_s * 1e6) - 86_400_000_000
        last_us = int(run.end_s * 1e6) + 86_400_000_000
        recompute(conn, first_us, last_us, params)
        batch_trips = _trips(conn)

        whole = read_track(
            conn, fix_query("copy_fixes_of_window"), {"from": utc(first_us), "to": utc(last_us)}
        )
        vehicles = np.unique(whole.vehicle_id).tolist()
        result = run_fleet(whole, load_context(conn, vehicles, first_us, last_us), params)
        trips = result.trips
        offline = sorted(
            (int(v), int(s), int(e), round(d))
            for v, s, e, d in zip(
                trips.vehicle_id, trips.start_us, trips.end_us, trips.distance_m, strict=True
            )
        )
    assert batch_trips == offline
    assert live == offline


def test_two_engine_workers_never_claim_the_same_vehicle(db: str) -> None:
    fleet = register_fleet(db, 10)
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO engine_queue (vehicle_id, dirty_from, dirty_to, dirty_at)"
            " SELECT vehicle_id, now() - interval '1 hour', now(), now() - interval '1 second' FROM vehicle"
        )
        claim = query("claim_dirty")
        a = conn.execute(claim, {"worker": "a", "limit": 6, "settle_s": 0, "lease_s": 60}).fetchall()
        b = conn.execute(claim, {"worker": "b", "limit": 6, "settle_s": 0, "lease_s": 60}).fetchall()
        again = conn.execute(claim, {"worker": "a", "limit": 6, "settle_s": 0, "lease_s": 60}).fetchall()
        # a lease that ran out (its worker died) is taken over
        conn.execute(
            "UPDATE engine_queue SET claimed_at = now() - interval '2 minutes' WHERE claimed_by = 'b'"
        )
        taken_over = conn.execute(
            claim, {"worker": "c", "limit": 10, "settle_s": 0, "lease_s": 60}
        ).fetchall()
    claimed_a, claimed_b = {r[0] for r in a}, {r[0] for r in b}
    assert len(claimed_a) == 6 and len(claimed_b) == 4
    assert claimed_a.isdisjoint(claimed_b)
    assert claimed_a | claimed_b == set(fleet.vehicle_ids)
    assert again == []
    assert {r[0] for r in taken_over} == claimed_b
