"""Downlink to JT/T 808 terminals: "where is this car now" (0x8201) and temporary tracking (0x8202).

The API publishes a command on ``jt808/<terminal>/cmd`` (QoS 1); the gateway holding the terminal's
connection sends it and publishes the answer on ``jt808/<terminal>/answer`` with the request id. 409 when
the vehicle has no JT/T 808 terminal, 504 with the reason when no answer comes in time.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import paho.mqtt.client as paho
from fastapi import APIRouter
from paho.mqtt.enums import CallbackAPIVersion
from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from pydantic import BaseModel, Field

from api.audit import write_audit
from api.auth import Caller, CallerDep
from api.connection import Conn, Settings
from api.errors import ConflictError, GatewayTimeoutError, NotFoundError
from api.schemas import Id, Problem, Role
from api.settings import ApiSettings
from store.queries import query

router = APIRouter(prefix="/v1", tags=["jt808"])

COMMANDERS = frozenset({Role.ADMIN, Role.DISPATCHER, Role.SUPERVISOR})
TIMEOUT: dict[int | str, dict[str, Any]] = {
    504: {"model": Problem, "description": "no answer from the terminal in time"}
}


class LocatedFix(BaseModel):
    vehicle_id: int
    terminal_id: str
    time: datetime
    lon: float
    lat: float
    speed_kmh: float
    heading_deg: float
    altitude_m: float
    valid: bool
    ignition: bool
    answered_in_s: float


class TrackingIn(BaseModel):
    interval_s: int = Field(default=10, ge=1, le=3_600, description="report every this many seconds")
    validity_s: int = Field(default=300, ge=1, le=86_400, description="for this long")


class TrackingOut(BaseModel):
    vehicle_id: int
    terminal_id: str
    interval_s: int
    validity_s: int
    result: int = Field(description="the terminal's 0x0001 result: 0 success")


async def _terminal(
    conn: AsyncConnection[TupleRow], caller: Caller, vehicle_id: int
) -> tuple[str, int | None]:
    cur = await conn.execute(query("api_jt808_terminal"), {"vehicle_id": vehicle_id} | caller.scope())
    row = await cur.fetchone()
    if row is None:
        raise NotFoundError("vehicle", vehicle_id)
    if row[0] is None:
        raise ConflictError(f"vehicle {vehicle_id} has no JT/T 808 terminal")
    return str(row[0]), row[1]


def round_trip(
    host: str, port: int, terminal_id: str, command: dict[str, Any], timeout_s: float
) -> dict[str, Any]:
    """Publish a command and wait for its answer (a clean MQTT 5 session, gone when this returns)."""
    request_id = uuid.uuid4().hex
    answered, subscribed = threading.Event(), threading.Event()
    answer: dict[str, Any] = {}

    def on_message(_c: Any, _u: Any, message: Any) -> None:
        document = orjson.loads(message.payload)
        if isinstance(document, dict) and document.get("request_id") == request_id:
            answer.update(document)
            answered.set()

    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=f"fleetwatch-api-{request_id[:16]}",
        protocol=paho.MQTTv5,
    )
    client.on_message = on_message
    client.on_subscribe = lambda *_: subscribed.set()
    client.connect(host, port)
    client.loop_start()
    try:
        client.subscribe(f"jt808/{terminal_id}/answer", qos=1)
        if not subscribed.wait(timeout_s):
            return {"error": "the broker did not grant the answer subscription"}
        client.publish(f"jt808/{terminal_id}/cmd", orjson.dumps({**command, "request_id": request_id}), qos=1)
        if not answered.wait(timeout_s):
            return {"error": f"no answer from terminal {terminal_id} within {timeout_s:g} s"}
        return answer
    finally:
        client.disconnect()
        client.loop_stop()


async def _command(settings: ApiSettings, terminal_id: str, command: dict[str, Any]) -> dict[str, Any]:
    try:
        answer = await asyncio.to_thread(
            round_trip,
            settings.mqtt_host,
            settings.mqtt_port,
            terminal_id,
            command,
            settings.command_timeout_s,
        )
    except OSError as error:
        raise GatewayTimeoutError(f"MQTT broker unreachable: {error}") from error
    if "error" in answer:
        raise GatewayTimeoutError(str(answer["error"]))
    return answer


@router.post(
    "/vehicles/{vehicle_id}/locate", summary="Where is this car now: a 0x8201 query to its JT/T 808 terminal",
    responses=TIMEOUT,
)  # fmt: skip
async def locate(*, vehicle_id: Id, settings: Settings, conn: Conn, caller: CallerDep) -> LocatedFix:
    caller.require(COMMANDERS, "query a terminal")
    terminal_id, agency_id = await _terminal(conn, caller, vehicle_id)
    await write_audit(
        conn, caller, action="vehicle.locate", entity="vehicle", entity_id=vehicle_id, agency_id=agency_id,
        before=None, after={"terminal_id": terminal_id, "command": "0x8201"},
    )  # fmt: skip
    started = asyncio.get_running_loop().time()
    answer = await _command(settings, terminal_id, {"command": "locate"})
    return LocatedFix(
        vehicle_id=vehicle_id,
        terminal_id=terminal_id,
        time=datetime.fromtimestamp(answer["time"] / 1000, UTC),
        lon=answer["lon"],
        lat=answer["lat"],
        speed_kmh=answer["speed_kmh"],
        heading_deg=answer["heading_deg"],
        altitude_m=answer["altitude_m"],
        valid=answer["valid"],
        ignition=answer["ignition"],
        answered_in_s=round(asyncio.get_running_loop().time() - started, 3),
    )


@router.post(
    "/vehicles/{vehicle_id}/tracking", summary="Temporary tracking (0x8202) on a car's JT/T 808 terminal",
    responses=TIMEOUT,
)  # fmt: skip
async def tracking(
    *, vehicle_id: Id, body: TrackingIn, settings: Settings, conn: Conn, caller: CallerDep
) -> TrackingOut:
    caller.require(COMMANDERS, "command a terminal")
    terminal_id, agency_id = await _terminal(conn, caller, vehicle_id)
    after = {"terminal_id": terminal_id, "command": "0x8202", **body.model_dump()}
    await write_audit(
        conn, caller, action="vehicle.tracking", entity="vehicle", entity_id=vehicle_id, agency_id=agency_id,
        before=None, after=after,
    )  # fmt: skip
    answer = await _command(settings, terminal_id, {"command": "tracking", **body.model_dump()})
    return TrackingOut(
        vehicle_id=vehicle_id, terminal_id=terminal_id, result=answer["result"], **body.model_dump()
    )
