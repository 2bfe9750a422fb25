"""One batch of messages → one transaction: COPY to the stage, insert new fixes, quarantine the rest."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
import psycopg
from numpy.typing import NDArray

from ingest.decode import Decoded, DecodeLimits, Message, decode
from ingest.filters import Anchors, FilterParams, screen
from ingest.reasons import FIX_REASONS, Reason
from store.copy import binary_copy_payload
from store.queries import query

log = logging.getLogger(__name__)

_QUARANTINE_KEEP_BYTES = 64 * 1024  # an oversized payload is kept up to this much, its size noted


@dataclass(frozen=True, slots=True, kw_only=True)
class Terminal:
    terminal_no: int
    vehicle_id: int


@dataclass(slots=True, kw_only=True)
class BatchOutcome:
    messages: int = 0
    fixes_received: int = 0
    fixes_stored: int = 0
    fixes_duplicate: int = 0
    fixes_quarantined: Counter[Reason] = field(default_factory=Counter)
    messages_quarantined: Counter[Reason] = field(default_factory=Counter)
    latency_s: float = 0.0  # first message received → commit
    max_lag_s: float | None = None  # commit time − oldest stored fix time
    newest_fix_lag_s: float | None = None  # commit time − newest stored fix time


def utc_from_us(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1e6, tz=UTC)


def load_terminals(conn: psycopg.Connection[Any]) -> dict[str, Terminal]:
    rows = conn.execute(query("terminals")).fetchall()
    return {terminal_id: Terminal(terminal_no=no, vehicle_id=vid) for terminal_id, no, vid in rows}


def load_anchors(conn: psycopg.Connection[Any], vehicle_ids: NDArray[np.int32]) -> Anchors:
    rows = conn.execute(query("anchors"), {"vehicle_ids": np.unique(vehicle_ids).tolist()}).fetchall()
    if not rows:
        return Anchors.empty()
    vid, t_us, lon, lat = zip(*rows, strict=True)
    return Anchors(
        vehicle_id=np.array(vid, dtype=np.int32),
        t_us=np.array(t_us, dtype=np.int64),
        lon=np.array(lon, dtype=np.float64),
        lat=np.array(lat, dtype=np.float64),
    )


def create_stage(conn: psycopg.Connection[Any]) -> None:
    conn.execute(query("create_stage"))
    conn.commit()


def _fix_payload(decoded: Decoded, messages: Sequence[Message], row: int) -> bytes:
    """What a quarantined fix keeps: the whole message if it held only this fix, else the fix's JSON."""
    message = messages[int(decoded.fixes.message_index[row])]
    if decoded.fixes.fix_index[row] == 0 and (
        row + 1 == len(decoded.fixes)
        or decoded.fixes.message_index[row + 1] != decoded.fixes.message_index[row]
    ):
        return message.payload
    return orjson.dumps(decoded.fix_documents[row], option=orjson.OPT_SORT_KEYS, default=str)


