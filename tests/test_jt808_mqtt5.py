"""The gateway's own MQTT 5 publisher against a real Mosquitto: Receive Maximum honoured, unacknowledged
publishes re-sent with DUP after a lost connection, nothing lost across a broker restart."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from pathlib import Path

import pytest

from fleetwatch.mosquitto import MosquittoProcess
from gateway.jt808.mqtt5 import Publisher
from tests.conftest import Broker, wait_until
from tests.jt808_fixtures import Subscriber


class SmallWindowBroker(MosquittoProcess):
    def config(self) -> str:
        return super().config() + "max_inflight_messages 5\n"


class Proxy:
    """A TCP relay to the broker that can hold the broker's answers and then cut every connection."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.holding = False
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def _relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        broker_r, broker_w = await asyncio.open_connection("127.0.0.1", self.port)
        self.writers += [client_w, broker_w]

        async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter, held: bool) -> None:
            with contextlib.suppress(OSError):
                while data := await r.read(65_536):
                    while held and self.holding:
                        await asyncio.sleep(0.01)
                    w.write(data)
            w.close()

        await asyncio.gather(pipe(client_r, broker_w, False), pipe(broker_r, client_w, True))

    def cut(self) -> None:
        for writer in self.writers:
            writer.transport.abort()
        self.writers.clear()
        self.holding = False

    async def close(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()


def test_receive_maximum_is_honoured(tmp_path: Path) -> None:
    broker = SmallWindowBroker(folder=tmp_path / "m")
    broker.start()
    try:

        async def scenario() -> Publisher:
            publisher = Publisher("127.0.0.1", broker.port, f"pub-{uuid.uuid4().hex[:8]}")
            publisher.start()
            await asyncio.wait_for(publisher.connected.wait(), 30)
            results = await asyncio.wait_for(
                asyncio.gather(*(publisher.publish(f"t/{uuid.uuid4().hex}", b"x") for _ in range(500))), 120
            )
            assert all(results)
            await publisher.close()
            return publisher

        publisher = asyncio.run(scenario())
    finally:
        broker.stop()
    assert publisher.receive_maximum == 5
    assert publisher.max_in_flight == 5


def test_unacknowledged_publishes_resent_with_dup_after_a_lost_connection(broker: Broker) -> None:
    topic = f"t/{uuid.uuid4().hex}"
    subscriber = Subscriber(broker.port, topic)

    async def scenario() -> Publisher:
        proxy = Proxy(broker.port)
        port = await proxy.start()
        publisher = Publisher("127.0.0.1", port, f"pub-{uuid.uuid4().hex[:8]}")
        publisher.start()
        await asyncio.wait_for(publisher.connected.wait(), 30)
        first = [publisher.publish(topic, b'{"n": %d}' % n) for n in range(50)]
        assert all(await asyncio.wait_for(asyncio.gather(*first), 60))
        proxy.holding = True  # the broker's PUBACKs stop reaching the publisher
        held = [publisher.publish(topic, b'{"n": %d}' % n) for n in range(50, 100)]
        await asyncio.sleep(0.5)
        assert not any(f.done() for f in held)
        proxy.cut()
        assert all(await asyncio.wait_for(asyncio.gather(*held), 60))
        await publisher.close()
        await proxy.close()
        return publisher

    publisher = asyncio.run(scenario())
    assert publisher.resent == 20  # the broker's Receive Maximum: 20 were on the wire, unacknowledged
    assert publisher.connects == 2
    wait_until(lambda: len({m["n"] for _, m in subscriber.received()}) == 100, 60, "all 100 delivered")
    subscriber.close()


@pytest.mark.slow
def test_nothing_lost_across_a_broker_restart(broker: Broker) -> None:
    topic = f"t/{uuid.uuid4().hex}"
    subscriber = Subscriber(broker.port, topic)
    total = 20_000

    async def scenario() -> None:
        publisher = Publisher("127.0.0.1", broker.port, f"pub-{uuid.uuid4().hex[:8]}")
        publisher.start()
        await asyncio.wait_for(publisher.connected.wait(), 30)
        futures = [publisher.publish(topic, b'{"n": %d}' % n) for n in range(total)]
        while sum(f.done() for f in futures) < 2_000:
            await asyncio.sleep(0.01)
        await asyncio.to_thread(broker.restart)
        assert all(await asyncio.wait_for(asyncio.gather(*futures), 180))
        await publisher.close()

    asyncio.run(scenario())
    wait_until(lambda: len({m["n"] for _, m in subscriber.received()}) == total, 120, "all delivered")
    subscriber.close()
