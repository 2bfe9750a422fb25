"""The ``fleetwatch`` command: one entry, one subcommand per job."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone

log = logging.getLogger("fleetwatch")


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handle(signum: int, _frame: object) -> None:
        log.info("received %s; finishing the current batch and stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    return stop


def cmd_db(args: argparse.Namespace) -> int:
    from store.db import create_database
    from store.migrate import MigrationMismatchError, migrate
    from store.settings import StoreSettings

    settings = StoreSettings()
    url = args.database_url or settings.database_url
    if args.action == "retain":
        import psycopg

        from ingest.maintenance import apply_retention

        if args.keep_days is None:
            raise SystemExit("fleetwatch db retain needs --keep-days N")
        with psycopg.connect(url, autocommit=True) as conn:
            dropped = apply_retention(conn, args.keep_days)
        print(", ".join(f"{k}: {v}" for k, v in dropped.items()))
        return 0
    if args.action in ("create", "reset"):
        create_database(url, drop_existing=args.action == "reset")
    try:
        applied = migrate(url)
    except MigrationMismatchError as error:
        log.error("%s", error)
        return 1
    log.info("database is at the newest schema (%s applied now)", ", ".join(map(str, applied)) or "nothing")
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    from ingest.settings import IngestSettings
    from ingest.worker import run

    overrides = {k: v for k, v in vars(args).items() if k in IngestSettings.model_fields and v is not None}
    settings = IngestSettings(**overrides)
    run(settings, _stop_on_signals())
    return 0


def cmd_engine(args: argparse.Namespace) -> int:
    import psycopg
    from tqdm import tqdm

    from ingest.settings import MqttSettings
    from rules.live import rules_step, run_live
    from tracks.params import Params
    from tracks.settings import EngineSettings
    from tracks.worker import recompute

    settings = EngineSettings()
    if args.database_url:
        settings = settings.model_copy(update={"database_url": args.database_url})
    if args.action == "run":
        mqtt = None if args.no_rules or args.no_publish else MqttSettings()
        run_live(settings, _stop_on_signals(), mqtt=mqtt, rules=not args.no_rules)
        return 0
    if args.start is None or args.end is None:
        raise SystemExit("fleetwatch engine recompute needs --from and --to (ISO dates or times)")
    from_us, to_us = (int(_instant(x).timestamp() * 1e6) for x in (args.start, args.end))
    days = max(1, -(-(to_us - from_us) // 86_400_000_000))
    rules = rules_step(rules=not args.no_rules)
    with (
        psycopg.connect(settings.database_url, autocommit=True) as conn,
        tqdm(total=days, unit="day", desc="recompute") as bar,
    ):

        def advance(steps: int) -> None:
            bar.update(steps)

        fixes, trips = recompute(conn, from_us, to_us, Params(), progress=advance, after=rules)
    log.info("recomputed %d days: %d fixes read, %d trips stored", days, fixes, trips)
    return 0


def _instant(text: str) -> datetime:
    """An ISO date (midnight China Standard Time) or an ISO time (UTC unless it carries an offset)."""
    moment = datetime.fromisoformat(text)
    if len(text) <= 10:
        return moment.replace(tzinfo=timezone(timedelta(hours=8)))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def cmd_quarantine(args: argparse.Namespace) -> int:
    import psycopg

    from ingest.decode import DecodeLimits
    from ingest.maintenance import replay_quarantine
    from ingest.reasons import Reason
    from ingest.settings import IngestSettings
    from store.queries import query

    settings = IngestSettings()
    with psycopg.connect(args.database_url or settings.database_url, autocommit=True) as conn:
        if args.action == "summary":
            for reason, rows, seen, first, last in conn.execute(query("quarantine_summary")):
                print(
                    f"{reason:<20} {rows:>9,} rows {seen:>10,} seen"
                    f"  {first:%Y-%m-%d %H:%M} … {last:%Y-%m-%d %H:%M}"
                )
            return 0
        reasons = [Reason(r) for r in args.reason] or [Reason.UNKNOWN_TERMINAL]
        limits = DecodeLimits(
            max_payload_bytes=settings.max_payload_bytes, max_fixes_per_message=settings.max_fixes_per_message
        )
        outcome = replay_quarantine(conn, reasons, params=settings.filters, limits=limits)
        print(f"replayed {outcome.messages} messages: {outcome.fixes_stored} fixes stored")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from fleetwatch.bench import run_bench

    return run_bench(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fleetwatch", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    db = sub.add_parser("db", help="create the database and apply migrations")
    db.add_argument("action", choices=["migrate", "create", "reset", "retain"])
    db.add_argument("--database-url")
    db.add_argument("--keep-days", type=int, help="retain: drop positions, quarantine and batch rows older")
    db.set_defaults(func=cmd_db)

    ingest = sub.add_parser("ingest", help="run an ingest worker: MQTT → TimescaleDB")
    ingest.add_argument("--database-url")
    ingest.add_argument("--mqtt-host")
    ingest.add_argument("--mqtt-port", type=int)
    ingest.add_argument("--worker-name", help="stable name; the MQTT session is kept under it")
    ingest.add_argument("--share-group", help="MQTT shared-subscription group ('' for none)")
    ingest.add_argument("--metrics-port", type=int, help="Prometheus endpoint port (0: none)")
    ingest.add_argument("--flush-interval-s", type=float)
    ingest.add_argument("--max-batch-messages", type=int)
    ingest.set_defaults(func=cmd_ingest)

    engine = sub.add_parser("engine", help="the track engine: live worker, or recompute a range")
    engine.add_argument("action", nargs="?", default="run", choices=["run", "recompute"])
    engine.add_argument("--from", dest="start", help="recompute: first day (China time) or ISO time")
    engine.add_argument("--to", dest="end", help="recompute: end (exclusive)")
    engine.add_argument("--database-url")
    engine.add_argument("--no-rules", action="store_true", help="trips only, no alerts")
    engine.add_argument(
        "--no-publish", action="store_true", help="store alerts but do not publish them to MQTT"
    )
    engine.set_defaults(func=cmd_engine)

    quarantine = sub.add_parser("quarantine", help="what ingest refused: summary, replay")
    quarantine.add_argument("action", choices=["summary", "replay"])
    quarantine.add_argument(
        "--reason",
        action="append",
        default=[],
        help="replay these reasons (repeatable; default unknown_terminal)",
    )
    quarantine.add_argument("--database-url")
    quarantine.set_defaults(func=cmd_quarantine)

    bench = sub.add_parser("bench", help="benchmarks; --json prints one JSON object as the last line")
    bench.add_argument(
        "which", choices=["ingest", "nearest", "accuracy", "tracks", "live", "import", "jt808"]
    )
    bench.add_argument("--json", action="store_true")
    bench.add_argument("--fixes", type=int, help="fixes (ingest: 1,000,000 to publish; tracks: 5,000,000)")
    bench.add_argument("--terminals", type=int, help="ingest: 1,000; jt808: 10,000")
    bench.add_argument("--reports", type=int, default=20, help="jt808: reports per terminal")
    bench.add_argument("--window", type=int, default=1, help="jt808: reports in flight per terminal")
    bench.add_argument("--seed", type=int, default=7)
    bench.add_argument("--vehicles", type=int, help="accuracy: simulated fleet size (200); live: 40")
    bench.add_argument("--outings", type=int, default=20, help="live: outings without an order to time")
    bench.add_argument("--duration-s", type=float, default=120.0, help="live: over how long they start")
    bench.add_argument("--days", type=int, default=7, help="accuracy: simulated days")
    bench.add_argument("--tolerance-s", type=float, default=120.0, help="accuracy: trip boundary tolerance")
    bench.set_defaults(func=cmd_bench)

    from api.cli import add_api_parser
    from fleetwatch.demo import add_demo_parser
    from fleetwatch.imports import add_import_parser
    from gateway.cli import add_gateway_parser, add_jt808_parser
    from rules.cli import add_rules_parser
    from simulators.cli import add_score_parser, add_simulate_parser
    from tracks.cli import add_analyze_parser

    add_simulate_parser(sub)
    add_analyze_parser(sub)
    add_score_parser(add_rules_parser(sub))
    add_api_parser(sub)
    add_demo_parser(sub)
    add_import_parser(sub)
    add_jt808_parser(sub)
    add_gateway_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
