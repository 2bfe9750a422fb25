"""Batched PUBACKs (ingest/puback.py) against a real Mosquitto that logs every packet it receives.

Acknowledged packet ids each get a PUBACK the broker logs; after a reconnect on the persistent session
the broker re-sends exactly the messages that were not acknowledged. Fails if a paho upgrade changes
the private queue the batch goes through, or if a PUBACK of the batch is lost (the last one included).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleetwatch.mosquitto import MosquittoProcess
from ingest import puback
from ingest.mqtt import Delivery, Subscription, SubscriptionConfig
from ingest.mqtt_publish import Publisher
from tests.conftest import wait_until

TOTAL, ACKED = 60, 40
_RECEIVED_PUBACK = re.compile(r"Received PUBACK from (\S+) \(Mid: (\d+)")


class LoggingBroker(MosquittoProcess):
    """Persistence off (nothing outlives the test) and every packet logged."""

    def config(self) -> str:
        return super().config() + "log_type all\n"

    def log(self) -> str:
        log_file = self.folder / "mosquitto.log"
        return log_file.read_text(errors="replace") if log_file.exists() else ""

    def pubacks_from(self, client_id: str) -> list[int]:
        return [int(mid) for who, mid in _RECEIVED_PUBACK.findall(self.log()) if who == client_id]


@pytest.fixture
def logging_broker(tmp_path: Path) -> Iterator[LoggingBroker]:
    broker = LoggingBroker(folder=tmp_path / "mosquitto", persistence=False)
    broker.start()
    yield broker
    broker.stop()


def _subscribe(broker: LoggingBroker, client_id: str, topic: str) -> Subscription:
    subscription = Subscription(
        SubscriptionConfig(port=broker.port, client_id=client_id, topics=(topic,), session_expiry_s=600)
    )
    subscription.start(timeout_s=30)
    wait_until(subscription.subscribed.is_set, 30, "SUBACK")
    return subscription


def _publish(broker: LoggingBroker, topic: str, payloads: list[bytes]) -> None:
    publisher = Publisher(port=broker.port, client_id=f"pub-{uuid.uuid4().hex[:10]}")
    try:
        assert publisher.wait_connected(30)
        assert publisher.publish([(topic, p) for p in payloads], timeout_s=60).acknowledged == len(payloads)
    finally:
        publisher.close()


def _take(subscription: Subscription, count: int) -> list[Delivery]:
    got: list[Delivery] = []
    deadline = time.monotonic() + 60
    while len(got) < count and time.monotonic() < deadline:
        got += subscription.take(max_messages=count - len(got), max_bytes=1 << 20, max_wait_s=0.2)
    assert len(got) == count, f"received {len(got)} of {count} messages"
    return got


def _ack_some_then_reconnect(broker: LoggingBroker) -> tuple[set[int], set[int], set[bytes], set[bytes]]:
    """Receive TOTAL, acknowledge the first ACKED in one call, reconnect; returns (acknowledged ids,
    ids the broker logged a PUBACK for, payloads left unacknowledged, payloads re-sent)."""
    client_id, topic = f"puback-{uuid.uuid4().hex[:10]}", f"puback/{uuid.uuid4().hex[:10]}/pos"
    subscription = _subscribe(broker, client_id, topic)
    try:
        _publish(broker, topic, [b"m%03d" % i for i in range(TOTAL)])
        deliveries = _take(subscription, TOTAL)
        acked, kept = deliveries[:ACKED], deliveries[ACKED:]
        assert subscription.ack(acked) == ACKED
        mids = {d.mid for d in acked}
        # a packet sent after the PUBACKs: once the broker logs it, it has read every PUBACK before it
        marker = f"marker/{uuid.uuid4().hex}"
        subscription._client.subscribe(marker, qos=1)
        wait_until(lambda: marker in broker.log(), 60, "the broker to log the packet after the PUBACKs")
        logged = set(broker.pubacks_from(client_id))
    finally:
        subscription.close()
    again = _subscribe(broker, client_id, topic)
    try:
        # anything re-sent comes before a message published after the reconnect
        _publish(broker, topic, [b"end"])
        resent: list[Delivery] = []
        deadline = time.monotonic() + 60
        while not any(d.message.payload == b"end" for d in resent) and time.monotonic() < deadline:
            resent += again.take(max_messages=1000, max_bytes=1 << 20, max_wait_s=0.2)
        assert any(d.message.payload == b"end" for d in resent), "the message after the reconnect never came"
        again.ack(resent)
    finally:
        again.close()
    return (
        mids,
        logged,
        {d.message.payload for d in kept},
        {d.message.payload for d in resent if d.message.payload != b"end"},
    )


def test_batched_pubacks_reach_the_broker_and_only_unacknowledged_messages_come_back(
    logging_broker: LoggingBroker,
) -> None:
    assert puback.PubackSender(Subscription(SubscriptionConfig())._client).batched, (
        "paho's private packet queue changed shape: batched PUBACKs fell back to one ack per message"
    )
    mids, logged, kept, resent = _ack_some_then_reconnect(logging_broker)
    assert logged == mids
    assert resent == kept and len(resent) == TOTAL - ACKED


def test_one_ack_per_message_when_paho_internals_differ(
    logging_broker: LoggingBroker, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(puback, "_PRIVATE_PARAMETERS", ("command", "buffer", "mid", "qos"))
    with caplog.at_level(logging.WARNING, logger="ingest.puback"):
        assert not puback.PubackSender(Subscription(SubscriptionConfig())._client).batched
    assert "one PUBACK per message" in caplog.text
    mids, logged, kept, resent = _ack_some_then_reconnect(logging_broker)
    assert logged == mids
    assert resent == kept


def test_a_cut_batch_is_caught(logging_broker: LoggingBroker, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check above can fail: lose the last PUBACK of the batch and the broker re-sends its message."""
    whole = puback.puback_packets
    monkeypatch.setattr(puback, "puback_packets", lambda mids: whole(mids)[:-4])
    mids, logged, kept, resent = _ack_some_then_reconnect(logging_broker)
    assert logged != mids and len(logged) == ACKED - 1
    assert resent != kept and len(resent) == TOTAL - ACKED + 1
