"""``fleetwatch api``: registered by the API package."""

from __future__ import annotations

import argparse
from typing import Any


def add_api_parser(sub: Any) -> None:
    api = sub.add_parser("api", help="serve the HTTP API (dispatch, supervision, settlement)")
    api.set_defaults(func=_not_ready)


def _not_ready(_args: argparse.Namespace) -> int:
    raise SystemExit("fleetwatch api: not built yet (issue 6)")
