"""``fleetwatch rules``: the catalogue, and the rules scored against a simulated fleet (in-process).

``fleetwatch rules catalogue`` lists every rule with its alert kind and the default thresholds.
``fleetwatch rules score [--vehicles 200 --days 7 --seed 7] [--json]`` simulates a fleet, runs the
track engine and the rules on its fixes and prints recall and precision per alert kind, and the
alerts raised on the same fleet without violations (``clean_week_alerts``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import time
from datetime import date
from typing import Any


def add_rules_parser(sub: Any) -> None:
    rules = sub.add_parser(
        "rules",
        help="alert rules: catalogue and scoring against the simulator",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = rules.add_subparsers(dest="action", required=True)
    catalogue = actions.add_parser("catalogue", help="the rules, their alert kinds and default thresholds")
    catalogue.set_defaults(func=cmd_catalogue)
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


def cmd_catalogue(_args: argparse.Namespace) -> int:
    from rules.catalogue import RULES
    from rules.config import RuleConfig

    config = RuleConfig()
    thresholds = {
        f.name: dataclasses.asdict(getattr(config, f.name))
        for f in dataclasses.fields(config)
        if f.name in ("orders", "off_hours", "route", "stay", "overspeed", "silent", "odometer", "records")
    }
    for rule in RULES:
        doc = " ".join((rule.check.__doc__ or "").strip().split("\n\n")[0].split())
        print(f"{rule.name:22} → {rule.kind.value:22} {doc}")
    print(json.dumps(thresholds, ensure_ascii=False))
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from rules.score import clean_run, clean_week_alerts, score_run
    from simulators.run import SimParams, simulate
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
