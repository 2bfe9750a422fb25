"""One batch of messages → one transaction: COPY to the stage, insert new fixes, quarantine the rest.

``prepare_batch`` is pure (decode, screen, build the COPY payload and the quarantine rows);
``store_batch`` does the I/O. The worker prepares the next batch while the previous one commits.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import orjson
import psycopg
from numpy.typing import NDArray

from ingest.decode import Decoded, DecodeLimits, Fixes, Message, decode, terminal_of, vehicle_ids_of
from ingest.filters import Anchors, FilterParams, screen
from ingest.reasons import FIX_REASONS, Reason
from store.copy import Column, binary_copy_payload, fix_copy_columns
from store.epoch import utc
from store.fixcolumns import Source, compared_columns, fix_columns, latest_columns
from store.fixsql import fix_query
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

    def merge(self, part: BatchOutcome) -> None:
        self.messages += part.messages
        self.fixes_received += part.fixes_received
        self.fixes_stored += part.fixes_stored
        self.fixes_duplicate += part.fixes_duplicate
        self.fixes_quarantined += part.fixes_quarantined
        self.messages_quarantined += part.messages_quarantined
        self.latency_s = max(self.latency_s, part.latency_s)
        lags = [x for x in (self.max_lag_s, part.max_lag_s) if x is not None]
        self.max_lag_s = max(lags) if lags else None
        self.newest_fix_lag_s = part.newest_fix_lag_s or self.newest_fix_lag_s


@dataclass(frozen=True, slots=True, kw_only=True)
class PreparedBatch:
    """Everything a batch will write, computed before the transaction opens; built once by
    ``prepare_batch`` and never changed (arrays are read-only views, rows and counts immutable)."""

    messages: tuple[Message, ...]
    decoded: Decoded
    accepted: NDArray[np.intp]  # rows of decoded.fixes that passed every filter
    rows: Mapping[str, NDArray[Any]]  # every fix column (store.fixcolumns) per fix row, by column name
    position_copy: bytes | None  # binary COPY of the accepted fixes straight into position
    latest_copy: bytes | None  # binary COPY of each vehicle's newest accepted fix into latest_stage
    quarantine: tuple[Mapping[str, Any], ...]  # rows for insert_quarantine
    fixes_quarantined: Mapping[Reason, int]
    messages_quarantined: Mapping[Reason, int]
    first_received_us: int
    oldest_fix_us: int | None
    newest_fix_us: int | None

    @property
    def vehicle_id(self) -> NDArray[np.int32]:
        return self.rows["vehicle_id"]


def load_terminals(conn: psycopg.Connection[Any]) -> dict[str, Terminal]:
    rows = conn.execute(query("terminals")).fetchall()
    return {terminal_id: Terminal(terminal_no=no, vehicle_id=vid) for terminal_id, no, vid in rows}


def load_anchors(conn: psycopg.Connection[Any], vehicle_ids: NDArray[np.int32]) -> Anchors:
    if not len(vehicle_ids):
        return Anchors.empty()
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
    """The per-connection temporary tables the write path stages into."""
    conn.execute(query("create_stage"))
    conn.execute(query("create_latest_stage"))


def quarantine_row(
    message: Message,
    reason: Reason,
    detail: str,
    payload: bytes,
    *,
    terminal_id: str | None,
    fix_index: int | None,
) -> dict[str, Any]:
    kept = payload[:_QUARANTINE_KEEP_BYTES]
    note = f" (first {len(kept)} of {len(payload)} bytes kept)" if len(kept) < len(payload) else ""
    return {
        "received_at": utc(message.received_at_us),
        "topic": message.topic,
        "terminal_id": terminal_id,
        "reason": reason.value,
        "detail": detail + note,
        "fix_index": fix_index,
        "payload": kept,
        "payload_bytes": len(payload),
    }


def fix_quarantine_row(
    messages: Sequence[Message], decoded: Decoded, row: int, reason: Reason, detail: str
) -> dict[str, Any]:
    """A quarantined fix keeps the whole message if it held only this fix, else the fix's own JSON."""
    fixes = decoded.fixes
    message_index = int(fixes.message_index[row])
    alone = fixes.fix_index[row] == 0 and (
        row + 1 == len(fixes) or fixes.message_index[row + 1] != message_index
    )
    message = messages[message_index]
    payload = (
        message.payload
        if alone
        else orjson.dumps(decoded.fix_documents[row], option=orjson.OPT_SORT_KEYS, default=str)
    )
    return quarantine_row(
        message,
        reason,
        detail,
        payload,
        terminal_id=decoded.terminal_ids[message_index],
        fix_index=int(fixes.fix_index[row]),
    )


