"""``fleetwatch simulate``: a seeded fleet, to files, to the database and/or over MQTT.

    fleetwatch simulate --vehicles 200 --days 7 --seed 7 [--start 2026-12-01] [--out DIR]
                        [--publish [--mqtt-host H] [--mqtt-port P] [--speed N] [--topic-root fleet]]
                        [--load-db [--database-url URL]] [--clean | --violation-scale X]
    fleetwatch simulate --load-mode MINUTES --vehicles 10000 --publish --speed 0   (ingest load)

``--speed N`` replays the messages N× faster than real time (1 = real time, 0 = as fast as the broker
takes them), paced on each message's send time from the first one. ``--realtime`` instead sends each
message at its own send time by the wall clock (``--start today``): what is already past goes at once.
``--load-mode MINUTES`` drives every car at once for that long with faultless terminals, the newest fix
stamped now (simulators.traffic).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from tqdm import tqdm

log = logging.getLogger(__name__)


def add_score_parser(actions: Any) -> None:
    """``fleetwatch rules score``: recall and precision on a simulated fleet (``simulators.score``)."""
    score = actions.add_parser("score", help="recall and precision per kind on a simulated fleet")
    score.add_argument("--vehicles", type=int, default=200)
    score.add_argument("--days", type=int, default=7)
    score.add_argument("--seed", type=int, default=7)
    score.add_argument(
        "--start", type=date.fromisoformat, default=None, help="first day (default: simulator's)"
    )
    score.add_argument("--tolerance-s", type=float, default=60.0, help="time tolerance of a match")
    score.add_argument("--no-clean", action="store_true", help="skip the clean run")
    score.add_argument("--json", action="store_true", help="one JSON object as the last line")
    score.set_defaults(func=cmd_score)


def cmd_score(args: argparse.Namespace) -> int:
    from simulators.run import SimParams, simulate
    from simulators.score import clean_run, clean_week_alerts, score_run
    from simulators.world import build_world

    logging.getLogger("simulators").setLevel(logging.WARNING)
    started = time.perf_counter()
    world = build_world(args.vehicles, args.seed)
    params = SimParams(days=args.days) if args.start is None else SimParams(start=args.start, days=args.days)
    result: dict[str, object] = score_run(simulate(world, params), tolerance_s=args.tolerance_s)
    if not args.no_clean:
        clean = clean_week_alerts(clean_run(args.vehicles, args.days, args.seed, args.start))
        result["clean_week_alerts"] = clean["total"]
        result["clean_week_alerts_per_kind"] = {k: v for k, v in clean.items() if k != "total"}
    result["elapsed_s"] = round(time.perf_counter() - started, 1)
    if not args.json:
        per_kind: dict[str, dict[str, object]] = result["per_kind"]  # type: ignore[assignment]
        for kind, entry in per_kind.items():
            print(
                f"{kind:24} expected {entry['expected']:4}  raised {entry['raised']:4}  "
                f"recall {entry['recall']}  precision {entry['precision']}"
            )
    print(json.dumps(result, ensure_ascii=False))
    return 0


def add_simulate_parser(sub: Any) -> None:
    simulate = sub.add_parser(
        "simulate",
        help="run the seeded fleet simulator",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    simulate.add_argument("--vehicles", type=int, default=200)
    simulate.add_argument("--days", type=int, default=7)
    simulate.add_argument("--seed", type=int, default=7)
    simulate.add_argument(
        "--start", type=_day, default=date(2026, 12, 1), help="first day (local), or 'today'"
    )
    simulate.add_argument("--out", type=Path, help="write messages, truth and world as JSON Lines here")
    simulate.add_argument(
        "--export-import",
        type=Path,
        metavar="DIR",
        help="write the world and records as `fleetwatch import` files here (and import.sh, in order)",
    )
    simulate.add_argument("--publish", action="store_true", help="publish the messages over MQTT")
    simulate.add_argument("--mqtt-host")
    simulate.add_argument("--mqtt-port", type=int)
    simulate.add_argument("--topic-root", default="fleet", help="topics are <root>/<terminal_id>/pos")
    simulate.add_argument(
        "--speed", type=float, default=1.0, help="time acceleration; 0 = as fast as possible"
    )
    simulate.add_argument("--realtime", action="store_true", help="send each message at its send time")
    simulate.add_argument(
        "--protocol", choices=["mqtt", "jt808"], default="mqtt", help="jt808: a share of the fleet over TCP"
    )
    simulate.add_argument("--gateway", help="jt808: the gateway's HOST:PORT (fleetwatch gateway jt808)")
    simulate.add_argument("--jt808-share", type=float, default=0.25, help="jt808: share of the fleet (0-1)")
    simulate.add_argument(
        "--load-db", action="store_true", help="write registry, orders and records to the database"
    )
    simulate.add_argument("--database-url")
    simulate.add_argument("--load-mode", type=float, metavar="MINUTES", help="every car driving, ending now")
    rates = simulate.add_mutually_exclusive_group()
    rates.add_argument("--clean", action="store_true", help="inject no violations")
    rates.add_argument("--violation-scale", type=float, default=1.0, help="multiply every violation rate")
    simulate.set_defaults(func=run_simulate)


def _day(text: str) -> date:
    if text == "today":
        return (datetime.now(UTC) + timedelta(hours=8)).date()  # China Standard Time
    return date.fromisoformat(text)


def _paced(
    items: Iterator[tuple[int, str, bytes]], speed: float, bar: tqdm[Any], *, realtime: bool
) -> Iterator[tuple[str, bytes]]:
    """(topic, payload) at each message's send time: by the wall clock, or ``speed`` × from the first."""
    first_ms: int | None = None
    wall0 = time.monotonic()
    for sent_ms, topic, payload in items:
        if first_ms is None:
            first_ms = sent_ms
        if realtime:
            wait = sent_ms / 1000.0 - time.time()
            if wait > 0:
                time.sleep(wait)
        elif speed > 0:
            wait = wall0 + (sent_ms - first_ms) / 1000.0 / speed - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        bar.update(1)
        yield topic, payload


