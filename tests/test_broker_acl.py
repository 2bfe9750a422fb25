"""The broker ACL shipped in deploy/: a terminal writes only under its own id, never under alerts/."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from fleetwatch.mosquitto import MosquittoProcess

ACL = Path(__file__).resolve().parents[1] / "deploy" / "mosquitto-acl.conf"


class AclBroker(MosquittoProcess):
    def config(self) -> str:
        return super().config() + f"acl_file {ACL}\n"


class _Client:
    """An MQTT 5 client: the broker answers a refused publish with a 'not authorized' PUBACK."""

    def __init__(self, port: int, user: str) -> None:
        self.acks: dict[int, bool] = {}  # mid → refused
        self.received: list[str] = []
        self.connected, self.subscribed = threading.Event(), threading.Event()
        self.client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"acl-{user}", protocol=paho.MQTTv5
        )
        self.client.username_pw_set(user)
        self.client.on_connect = lambda *_: self.connected.set()
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_publish = self._on_publish
        self.client.on_message = lambda _c, _u, m: self.received.append(m.topic)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.connected.wait(5), f"{user} could not connect"

    def _on_publish(self, _c: Any, _u: Any, mid: int, reason_code: Any, _p: Any) -> None:
        self.acks[mid] = bool(reason_code.is_failure)

    def publish(self, topic: str) -> bool:
        """True if the broker accepted the publish."""
        mid = self.client.publish(topic, b"{}", qos=1).mid
        deadline = time.monotonic() + 5
        while mid not in self.acks and time.monotonic() < deadline:
            time.sleep(0.01)
        assert mid in self.acks, f"no PUBACK for {topic}"
        return not self.acks[mid]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_terminals_write_only_their_own_topics(tmp_path: Path) -> None:
    broker = AclBroker(folder=tmp_path / "mosquitto")
    broker.start()
    platform = terminal = None
    try:
        platform = _Client(broker.port, "fleetwatch")
        platform.client.subscribe([("fleet/#", 1), ("alerts/#", 1)])
        assert platform.subscribed.wait(5)
        terminal = _Client(broker.port, "T00001")
        assert terminal.publish("fleet/T00001/pos")
        assert not terminal.publish("fleet/T00002/pos"), "a terminal may not speak for another"
        assert not terminal.publish("alerts/A0001/no_order"), "a terminal may not write alerts"
        assert platform.publish("alerts/A0001/no_order")
        deadline = time.monotonic() + 5
        while len(platform.received) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sorted(platform.received) == ["alerts/A0001/no_order", "fleet/T00001/pos"]
    finally:
        for client in (terminal, platform):
            if client is not None:
                client.close()
        broker.stop()
