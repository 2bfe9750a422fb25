"""The JT/T 808 gateway process against the real database and a private Mosquitto: registration,
identity, the bridge, quarantine of bad frames, limits, sub-packages."""

from __future__ import annotations

import asyncio
import socket
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from gateway.jt808.frame import Edition, Header, encode_frame
from gateway.jt808.location import Location, location_of
from gateway.jt808.messages import (
    Empty,
    GeneralResponse,
    LocationBatch,
    MsgId,
    ResendPackages,
    Result,
    Tracking,
    encode_body,
)
from gateway.jt808.packages import split_frames
from gateway.jt808.terminal import Terminal
from tests.conftest import Broker, scalar, wait_until
from tests.jt808_fixtures import Subscriber, register_phones, running_gateway

NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)


def fix(k: int, **kw: Any) -> Location:
    return location_of(lon=119.97 + k * 1e-4, lat=31.81, time=NOW + timedelta(seconds=10 * k), **kw)


def quarantine_reasons(db: str) -> dict[str, int]:
    import psycopg

    with psycopg.connect(db) as conn:
        return dict(conn.execute("SELECT reason, sum(seen_count) FROM quarantine GROUP BY reason").fetchall())


async def authenticated(port: int, phone: str, edition: Edition = Edition.V2013) -> Terminal:
    terminal = Terminal(phone, edition)
    await terminal.connect("127.0.0.1", port)
    answer = await terminal.register()
    assert answer.result == 0 and answer.code
    response = await terminal.authenticate(answer.code)
    assert response.result == Result.OK
    return terminal


def test_registration_identity_and_bridge(db: str, broker: Broker, tmp_path: Path) -> None:
    phone, other = register_phones(db, 2)
    subscriber = Subscriber(broker.port, "fleet/+/pos")

    async def scenario(port: int) -> None:
        stranger = Terminal("013800000000")
        await stranger.connect("127.0.0.1", port)
        refused = await stranger.register()
        assert refused.result == 4 and refused.code == ""  # no such terminal
        assert (await stranger.authenticate("guess")).result == Result.FAILURE
        # a report before authentication is refused
        early = await stranger.request(MsgId.LOCATION, fix(0))
        assert isinstance(early, GeneralResponse) and early.result == Result.FAILURE
        await stranger.close()

        terminal = await authenticated(port, phone)
        answer = await terminal.request(
            MsgId.LOCATION, fix(1, mileage_km=1234.5, satellites=9, speed_kmh=42.5)
        )
        assert isinstance(answer, GeneralResponse) and answer.result == Result.OK
        assert answer.reply_id == MsgId.LOCATION
        batch = LocationBatch(kind=1, locations=(fix(2), fix(3)))
        answer = await terminal.request(MsgId.LOCATION_BATCH, batch)
        assert isinstance(answer, GeneralResponse) and answer.result == Result.OK
        assert (await terminal.heartbeat()).result == Result.OK
        # a frame naming another phone on this connection is refused
        wrong = Terminal(other)
        _, data = wrong.frame(MsgId.LOCATION, fix(4))
        terminal.send_raw(data)  # answered 'failure' under the other phone's serial, ignored here
        unsupported = await terminal.request(0x0900, Empty())
        assert isinstance(unsupported, GeneralResponse) and unsupported.result == Result.UNSUPPORTED
        await terminal.close()

        # the same terminal in the 2019 edition (10-byte phone) is the same terminal id
        terminal19 = await authenticated(port, phone, Edition.V2019)
        answer = await terminal19.request(MsgId.LOCATION, fix(5))
        assert isinstance(answer, GeneralResponse) and answer.result == Result.OK
        await terminal19.close()

    with running_gateway(db, broker, tmp_path) as (port, _):
        asyncio.run(scenario(port))
        wait_until(lambda: len(subscriber.received()) >= 3, 60, "3 messages on fleet/+/pos")
        wait_until(lambda: quarantine_reasons(db).get("jt808_wrong_terminal") == 1, 60, "wrong terminal row")
    subscriber.close()
    messages = subscriber.received()
    assert {topic for topic, _ in messages} == {f"fleet/{phone}/pos"}
    single = messages[0][1]
    assert single["odometer_km"] == 1234.5 and single["satellites"] == 9 and single["speed_kmh"] == 42.5
    assert single["time"] == int((NOW + timedelta(seconds=10)).timestamp() * 1000)
    assert single["ignition"] is True and single["valid"] is True
    assert [len(m.get("fixes", [m])) for _, m in messages] == [1, 2, 1]
    reasons = quarantine_reasons(db)
    assert reasons["jt808_not_authenticated"] == 1 and reasons["jt808_wrong_terminal"] == 1
    assert scalar(db, "SELECT count(*) FROM jt808_terminal WHERE authenticated_at IS NOT NULL") == 1
    assert scalar(db, "SELECT imei FROM jt808_terminal") == "86" + phone[-13:].rjust(13, "0")


