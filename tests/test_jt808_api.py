"""The API's downlink to JT/T 808 terminals through a real gateway process and a private Mosquitto:
locate (0x8201) and tracking (0x8202), scoped, audited; 409 without a terminal, 504 when unreachable."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg
import pytest

from api.app import create_app
from api.settings import ApiSettings
from gateway.jt808.location import location_of
from gateway.jt808.messages import GeneralResponse, MsgId
from gateway.jt808.terminal import Terminal, connect_and_authenticate
from tests import api_fixtures
from tests.api_fixtures import World, rows
from tests.conftest import Broker, wait_until
from tests.jt808_fixtures import running_gateway

world, anyio_backend = api_fixtures.world, api_fixtures.anyio_backend
PHONE = "013700000001"
FIX_AT = datetime(2026, 12, 7, 3, 4, 5, tzinfo=UTC)


async def answer_commands(terminal: Terminal) -> None:
    """A terminal that answers position queries and acknowledges tracking requests."""
    while True:
        header, _ = await terminal.commands.get()
        if header.msg_id == MsgId.LOCATION_QUERY:
            terminal.answer_query(header, location_of(lon=119.9712, lat=31.8123, time=FIX_AT, speed_kmh=36.0))
        elif header.msg_id == MsgId.TRACKING:
            response = GeneralResponse(reply_serial=header.serial, reply_id=header.msg_id, result=0)
            terminal.send_raw(terminal.frame(MsgId.TERMINAL_RESPONSE, response)[1])


@pytest.fixture
async def client(world: World, broker: Broker) -> AsyncIterator[httpx.AsyncClient]:
    settings = ApiSettings(
        database_url=world.url, db_pool_min=1, db_pool_max=4, mqtt_port=broker.port, command_timeout_s=10
    )
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api", timeout=60) as c,
    ):
        yield c


@pytest.mark.anyio
async def test_locate_and_tracking_through_the_gateway(
    client: httpx.AsyncClient, world: World, broker: Broker, tmp_path: Path
) -> None:
    car1, car2 = world.vehicle["CAR1"], world.vehicle["CAR2"]
    with psycopg.connect(world.url, autocommit=True) as conn:
        sql = "INSERT INTO terminal (terminal_id, vehicle_id, protocol) VALUES (%s, %s, 'jt808')"
        conn.execute(sql, (PHONE, car1))
    with running_gateway(world.url, broker, tmp_path) as (port, _):
        log = tmp_path / "gateway.log"
        await asyncio.to_thread(wait_until, lambda: "subscription granted" in log.read_text(), 60, "SUBACK")
        terminal = Terminal(PHONE)
        await connect_and_authenticate(terminal, "127.0.0.1", port, None)
        responder = asyncio.get_running_loop().create_task(answer_commands(terminal))
        try:
            r = await client.post(f"/v1/vehicles/{car1}/locate", headers=world.auth("city_supervisor"))
            assert r.status_code == 200, r.text
            fix = r.json()
            assert (fix["lon"], fix["lat"], fix["speed_kmh"]) == (119.9712, 31.8123, 36.0)
            assert fix["time"].startswith("2026-12-07T03:04:05") and fix["terminal_id"] == PHONE
            assert fix["answered_in_s"] >= 0
            r = await client.post(
                f"/v1/vehicles/{car1}/tracking",
                json={"interval_s": 5, "validity_s": 60},
                headers=world.auth("admin"),
            )
            assert r.status_code == 200, r.text
            assert r.json()["result"] == 0
            r = await client.post(f"/v1/vehicles/{car2}/locate", headers=world.auth("admin"))
            assert r.status_code == 409 and "JT/T 808" in r.json()["detail"]
            r = await client.post(f"/v1/vehicles/{car1}/locate", headers=world.auth("district_supervisor"))
            assert r.status_code == 404  # not in the caller's agencies
            r = await client.post(f"/v1/vehicles/{car1}/locate", headers=world.auth("office_a_viewer"))
            assert r.status_code == 403
        finally:
            responder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await responder
            await terminal.close()
        # the terminal is gone: the gateway says so (or, if it has not noticed yet, no answer comes)
        r = await client.post(f"/v1/vehicles/{car1}/locate", headers=world.auth("admin"))
        assert r.status_code == 504, r.text
        assert "not connected" in r.json()["detail"] or "no answer" in r.json()["detail"]
    audit = rows(
        world.url, "SELECT action, after->>'terminal_id' FROM audit WHERE entity = 'vehicle' ORDER BY 1"
    )
    assert [a for a in audit if a[0] in ("vehicle.locate", "vehicle.tracking")] == [
        ("vehicle.locate", PHONE), ("vehicle.locate", PHONE), ("vehicle.tracking", PHONE)
    ]  # fmt: skip
