"""The one module that talks MQTT: a QoS 1 subscription that acknowledges only when told to.

Why paho-mqtt and not aiomqtt 2.5.1: aiomqtt sends PUBACK when a message reaches its queue, before the
rows are committed, so a crash loses messages the broker believes delivered. paho's public
``manual_ack_set(True)`` + ``ack(mid, qos)`` lets the worker acknowledge after COMMIT instead.

Flow control comes from the broker: with MQTT 5 the broker keeps at most ``receive_maximum``
unacknowledged messages in flight to us, so the inbox below can never hold more than that — a slow
database slows the broker's sends instead of growing memory (back-pressure, not an unbounded queue).

Packet ids are only meaningful on the connection that delivered them. Each message carries the
connection generation it arrived on; after a reconnect, messages from the old connection are not
acknowledged (the broker re-sends them on the resumed session, and storage is idempotent).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from ingest.decode import Message
from ingest.puback import PubackSender

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscriptionConfig:
    host: str = "127.0.0.1"
    port: int = 1883
    client_id: str = "fleetwatch-ingest-1"
    topics: tuple[str, ...] = ("fleet/+/pos", "owntracks/+/+")
    share_group: str | None = None  # None: a plain subscription; a name: $share/<name>/<topic>
    username: str | None = None
    password: str | None = None
    receive_maximum: int = 20_000  # in-flight window the broker may use towards us (max 65535)
    session_expiry_s: int = 7 * 86_400  # how long the broker keeps our queue while we are away
    keepalive_s: int = 30

    def filters(self) -> list[str]:
        if self.share_group:
            return [f"$share/{self.share_group}/{topic}" for topic in self.topics]
        return list(self.topics)


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """A received message and what is needed to acknowledge it."""

    message: Message
    mid: int
    generation: int


@dataclass(slots=True)
class _Inbox:
    lock: threading.Condition = field(default_factory=threading.Condition)
    items: list[Delivery] = field(default_factory=list)
    payload_bytes: int = 0
    first_at: float = 0.0


class Subscription:
    """A persistent-session MQTT 5 subscriber whose messages are acknowledged by :meth:`ack`."""

    def __init__(self, config: SubscriptionConfig) -> None:
        self.config = config
        self._inbox = _Inbox()
        self._generation = 0
        self._closing = False
        self._connected = threading.Event()
        self.subscribed = threading.Event()  # set once the broker has granted our subscriptions
        self._client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=config.client_id,
            protocol=paho.MQTTv5,
        )
        self._client.manual_ack_set(True)
        self._puback = PubackSender(self._client)
        if config.username is not None:
            self._client.username_pw_set(config.username, config.password)
        self._client.reconnect_delay_set(min_delay=1, max_delay=10)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe

    # -- lifecycle -------------------------------------------------------------------------------------
    def start(self, timeout_s: float = 10.0) -> None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self.config.session_expiry_s
        props.ReceiveMaximum = self.config.receive_maximum
        self._client.connect_async(
            self.config.host,
            self.config.port,
            keepalive=self.config.keepalive_s,
            clean_start=False,
            properties=props,
        )
        self._client.loop_start()
        if not self.subscribed.wait(timeout_s):
            log.warning("MQTT broker %s:%d not reachable yet; retrying", self.config.host, self.config.port)

    def close(self) -> None:
        """Disconnect without acknowledging anything more; unacknowledged messages stay with the broker."""
        self._closing = True
        self._client.disconnect()
        self._client.loop_stop()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    # -- paho callbacks (network thread) ------------------------------------------------------------------
    def _on_connect(
        self, client: paho.Client, _userdata: Any, flags: Any, reason_code: Any, _props: Any
    ) -> None:
        if reason_code.is_failure:
            log.error("MQTT connect refused: %s", reason_code)
            return
        with self._inbox.lock:
            self._generation += 1
        options = SubscribeOptions(qos=1)
        client.subscribe([(topic, options) for topic in self.config.filters()])
        log.info(
            "MQTT connected to %s:%d as %s (session present: %s); subscribed to %s",
            self.config.host,
            self.config.port,
            self.config.client_id,
            flags.session_present,
            ", ".join(self.config.filters()),
        )
        self._connected.set()

    def _on_subscribe(
        self, _client: paho.Client, _userdata: Any, _mid: int, reason_codes: Any, _props: Any
    ) -> None:
        refused = [code for code in reason_codes if code.is_failure]
        if refused:
            log.error("MQTT subscription refused: %s", ", ".join(map(str, refused)))
        else:
            log.info("MQTT subscription granted (QoS 1, receive maximum %d)", self.config.receive_maximum)
            self.subscribed.set()

    def _on_disconnect(
        self, _client: paho.Client, _userdata: Any, _flags: Any, reason_code: Any, _props: Any
    ) -> None:
        self._connected.clear()
        if self._closing:
            log.info("MQTT disconnected; unacknowledged messages stay with the broker")
        else:
            log.warning(
                "MQTT connection lost (%s); reconnecting, unacknowledged messages will be re-sent",
                reason_code,
            )

    def _on_message(self, _client: paho.Client, _userdata: Any, msg: paho.MQTTMessage) -> None:
        delivery = Delivery(
            message=Message(
                topic=msg.topic, payload=bytes(msg.payload), received_at_us=time.time_ns() // 1000
            ),
            mid=msg.mid,
            generation=self._generation,
        )
        inbox = self._inbox
        with inbox.lock:
            if not inbox.items:
                inbox.first_at = time.monotonic()
            inbox.items.append(delivery)
            inbox.payload_bytes += len(msg.payload)
            inbox.lock.notify()

    # -- worker side -------------------------------------------------------------------------------------
    def take(self, *, max_messages: int, max_bytes: int, max_wait_s: float) -> list[Delivery]:
        """The next batch: as soon as it is full, or when its oldest message has waited ``max_wait_s``.

        Returns an empty list if nothing arrived within ``max_wait_s``.
        """
        inbox = self._inbox
        with inbox.lock:
            deadline = time.monotonic() + max_wait_s
            while True:
                full = len(inbox.items) >= max_messages or inbox.payload_bytes >= max_bytes
                if inbox.items:
                    deadline = min(deadline, inbox.first_at + max_wait_s)
                remaining = deadline - time.monotonic()
                if full or remaining <= 0:
                    break
                inbox.lock.wait(remaining)
            batch, inbox.items = inbox.items[:max_messages], inbox.items[max_messages:]
            inbox.payload_bytes = sum(len(d.message.payload) for d in inbox.items)
            if inbox.items:
                inbox.first_at = time.monotonic()
            return batch

    def ack(self, deliveries: Sequence[Delivery]) -> int:
        """Acknowledge deliveries whose rows are committed; return how many were acknowledged now.

        All PUBACKs of a batch go out as one write (ingest.puback says why and how).
        """
        current = self._generation
        mids = [d.mid for d in deliveries if d.generation == current]
        if not mids or not self.connected:
            return 0
        self._puback.send(mids)
        return len(mids)