def _fix_rows(
    fixes: Fixes,
    vehicle_id: NDArray[np.int32],
    terminal_no: NDArray[np.int32],
    received_us: NDArray[np.int64],
) -> Mapping[str, NDArray[Any]]:
    """Every declared fix column per fix row: the payload's, the registry's and the receive time."""
    registry = {"vehicle_id": vehicle_id, "terminal_no": terminal_no}
    rows: dict[str, NDArray[Any]] = {}
    for column in fix_columns():
        if column.source is Source.PAYLOAD:
            rows[column.name] = fixes.columns[column.name]
        elif column.source is Source.RECEIVED:
            rows[column.name] = _read_only(received_us)
        elif column.name in registry:
            rows[column.name] = _read_only(registry[column.name])
        else:
            raise KeyError(f"fix column {column.name!r}: the registry has no such value")
    return MappingProxyType(rows)


def _read_only(values: NDArray[Any]) -> NDArray[Any]:
    view = values.view()
    view.flags.writeable = False
    return view


def _position_copy(rows: Mapping[str, NDArray[Any]], accepted: NDArray[np.intp]) -> bytes:
    """The accepted fixes as position rows; what a terminal did not report is NULL."""
    return binary_copy_payload(fix_copy_columns(fix_columns(), rows, accepted))


def _stage_copy(prepared: PreparedBatch) -> bytes:
    """The accepted fixes for ingest_stage (ord = row) when keys may already exist."""
    rows = prepared.accepted
    ord_: Column = ("ord", "int4", rows.astype(np.int32))
    return binary_copy_payload([ord_, *fix_copy_columns(fix_columns(), prepared.rows, rows)])


def _latest_copy(rows: Mapping[str, NDArray[Any]], accepted: NDArray[np.intp]) -> bytes:
    """Each vehicle's newest accepted fix of the batch (and its oldest fix time), for latest_stage."""
    vehicle_id, t_us = rows["vehicle_id"], rows["fix_at"]
    order = accepted[np.lexsort((t_us[accepted], vehicle_id[accepted]))]
    vehicles = vehicle_id[order]
    change = np.flatnonzero(vehicles[1:] != vehicles[:-1])
    newest = order[np.append(change, len(order) - 1)]
    oldest = order[np.insert(change + 1, 0, 0)]
    oldest_fix_at: Column = ("oldest_fix_at", "timestamptz", t_us[oldest])
    return binary_copy_payload([oldest_fix_at, *fix_copy_columns(latest_columns(), rows, newest)])


def prepare_batch(
    messages: Sequence[Message],
    terminals: Mapping[str, Terminal],
    anchors: Anchors,
    *,
    now_us: int,
    params: FilterParams,
    limits: DecodeLimits,
) -> PreparedBatch:
    """Decode and screen a batch; build its COPY payloads and quarantine rows. No I/O."""
    decoded = decode(messages, terminals, limits)
    fixes = decoded.fixes
    vehicle_of_message, terminal_no_of_message = vehicle_ids_of(decoded.terminal_ids, terminals)
    received_us_of_message = np.fromiter(
        (m.received_at_us for m in messages), dtype=np.int64, count=len(messages)
    )
    vehicle_id = vehicle_of_message[fixes.message_index]
    terminal_no = terminal_no_of_message[fixes.message_index]
    received_us = received_us_of_message[fixes.message_index]
    reason, detail = screen(fixes, vehicle_id, now_us, anchors, params)
    accepted = _read_only(np.flatnonzero(reason == 0))
    any_accepted = len(accepted) > 0
    rows = _fix_rows(fixes, vehicle_id, terminal_no, received_us)

    quarantine: list[Mapping[str, Any]] = []
    messages_quarantined: Counter[Reason] = Counter()
    for rejected in decoded.rejected:
        quarantine.append(
            quarantine_row(
                messages[rejected.message_index],
                rejected.reason,
                rejected.detail,
                rejected.payload,
                terminal_id=rejected.terminal_id,
                fix_index=None,
            )
        )
        messages_quarantined[rejected.reason] += 1
    fixes_quarantined: Counter[Reason] = Counter()
    for row in np.flatnonzero(reason != 0).tolist():
        why = FIX_REASONS[reason[row] - 1]
        quarantine.append(fix_quarantine_row(messages, decoded, row, why, detail.get(row, "")))
        fixes_quarantined[why] += 1
    return PreparedBatch(
        messages=tuple(messages),
        decoded=decoded,
        accepted=accepted,
        rows=rows,
        position_copy=_position_copy(rows, accepted) if any_accepted else None,
        latest_copy=_latest_copy(rows, accepted) if any_accepted else None,
        quarantine=tuple(quarantine),
        fixes_quarantined=MappingProxyType(fixes_quarantined),
        messages_quarantined=MappingProxyType(messages_quarantined),
        first_received_us=int(received_us_of_message.min()) if len(messages) else now_us,
        oldest_fix_us=int(fixes.t_us[accepted].min()) if any_accepted else None,
        newest_fix_us=int(fixes.t_us[accepted].max()) if any_accepted else None,
    )


