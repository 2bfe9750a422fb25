"""``fleetwatch jt808 decode`` and ``fleetwatch gateway jt808``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson


def add_jt808_parser(sub: Any) -> None:
    jt808 = sub.add_parser("jt808", help="JT/T 808 tools: decode hex frames from stdin to JSON lines")
    jt808.add_argument("action", choices=["decode"])
    jt808.set_defaults(func=run_decode)


def add_gateway_parser(sub: Any) -> None:
    gateway = sub.add_parser("gateway", help="protocol gateways onto MQTT: JT/T 808 over TCP")
    gateway.add_argument("protocol", choices=["jt808"])
    gateway.add_argument("--host", help="listen address (default 127.0.0.1)")
    gateway.add_argument("--port", type=int, help="listen port (default 7808)")
    gateway.add_argument("--database-url")
    gateway.add_argument("--mqtt-host")
    gateway.add_argument("--mqtt-port", type=int)
    gateway.add_argument("--name", help="stable name; the MQTT session is kept under it")
    gateway.set_defaults(func=run_gateway)


def run_decode(args: argparse.Namespace) -> int:
    from gateway.jt808.decode import decode_lines

    out = sys.stdout.buffer
    for document in decode_lines(sys.stdin):
        out.write(orjson.dumps(document, option=orjson.OPT_NON_STR_KEYS) + b"\n")
        out.flush()
    return 0


def run_gateway(args: argparse.Namespace) -> int:
    from gateway.jt808.server import serve
    from gateway.settings import GatewaySettings

    names = {"host": "jt808_host", "port": "jt808_port", "name": "gateway_name"}
    overrides = {
        names.get(key, key): value
        for key, value in vars(args).items()
        if names.get(key, key) in GatewaySettings.model_fields and value is not None
    }
    serve(GatewaySettings(**overrides))
    return 0
