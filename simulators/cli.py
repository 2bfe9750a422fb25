"""``fleetwatch simulate``: registered by the simulator package."""

from __future__ import annotations

import argparse
from typing import Any


def add_simulate_parser(sub: Any) -> None:
    simulate = sub.add_parser("simulate", help="run the seeded fleet simulator")
    simulate.set_defaults(func=_not_ready)


def _not_ready(_args: argparse.Namespace) -> int:
    raise SystemExit("fleetwatch simulate: the city simulator is not built yet (issue 3)")
