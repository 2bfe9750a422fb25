"""``fleetwatch demo``: the seeded demo fleet through the whole pipeline.

1. a fresh ``fleetwatch_demo`` database beside the configured one, migrated;
2. the simulated city and fleet written as import files (agencies, pools, depots, places, forbidden
   zones, cars and terminals, drivers, fuel cards and transactions, maintenance work orders, insurance
   and inspections, the holiday calendar, working hours, thresholds, roads: CSV, XLSX, GeoJSON) and
   imported through the import doors (``fleetwatch import``'s functions); the dispatch orders by code;
3. an ingest worker started as its own process on the local (or configured) broker;
4. every terminal message of the simulated days published over MQTT at QoS 1;
5. once every fix is accounted for (stored, a duplicate, or quarantined with a reason), a summary.
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
import urllib.request
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import psycopg
from tqdm import tqdm

from fleetwatch.mosquitto import free_port, wait_port
from fleetwatch.processes import start_fleetwatch, start_ingest, stop
from ingest.settings import MqttSettings
from store.db import create_database, with_dbname
from store.migrate import migrate
from store.queries import query
from store.settings import StoreSettings

log = logging.getLogger(__name__)

DEMO_DATABASE = "fleetwatch_demo"


def add_demo_parser(sub: Any) -> None:
    demo = sub.add_parser("demo", help="run the demo fleet through the pipeline", description=__doc__)
    demo.add_argument("--vehicles", type=int, default=60)
    demo.add_argument("--days", type=int, default=2, help="simulated days, ending yesterday (China time)")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--database-name", default=DEMO_DATABASE, help="dropped and created anew")
    demo.add_argument(
        "--jt808-share", type=float, default=0.25, help="share of the fleet sent through a JT/T 808 gateway"
    )
    demo.set_defaults(func=run_demo)


def _scalar(conn: psycopg.Connection[Any], name: str) -> Any:
    """The one value of the named query ``name`` (store/queries/demo.sql)."""
    row = conn.execute(query(name)).fetchone()
    return row[0] if row else None


def run_demo(args: argparse.Namespace) -> int:
    from ingest.mqtt_publish import Publisher
    from simulators.database import load_orders
    from simulators.dates import recent_working_days
    from simulators.export import export_world, import_files
    from simulators.output import messages
    from simulators.run import SimParams, simulate
    from simulators.world import build_world

    store, mqtt = StoreSettings(), MqttSettings()
    url = with_dbname(store.database_url, args.database_name)
    log.info(
        "demo database %s (dropped and created anew), broker %s:%d",
        args.database_name,
        mqtt.mqtt_host,
        mqtt.mqtt_port,
    )
    create_database(url, drop_existing=True)
    migrate(url)

    start = recent_working_days(args.days)
    world = build_world(args.vehicles, args.seed)
    with tqdm(total=args.vehicles, unit="car", desc="simulate", disable=None) as bar:

        def advance(cars: int) -> None:
            bar.update(cars)

        run = simulate(world, SimParams(start=start, days=args.days), progress=advance)
    fixes_sent = int(run.deliveries.row_count.sum())
    log.info(
        "simulated %d cars from %s for %d days: %d messages carrying %d fixes, %d true trips,"
        " %d expected alerts",
        args.vehicles,
        start,
        args.days,
        len(run.deliveries),
        fixes_sent,
        len(run.truth.trips),
        len(run.truth.alerts),
    )
    with tempfile.TemporaryDirectory(prefix="fleetwatch-demo-") as tmp:
        files = export_world(run, Path(tmp) / "import")
        imported = import_files(url, files, actor="demo")
        load_orders(url, run)
        print("fleetwatch demo — the world through the import doors (fleetwatch import KIND FILE)")
        for kind, summary in imported.items():
            print(f"  {kind:<22} {files[kind].name:<24} {summary['inserted']:>7} rows")
        print()
        log_path = Path(tmp) / "ingest.log"
        worker = start_ingest(
            {
                "FLEETWATCH_DATABASE_URL": url,
                "FLEETWATCH_METRICS_PORT": "0",
                "FLEETWATCH_SESSION_EXPIRY_S": "0",  # the demo's broker session ends with the demo
            },
            [
                "--worker-name",
                f"demo-{args.database_name}",
                "--mqtt-host",
                mqtt.mqtt_host,
                "--mqtt-port",
                str(mqtt.mqtt_port),
            ],
            log_path,
        )
        engine = start_fleetwatch(
            ["engine", "run"],
            {"FLEETWATCH_DATABASE_URL": url, "FLEETWATCH_WORKER_NAME": "demo-engine"},
            Path(tmp) / "engine.log",
            ready="track engine",
        )
        gateway_port = free_port()
        gateway = start_fleetwatch(
            ["gateway", "jt808", "--port", str(gateway_port)],
            {
                "FLEETWATCH_DATABASE_URL": url,
                "FLEETWATCH_MQTT_HOST": mqtt.mqtt_host,
                "FLEETWATCH_MQTT_PORT": str(mqtt.mqtt_port),
                "FLEETWATCH_GATEWAY_NAME": f"demo-{args.database_name}",
                "FLEETWATCH_SESSION_EXPIRY_S": "0",
                "FLEETWATCH_MAX_CONNECTIONS_PER_ADDRESS": "0",
            },
            Path(tmp) / "gateway.log",
            ready="listening on",
        )
        try:
            jt808, mqtt_items = _start_jt808_share(run, messages(run), args.jt808_share, gateway_port)
            publisher = Publisher(mqtt.mqtt_host, mqtt.mqtt_port, client_id=f"fleetwatch-demo-{args.seed}")
            try:
                if not publisher.wait_connected():
                    raise SystemExit(f"no MQTT broker at {mqtt.mqtt_host}:{mqtt.mqtt_port}")
                started = time.monotonic()
                with tqdm(total=len(run.deliveries), unit="msg", desc="publish", disable=None) as bar:

                    def counted(items: Any) -> Any:
                        for _sent_ms, topic, payload in items:
                            bar.update(1)
                            yield topic, payload

                    result = publisher.publish(counted(mqtt_items))
                jt808.join()
            finally:
                publisher.close()
            with (
                psycopg.connect(url) as conn,
                tqdm(total=fixes_sent, unit="fix", desc="ingest", disable=None) as bar,
            ):
                accounted, last_change = 0, time.monotonic()
                while accounted < fixes_sent and time.monotonic() - last_change < 30:
                    time.sleep(0.2)
                    now = int(_scalar(conn, "demo_fixes_received"))
                    if now != accounted:
                        bar.update(now - accounted)
                        accounted, last_change = now, time.monotonic()
                elapsed = time.monotonic() - started
                _wait_for_engine(conn)
                engine_s = time.monotonic() - started
        finally:
            stop(worker)
            stop(engine)
            stop(gateway)
        gateway_log = (Path(tmp) / "gateway.log").read_text(errors="replace")
    from rules.worker import sweep_documents

    with psycopg.connect(url, autocommit=True) as conn:  # the daily document sweep, for the simulated days
        for day in range(args.days):
            sweep_documents(conn, start + timedelta(days=day))
    _summary(url, result.acknowledged, fixes_sent, elapsed)
    _jt808_summary(jt808, gateway_log)
    _engine_summary(url, engine_s)
    _alert_summary(url, run)
    _api_calls(url, start)
    return 0


def _alert_summary(url: str, run: Any) -> None:
    """The alerts the rules raised against what the simulator injected (its labelled ground truth)."""
    expected: dict[str, int] = {}
    for alert in run.truth.alerts:
        expected[alert.kind.value] = expected.get(alert.kind.value, 0) + 1
    with psycopg.connect(url) as conn:
        raised: dict[str, int] = dict(conn.execute(query("demo_alerts_per_kind")).fetchall())
        published = _scalar(conn, "demo_alerts_published")
    print("fleetwatch demo — rules")
    print("  kind                    raised   injected (simulator truth)")
    for kind in sorted(set(expected) | set(raised)):
        print(f"  {kind:<22} {raised.get(kind, 0):>7}   {expected.get(kind, 0):>7}")
    print(f"  published to MQTT (alerts/<agency>/<kind>)  {published}")
    print()


def _api_calls(url: str, start: date) -> None:
    """The API up on a free loopback port, and the calls the dispatch service, a supervisor and the
    settlement office would make against the demo fleet."""
    port = free_port()
    env = {
        "FLEETWATCH_DATABASE_URL": url,
        "FLEETWATCH_API_PORT": str(port),
        # the demo fleet last reported yesterday: count a car as online if it reported in the last 3 days
        "FLEETWATCH_ONLINE_WITHIN_S": str(3 * 86_400),
    }
    token = (
        subprocess.run(
            [sys.executable, "-m", "fleetwatch.cli", "api", "token", "--user", "demo", "--role", "admin"],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    with psycopg.connect(url) as conn:
        conn.execute(query("demo_insert_tariffs"), {"valid_from": start - timedelta(days=60)})
        depot = conn.execute(query("demo_first_depot")).fetchone()
        agency = conn.execute(query("demo_busiest_agency")).fetchone()
    assert depot is not None and agency is not None
    with tempfile.TemporaryDirectory(prefix="fleetwatch-demo-api-") as tmp:
        server = start_fleetwatch(["api"], env, Path(tmp) / "api.log", ready="API ready")
        wait_port(port)
        try:
            base = f"http://127.0.0.1:{port}/v1"

            def get(path: str) -> Any:
                request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {token}"})
                with urllib.request.urlopen(request, timeout=30) as response:
                    return json.loads(response.read())

            print(f"fleetwatch demo — API on http://127.0.0.1:{port}/v1 (token for user 'demo', role admin)")
            near = get(f"/vehicles/nearest?lon={depot[1]}&lat={depot[2]}&k=3&seats=4")
            print(f"  GET /vehicles/nearest?…&k=3&seats=4  — free cars nearest {depot[0]}:")
            for car in near["vehicles"]:
                print(
                    f"    {car['plate']}  {car['seats']} seats  {car['distance_m']:.0f} m"
                    f"  fix age {car['fix_age_s']:.0f} s"
                )
            alerts: list[dict[str, Any]] = get("/alerts?status=open&limit=5")
            print("  GET /alerts?status=open&limit=5  — the supervisors' queue:")
            for alert in alerts:
                print(
                    f"    #{alert['alert_id']} {alert['kind']} ({alert['severity']})"
                    f" vehicle {alert['vehicle_id']} from {alert['start_at']}"
                )
            month = f"{start:%Y-%m}"
            statement = get(f"/settlement/statements/{agency[0]}/{month}")
            totals = statement["totals"]
            print(f"  GET /settlement/statements/{agency[0]}/{month}  — {agency[1]}'s monthly statement:")
            print(
                f"    {totals['orders']} orders, {totals['verified_km']:.1f} verified km,"
                f" {totals['verified_hours']:.1f} h, {totals['cost_yuan']} yuan"
                f" ({totals['unpriced_lines']} lines without a tariff)"
            )
        finally:
            stop(server)
    print()


def _wait_for_engine(conn: psycopg.Connection[Any], timeout_s: float = 120.0) -> None:
    """Until the engine has taken every vehicle ingest marked (the queue is empty)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        conn.commit()
        if _scalar(conn, "demo_engine_queue") == 0:
            return
        time.sleep(0.3)
    log.warning("the track engine has not caught up after %.0f s", timeout_s)


