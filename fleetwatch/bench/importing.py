"""``fleetwatch bench import``: a fuel-card file of one million transactions through the import door,
against a bare binary COPY of the same rows into the same table, measured in the same run.

- rows_per_s: ``fleetwatch import fuel FILE`` as an operator runs it (ingest.imports): the CSV read,
  every cell checked, the rows staged by COPY, references checked, upserted on the natural key, every
  row audited, the vehicles re-queued for the engine; from opening the file to the commit;
- ceiling_copy_rows_per_s: the same rows, already typed in memory, COPYed (binary) straight into
  fuel_record in one transaction: no checks, no keys resolved, no audit;
- rows_lost: rows of the file neither stored nor quarantined (must be 0).

A private database is created for the run and dropped after it.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from ingest.imports.kinds import KINDS
from ingest.imports.read import Table, read_path
from ingest.imports.run import Actor, run_import
from store.db import create_database, drop_database, with_dbname
from store.migrate import migrate
from store.settings import StoreSettings

CST_OFFSET = timedelta(hours=8)
FIRST_FILL = datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
STATIONS = 50


def _world(url: str, cards: int, actor: Actor) -> None:
    """An agency, a pool, ``cards`` vehicles and one fuel card each, through the import doors."""
    tables = {
        "agencies": Table(header=("code", "name"), rows=[["BENCH", "bench agency"]], source="bench"),
        "pools": Table(
            header=("code", "name", "kind", "agency_code"),
            rows=[["BENCH-POOL", "bench pool", "city", "BENCH"]],
            source="bench",
        ),
        "vehicles": Table(
            header=("plate", "kind", "seats", "pool_code", "agency_code", "tank_l", "fuel_norm_l_per_100km"),
            rows=[[f"B{i:06d}", "sedan", "5", "BENCH-POOL", "BENCH", "60", "9"] for i in range(cards)],
            source="bench",
        ),
        "fuel_cards": Table(
            header=("card", "plate"), rows=[[f"FC{i:06d}", f"B{i:06d}"] for i in range(cards)], source="bench"
        ),
    }
    with psycopg.connect(url, autocommit=True) as conn:
        for kind, table in tables.items():
            result = run_import(conn, KINDS[kind], table, actor=actor)
            if result.refused:
                raise RuntimeError(f"bench world: {kind} refused: {result.errors[:3]}")


def _write_csv(path: Path, rows: int, cards: int, seed: int) -> None:
    """``rows`` transactions: card i fills every ~8 h, at one of ``STATIONS`` stations (local times)."""
    rng = np.random.default_rng(seed)
    card = np.arange(rows) % cards
    fill = np.arange(rows) // cards
    t_s = (FIRST_FILL - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() + fill * 28_800 + card * 7
    station = rng.integers(0, STATIONS, rows)
    litres = np.round(rng.uniform(20, 55, rows), 2)
    with path.open("w", encoding="utf-8", newline="") as f:
        out = csv.writer(f)
        out.writerow(["card", "fuelled_at", "station", "lon", "lat", "litres", "amount_fen"])
        for i in range(rows):
            local = datetime.fromtimestamp(float(t_s[i]), tz=UTC) + CST_OFFSET
            s = int(station[i])
            out.writerow(
                [
                    f"FC{card[i]:06d}",
                    local.strftime("%Y-%m-%d %H:%M:%S"),
                    f"中石化{s:02d}号站",
                    f"{114.0 + s * 0.003:.6f}",
                    f"{22.5 + s * 0.002:.6f}",
                    f"{litres[i]:.2f}",
                    round(float(litres[i]) * 780),
                ]
            )


def _copy_ceiling(url: str, table: Table) -> float:
    """Rows per second of a bare binary COPY of the file's rows (typed beforehand) into fuel_record."""
    with psycopg.connect(url) as conn:
        vehicle_of: dict[str, int] = dict(conn.execute("SELECT card, vehicle_id FROM fuel_card").fetchall())
    typed: list[tuple[Any, ...]] = [
        (
            vehicle_of[str(r[0])],
            r[0],
            datetime.fromisoformat(str(r[1])).replace(tzinfo=UTC) - CST_OFFSET,
            r[2],
            float(str(r[3])),
            float(str(r[4])),
            float(str(r[5])),
            int(str(r[6])),
        )
        for r in table.rows
    ]
    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY fuel_record (vehicle_id, card, fuelled_at, station, lon, lat, litres, amount_fen)"
                " FROM STDIN (FORMAT BINARY)"
            ) as copy,
        ):
            copy.set_types(["int4", "text", "timestamptz", "text", "float8", "float8", "float4", "int8"])
            for row in typed:
                copy.write_row(row)
        conn.commit()
        seconds = time.perf_counter() - started
        conn.execute("TRUNCATE fuel_record")
        conn.commit()
    return len(typed) / seconds


def bench_import(args: argparse.Namespace) -> int:
    rows = int(args.fixes or 1_000_000)
    cards = 1_000
    base = StoreSettings().database_url
    url = with_dbname(base, f"fleetwatch_bench_import_{os.getpid()}")
    create_database(url, drop_existing=True)
    try:
        migrate(url)
        actor = Actor(api_user_id=None, name="cli:bench")
        _world(url, cards, actor)
        with tempfile.TemporaryDirectory(prefix="fleetwatch-bench-import-") as folder:
            path = Path(folder) / "fuel.csv"
            _write_csv(path, rows, cards, args.seed)
            ceiling = _copy_ceiling(url, read_path(path))
            started = time.perf_counter()
            with psycopg.connect(url, autocommit=True) as conn:
                result = run_import(conn, KINDS["fuel"], read_path(path), actor=actor)
            seconds = time.perf_counter() - started
        with psycopg.connect(url) as conn:
            stored = conn.execute("SELECT count(*) FROM fuel_record").fetchone()
            queued = conn.execute("SELECT count(*) FROM engine_queue").fetchone()
        assert stored is not None and queued is not None
        rate = rows / seconds
        summary = {
            "rows": rows,
            "rows_per_s": round(rate),
            "ceiling_copy_rows_per_s": round(ceiling),
            "ratio": round(rate / ceiling, 3),
            "rows_lost": rows - int(stored[0]) - result.quarantined,
            "rows_stored": int(stored[0]),
            "rows_quarantined": result.quarantined,
            "vehicles_requeued": int(queued[0]),
            "seconds": round(seconds, 2),
        }
    finally:
        drop_database(url)
    if not args.json:
        for key, value in summary.items():
            print(f"{key:>24}: {value}")
    print(json.dumps(summary))
    return 0
