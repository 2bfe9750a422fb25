"""Plumbing for the JT/T 808 tests: a gateway process on a free port, registered phones, an MQTT
subscriber on a persistent session (it must survive broker restarts), an ingest process."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from fleetwatch.mosquitto import MosquittoProcess, free_port
from fleetwatch.processes import start_fleetwatch, stop
from gateway.jt808.frame import Edition
from gateway.jt808.location import Location, location_of
from gateway.jt808.messages import Body, LocationBatch, MsgId
from gateway.jt808.terminal import Terminal, connect_and_authenticate, report_reliably
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


class FleetDriver(threading.Thread):
    """Terminals (both editions) in a thread of their own, each sending its reports one by one and
    re-sending until answered (reconnecting and authenticating again as a terminal does).

    Terminal i sends ``reports`` fixes, every 10 s of fix time ending ``end``; every fifth report is a
    0x0704 blind-area batch of three fixes. ``answered`` counts fixes the gateway answered 0x8001 success."""

    def __init__(
        self, port: int, phones: list[str], reports: int, end: datetime, pause_s: float = 0.05
    ) -> None:
        super().__init__(daemon=True)
        self.port, self.phones, self.reports, self.end, self.pause_s = port, phones, reports, end, pause_s
        self.answered = 0
        self.resent = 0
        self.error: BaseException | None = None

    @property
    def total_fixes(self) -> int:
        return len(self.phones) * sum(len(group) for group in self.groups())

    def groups(self) -> list[list[int]]:
        """Fix indexes per report: singles, and every fifth report a batch of three."""
        out: list[list[int]] = []
        k = 0
        for r in range(self.reports):
            size = 3 if r % 5 == 4 else 1
            out.append(list(range(k, k + size)))
            k += size
        return out

    def fix(self, terminal: int, k: int) -> Location:
        n = sum(len(group) for group in self.groups())
        return location_of(
            lon=119.9 + terminal * 0.01 + k * 1e-4,
            lat=31.8,
            time=self.end - timedelta(seconds=10 * (n - 1 - k)),
            speed_kmh=3.6,
            mileage_km=1000 + k * 0.01,
        )

    def run(self) -> None:
        try:
            asyncio.run(self._drive())
        except BaseException as error:  # reported by the test
            self.error = error

    async def _drive(self) -> None:
        await asyncio.gather(*(self._terminal(i, phone) for i, phone in enumerate(self.phones)))

    async def _terminal(self, i: int, phone: str) -> None:
        terminal = Terminal(phone, Edition.V2019 if i % 2 else Edition.V2013, answer_timeout_s=3.0)
        code = await connect_and_authenticate(terminal, "127.0.0.1", self.port, None)
        for group in self.groups():
            fixes = [self.fix(i, k) for k in group]
            message: Body = fixes[0] if len(fixes) == 1 else LocationBatch(kind=1, locations=tuple(fixes))
            msg_id = MsgId.LOCATION if len(fixes) == 1 else MsgId.LOCATION_BATCH
            code, resent = await report_reliably(
                terminal, "127.0.0.1", self.port, code, msg_id=msg_id, message=message
            )
            self.answered += len(fixes)
            self.resent += resent
            await asyncio.sleep(self.pause_s)
        await terminal.close()
