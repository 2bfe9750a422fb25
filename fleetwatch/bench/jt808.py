"""``fleetwatch bench jt808``: N JT/T 808 terminals over loopback TCP through the gateway, end to end.

Processes: the terminals (gateway.jt808.load, N sockets) in one, the gateway in another, a private
Mosquitto (``max_inflight_messages 0``: no Receive Maximum cap on the gateway's session) and
``fleetwatch ingest`` on a fresh database. Every terminal holds ``--window`` reports in flight and sends
the next when one is answered 0x8001.

- ``frames_per_s``: reports answered per second, each answer sent only after the broker's PUBACK.
- ``ceiling_frames_per_s``: the same terminals, sockets, framing and decoding against a gateway that
  answers 0x8001 at once with no MQTT (``answer_without_broker``), in the same run.
- ingest registers its persistent session first and drains the queue after the timed run (its CPU is not
  shared with the run); ``positions_stored`` are the rows it stored, ``lost`` = answered − stored.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import psycopg

from fleetwatch.mosquitto import MosquittoProcess, free_port
from fleetwatch.processes import start_fleetwatch, start_ingest, stop
from gateway.jt808.load import bench_code
from simulators.load import register_load_fleet
from store.db import create_database, with_dbname
from store.migrate import migrate
from store.settings import StoreSettings

log = logging.getLogger(__name__)

FIRST_PHONE = 139_000_000_001


class BenchBroker(MosquittoProcess):
    def config(self) -> str:
        return super().config() + "max_inflight_messages 0\n"


def _prepare_database(url: str, terminals: int) -> None:
    create_database(url, drop_existing=True)
    migrate(url)
    with psycopg.connect(url, autocommit=True) as conn:
        fleet = register_load_fleet(conn, terminals, prefix="139000")
        assert fleet.terminal_ids[0] == f"{FIRST_PHONE:012d}"
        with (
            conn.cursor() as cur,
            cur.copy("COPY jt808_terminal (terminal_id, auth_code) FROM STDIN") as copy,
        ):
            for terminal_id in fleet.terminal_ids:
                copy.write_row((terminal_id, bench_code(terminal_id)))


def _drive(port: int, args: argparse.Namespace, end_s: float) -> dict[str, Any]:
    command = [
        sys.executable, "-m", "gateway.jt808.load", "--port", str(port), "--first-phone", str(FIRST_PHONE),
        "--terminals", str(args.terminals), "--reports", str(args.reports), "--window", str(args.window),
        "--end-s", str(end_s),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, check=False, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"terminals process failed: {done.stderr.decode(errors='replace')[-2000:]}")
    result: dict[str, Any] = orjson.loads(done.stdout.splitlines()[-1])
    return result


def _gateway(env: dict[str, str], port: int, log_path: Path) -> subprocess.Popen[bytes]:
    return start_fleetwatch(
        ["gateway", "jt808", "--port", str(port)], env, log_path, ready="listening on", timeout_s=120
    )


def bench_jt808(args: argparse.Namespace) -> int:
    url = with_dbname(StoreSettings().database_url, "fleetwatch_bench_jt808")
    log.info("bench jt808: %d terminals × %d reports, window %d", args.terminals, args.reports, args.window)
    _prepare_database(url, args.terminals)
    end_s = time.time() - 60
    with tempfile.TemporaryDirectory(prefix="fleetwatch-jt808-") as tmp_dir:
        tmp = Path(tmp_dir)
        broker = BenchBroker(folder=tmp / "mosquitto", persistence=False)
        broker.start()
        env = {
            "FLEETWATCH_DATABASE_URL": url,
            "FLEETWATCH_METRICS_PORT": "0",
            "FLEETWATCH_MQTT_PORT": str(broker.port),
            "FLEETWATCH_MAX_CONNECTIONS_PER_ADDRESS": "0",
            "FLEETWATCH_GATEWAY_NAME": "bench-jt808",
        }
        ingest_args = ["--worker-name", "bench-jt808"]
        try:
            # ingest's persistent session first, then away while the run is timed
            stop(start_ingest(env, ingest_args, tmp / "ingest.log", timeout_s=120))

            port = free_port()
            gateway = _gateway({**env, "FLEETWATCH_ANSWER_WITHOUT_BROKER": "true"}, port, tmp / "ceiling.log")
            try:
                ceiling = _drive(port, args, end_s)
            finally:
                stop(gateway)
            log.info("ceiling (no MQTT): %s", ceiling)

            port = free_port()
            gateway = _gateway(env, port, tmp / "gateway.log")
            try:
                run = _drive(port, args, end_s)
            finally:
                stop(gateway)
            log.info("end to end: %s", run)

            ingest = start_ingest(env, ingest_args, tmp / "ingest.log", timeout_s=120)
            try:
                stored = _wait_stored(url, run["frames_acked"], timeout_s=600)
            finally:
                stop(ingest)
        finally:
            broker.stop()
    result = {
        "terminals": args.terminals,
        "reports_per_terminal": args.reports,
        "window": args.window,
        "connections": run["connections"],
        "frames_sent": run["frames_sent"],
        "frames_acked": run["frames_acked"],
        "positions_stored": stored,
        "lost": max(0, run["frames_acked"] - stored),
        "frames_per_s": run["frames_per_s"],
        "ceiling_frames_per_s": ceiling["frames_per_s"],
        "ratio": round(run["frames_per_s"] / ceiling["frames_per_s"], 3) if ceiling["frames_per_s"] else 0.0,
        "connect_s": run["connect_s"],
        "connections_lost": run["connections_lost"],
    }
    print(
        f"{result['connections']:,} terminals: {result['frames_acked']:,} reports answered after the PUBACK,"
        f" {result['frames_per_s']:,} /s vs {result['ceiling_frames_per_s']:,} /s without MQTT"
        f" (ratio {result['ratio']}); {stored:,} stored, lost {result['lost']}",
        file=sys.stderr,
    )
    if args.json:
        print(json.dumps(result))
    return 0


def _wait_stored(url: str, expected: int, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    stored, last_change, previous = 0, time.monotonic(), -1
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute("SELECT count(*) FROM position").fetchone()
            stored = int(row[0]) if row else 0
            if stored >= expected:
                return stored
            if stored != previous:
                previous, last_change = stored, time.monotonic()
            elif time.monotonic() - last_change > 60:
                break  # nothing new for a minute: what is missing is lost
            time.sleep(0.5)
    return stored
