"""``fleetwatch demo``: the demo fleet through the whole pipeline."""

from __future__ import annotations

import argparse
from typing import Any


def add_demo_parser(sub: Any) -> None:
    demo = sub.add_parser("demo", help="run the demo fleet through the pipeline")
    demo.set_defaults(func=run_demo)


def run_demo(_args: argparse.Namespace) -> int:
    raise SystemExit("not yet")
