"""``fleetwatch jt808 decode``: hex frames (one per line, with or without 0x7e) → one JSON object each.

A frame that cannot be read prints ``{"error": detail, "reason": code}`` and decoding goes on; the
packages of a split message are reassembled across lines (the message prints with its last package).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from typing import Any

from gateway.jt808.frame import Frame, Refusal, decode_frame
from gateway.jt808.location import Location, utc_iso
from gateway.jt808.messages import Body, LocationAnswer, LocationBatch, MsgId, decode_body
from gateway.jt808.packages import Pending, add_package


def fix_document(location: Location) -> dict[str, Any]:
    return {
        "time": location.time.isoformat(),
        "time_utc": utc_iso(location),
        "lon": location.lon,
        "lat": location.lat,
        "speed_kmh": location.speed_kmh,
        "heading_deg": location.direction_deg,
        "altitude_m": location.altitude_m,
        "acc": location.acc,
        "alarm": location.alarms(),
        "alarm_word": location.alarm_word,
        "status": location.status(),
        "status_word": location.status_word,
        "items": location.item_values(),
    }


def fixes_of(message: Body) -> list[Location] | None:
    if isinstance(message, Location):
        return [message]
    if isinstance(message, LocationBatch):
        return list(message.locations)
    if isinstance(message, LocationAnswer):
        return [message.location]
    return None


def refusal_document(refusal: Refusal) -> dict[str, Any]:
    document: dict[str, Any] = {"error": refusal.detail, "reason": refusal.reason.value}
    if refusal.msg_id is not None:
        document["msg_id"] = f"0x{refusal.msg_id:04x}"
    if refusal.phone is not None:
        document["phone"] = refusal.phone
    return document


def frame_document(frame: Frame) -> dict[str, Any]:
    header = frame.header
    document: dict[str, Any] = {
        "msg_id": f"0x{header.msg_id:04x}",
        "phone": header.phone,
        "serial": header.serial,
        "edition": header.edition.value,
    }
    message = decode_body(frame)
    if isinstance(message, Refusal):
        return refusal_document(message)
    if message is None:
        document["body_hex"] = frame.body.hex()
        return document
    document["message"] = MsgId(header.msg_id).name.lower()  # decode_body knows only MsgId members
    fixes = fixes_of(message)
    if fixes is not None:
        document["fixes"] = [fix_document(location) for location in fixes]
        if isinstance(message, LocationBatch):
            document["batch_kind"] = "blind_area" if message.kind == 1 else "normal"
        if isinstance(message, LocationAnswer):
            document["reply_serial"] = message.reply_serial
    else:
        document.update(dataclasses.asdict(message))
    return document


def decode_lines(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    pending: Pending = {}
    for number, line in enumerate(lines, start=1):
        text = "".join(line.split())
        if not text:
            continue
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            yield {"error": f"line {number} is not hex", "reason": "not_hex"}
            continue
        frame = decode_frame(raw)
        if isinstance(frame, Refusal):
            yield refusal_document(frame)
            continue
        if frame.header.split:
            pending, whole = add_package(pending, frame, float(number))
            if whole is None:
                continue
            if isinstance(whole, Refusal):
                yield refusal_document(whole)
                continue
            frame = whole
        yield frame_document(frame)
    for partial in pending.values():
        yield {
            "error": f"split message incomplete: packages {list(partial.missing())} of {partial.count}"
            " missing",
            "reason": "incomplete",
            "msg_id": f"0x{partial.first.msg_id:04x}",
            "phone": partial.first.phone,
        }
