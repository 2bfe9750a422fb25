"""Publish prepared (topic, payload) messages over MQTT at QoS 1 and count what the broker acknowledged.

A message counts as sent only when the broker has acknowledged it (PUBACK); that is the number a
loss test compares with what was stored. paho caps unacknowledged QoS 1 messages at 65,535 ids, so the
publisher keeps at most ``max_inflight`` in flight and waits for acknowledgements beyond that.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishResult:
    messages: int
    acknowledged: int
    elapsed_s: float


class Publisher:
    """A QoS 1 publisher with a bounded in-flight window that survives broker restarts."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 1883,
        *,
        client_id: str = "fleetwatch-publisher",
        max_inflight: int = 200,
    ) -> None:
        self._client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=paho.MQTTv311,
            clean_session=False,  # unacknowledged publishes are re-sent after a reconnect
        )
        self._client.max_inflight_messages_set(max_inflight)
        self._client.max_queued_messages_set(0)
        self._client.reconnect_delay_set(min_delay=1, max_delay=2)
        self._window = threading.Semaphore(max_inflight)
        self._lock = threading.Lock()
        self._acked = 0
        self._connected = threading.Event()
        self._client.on_publish = self._on_publish
        self._client.on_connect = lambda *_args: self._connected.set()
        self._client.on_disconnect = lambda *_args: self._connected.clear()
        self._client.connect_async(host, port, keepalive=30)
        self._client.loop_start()

    def _on_publish(self, _c: Any, _u: Any, _mid: int, _rc: Any, _p: Any) -> None:
        with self._lock:
            self._acked += 1
        self._window.release()

    @property
    def acknowledged(self) -> int:
        with self._lock:
            return self._acked

    def wait_connected(self, timeout_s: float = 10.0) -> bool:
        return self._connected.wait(timeout_s)

    def publish(self, messages: Iterable[tuple[str, bytes]], *, timeout_s: float = 600.0) -> PublishResult:
        """Publish all messages and wait until the broker acknowledged each one (or ``timeout_s``)."""
        started = time.monotonic()
        before = self.acknowledged
        count = 0
        for topic, payload in messages:
            self._window.acquire()
            self._client.publish(topic, payload, qos=1)
            count += 1
        deadline = started + timeout_s
        while self.acknowledged - before < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return PublishResult(
            messages=count, acknowledged=self.acknowledged - before, elapsed_s=time.monotonic() - started
        )

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
