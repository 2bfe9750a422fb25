"""Fleet JSON messages turned into JT/T 808 reports for the simulator's JT/T 808 share."""

from __future__ import annotations

import orjson

from gateway.jt808.bridge import fix_payload
from gateway.jt808.location import Location
from gateway.jt808.messages import LocationBatch, MsgId
from gateway.jt808.replay import jt808_share, report_of, split_reports

FIX = {
    "time": 1_796_600_000_000,
    "lon": 119.971234,
    "lat": 31.812345,
    "speed_kmh": 42.5,
    "heading_deg": 359,
    "altitude_m": 12,
    "satellites": 9,
    "hdop": 0.9,
    "valid": True,
    "ignition": True,
    "odometer_km": 12345.6,
    "seq": 4,
}


def test_single_fix_becomes_0x0200_and_back_to_the_same_json() -> None:
    msg_id, message = report_of(orjson.dumps(FIX))
    assert msg_id == MsgId.LOCATION and isinstance(message, Location)
    back = fix_payload(message)
    for key in (
        "time",
        "lon",
        "lat",
        "speed_kmh",
        "heading_deg",
        "altitude_m",
        "satellites",
        "valid",
        "ignition",
    ):
        assert back[key] == FIX[key], key
    assert back["odometer_km"] == FIX["odometer_km"]
    assert (back["alarm_word"], back["status_word"]) == (0, 0b11)


def test_batch_becomes_0x0704_blind_area_and_iso_time_and_missing_position() -> None:
    late = {**FIX, "time": "2026-12-07T03:00:05Z"}
    broken = {**FIX, "lon": None}
    msg_id, message = report_of(orjson.dumps({"fixes": [late, broken]}))
    assert msg_id == MsgId.LOCATION_BATCH and isinstance(message, LocationBatch) and message.kind == 1
    first, second = message.locations
    assert fix_payload(first)["time"] == 1_796_612_405_000
    assert second.positioned is False  # no position: sent as not positioned, quarantined by ingest


def test_share_spreads_evenly_and_split_keeps_order() -> None:
    ids = [f"0107{i:08d}" for i in range(1, 13)]
    over = jt808_share(ids, 0.25)
    assert len(over) == 3 and jt808_share(ids, 0) == set() and jt808_share(ids, 1) == set(ids)
    items = [(k, f"fleet/{ids[k % 12]}/pos", orjson.dumps({**FIX, "seq": k})) for k in range(48)]
    reports, rest = split_reports(items, over)
    assert sum(len(r) for r in reports.values()) == 12 and len(rest) == 36
    assert all(topic.split("/")[1] not in over for _, topic, _ in rest)