def test_bad_frames_are_quarantined_and_the_connection_survives_them(
    db: str, broker: Broker, tmp_path: Path
) -> None:
    (phone,) = register_phones(db, 1)

    async def scenario(port: int) -> None:
        terminal = await authenticated(port, phone)
        good = encode_frame(Header(msg_id=MsgId.HEARTBEAT, phone=phone, serial=77), b"")
        bad_check = good[:-2] + bytes(((good[-2] ^ 0x55) or 1,)) + b"\x7e"
        corpus = [
            bad_check,
            b"\x7e\x00\x02\x7e",
            b"\x7e\x00\x02\x7d\x05\x00\x00\x00\x00\x00\x00\x7e",
            b"\x7e\x7e",
        ]
        for raw in corpus:
            terminal.send_raw(raw)
        assert (await terminal.heartbeat()).result == Result.OK  # survived 3 refused frames (max 3)
        terminal.send_raw(bad_check.replace(b"\x00\x4d", b"\x00\x4e"))  # a 4th: the connection is closed
        await asyncio.wait_for(_closed(terminal), 60)
        await terminal.close()

    with running_gateway(db, broker, tmp_path, max_bad_frames=3) as (port, _):
        asyncio.run(scenario(port))
        wait_until(lambda: sum(quarantine_reasons(db).values()) >= 4, 60, "4 quarantine rows")
    reasons = quarantine_reasons(db)
    assert reasons.get("jt808_bad_check", 0) >= 1 and reasons.get("jt808_truncated", 0) >= 1
    assert reasons.get("jt808_bad_escape", 0) >= 1
    assert scalar(db, "SELECT count(*) FROM quarantine WHERE topic = %s", (f"jt808/{phone}",)) >= 3


async def _closed(terminal: Terminal) -> None:
    while terminal.connected:
        await asyncio.sleep(0.05)


def test_idle_connections_closed_and_per_address_limit(db: str, broker: Broker, tmp_path: Path) -> None:
    with running_gateway(db, broker, tmp_path, idle_timeout_s=1.5, max_connections_per_address=2) as (
        port,
        _,
    ):
        first = socket.create_connection(("127.0.0.1", port))
        second = socket.create_connection(("127.0.0.1", port))
        third = socket.create_connection(("127.0.0.1", port))
        third.settimeout(60)
        assert third.recv(1) == b""  # over the limit: closed at once
        first.settimeout(60)
        started = time.monotonic()
        assert first.recv(1) == b""  # idle: closed by the gateway
        assert time.monotonic() - started < 55
        for s in (first, second, third):
            s.close()


def test_split_message_reassembled_and_missing_package_requested(
    db: str, broker: Broker, tmp_path: Path
) -> None:
    (phone,) = register_phones(db, 1)
    subscriber = Subscriber(broker.port, f"fleet/{phone}/pos")

    async def scenario(port: int) -> None:
        terminal = await authenticated(port, phone)
        batch = LocationBatch(kind=1, locations=tuple(fix(k) for k in range(12)))
        first = terminal.serial + 1
        frames = split_frames(
            Header(msg_id=MsgId.LOCATION_BATCH, phone=phone, serial=first), encode_body(batch), 120
        )
        terminal.serial += len(frames)
        assert len(frames) >= 3
        for raw in reversed(frames[:1] + frames[2:]):  # out of order, package 2 missing
            terminal.send_raw(raw)
        header, request = await asyncio.wait_for(terminal.commands.get(), 60)
        assert header.msg_id == MsgId.RESEND_PACKAGES
        assert request == ResendPackages(first_serial=first, numbers=(2,))
        answer = await terminal.send_and_wait(first, frames[1])
        assert isinstance(answer, GeneralResponse) and answer.result == Result.OK
        await terminal.close()

    with running_gateway(db, broker, tmp_path, package_timeout_s=1) as (port, _):
        asyncio.run(scenario(port))
        wait_until(lambda: len(subscriber.received()) == 1, 60, "the reassembled batch")
    subscriber.close()
    assert len(subscriber.received()[0][1]["fixes"]) == 12


def publish(port: int, topic: str, payload: dict[str, object]) -> None:
    client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        client.publish(topic, orjson.dumps(payload), qos=1).wait_for_publish(30)
    finally:
        client.disconnect()
        client.loop_stop()


def test_downlink_locate_and_tracking(db: str, broker: Broker, tmp_path: Path) -> None:
    phone, absent = register_phones(db, 2)
    answers = Subscriber(broker.port, "jt808/+/answer")

    async def scenario(port: int) -> None:
        terminal = await authenticated(port, phone, Edition.V2019)
        await asyncio.to_thread(
            publish, broker.port, f"jt808/{phone}/cmd", {"command": "locate", "request_id": "r1"}
        )
        header, query = await asyncio.wait_for(terminal.commands.get(), 60)
        assert header.msg_id == MsgId.LOCATION_QUERY and query == Empty()
        terminal.answer_query(header, fix(7))
        tracking = {"command": "tracking", "request_id": "r2", "interval_s": 5, "validity_s": 60}
        await asyncio.to_thread(publish, broker.port, f"jt808/{phone}/cmd", tracking)
        header, message = await asyncio.wait_for(terminal.commands.get(), 60)
        assert header.msg_id == MsgId.TRACKING and message == Tracking(interval_s=5, validity_s=60)
        _, data = terminal.frame(
            MsgId.TERMINAL_RESPONSE,
            GeneralResponse(reply_serial=header.serial, reply_id=MsgId.TRACKING, result=0),
        )
        terminal.send_raw(data)
        await asyncio.to_thread(
            publish, broker.port, f"jt808/{absent}/cmd", {"command": "locate", "request_id": "r3"}
        )
        await asyncio.to_thread(wait_until, lambda: len(answers.received()) >= 3, 60, "three answers")
        await terminal.close()

    with running_gateway(db, broker, tmp_path) as (port, _):
        wait_until(lambda: "subscription granted" in (tmp_path / "gateway.log").read_text(), 60, "SUBACK")
        asyncio.run(scenario(port))
    answers.close()
    by_request = {m["request_id"]: (topic, m) for topic, m in answers.received()}
    topic, located = by_request["r1"]
    assert topic == f"jt808/{phone}/answer" and located["command"] == "locate"
    assert located["time"] == int((NOW + timedelta(seconds=70)).timestamp() * 1000)
    assert located["lon"] == 119.9707
    assert by_request["r2"][1]["result"] == 0
    assert by_request["r3"][1]["error"] == "terminal not connected"
