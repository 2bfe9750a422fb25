"""``fleetwatch rules``: the catalogue, and the rules scored against a simulated fleet (in-process).

``fleetwatch rules catalogue`` lists every rule with its alert kind and the default thresholds.
``fleetwatch rules score [--vehicles 200 --days 7 --seed 7] [--json]`` simulates a fleet, runs the
track engine and the rules on its fixes and prints recall and precision per alert kind, and the
alerts raised on the same fleet without violations (``clean_week_alerts``). Scoring needs the
simulator, which sits above the rules: ``simulators.cli.add_score_parser`` adds it to the actions
``add_rules_parser`` returns (the ``fleetwatch`` command composes the two).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any


def add_rules_parser(sub: Any) -> Any:
    rules = sub.add_parser(
        "rules",
        help="alert rules: catalogue and scoring against the simulator",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = rules.add_subparsers(dest="action", required=True)
    catalogue = actions.add_parser("catalogue", help="the rules, their alert kinds and default thresholds")
    catalogue.set_defaults(func=cmd_catalogue)
    return actions


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
