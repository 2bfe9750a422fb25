"""Fleet messages (``fleet/<terminal>/pos`` JSON, as the simulator makes them) sent by JT/T 808 terminals
through a gateway: a single fix as 0x0200, a batch as a 0x0704 blind-area upload; re-sent until answered;
each terminal reconnects every ``reconnect_every`` frames with the code it was issued.
The simulator and the demo use this for their JT/T 808 share of the fleet."""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from gateway.jt808.frame import Edition
from gateway.jt808.location import Location, location_of
from gateway.jt808.messages import Body, LocationBatch, MsgId
from gateway.jt808.terminal import Terminal, connect_and_authenticate, report_reliably

Report = tuple[int, Body]  # message id, message


def jt808_share(terminal_ids: Iterable[str], share: float) -> set[str]:
    """Every terminal whose running share crosses an integer: ``share`` of them, spread evenly."""
    return {t for i, t in enumerate(terminal_ids) if int((i + 1) * share) > int(i * share)}


def _time(value: Any) -> datetime:
    if isinstance(value, str):
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return datetime.fromtimestamp(float(value) / 1000, UTC)


def _number(value: Any, default: float = 0.0) -> float:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else default


def location_of_fix(fix: dict[str, Any]) -> Location:
    """A fleet JSON fix as a JT/T 808 location; what the protocol cannot carry (no position) is sent as
    'not positioned' at 0,0, which ingest quarantines as it would the JSON."""
    lon, lat = fix.get("lon"), fix.get("lat")
    has_position = isinstance(lon, int | float) and isinstance(lat, int | float)
    odometer = fix.get("odometer_km")
    satellites = fix.get("satellites")
    return location_of(
        lon=float(lon) if has_position else 0.0,  # type: ignore[arg-type]
        lat=float(lat) if has_position else 0.0,  # type: ignore[arg-type]
        time=_time(fix["time"]),
        speed_kmh=min(max(_number(fix.get("speed_kmh")), 0.0), 6553.5),
        direction_deg=int(_number(fix.get("heading_deg"))) % 360,
        altitude_m=int(min(max(_number(fix.get("altitude_m")), -32768), 32767)),
        acc=bool(fix.get("ignition")),
        positioned=bool(fix.get("valid", True)) and has_position,
        mileage_km=float(odometer) if isinstance(odometer, int | float) and odometer >= 0 else None,
        satellites=int(satellites) if isinstance(satellites, int) and 0 <= satellites < 256 else None,
    )


def report_of(payload: bytes) -> Report:
    document = orjson.loads(payload)
    if isinstance(document, dict) and "fixes" in document:
        locations = tuple(location_of_fix(f) for f in document["fixes"])
        return MsgId.LOCATION_BATCH, LocationBatch(kind=1, locations=locations)
    return MsgId.LOCATION, location_of_fix(document)


@dataclass(slots=True)
class ReplayResult:
    terminals: int = 0
    frames: int = 0
    fixes: int = 0
    resent: int = 0
    reconnects: int = 0
    per_terminal: dict[str, int] = field(default_factory=dict)


async def replay(
    host: str, port: int, reports: dict[str, list[Report]], *, reconnect_every: int = 100
) -> ReplayResult:
    result = ReplayResult(terminals=len(reports))

    async def one(index: int, terminal_id: str, items: list[Report]) -> None:
        terminal = Terminal(terminal_id, Edition.V2013, answer_timeout_s=30.0)
        code = await connect_and_authenticate(terminal, host, port, None)
        for k, (msg_id, message) in enumerate(items, start=1):
            code, resent = await report_reliably(terminal, host, port, code, msg_id=msg_id, message=message)
            result.frames += 1
            result.resent += resent
            result.fixes += len(message.locations) if isinstance(message, LocationBatch) else 1
            if k % reconnect_every == 0 and k < len(items):
                await terminal.close()
                code = await connect_and_authenticate(terminal, host, port, code)
                result.reconnects += 1
        result.per_terminal[terminal_id] = len(items)
        await terminal.close()

    await asyncio.gather(*(one(i, t, items) for i, (t, items) in enumerate(reports.items())))
    return result


class ReplayThread(threading.Thread):
    """``replay`` in a thread with its own event loop (beside a paho publisher in the caller's)."""

    def __init__(self, host: str, port: int, reports: dict[str, list[Report]]) -> None:
        super().__init__(daemon=True)
        self.host, self.port, self.reports = host, port, reports
        self.result: ReplayResult | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = asyncio.run(replay(self.host, self.port, self.reports))
        except BaseException as error:  # reported by the caller
            self.error = error


def split_reports(
    items: Iterable[tuple[int, str, bytes]], over_jt808: set[str]
) -> tuple[dict[str, list[Report]], list[tuple[int, str, bytes]]]:
    """Messages of the terminals in ``over_jt808`` as JT/T 808 reports per terminal (in send order);
    the rest stays MQTT (sent_ms, topic, payload)."""
    reports: dict[str, list[Report]] = {}
    rest: list[tuple[int, str, bytes]] = []
    for sent_ms, topic, payload in items:
        terminal_id = topic.split("/")[1]
        if terminal_id in over_jt808:
            reports.setdefault(terminal_id, []).append(report_of(payload))
        else:
            rest.append((sent_ms, topic, payload))
    return reports, rest
