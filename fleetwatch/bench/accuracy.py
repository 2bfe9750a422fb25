"""``fleetwatch bench accuracy``: the pipeline scored against the simulator's exact ground truth.

A seeded fleet-week (default 200 vehicles, 7 days, seed 7) is simulated, its registry and orders
loaded into a fresh database, every terminal message run through the ingest write path (the same
decode, filters and COPY as the worker, duplicates, back-fill and faults included), and the engine's
batch recompute run over the week. The stored trips are then compared with the true trips:

- trip_f1: a stored trip matches a true trip of the same vehicle when both its start and its end are
  within ``--tolerance-s`` (default 120 s); one-to-one; F1 of precision and recall;
- mileage_error_median / _p95: |stored distance_m − true length| / true length over matched trips,
  the true length measured on the true path with the same WGS-84 geodesic as the engine
  (the simulator's own path_length_m is haversine, up to ~0.5 % off the ellipsoid);
- order_match_accuracy: share of matched trips whose dispatch order (or none) is the true one; a trip's
  order is its main link, else its positioning or return link (the simulator names the order of every
  leg of an outing: depot → origin → destination → depot).

The world and its records reach the database through the import doors (``simulators.export``: the
files ``fleetwatch import`` reads, imported in-process), the dispatch orders by code; truth is matched
to the database by plate and order code. The recompute runs the rules as the engine does (per-agency
configuration and threshold versions from the database), the daily document sweep runs for every day,
and the stored alerts are scored against the expected ones: ``per_kind_db`` (every kind, fuel,
maintenance and documents included) beside the in-process ``per_kind``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from datetime import timedelta
from typing import Any

import numpy as np
import psycopg
from numpy.typing import NDArray
from tqdm import tqdm

from ingest.decode import DecodeLimits, Message
from ingest.filters import FilterParams
from ingest.write import create_stage, load_terminals, write_batch
from store.db import create_database, with_dbname
from store.migrate import migrate
from store.queries import columns as table
from store.settings import StoreSettings
from tracks.geo import geodesic_m
from tracks.params import Params
from tracks.worker import recompute

log = logging.getLogger(__name__)

_NO_ORDER = -1


def match_trips(
    *,
    true_vehicle: NDArray[np.int64],
    true_start_s: NDArray[np.float64],
    true_end_s: NDArray[np.float64],
    found_vehicle: NDArray[np.int64],
    found_start_s: NDArray[np.float64],
    found_end_s: NDArray[np.float64],
    tolerance_s: float,
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """One-to-one pairs (true index, found index): same vehicle, start and end within the tolerance;
    each true trip takes the found trip of its vehicle with the nearest start."""
    order = np.lexsort((found_start_s, found_vehicle))
    key_found = found_vehicle[order].astype(np.float64) * 1e10 + found_start_s[order]
    key_true = true_vehicle.astype(np.float64) * 1e10 + true_start_s
    right = np.clip(np.searchsorted(key_found, key_true), 0, max(len(order) - 1, 0))
    left = np.clip(right - 1, 0, max(len(order) - 1, 0))
    if not len(order):
        return np.zeros(0, np.intp), np.zeros(0, np.intp)
    pick = np.where(np.abs(key_found[left] - key_true) < np.abs(key_found[right] - key_true), left, right)
    found = order[pick]
    ok = (
        (found_vehicle[found] == true_vehicle)
        & (np.abs(found_start_s[found] - true_start_s) <= tolerance_s)
        & (np.abs(found_end_s[found] - true_end_s) <= tolerance_s)
    )
    true_idx = np.flatnonzero(ok)
    found_idx = found[ok]
    # a found trip claimed twice keeps the true trip whose start is nearest
    gap = np.abs(found_start_s[found_idx] - true_start_s[true_idx])
    by = np.lexsort((gap, found_idx))
    first = np.append(True, found_idx[by][1:] != found_idx[by][:-1])
    keep = by[first]
    return true_idx[keep], found_idx[keep]


def _true_trips(run: Any, cars: list[int], orders: dict[int, int]) -> dict[str, NDArray[Any]]:
    """The true trips with database ids: vehicles by plate (``cars``), orders by code (``orders``)."""
    trips = run.truth.trips
    return {
        "vehicle": np.array([cars[t.vehicle] for t in trips], dtype=np.int64),
        "start_s": np.array([t.start_s for t in trips], dtype=np.float64),
        "end_s": np.array([t.end_s for t in trips], dtype=np.float64),
        "length_m": np.array(
            [
                float(geodesic_m(t.path_lon[:-1], t.path_lat[:-1], t.path_lon[1:], t.path_lat[1:]).sum())
                for t in trips
            ]
        ),
        "order": np.array(
            [orders[t.order_id] if t.order_id is not None else _NO_ORDER for t in trips], dtype=np.int64
        ),
    }


def _stored_trips(conn: psycopg.Connection[Any]) -> dict[str, NDArray[Any]]:
    rows = conn.execute(
        "SELECT t.vehicle_id, extract(epoch FROM t.start_at)::float8, extract(epoch FROM t.end_at)::float8,"
        " t.distance_m, coalesce(min(o.dispatch_order_id) FILTER (WHERE o.role = 'main'),"
        " min(o.dispatch_order_id), -1)"
        " FROM trip AS t LEFT JOIN trip_order AS o USING (trip_id) GROUP BY t.trip_id ORDER BY t.trip_id"
    ).fetchall()
    columns = table(rows, 5)
    return {
        "vehicle": np.array(columns[0], dtype=np.int64),
        "start_s": np.array(columns[1], dtype=np.float64),
        "end_s": np.array(columns[2], dtype=np.float64),
        "distance_m": np.array(columns[3], dtype=np.float64),
        "order": np.array(columns[4], dtype=np.int64),
    }


def score_trips(
    true: dict[str, NDArray[Any]], found: dict[str, NDArray[Any]], tolerance_s: float
) -> dict[str, Any]:
    ti, fi = match_trips(
        true_vehicle=true["vehicle"],
        true_start_s=true["start_s"],
        true_end_s=true["end_s"],
        found_vehicle=found["vehicle"],
        found_start_s=found["start_s"],
        found_end_s=found["end_s"],
        tolerance_s=tolerance_s,
    )
    precision = len(ti) / max(len(found["vehicle"]), 1)
    recall = len(ti) / max(len(true["vehicle"]), 1)
    error = np.abs(found["distance_m"][fi] - true["length_m"][ti]) / np.maximum(true["length_m"][ti], 1.0)
    return {
        "true_trips": len(true["vehicle"]),
        "stored_trips": len(found["vehicle"]),
        "matched_trips": len(ti),
        "trip_precision": round(precision, 4),
        "trip_recall": round(recall, 4),
        "trip_f1": round(2 * precision * recall / max(precision + recall, 1e-12), 4),
        "mileage_error_median": round(float(np.median(error)), 5) if len(error) else None,
        "mileage_error_p95": round(float(np.percentile(error, 95)), 5) if len(error) else None,
        "order_match_accuracy": round(float(np.mean(found["order"][fi] == true["order"][ti])), 4)
        if len(ti)
        else None,
    }


def _ingest(url: str, run: Any) -> dict[str, int]:
    from simulators.output import messages

    sent = list(messages(run))
    totals = {"messages": len(sent), "stored": 0, "duplicate": 0, "quarantined": 0}
    with (
        psycopg.connect(url, autocommit=True) as conn,
        tqdm(total=len(sent), unit="msg", desc="ingest") as bar,
    ):
        create_stage(conn)
        terminals = load_terminals(conn)
        for lo in range(0, len(sent), 4_000):
            chunk = sent[lo : lo + 4_000]
            received_us = time.time_ns() // 1000
            batch = [Message(topic=t, payload=p, received_at_us=received_us) for _, t, p in chunk]
            outcome = write_batch(
                conn, batch, terminals, worker="bench", params=FilterParams(), limits=DecodeLimits()
            )
            totals["stored"] += outcome.fixes_stored
            totals["duplicate"] += outcome.fixes_duplicate
            totals["quarantined"] += sum(outcome.fixes_quarantined.values()) + sum(
                outcome.messages_quarantined.values()
            )
            bar.update(len(chunk))
    return totals


def _stored_alerts(conn: psycopg.Connection[Any], run: Any, cars: list[int]) -> Any:
    """The alert table (not retracted) as spans, vehicles numbered as the simulated world numbers them."""
    from simulators.score import Spans

    world_id = {db: v.vehicle_id for db, v in zip(cars, run.world.fleet.vehicles, strict=True)}
    rows = conn.execute(
        "SELECT kind, vehicle_id, (extract(epoch FROM start_at) * 1e6)::bigint,"
        " (extract(epoch FROM end_at) * 1e6)::bigint FROM alert WHERE retracted_at IS NULL ORDER BY alert_id"
    ).fetchall()
    columns = table(rows, 4)
    return Spans(
        kind=np.array(columns[0], dtype=np.str_),
        vehicle_id=np.array([world_id[v] for v in columns[1]], dtype=np.int64),
        start_us=np.array(columns[2], dtype=np.int64),
        end_us=np.array(columns[3], dtype=np.int64),
    )


def _load_world(url: str, run: Any) -> tuple[list[int], dict[int, int]]:
    """The world through the import doors, the orders by code; (database vehicle id per simulated
    vehicle, database order id per simulated order)."""
    import tempfile
    from pathlib import Path

    from simulators.database import load_orders, vehicle_ids_by_plate
    from simulators.export import export_world, import_files

    with tempfile.TemporaryDirectory(prefix="fleetwatch-import-") as folder:
        imported = import_files(url, export_world(run, Path(folder)))
    log.info("imported: %s", ", ".join(f"{s['inserted']} {kind}" for kind, s in imported.items()))
    orders = load_orders(url, run)
    return vehicle_ids_by_plate(url, run), orders


def bench_accuracy(args: argparse.Namespace) -> int:
    from rules.worker import RulesStep, sweep_documents
    from simulators.dates import recent_monday
    from simulators.run import SimParams, simulate
    from simulators.world import build_world

    vehicles = args.vehicles or 200
    url = with_dbname(StoreSettings().database_url, "fleetwatch_bench_accuracy")
    create_database(url, drop_existing=True)
    migrate(url)
    start = recent_monday(args.days, back_min=2)
    started = time.monotonic()
    run = simulate(build_world(vehicles, args.seed), SimParams(start=start, days=args.days))
    log.info(
        "simulated %d vehicles × %d days from %s: %d true trips",
        vehicles,
        args.days,
        start,
        len(run.truth.trips),
    )
    cars, orders = _load_world(url, run)
    ingested = _ingest(url, run)
    params = Params()
    rules = RulesStep()
    with psycopg.connect(url, autocommit=True) as conn:
        days = args.days + 2
        first_us = int(run.start_s * 1e6) - 86_400_000_000
        with tqdm(total=1, unit="step", desc="recompute") as bar:

            def advance(steps: int) -> None:
                bar.update(steps)

            # one step over the whole span: the rules then see every stay whole (a day-stepped recompute
            # stores only alerts that start and end inside a step: an overnight stay never does)
            span_s = days * 86_400.0
            recompute(
                conn,
                first_us,
                first_us + days * 86_400_000_000,
                params,
                step_s=span_s,
                progress=advance,
                after=rules,
            )
        for d in range(args.days):
            sweep_documents(conn, start + timedelta(days=d))
        stored_alerts = _stored_alerts(conn, run, cars)
        result: dict[str, Any] = {
            "vehicles": vehicles,
            "days": args.days,
            "seed": args.seed,
            **score_trips(_true_trips(run, cars, orders), _stored_trips(conn), args.tolerance_s),
            "fixes_stored": ingested["stored"],
            "fixes_quarantined": ingested["quarantined"],
        }
    # the alert figures: the same seeded run through the engine and the rules in-process, with the
    # simulator's road layer for speed limits (the database has no road table yet), and a clean week
    from simulators.score import clean_run, clean_week_alerts, score_run, score_spans

    through_db = score_spans(run, stored_alerts)
    alerts = score_run(run)
    result.update(
        {
            k: alerts[k]
            for k in ("alert_recall", "alert_precision", "alerts_expected", "alerts_raised", "per_kind")
        }
    )
    result["rule_failures"] = alerts.get("rule_failures")
    result["alert_recall_db"] = through_db["alert_recall"]
    result["alert_precision_db"] = through_db["alert_precision"]
    result["per_kind_db"] = through_db["per_kind"]
    clean = clean_week_alerts(clean_run(vehicles, args.days, args.seed, start))
    result["clean_week_alerts"] = clean["total"]
    result["seconds"] = round(time.monotonic() - started, 1)
    print(
        f"trips: F1 {result['trip_f1']} ({result['matched_trips']} of {result['true_trips']} true,"
        f" {result['stored_trips']} stored); mileage error median {result['mileage_error_median']},"
        f" p95 {result['mileage_error_p95']}; order matching {result['order_match_accuracy']};"
        f" alerts recall {result['alert_recall']}, precision {result['alert_precision']},"
        f" clean week {result['clean_week_alerts']}; through the database: recall"
        f" {result['alert_recall_db']}, precision {result['alert_precision_db']}",
        file=sys.stderr,
    )
    if args.json:
        print(json.dumps(result))
    return 0
