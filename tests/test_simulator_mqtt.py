"""``fleetwatch simulate --publish`` delivers exactly the messages it writes to files, over a real broker."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from fleetwatch.cli import main
from tests.conftest import Broker, wait_until


def test_publish_delivers_what_the_files_hold(broker: Broker, tmp_path: Path) -> None:
    root = f"sim{uuid.uuid4().hex[:8]}"
    received: list[tuple[str, bytes]] = []
    lock = threading.Lock()
    subscribed = threading.Event()

    def on_message(_c: Any, _u: Any, message: Any) -> None:
        with lock:
            received.append((message.topic, bytes(message.payload)))

    client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"{root}-sub")
    client.on_message = on_message
    client.on_subscribe = lambda *_args: subscribed.set()
    client.on_connect = lambda c, *_args: c.subscribe(f"{root}/+/pos", qos=1)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        assert subscribed.wait(10)
        out = tmp_path / "run"
        code = main(
            [
                "simulate",
                "--vehicles",
                "3",
                "--days",
                "1",
                "--seed",
                "5",
                "--out",
                str(out),
                "--publish",
                "--mqtt-host",
                "127.0.0.1",
                "--mqtt-port",
                str(broker.port),
                "--speed",
                "0",
                "--topic-root",
                root,
            ]
        )
        assert code == 0
        lines = [orjson.loads(line) for line in (out / "messages.jsonl").read_bytes().splitlines()]
        expected = Counter((m["topic"], orjson.dumps(m["payload"])) for m in lines)
        wait_until(lambda: len(received) >= len(lines), timeout_s=60, what="all messages")
        with lock:
            assert Counter(received) == expected
        assert all(topic.startswith(f"{root}/") and topic.endswith("/pos") for topic, _ in expected)
    finally:
        client.loop_stop()
        client.disconnect()
