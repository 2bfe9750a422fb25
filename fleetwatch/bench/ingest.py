"""``fleetwatch bench ingest``: the real ingest worker against two ceilings measured in the same run.

Per case (10 fixes a message, then 1 fix a message), on the same pre-encoded messages:
- ceiling_mqtt_per_s: the worker's own MQTT side (ingest.mqtt: paho, MQTT 5, QoS 1, the same receive
  maximum and batched acknowledgements) with nothing behind it: it only counts and acknowledges;
- ceiling_copy_per_s: a bare binary COPY of the same rows into the position hypertable, in batches of
  the worker's size, one transaction each;
- positions_per_s: the real worker process (``fleetwatch ingest``) decoding, screening and storing them,
  from the first message received to the last batch committed (read back from ingest_batch).

Each consumer first registers its persistent session, goes away, the messages are published (QoS 1,
all acknowledged by the broker), and the consumer comes back and drains its queue: the publisher's CPU
is then not shared with the consumer being timed, on a 2-core machine where it otherwise would be.
The broker is a private Mosquitto on a free loopback port.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from tqdm import tqdm

from fleetwatch.mosquitto import MosquittoProcess
from fleetwatch.processes import start_ingest, stop
from ingest.mqtt import Subscription, SubscriptionConfig
from ingest.mqtt_publish import Publisher
from ingest.settings import IngestSettings
from simulators.load import LoadStream, load_stream, register_load_fleet
from store.copy import binary_copy_payload
from store.db import create_database, with_dbname
from store.migrate import migrate
from store.settings import StoreSettings

log = logging.getLogger(__name__)


def _publish(broker: MosquittoProcess, stream: LoadStream) -> int:
    publisher = Publisher(port=broker.port, client_id="bench-publisher", max_inflight=200)
    try:
        if not publisher.wait_connected():
            raise RuntimeError("bench broker not reachable")
        result = publisher.publish(stream.messages, timeout_s=900)
        return result.acknowledged
    finally:
        publisher.close()


def _ceiling_mqtt(broker: MosquittoProcess, stream: LoadStream, settings: IngestSettings) -> float:
    """The worker's own MQTT plumbing (ingest.mqtt.Subscription, same in-flight window, batched PUBACKs)
    with nothing behind it: take a batch, acknowledge it, count it."""
    config = SubscriptionConfig(
        port=broker.port, client_id="fleetwatch-bench-bare", receive_maximum=settings.receive_maximum
    )
    first = Subscription(config)
    first.start()
    first.close()  # the session now exists and queues what is published
    _publish(broker, stream)
    subscription = Subscription(config)
    subscription.start()
    received, started, finished = 0, 0.0, 0.0
    deadline = time.monotonic() + 600
    while received < len(stream.messages) and time.monotonic() < deadline:
        batch = subscription.take(
            max_messages=settings.max_batch_messages, max_bytes=settings.max_batch_bytes, max_wait_s=0.05
        )
        if batch:
            if not received:
                started = batch[0].message.received_at_us / 1e6
            received += len(batch)
            subscription.ack(batch)
            finished = time.time()
    subscription.close()
    if received < len(stream.messages):
        raise RuntimeError(f"bare subscriber got {received} of {len(stream.messages)} messages")
    return stream.fixes / max(finished - started, 1e-9)


def _ceiling_copy(url: str, stream: LoadStream, vehicle_ids: np.ndarray[Any, Any], batch_rows: int) -> float:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE position")
        now_us = time.time_ns() // 1000
        started = time.perf_counter()
        for lo in range(0, stream.fixes, batch_rows):
            sl = slice(lo, lo + batch_rows)
            n = len(stream.t_ms[sl])
            payload = binary_copy_payload(
                [
                    ("vehicle_id", "int4", vehicle_ids[stream.terminal_index[sl]]),
                    ("fix_at", "timestamptz", stream.t_ms[sl] * 1000),
                    ("received_at", "timestamptz", np.full(n, now_us, dtype=np.int64)),
                    ("terminal_no", "int4", stream.terminal_index[sl] + 1),
                    ("lon", "float8", stream.lon[sl]),
                    ("lat", "float8", stream.lat[sl]),
                    ("speed_kmh", "float4", stream.speed_kmh[sl]),
                    ("valid", "bool", np.ones(n, dtype=np.bool_)),
                    ("seq", "int8", stream.seq[sl]),
                ]
            )
            with (
                conn.transaction(),
                conn.cursor() as cur,
                cur.copy(
                    "COPY position (vehicle_id, fix_at, received_at, terminal_no, lon, lat, speed_kmh, valid,"
                    " seq)"
                    " FROM STDIN (FORMAT BINARY)"
                ) as copy,
            ):
                copy.write(payload)
        elapsed = time.perf_counter() - started
        conn.execute("TRUNCATE position")
    return stream.fixes / elapsed


def _worker(url: str, broker: MosquittoProcess, log_path: Path) -> subprocess.Popen[bytes]:
    return start_ingest(
        {"FLEETWATCH_DATABASE_URL": url, "FLEETWATCH_METRICS_PORT": "0"},
        ["--mqtt-port", str(broker.port), "--worker-name", "bench"],
        log_path,
        verbose=bool(os.environ.get("FLEETWATCH_BENCH_DEBUG")),
    )


def _scalar(url: str, sql: Any) -> Any:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql).fetchone()
        return row[0] if row else None


def run_case(
    base_url: str,
    broker: MosquittoProcess,
    *,
    fixes: int,
    per_message: int,
    terminals: int,
    seed: int,
    tmp: Path,
) -> dict[str, Any]:
    url = with_dbname(base_url, "fleetwatch_bench_ingest")
    create_database(url, drop_existing=True)
    migrate(url)
    with psycopg.connect(url, autocommit=True) as conn:
        fleet = register_load_fleet(conn, terminals)
    stream = load_stream(
        fleet.terminal_ids, fixes, per_message, seed=seed, end_ms=int(time.time() * 1000) - 60_000
    )
    settings = IngestSettings(database_url=url)
    log.info(
        "case %d fix(es) a message: %d fixes in %d messages", per_message, stream.fixes, len(stream.messages)
    )

    ceiling_mqtt = _ceiling_mqtt(broker, stream, settings)
    batch_rows = settings.max_batch_messages * per_message
    ceiling_copy = _ceiling_copy(url, stream, np.array(fleet.vehicle_ids, dtype=np.int32), batch_rows)

    log_path = tmp / f"worker-{per_message}.log"
    stop(_worker(url, broker, log_path))  # registers the worker's persistent session, then goes away
    sent = _publish(broker, stream) * per_message
    worker = _worker(url, broker, log_path)
    try:
        stored, last_change, last_stored = 0, time.monotonic(), -1
        with tqdm(total=sent, desc=f"ingest {per_message}/msg", unit="fix", disable=None) as bar:
            while stored < sent and time.monotonic() - last_change < 30:
                time.sleep(0.2)
                stored = int(_scalar(url, "SELECT count(*) FROM position"))
                bar.update(stored - bar.n)
                if stored != last_stored:
                    last_stored, last_change = stored, time.monotonic()
    finally:
        stop(worker)
    distinct = int(_scalar(url, "SELECT count(DISTINCT (vehicle_id, seq)) FROM position"))
    window_s = float(
        _scalar(
            url, "SELECT extract(epoch FROM max(committed_at) - min(first_received_at)) FROM ingest_batch"
        )
    )
    rate = stored / window_s
    return {
        "fixes_per_message": per_message,
        "positions_sent": sent,
        "positions_stored": stored,
        "lost": sent - distinct,
        "duplicated": stored - distinct,
        "positions_per_s": round(rate),
        "ceiling_mqtt_per_s": round(ceiling_mqtt),
        "ceiling_copy_per_s": round(ceiling_copy),
        "ratio": round(rate / min(ceiling_mqtt, ceiling_copy), 3),
    }


def bench_ingest(args: argparse.Namespace) -> int:
    fixes = args.fixes or 1_000_000
    base_url = StoreSettings().database_url
    with tempfile.TemporaryDirectory(prefix="fleetwatch-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        broker = MosquittoProcess(folder=tmp / "mosquitto-10", persistence=False)
        broker.start()
        try:
            ten = run_case(
                base_url,
                broker,
                fixes=fixes,
                per_message=10,
                terminals=args.terminals,
                seed=args.seed,
                tmp=tmp,
            )
        finally:
            broker.stop()
        broker = MosquittoProcess(folder=tmp / "mosquitto-1", persistence=False)  # no sessions from above
        broker.start()
        try:
            single = run_case(
                base_url,
                broker,
                fixes=max(fixes // 3, 1),
                per_message=1,
                terminals=args.terminals,
                seed=args.seed,
                tmp=tmp,
            )
        finally:
            broker.stop()
    result = {**ten, "single_fix": single}
    for case in (ten, single):
        print(
            f"{case['fixes_per_message']:>2} fix/msg: {case['positions_stored']:,}"
            f" of {case['positions_sent']:,} stored,"
            f" lost {case['lost']}, duplicated {case['duplicated']}; worker {case['positions_per_s']:,}/s,"
            f" ceilings MQTT {case['ceiling_mqtt_per_s']:,}/s, COPY {case['ceiling_copy_per_s']:,}/s,"
            f" ratio {case['ratio']}",
            file=sys.stderr,
        )
    if args.json:
        print(json.dumps(result))
    return 0 if ten["lost"] == 0 and single["lost"] == 0 else 1
