"""Plumbing for the JT/T 808 tests: a gateway process on a free port, registered phones, an MQTT
subscriber on a persistent session (it must survive broker restarts), an ingest process."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from fleetwatch.mosquitto import MosquittoProcess, free_port
from fleetwatch.processes import start_fleetwatch, stop
from tests.conftest import register_fleet


def register_phones(db: str, n: int) -> list[str]:
    """n vehicles, each with a terminal whose id is a 12-digit phone number ``1390000000NN``."""
    return list(register_fleet(db, n, prefix=f"139{uuid.uuid4().int % 1000:03d}").terminal_ids)


@contextmanager
def running_gateway(
    db: str, broker: MosquittoProcess, log_dir: Path, port: int | None = None, **settings: object
) -> Iterator[tuple[int, Any]]:
    """A ``fleetwatch gateway jt808`` process; yields (port, process). Settings as FLEETWATCH_* env."""
    port = port or free_port()
    env = {
        "FLEETWATCH_DATABASE_URL": db,
        "FLEETWATCH_MQTT_HOST": "127.0.0.1",
        "FLEETWATCH_MQTT_PORT": str(broker.port),
        "FLEETWATCH_GATEWAY_NAME": f"gw-{uuid.uuid4().hex[:8]}",
        **{f"FLEETWATCH_{key.upper()}": str(value) for key, value in settings.items()},
    }
    process = start_gateway(env, port, log_dir / "gateway.log")
    try:
        yield port, process
    finally:
        stop(process)


def start_gateway(env: dict[str, str], port: int, log_path: Path) -> Any:
    return start_fleetwatch(
        ["gateway", "jt808", "--port", str(port)],
        env,
        log_path,
        ready=f"listening on 127.0.0.1:{port}",
        timeout_s=60,
    )


class Subscriber:
    """MQTT 5 subscriber on a persistent session (expiry > 0), so a broker restart keeps its subscription."""

    def __init__(self, port: int, topic: str) -> None:
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"sub-{uuid.uuid4().hex[:10]}",
            protocol=paho.MQTTv5,
        )
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = 3600
        self.client.connect("127.0.0.1", port, clean_start=False, properties=properties)
        self.client.loop_start()
        assert self.subscribed.wait(30), "no SUBACK"

    def _on_message(self, _c: Any, _u: Any, message: Any) -> None:
        with self.lock:
            self.messages.append((message.topic, orjson.loads(message.payload)))

    def received(self) -> list[tuple[str, dict[str, Any]]]:
        with self.lock:
            return list(self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
