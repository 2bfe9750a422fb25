"""``fleetwatch bench live``: how fast a trip without an order (无单出车) becomes a stored alert.

Real processes on a private broker and a fresh database: ``fleetwatch ingest`` and ``fleetwatch engine``
(with the rules); the simulator's terminals publish over MQTT in real time. The simulated fleet makes
private outings (no dispatch order); each selected car's messages are shifted in time so that its
outing starts during the run: what lies before the start goes out at once (the car standing at its
depot), the rest at its own wall-clock time, as the terminal would send it.

Latency per outing: from ingest receiving the fix that shows the car has left (the first fix of the trip
that is stop_radius_m from where it stood — the engine cannot know before) to the no_order alert being
stored (alert.raised_at). ``missed``: outings with no such alert by the end of the run.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import psycopg

from fleetwatch.mosquitto import MosquittoProcess
from fleetwatch.processes import start_fleetwatch, start_ingest, stop
from ingest.mqtt_publish import Publisher
from store.db import create_database, with_dbname
from store.migrate import migrate
from store.settings import StoreSettings
from tracks.geo import haversine_m
from tracks.params import TripParams

log = logging.getLogger(__name__)

_BEFORE_S = 15 * 60  # of each selected car's history before its outing: it stands at the depot
_AFTER_S = 2 * 60


def _shift_payload(payload: bytes, shift_ms: int) -> bytes:
    doc = orjson.loads(payload)
    fixes = doc["fixes"] if isinstance(doc, dict) and "fixes" in doc else [doc]
    for fix in fixes:
        t = fix["time"]
        if isinstance(t, str):
            moment = datetime.fromisoformat(t) + timedelta(milliseconds=shift_ms)
            fix["time"] = moment.isoformat().replace("+00:00", "Z")
        else:
            fix["time"] = t + shift_ms
    return orjson.dumps(doc)


def _scenario(
    vehicles: int, seed: int, outings: int, spread_s: float
) -> tuple[Any, list[dict[str, Any]], list[Any]]:
    """A simulated day with a private outing per car; the chosen outings, and the shifted messages."""
    from simulators.output import messages
    from simulators.run import SimParams, simulate
    from simulators.violations import CLEAN
    from simulators.world import build_world

    world = build_world(vehicles, seed)
    today = (datetime.now(UTC) + timedelta(hours=8)).date()
    for back in range(1, 8):
        run = simulate(
            world, SimParams(start=today - timedelta(days=back), days=1, rates=replace(CLEAN, no_order=1.0))
        )
        private = [a for a in run.truth.alerts if a.kind.value == "no_order" and a.trip_id is not None]
        if len(private) >= min(outings, vehicles // 2):
            break
    trips = {t.trip_id: t for t in run.truth.trips}
    chosen: dict[int, Any] = {}
    for alert in private:
        trip = trips[alert.trip_id or 0]
        chosen.setdefault(trip.vehicle, trip)
    selected = sorted(chosen.values(), key=lambda t: t.start_s)[:outings]
    now_s = time.time()
    plan = []
    for i, trip in enumerate(selected):
        start_at_s = now_s + 20.0 + spread_s * i / max(len(selected) - 1, 1)
        plan.append(
            {
                "vehicle_id": trip.vehicle + 1,
                "terminal_id": world.fleet.vehicles[trip.vehicle].terminal_id,
                "true_start_s": trip.start_s,
                "shift_ms": round((start_at_s - trip.start_s) * 1000),
                "start_lon": float(trip.path_lon[0]),
                "start_lat": float(trip.path_lat[0]),
            }
        )
    by_terminal = {p["terminal_id"]: p for p in plan}
    shifted = []
    for sent_ms, topic, payload in messages(run):
        p = by_terminal.get(topic.split("/")[1])
        if p is None or not (p["true_start_s"] - _BEFORE_S <= sent_ms / 1000 <= p["true_start_s"] + _AFTER_S):
            continue
        shifted.append((sent_ms + p["shift_ms"], topic, _shift_payload(payload, p["shift_ms"])))
    shifted.sort()
    return run, plan, shifted


def _publish_in_real_time(port: int, items: list[Any], done: threading.Event) -> None:
    publisher = Publisher(port=port, client_id="bench-live-terminals")
    try:
        publisher.wait_connected()
        due_now = [(t, p) for sent, t, p in items if sent / 1000 <= time.time()]
        publisher.publish(due_now)
        later = [(sent, t, p) for sent, t, p in items if sent / 1000 > time.time()]
        for sent, topic, payload in later:
            wait = sent / 1000 - time.time()
            if wait > 0:
                time.sleep(wait)
            publisher.publish([(topic, payload)])
    finally:
        publisher.close()
        done.set()


def _latencies(conn: psycopg.Connection[Any], plan: list[dict[str, Any]]) -> tuple[list[float], int]:
    radius_m = TripParams().stop_radius_m
    latencies, missed = [], 0
    for p in plan:
        rows = conn.execute(
            "SELECT extract(epoch FROM fix_at)::float8, extract(epoch FROM received_at)::float8, lon, lat"
            " FROM position WHERE vehicle_id = %s AND fix_at >= %s ORDER BY fix_at",
            (p["vehicle_id"], datetime.fromtimestamp((p["true_start_s"] * 1000 + p["shift_ms"]) / 1000, UTC)),
        ).fetchall()
        if not rows:
            missed += 1
            continue
        arr = np.array(rows, dtype=np.float64)
        away = np.flatnonzero(haversine_m(arr[:, 2], arr[:, 3], p["start_lon"], p["start_lat"]) >= radius_m)
        alert = conn.execute(
            "SELECT extract(epoch FROM raised_at)::float8 FROM alert"
            " WHERE kind = 'no_order' AND vehicle_id = %s"
            " ORDER BY raised_at LIMIT 1",
            (p["vehicle_id"],),
        ).fetchone()
        if alert is None or not len(away):
            missed += 1
            continue
        shown_at = float(arr[away[0], 1])  # ingest received the fix that shows the car has left
        latencies.append(float(alert[0]) - shown_at)
    return latencies, missed


def bench_live(args: argparse.Namespace) -> int:
    url = with_dbname(StoreSettings().database_url, "fleetwatch_bench_live")
    create_database(url, drop_existing=True)
    migrate(url)
    outings = args.outings
    run, plan, items = _scenario(args.vehicles or 40, args.seed, outings, args.duration_s)
    from simulators.database import load_run

    load_run(url, run)
    log.info("live bench: %d outings without an order start over the next %.0f s", len(plan), args.duration_s)
    with tempfile.TemporaryDirectory(prefix="fleetwatch-live-") as tmp:
        broker = MosquittoProcess(folder=Path(tmp) / "mosquitto", persistence=False)
        broker.start()
        env = {
            "FLEETWATCH_DATABASE_URL": url,
            "FLEETWATCH_METRICS_PORT": "0",
            "FLEETWATCH_MQTT_PORT": str(broker.port),
        }
        ingest = start_ingest(env, ["--worker-name", "live"], Path(tmp) / "ingest.log")
        engine = start_fleetwatch(
            ["engine", "run"],
            {**env, "FLEETWATCH_WORKER_NAME": "live-engine"},
            Path(tmp) / "engine.log",
            ready="track engine",
        )
        try:
            done = threading.Event()
            threading.Thread(
                target=_publish_in_real_time, args=(broker.port, items, done), daemon=True
            ).start()
            done.wait(args.duration_s + _AFTER_S + 120)
            time.sleep(10)  # the last outings' alerts
        finally:
            stop(ingest)
            stop(engine)
            broker.stop()
    with psycopg.connect(url) as conn:
        latencies, missed = _latencies(conn, plan)
        alerts = int(conn.execute("SELECT count(*) FROM alert").fetchone()[0])  # type: ignore[index]
    values = np.array(latencies) if latencies else np.array([np.nan])
    result = {
        "outings": len(plan),
        "alerts": alerts,
        "alerts_measured": len(latencies),
        "alert_latency_p50_s": round(float(np.percentile(values, 50)), 2),
        "alert_latency_p99_s": round(float(np.percentile(values, 99)), 2),
        "alert_latency_max_s": round(float(np.max(values)), 2),
        "missed": missed,
    }
    print(
        f"{len(plan)} outings without an order: {len(latencies)} alerted,"
        f" p50 {result['alert_latency_p50_s']} s,"
        f" p99 {result['alert_latency_p99_s']} s, missed {missed}",
        file=sys.stderr,
    )
    if args.json:
        print(json.dumps(result))
    return 0
