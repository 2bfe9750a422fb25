"""``fleetwatch jt808 decode``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson


def add_jt808_parser(sub: Any) -> None:
    jt808 = sub.add_parser("jt808", help="JT/T 808 tools: decode hex frames from stdin to JSON lines")
    jt808.add_argument("action", choices=["decode"])
    jt808.set_defaults(func=run_decode)


def run_decode(args: argparse.Namespace) -> int:
    from gateway.jt808.decode import decode_lines

    out = sys.stdout.buffer
    for document in decode_lines(sys.stdin):
        out.write(orjson.dumps(document, option=orjson.OPT_NON_STR_KEYS) + b"\n")
        out.flush()
    return 0
