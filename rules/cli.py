"""``fleetwatch rules``: registered by the rules package."""

from __future__ import annotations

import argparse
from typing import Any


def add_rules_parser(sub: Any) -> None:
    rules = sub.add_parser("rules", help="alert rules: catalogue and evaluation")
    rules.set_defaults(func=_not_ready)


def _not_ready(_args: argparse.Namespace) -> int:
    raise SystemExit("fleetwatch rules: not built yet (issue 5)")