def _engine_summary(url: str, elapsed_s: float) -> None:
    with psycopg.connect(url) as conn:
        trips = conn.execute(query("demo_trip_totals")).fetchone()
        orders = conn.execute(query("demo_order_totals")).fetchone()
        conformance = conn.execute(query("demo_conformance_totals")).fetchone()
        busiest = conn.execute(query("demo_busiest_vehicles")).fetchall()
    assert trips is not None and orders is not None and conformance is not None
    print("fleetwatch demo — track engine")
    print(f"  trips stored                         {trips[0]:>10,}  ({trips[1]:,} final)")
    print(f"  kilometres driven                    {trips[2]:>10,.1f}")
    print(f"  trips with no dispatch order (无单)   {trips[3]:>10,}")
    print(f"  orders executed                      {orders[1]:>10,} of {orders[0]:,}")
    print(f"  orders checked against their route   {conformance[0]:>10,}")
    print(f"    a trip < 90 % inside the corridor  {conformance[1]:>10,}")
    print(f"    approved destination not reached   {conformance[2]:>10,}")
    for plate, count, km, hours in busiest:
        print(f"  busiest: {plate}  {count} trips, {km} km, {hours} h")
    print(f"  wall time, publish → trips stored    {elapsed_s:>10.1f} s")
    print()