def run_simulate(args: argparse.Namespace) -> int:
    from simulators.output import messages, write_run
    from simulators.run import SimParams, simulate
    from simulators.violations import CLEAN, ViolationRates
    from simulators.world import build_world

    rates = CLEAN if args.clean else ViolationRates().scaled(args.violation_scale)
    started = time.monotonic()
    if args.load_mode:
        from simulators.traffic import simulate_traffic, traffic_world

        log.info("load mode: all %d cars driving for %g min, newest fix now", args.vehicles, args.load_mode)
        run = simulate_traffic(
            traffic_world(args.vehicles, args.seed), minutes=args.load_mode, end_s=time.time()
        )
    else:
        log.info(
            "simulating %d vehicles for %d days from %s, seed %d, violations %s",
            args.vehicles,
            args.days,
            args.start,
            args.seed,
            "off" if args.clean else f"× {args.violation_scale:g}",
        )
        world = build_world(args.vehicles, args.seed)
        params = SimParams(start=args.start, days=args.days, rates=rates)
        with tqdm(total=args.vehicles, unit="car", desc="simulate") as bar:

            def advance(cars: int) -> None:
                bar.update(cars)

            run = simulate(world, params, progress=advance)
    log.info("generated in %.1f s", time.monotonic() - started)
    if args.out:
        write_run(run, args.out, topic_root=args.topic_root)
    if args.export_import:
        from simulators.export import export_world, write_import_script

        files = export_world(run, args.export_import)
        script = write_import_script(args.export_import, files)
        log.info(
            "import files in %s: %s (run %s)",
            args.export_import,
            ", ".join(p.name for p in files.values()),
            script,
        )
    if args.load_db:
        from simulators.database import load_run
        from store.settings import StoreSettings

        load_run(args.database_url or StoreSettings().database_url, run)
    if args.publish:
        items = messages(run, topic_root=args.topic_root)
        if args.protocol == "jt808":
            items = _over_jt808(run, args, items)
        _publish(run, args, items)
    return 0


def _publish(run: Any, args: argparse.Namespace, items: Iterator[tuple[int, str, bytes]]) -> None:
    from ingest.mqtt_publish import Publisher
    from ingest.settings import MqttSettings

    settings = MqttSettings()
    host, port = args.mqtt_host or settings.mqtt_host, args.mqtt_port or settings.mqtt_port
    publisher = Publisher(host, port, client_id=f"fleetwatch-sim-{args.seed}")
    try:
        if not publisher.wait_connected():
            raise SystemExit(f"no MQTT broker answered at {host}:{port}")
        log.info(
            "publishing %d messages to %s:%d %s",
            len(run.deliveries),
            host,
            port,
            "in real time" if args.realtime else f"at × {args.speed:g}",
        )
        with tqdm(total=len(run.deliveries), unit="msg", desc="publish") as bar:
            result = publisher.publish(_paced(items, args.speed, bar, realtime=args.realtime))
        log.info(
            "published %d messages, %d acknowledged, in %.1f s",
            result.messages,
            result.acknowledged,
            result.elapsed_s,
        )
    finally:
        publisher.close()


def _over_jt808(run: Any, args: argparse.Namespace, items: Iterator[tuple[int, str, bytes]]) -> Any:
    """Send the JT/T 808 share through the gateway (0x0200 singles, 0x0704 blind-area batches, the
    simulator's duplicates, a reconnect every 100 frames); return the rest for MQTT."""
    from gateway.jt808.replay import ReplayThread, jt808_share, split_reports

    if not args.gateway or ":" not in args.gateway:
        raise SystemExit("--protocol jt808 needs --gateway HOST:PORT")
    host, port = args.gateway.rsplit(":", 1)
    over = jt808_share([car.terminal_id for car in run.world.fleet.vehicles], args.jt808_share)
    reports, rest = split_reports(items, over)
    thread = ReplayThread(host, int(port), reports)
    thread.start()
    yield from rest
    thread.join()
    if thread.error is not None or thread.result is None:
        raise SystemExit(f"JT/T 808 terminals failed: {thread.error!r}")
    result = thread.result
    log.info(
        "JT/T 808: %d terminals sent %d frames (%d fixes), all answered; %d re-sent, %d reconnects",
        result.terminals,
        result.frames,
        result.fixes,
        result.resent,
        result.reconnects,
    )