def _insert_checking_conflicts(
    cur: psycopg.Cursor[Any], prepared: PreparedBatch, quarantine: list[Mapping[str, Any]]
) -> tuple[int, int]:
    """The slow path, for a batch holding keys that are already stored (a replay) or twice in itself:
    stage, insert what is new, quarantine what contradicts a stored fix. Returns (inserted, conflicts)."""
    with cur.copy(fix_query("copy_stage")) as copy:
        copy.write(_stage_copy(prepared))
    cur.execute(fix_query("insert_positions"))
    inserted = cur.rowcount
    conflicts = 0
    if inserted < len(prepared.accepted):
        names = [column.name for column in compared_columns()]
        for ord_, *values in cur.execute(fix_query("stage_conflicts")).fetchall():
            stored = ", ".join(f"{name} {value}" for name, value in zip(names, values, strict=True))
            quarantine.append(
                fix_quarantine_row(
                    prepared.messages,
                    prepared.decoded,
                    ord_,
                    Reason.CONFLICT,
                    f"same vehicle and fix time already stored with {stored}",
                )
            )
            conflicts += 1
    return inserted, conflicts


def store_batch(conn: psycopg.Connection[Any], prepared: PreparedBatch, *, worker: str) -> BatchOutcome:
    """Write a prepared batch in one transaction; the caller acknowledges its messages after this returns.

    Fast path: binary COPY straight into the hypertable inside a savepoint. If any key is already stored
    (a redelivery after a crash, a terminal's duplicate send) the primary key refuses the COPY, the
    savepoint rolls back, and the batch takes the staged INSERT … ON CONFLICT path instead.
    """
    outcome = BatchOutcome(
        messages=len(prepared.messages),
        fixes_received=len(prepared.decoded.fixes),
        fixes_quarantined=Counter(prepared.fixes_quarantined),
        messages_quarantined=Counter(prepared.messages_quarantined),
    )
    quarantine = list(prepared.quarantine)
    with conn.transaction(), conn.cursor() as cur:
        if prepared.position_copy is not None and prepared.latest_copy is not None:
            try:
                with conn.transaction(), cur.copy(fix_query("copy_positions")) as copy:
                    copy.write(prepared.position_copy)
                inserted, conflicts = len(prepared.accepted), 0
            except psycopg.errors.UniqueViolation:
                inserted, conflicts = _insert_checking_conflicts(cur, prepared, quarantine)
            with cur.copy(fix_query("copy_latest_stage")) as copy:
                copy.write(prepared.latest_copy)
            cur.execute(fix_query("update_latest_positions"))
            cur.execute(query("mark_vehicles_dirty"))
            outcome.fixes_stored = inserted
            outcome.fixes_duplicate = len(prepared.accepted) - inserted - conflicts
            outcome.fixes_quarantined[Reason.CONFLICT] += conflicts
        if quarantine:
            cur.executemany(query("insert_quarantine"), quarantine)
        commit_us = time.time_ns() // 1000
        outcome.latency_s = (commit_us - prepared.first_received_us) / 1e6
        if prepared.oldest_fix_us is not None and prepared.newest_fix_us is not None:
            outcome.max_lag_s = (commit_us - prepared.oldest_fix_us) / 1e6
            outcome.newest_fix_lag_s = (commit_us - prepared.newest_fix_us) / 1e6
        cur.execute(
            query("insert_ingest_batch"),
            {
                "worker": worker,
                "first_received_at": utc(prepared.first_received_us),
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


def write_batch(
    conn: psycopg.Connection[Any],
    messages: Sequence[Message],
    terminals: Mapping[str, Terminal],
    *,
    worker: str,
    params: FilterParams,
    limits: DecodeLimits,
) -> BatchOutcome:
    """Prepare and store one batch on one connection (no pipelining)."""
    vehicle_of_message, _ = vehicle_ids_of([terminal_of(m.topic) for m in messages], terminals)
    anchors = load_anchors(conn, vehicle_of_message[vehicle_of_message > 0])
    prepared = prepare_batch(
        messages, terminals, anchors, now_us=time.time_ns() // 1000, params=params, limits=limits
    )
    return store_batch(conn, prepared, worker=worker)