def _summary(url: str, acknowledged: int, fixes_sent: int, elapsed_s: float) -> None:
    with psycopg.connect(url) as conn:
        stored = _scalar(conn, "demo_positions_stored")
        batches = conn.execute(query("demo_ingest_totals")).fetchone()
        reasons = conn.execute(query("demo_quarantine_reasons")).fetchall()
        live = _scalar(conn, "demo_live_positions")
        vehicles = _scalar(conn, "demo_vehicles")
        orders = _scalar(conn, "demo_dispatch_orders")
    assert batches is not None
    received, duplicate, quarantined, _ = batches
    print()
    print("fleetwatch demo — ingest")
    print(f"  messages acknowledged by the broker  {acknowledged:>10,}")
    print(f"  fixes sent                           {fixes_sent:>10,}")
    print(f"  fixes received by ingest             {received:>10,}")
    print(f"  stored in TimescaleDB (position)     {stored:>10,}")
    print(f"  duplicates (terminal re-sends)       {duplicate:>10,}")
    print(f"  quarantined fixes                    {quarantined:>10,}")
    for reason, count, detail in reasons:
        print(f"    {reason:<20} {count:>8,}   e.g. {detail[:70]}")
    print(f"  vehicles with a live position        {live:>10,} of {vehicles:,}")
    print(f"  dispatch orders loaded               {orders:>10,}")
    print(f"  wall time, publish → all stored      {elapsed_s:>10.1f} s")
    lost = fixes_sent - received
    print(f"  unaccounted fixes                    {lost:>10,}")
    print()


