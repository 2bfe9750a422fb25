"""The loss-free bridge: a JT/T 808 report → one MQTT message on ``fleet/<terminal>/pos`` (QoS 1,
persistent MQTT 5 session); the terminal is answered only once the broker's PUBACK is in.

A report the gateway never answered is sent again by the terminal; storage's (vehicle, time) key makes
that a no-op, so a gateway killed at any moment loses nothing a terminal was told was received.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from gateway.jt808.frame import Header
from gateway.jt808.location import Location
from gateway.jt808.messages import Body, LocationAnswer, LocationBatch
from gateway.jt808.mqtt5 import Publisher
from gateway.settings import GatewaySettings


def fix_payload(location: Location, serial: int | None = None) -> dict[str, Any]:
    """One fix in ingest's JSON (ingest.decode)."""
    fix: dict[str, Any] = {
        "time": location.time_ms,
        "lon": location.lon,
        "lat": location.lat,
        "speed_kmh": location.speed_kmh,
        "heading_deg": location.direction_deg,
        "altitude_m": location.altitude_m,
        "valid": location.positioned,
        "ignition": location.acc,
        "alarm_word": location.alarm_word,
        "status_word": location.status_word,
    }
    for item_id, value in location.items:
        if item_id == 0x01 and len(value) == 4:
            fix["odometer_km"] = int.from_bytes(value) / 10
        elif item_id == 0x02 and len(value) == 2:
            fix["fuel_l"] = int.from_bytes(value) / 10
        elif item_id == 0x31 and len(value) == 1:
            fix["satellites"] = value[0]
    if serial is not None:
        fix["seq"] = serial
    return fix


def report_payload(header: Header, message: Body) -> bytes:
    if isinstance(message, LocationBatch):
        return orjson.dumps({"fixes": [fix_payload(location) for location in message.locations]})
    if isinstance(message, LocationAnswer):
        return orjson.dumps(fix_payload(message.location, header.serial))
    assert isinstance(message, Location)
    return orjson.dumps(fix_payload(message, header.serial))


class Bridge:
    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.publisher = Publisher(
            settings.mqtt_host,
            settings.mqtt_port,
            f"fleetwatch-jt808-{settings.gateway_name}",  # never an ingest worker's session
            session_expiry_s=settings.session_expiry_s,
            username=settings.mqtt_username,
            password=settings.mqtt_password,
        )
        if not settings.answer_without_broker:
            self.publisher.subscriptions = ["jt808/+/cmd"]  # downlink commands (Gateway.on_command)

    async def start(self) -> None:
        if self.settings.answer_without_broker:
            return
        self.publisher.start()
        await self.publisher.connected.wait()

    async def close(self) -> None:
        if not self.settings.answer_without_broker:
            await self.publisher.close()

    def forward(
        self, terminal_id: str, header: Header, message: Body, answered: Callable[[bool], None]
    ) -> None:
        """Publish the report; ``answered(ok)`` once the broker acknowledged (or refused) it."""
        if self.settings.answer_without_broker:
            answered(True)
            return
        if self.publisher.unacknowledged >= self.settings.max_waiting_publishes:
            answered(False)
            return
        self.publisher.publish_then(f"fleet/{terminal_id}/pos", report_payload(header, message), answered)

    def answer(self, terminal_id: str, answer: dict[str, Any]) -> None:
        """The answer to a downlink command (0x0201 fix, 0x0001 result, or why there is none) on
        ``jt808/<terminal>/answer`` for whoever asked (the API)."""
        self.publisher.publish_then(f"jt808/{terminal_id}/answer", orjson.dumps(answer), _ignore)


def _ignore(_ok: bool) -> None:
    """Answers are QoS 1 too; whether the broker took them changes nothing here."""
