"""``fleetwatch analyze``: registered by the track engine."""

from __future__ import annotations

import argparse
from typing import Any


def add_analyze_parser(sub: Any) -> None:
    analyze = sub.add_parser("analyze", help="run the track engine on a CSV export (no database)")
    analyze.set_defaults(func=_not_ready)


def _not_ready(_args: argparse.Namespace) -> int:
    raise SystemExit("fleetwatch analyze: the track engine is not built yet (issue 4)")