def write_batch(
    conn: psycopg.Connection[Any],
    messages: Sequence[Message],
    terminals: Mapping[str, Terminal],
    *,
    worker: str,
    params: FilterParams,
    limits: DecodeLimits,
) -> BatchOutcome:
    """Decode, screen and store one batch in one transaction; the caller acknowledges after it returns."""
    outcome = BatchOutcome(messages=len(messages))
    decoded = decode(messages, terminals, limits)
    fixes = decoded.fixes
    outcome.fixes_received = len(fixes)

    terminal_of_message = [terminals.get(t) if t else None for t in decoded.terminal_ids]
    vehicle_of_message = np.array([t.vehicle_id if t else 0 for t in terminal_of_message], dtype=np.int32)
    terminal_no_of_message = np.array(
        [t.terminal_no if t else 0 for t in terminal_of_message], dtype=np.int32
    )
    received_us_of_message = np.array([m.received_at_us for m in messages], dtype=np.int64)
    vehicle_id = vehicle_of_message[fixes.message_index]

    now_us = time.time_ns() // 1000
    anchors = load_anchors(conn, vehicle_id) if len(fixes) else Anchors.empty()
    reason, detail = screen(fixes, vehicle_id, now_us, anchors, params)
    accepted = np.flatnonzero(reason == 0)

    quarantine: list[dict[str, Any]] = []
    for rejected in decoded.rejected:
        message = messages[rejected.message_index]
        payload = rejected.payload[:_QUARANTINE_KEEP_BYTES]
        extra = f" (first {len(payload)} bytes kept)" if len(payload) < len(rejected.payload) else ""
        quarantine.append(
            {
                "received_at": utc_from_us(message.received_at_us),
                "topic": message.topic,
                "terminal_id": rejected.terminal_id,
                "reason": rejected.reason.value,
                "detail": rejected.detail + extra,
                "fix_index": None,
                "payload": payload,
                "payload_bytes": len(rejected.payload),
            }
        )
        outcome.messages_quarantined[rejected.reason] += 1

    def quarantine_fix(row: int, why: Reason, say: str) -> None:
        message_index = int(fixes.message_index[row])
        message = messages[message_index]
        payload = _fix_payload(decoded, messages, row)
        quarantine.append(
            {
                "received_at": utc_from_us(message.received_at_us),
                "topic": message.topic,
                "terminal_id": decoded.terminal_ids[message_index],
                "reason": why.value,
                "detail": say,
                "fix_index": int(fixes.fix_index[row]),
                "payload": payload,
                "payload_bytes": len(payload),
            }
        )
        outcome.fixes_quarantined[why] += 1

    for row in np.flatnonzero(reason != 0):
        quarantine_fix(int(row), FIX_REASONS[reason[row] - 1], detail.get(int(row), ""))

    with conn.transaction():
        if len(accepted):
            stage = binary_copy_payload(
                [
                    ("ord", "int4", accepted.astype(np.int32)),
                    ("vehicle_id", "int4", vehicle_id[accepted]),
                    ("fix_at", "timestamptz", fixes.t_us[accepted]),
                    ("received_at", "timestamptz", received_us_of_message[fixes.message_index[accepted]]),
                    ("terminal_no", "int4", terminal_no_of_message[fixes.message_index[accepted]]),
                    ("lon", "float8", fixes.lon[accepted]),
                    ("lat", "float8", fixes.lat[accepted]),
                    ("speed_kmh", "float4", fixes.speed_kmh[accepted]),
                    ("heading_deg", "float4", fixes.heading_deg[accepted]),
                    ("altitude_m", "float4", fixes.altitude_m[accepted]),
                    ("satellites", "int2", fixes.satellites[accepted]),
                    ("hdop", "float4", fixes.hdop[accepted]),
                    ("accuracy_m", "float4", fixes.accuracy_m[accepted]),
                    ("valid", "bool", fixes.valid[accepted]),
                    ("ignition", "int2", fixes.ignition[accepted]),
                    ("odometer_km", "float8", fixes.odometer_km[accepted]),
                    ("seq", "int8", fixes.seq[accepted]),
                ]
            )
            with conn.cursor() as cur:
                with cur.copy(query("copy_stage")) as copy:
                    copy.write(stage)
                counted = cur.execute(query("insert_positions")).fetchone()
                inserted = int(counted[0]) if counted else 0
                if inserted < len(accepted):
                    for ord_, lon, lat, speed, ignition, odometer in cur.execute(query("stage_conflicts")):
                        stored = (
                            f"lon {lon}, lat {lat}, speed_kmh {speed}, ignition {ignition}, odometer_km {odometer}"
                        )
                        quarantine_fix(
                            ord_, Reason.CONFLICT, f"same vehicle and fix time already stored with {stored}"
                        )
                cur.execute(query("update_latest_positions"))
            outcome.fixes_stored = inserted
            outcome.fixes_duplicate = len(accepted) - inserted - outcome.fixes_quarantined[Reason.CONFLICT]
        if quarantine:
            with conn.cursor() as cur:
                cur.executemany(query("insert_quarantine"), quarantine)
        commit_us = time.time_ns() // 1000
        if len(messages):
            outcome.latency_s = (commit_us - int(received_us_of_message.min())) / 1e6
        if len(accepted):
            outcome.max_lag_s = (commit_us - int(fixes.t_us[accepted].min())) / 1e6
            outcome.newest_fix_lag_s = (commit_us - int(fixes.t_us[accepted].max())) / 1e6
        conn.execute(
            query("insert_ingest_batch"),
            {
                "worker": worker,
                "first_received_at": utc_from_us(int(received_us_of_message.min()))
                if len(messages)
                else utc_from_us(commit_us),
                "messages": outcome.messages,
                "fixes_received": outcome.fixes_received,
                "fixes_stored": outcome.fixes_stored,
                "fixes_duplicate": outcome.fixes_duplicate,
                "fixes_quarantined": sum(outcome.fixes_quarantined.values()),
                "messages_quarantined": sum(outcome.messages_quarantined.values()),
                "latency_ms": outcome.latency_s * 1000,
                "max_lag_s": outcome.max_lag_s,
            },
        )
    return outcome