def _start_jt808_share(run: Any, items: Any, share: float, port: int) -> tuple[Any, list[Any]]:
    """The share of the fleet that speaks JT/T 808: its reports go through the gateway in a thread of
    their own; the rest is returned for the MQTT publisher."""
    from gateway.jt808.replay import ReplayThread, jt808_share, split_reports

    over = jt808_share([car.terminal_id for car in run.world.fleet.vehicles], share)
    reports, rest = split_reports(items, over)
    thread = ReplayThread("127.0.0.1", port, reports)
    thread.start()
    return thread, rest


def _jt808_summary(thread: Any, gateway_log: str) -> None:
    if thread.error is not None:
        raise SystemExit(f"JT/T 808 terminals failed: {thread.error!r}")
    result = thread.result
    totals_at = gateway_log.rfind("totals ")
    totals = json.loads(gateway_log[totals_at + 7 :].splitlines()[0]) if totals_at >= 0 else {}
    print("fleetwatch demo — JT/T 808 gateway")
    print(f"  terminals over JT/T 808              {result.terminals:>10,}")
    print(f"  reports (0x0200 / 0x0704 frames)     {result.frames:>10,}  ({result.fixes:,} fixes)")
    print(f"  answered 0x8001 after the PUBACK     {totals.get('reports_acked', 0):>10,}")
    print(f"  re-sent by terminals (no answer yet) {result.resent:>10,}")
    print(f"  reconnects                           {result.reconnects:>10,}")
    print(f"  frames quarantined by the gateway    {totals.get('quarantined', 0):>10,}")
    print()
