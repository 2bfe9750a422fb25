"""MQTT messages → fix columns, or a quarantine reason. Never raises on input.

Accepted payloads (topic ``fleet/<terminal_id>/pos``):
  one fix     {"time": …, "lon": …, "lat": …, …}
  a batch     {"fixes": [fix, …]}   or   [fix, …]
where ``time`` is epoch milliseconds (number) or an ISO 8601 string (UTC unless it carries an offset),
and the optional fields are the payload keys declared in store/fixcolumns.py (today ``speed_kmh,
heading_deg, altitude_m, satellites, hdop, accuracy_m, valid, ignition, odometer_km, seq``): one array
per declared column comes out, typed by its SQL type.

OwnTracks (topic ``owntracks/<user>/<device>``, terminal id ``<user>:<device>``; keys mapped by the
declaration's ``owntracks_key``):
  {"_type": "location", "tst": epoch s, "lat", "lon", "vel" km/h, "cog", "acc" m, "alt", …}
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from itertools import chain
from operator import itemgetter
from types import MappingProxyType
from typing import Any, cast

import numpy as np
import orjson
from numpy.typing import NDArray

from ingest.reasons import CODE, Reason
from store.fixcolumns import FixColumn, SqlType, payload_columns

_TERMINAL = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_FIELD_BYTES = 200  # how much of an offending value a detail quotes


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """One MQTT message as received; ``received_at_us`` is Unix epoch microseconds."""

    topic: str
    payload: bytes
    received_at_us: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Rejected:
    """A message (fix_index None) or one fix of it that is quarantined, with why."""

    message_index: int
    reason: Reason
    detail: str
    payload: bytes
    fix_index: int | None = None
    terminal_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Fixes:
    """Decoded fixes as equal-length read-only columns, one per payload column of the fix declaration
    (store.fixcolumns), by column name. Not-reported values are NaN (floats) or -1 (integers, and a
    nullable boolean held as int16 -1/0/1); a column with a default (``valid``) holds it instead.

    ``reason`` holds a fix-level reason code (ingest.reasons.CODE), 0 where the fix passed decoding.
    """

    message_index: NDArray[np.int32]
    fix_index: NDArray[np.int32]
    columns: Mapping[str, NDArray[Any]]
    reason: NDArray[np.uint8]
    detail: Mapping[int, str]  # row → what was wrong, for rows with a reason

    def __len__(self) -> int:
        return len(self.message_index)

    # typed access to the columns the filters and the write path name
    @property
    def t_us(self) -> NDArray[np.int64]:
        return self.columns["fix_at"]

    @property
    def lon(self) -> NDArray[np.float64]:
        return self.columns["lon"]

    @property
    def lat(self) -> NDArray[np.float64]:
        return self.columns["lat"]

    @property
    def speed_kmh(self) -> NDArray[np.float32]:
        return self.columns["speed_kmh"]

    @property
    def heading_deg(self) -> NDArray[np.float32]:
        return self.columns["heading_deg"]

    @property
    def altitude_m(self) -> NDArray[np.float32]:
        return self.columns["altitude_m"]

    @property
    def satellites(self) -> NDArray[np.int16]:
        return self.columns["satellites"]

    @property
    def hdop(self) -> NDArray[np.float32]:
        return self.columns["hdop"]

    @property
    def accuracy_m(self) -> NDArray[np.float32]:
        return self.columns["accuracy_m"]

    @property
    def valid(self) -> NDArray[np.bool_]:
        return self.columns["valid"]

    @property
    def ignition(self) -> NDArray[np.int16]:
        return self.columns["ignition"]

    @property
    def odometer_km(self) -> NDArray[np.float64]:
        return self.columns["odometer_km"]

    @property
    def seq(self) -> NDArray[np.int64]:
        return self.columns["seq"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Decoded:
    terminal_ids: list[str | None]  # per message
    fixes: Fixes
    fix_documents: list[dict[str, Any]]  # per fix row, to quote a rejected fix's JSON
    rejected: list[Rejected]  # message-level rejections (fix-level ones are in fixes.reason)


@dataclass(frozen=True, slots=True, kw_only=True)
class DecodeLimits:
    max_payload_bytes: int = 256 * 1024
    max_fixes_per_message: int = 5_000


@lru_cache(maxsize=1 << 17)
def terminal_of(topic: str) -> str | None:
    """The terminal id a topic speaks for, or None if the topic is not one we take positions from."""
    parts = topic.split("/")
    if len(parts) == 3 and parts[0] == "fleet" and parts[2] == "pos" and _TERMINAL.match(parts[1]):
        return parts[1]
    if (
        len(parts) == 3
        and parts[0] == "owntracks"
        and _TERMINAL.match(parts[1])
        and _TERMINAL.match(parts[2])
    ):
        return f"{parts[1]}:{parts[2]}"
    return None


def vehicle_ids_of(
    terminal_ids: Sequence[str | None], terminals: Mapping[str, Any]
) -> tuple[NDArray[np.int32], NDArray[np.int32]]:
    """Vehicle id and terminal number per message (0 where the terminal is unknown)."""
    known = [terminals.get(t) if t else None for t in terminal_ids]
    vehicle = np.fromiter((k.vehicle_id if k else 0 for k in known), dtype=np.int32, count=len(known))
    number = np.fromiter((k.terminal_no if k else 0 for k in known), dtype=np.int32, count=len(known))
    return vehicle, number


def _owntracks_fix(doc: dict[str, Any]) -> dict[str, Any]:
    """An OwnTracks location as our fix keys (store.fixcolumns: ``owntracks_key``); times are epoch s."""
    fix: dict[str, Any] = {}
    for column in payload_columns():
        if column.owntracks_key is None or column.payload_key is None:
            continue
        value = doc.get(column.owntracks_key)
        if (
            column.sql_type is SqlType.TIMESTAMPTZ
            and isinstance(value, int | float)
            and type(value) is not bool
        ):
            value = value * 1000
        fix[column.payload_key] = value
    return fix


def _fix_list(doc: Any, topic: str) -> tuple[list[Any] | None, Reason | None, str]:
    """The fix documents a payload carries, or the message-level reason it carries none."""
    if topic.startswith("owntracks/"):
        if type(doc) is not dict:
            return None, Reason.WRONG_TYPE, f"OwnTracks payload is a JSON {type(doc).__name__}, not an object"
        kind = doc.get("_type")
        if kind != "location":
            return None, Reason.NOT_A_POSITION, f"OwnTracks _type {str(kind)[:40]!r} carries no position"
        return [_owntracks_fix(doc)], None, ""
    if type(doc) is list:
        return doc, None, ""
    if type(doc) is dict:
        if "fixes" in doc:
            fixes = doc["fixes"]
            if type(fixes) is not list:
                return None, Reason.WRONG_TYPE, "'fixes' is not a list"
            return fixes, None, ""
        return [doc], None, ""
    return None, Reason.WRONG_TYPE, f"payload is a JSON {type(doc).__name__}, expected an object or a list"


def decode(
    messages: Sequence[Message], terminals: Mapping[str, object], limits: DecodeLimits = DecodeLimits()
) -> Decoded:
    """Split a batch of messages into fix columns and message-level rejections.

    ``terminals`` holds the known terminal ids; a message from another terminal is quarantined whole.
    """
    rejected: list[Rejected] = []
    terminal_ids: list[str | None] = []
    documents: list[Any] = []
    message_index: list[int] = []
    fix_index: list[int] = []
    for i, message in enumerate(messages):
        terminal_id = terminal_of(message.topic)
        terminal_ids.append(terminal_id)
        payload = message.payload

        def reject(
            reason: Reason,
            detail: str,
            i: int = i,
            payload: bytes = payload,
            terminal_id: str | None = terminal_id,
        ) -> None:
            rejected.append(
                Rejected(
                    message_index=i, reason=reason, detail=detail, payload=payload, terminal_id=terminal_id
                )
            )

        if terminal_id is None:
            reject(
                Reason.BAD_TOPIC,
                f"topic {message.topic[:120]!r} is not fleet/<terminal>/pos or owntracks/<u>/<d>",
            )
            continue
        if len(payload) > limits.max_payload_bytes:
            reject(Reason.OVERSIZED_PAYLOAD, f"{len(payload)} bytes > limit {limits.max_payload_bytes}")
            continue
        if terminal_id not in terminals:
            reject(Reason.UNKNOWN_TERMINAL, f"terminal {terminal_id!r} is not registered")
            continue
        try:
            doc = orjson.loads(payload)
        except orjson.JSONDecodeError as error:
            reject(Reason.MALFORMED_JSON, str(error)[:_FIELD_BYTES])
            continue
        items, reason, detail = _fix_list(doc, message.topic)
        if items is None:
            assert reason is not None
            reject(reason, detail)
            continue
        if not items:
            reject(Reason.WRONG_TYPE, "no fixes in payload")
            continue
        if len(items) > limits.max_fixes_per_message:
            reject(Reason.OVERSIZED_PAYLOAD, f"{len(items)} fixes > limit {limits.max_fixes_per_message}")
            continue
        documents.extend(items)
        message_index.extend([i] * len(items))
        fix_index.extend(range(len(items)))
    return Decoded(
        terminal_ids=terminal_ids,
        fixes=_columns(documents, message_index, fix_index),
        fix_documents=documents,
        rejected=rejected,
    )


class _Flags:
    """Collects the first reason per row while the columns are read."""

    def __init__(self, n: int) -> None:
        self.reason = np.zeros(n, dtype=np.uint8)
        self.detail: dict[int, str] = {}

    def one(self, row: int, reason: Reason, detail: str) -> None:
        if self.reason[row] == 0:
            self.reason[row] = CODE[reason]
            self.detail[row] = detail

    def mark(
        self, rows: Sequence[int] | NDArray[np.intp], reason: Reason, describe: Callable[[int], str]
    ) -> None:
        code = CODE[reason]
        for row in map(int, rows):
            if self.reason[row] == 0:
                self.reason[row] = code
                self.detail[row] = describe(row)


def _quote(value: object) -> str:
    try:
        text = orjson.dumps(value).decode()
    except TypeError:
        text = repr(value)
    return text[:_FIELD_BYTES]


_NUMBER = (int, float)
_NUMBER_OR_NONE = {int, float, type(None)}


def _number_column(
    values: list[Any], name: str, flags: _Flags, *, required: bool, dtype: type[np.floating[Any]]
) -> NDArray[Any]:
    column: NDArray[np.float64] | None = None
    if set(map(type, values)) <= _NUMBER_OR_NONE:
        try:
            column = np.array(values, dtype=np.float64)  # None → NaN (JSON itself carries no NaN)
        except OverflowError:
            column = None
        if column is not None:
            missing = np.isnan(column)
            if np.isinf(column).any():
                column = None
            elif required and missing.any():
                flags.mark(np.flatnonzero(missing), Reason.WRONG_TYPE, lambda r: f"missing {name}")
    if column is None:
        column = np.full(len(values), np.nan, dtype=np.float64)
        for row, value in enumerate(values):
            if value is None:
                if required:
                    flags.one(row, Reason.WRONG_TYPE, f"missing {name}")
            elif type(value) in _NUMBER:
                try:
                    number = float(value)
                except OverflowError:
                    number = math.inf
                if math.isfinite(number):
                    column[row] = number
                else:
                    flags.one(row, Reason.OUT_OF_RANGE, f"{name} is not finite: {_quote(value)}")
            else:
                flags.one(row, Reason.WRONG_TYPE, f"{name} is not a number: {_quote(value)}")
    if dtype is np.float32:
        too_big = np.flatnonzero(np.abs(column) > 1e30)
        if len(too_big):
            flags.mark(too_big, Reason.BAD_VALUE, lambda r: f"{name} out of range: {column[r]!r}")
            column[too_big] = np.nan
    return column.astype(dtype, copy=False)


def _int_column(
    values: list[Any], name: str, flags: _Flags, *, dtype: type[np.signedinteger[Any]]
) -> NDArray[Any]:
    top = int(np.iinfo(dtype).max)
    if set(map(type, values)) <= {int, type(None)}:
        ints = [-1 if v is None else cast(int, v) for v in values]
        if not ints or (min(ints) >= -1 and max(ints) <= top and ints.count(-1) == values.count(None)):
            return np.array(ints, dtype=dtype)
    out = np.full(len(values), -1, dtype=dtype)
    for row, value in enumerate(values):
        if value is None:
            continue
        if type(value) is int and 0 <= value <= top:
            out[row] = value
        elif type(value) is int:
            flags.one(row, Reason.BAD_VALUE, f"{name} out of range: {value}")
        else:
            flags.one(row, Reason.WRONG_TYPE, f"{name} is not an integer: {_quote(value)}")
    return out


def _bool_column(values: list[Any], name: str, flags: _Flags) -> NDArray[np.int16]:
    """1 / 0 / -1 (not reported). JSON booleans, or 0 and 1 as many terminal bridges send them."""
    out = np.full(len(values), -1, dtype=np.int16)
    if set(map(type, values)) <= {bool, type(None)}:
        return np.array([-1 if v is None else v for v in values], dtype=np.int16) if values else out
    for row, value in enumerate(values):
        if value is None:
            continue
        if type(value) is bool or (type(value) is int and value in (0, 1)):
            out[row] = int(value)
        else:
            flags.one(row, Reason.WRONG_TYPE, f"{name} is not a boolean: {_quote(value)}")
    return out


def _parse_iso_us(text: str) -> int | None:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _time_column(values: list[Any], name: str, flags: _Flags) -> NDArray[np.int64]:
    if set(map(type, values)) <= {int, float}:
        try:
            ms = np.array(values, dtype=np.float64)
            if np.isfinite(ms).all() and (np.abs(ms) < 1e15).all():
                return np.round(ms * 1000.0).astype(np.int64)
        except OverflowError:
            pass
    out = np.zeros(len(values), dtype=np.int64)
    for row, value in enumerate(values):
        if value is None:
            flags.one(row, Reason.WRONG_TYPE, f"missing {name}")
        elif type(value) in _NUMBER:
            try:
                number = float(value)
            except OverflowError:
                number = math.inf
            if math.isfinite(number) and abs(number) < 1e15:
                out[row] = round(number * 1000.0)
            else:
                flags.one(row, Reason.OUT_OF_RANGE, f"{name} out of range: {_quote(value)}")
        elif type(value) is str and (us := _parse_iso_us(value)) is not None:
            out[row] = us
        else:
            flags.one(row, Reason.WRONG_TYPE, f"{name} is not epoch ms or ISO 8601: {_quote(value)}")
    return out


_EXACT = 2.0**53  # every integer below this is exact in a float64


def _fast_numbers(
    objects: list[dict[str, Any]], present: set[str], declared: tuple[FixColumn, ...]
) -> dict[str, NDArray[Any]] | None:
    """The common case in one C-level pass: every fix carries the same numeric fields, all plain numbers
    in range. Anything else (a missing key, a string, a huge value) returns None: the per-field path
    then finds and names each problem. Keys are column names."""
    chosen = [
        c
        for c in declared
        if c.payload_key is not None and c.payload_key in present and c.sql_type is not SqlType.BOOL
    ]
    if not all(c.payload_key in present for c in declared if c.required):
        return None
    try:
        rows = list(map(itemgetter(*(c.payload_key for c in chosen)), objects))
    except KeyError:
        return None
    if len(chosen) == 1:
        rows = [(row,) for row in rows]
    if not set(map(type, chain.from_iterable(rows))) <= {int, float}:
        return None
    matrix = np.array(rows, dtype=np.float64).reshape(len(rows), len(chosen))
    if not np.isfinite(matrix).all() or (np.abs(matrix) >= _EXACT).any():
        return None
    out: dict[str, NDArray[Any]] = {}
    for j, column in enumerate(chosen):
        values = matrix[:, j]
        dtype = column.dtype
        if column.sql_type is SqlType.TIMESTAMPTZ:
            if (np.abs(values) >= 1e15).any():
                return None
            out[column.name] = np.round(values * 1000.0).astype(np.int64)
        elif dtype.kind == "i":
            if {type(row[j]) for row in rows} != {int} or values.min() < 0:
                return None
            if values.max() > np.iinfo(dtype).max:
                return None
            out[column.name] = values.astype(dtype)
        elif dtype == np.float32:
            if (np.abs(values) > 1e30).any():
                return None
            out[column.name] = values.astype(np.float32)
        else:
            out[column.name] = values
    return out


def _columns(docs: list[Any], message_index: list[int], fix_index: list[int]) -> Fixes:
    declared = payload_columns()
    flags = _Flags(len(docs))
    not_objects = [row for row, d in enumerate(docs) if type(d) is not dict]
    flags.mark(
        not_objects, Reason.WRONG_TYPE, lambda r: f"fix is a JSON {type(docs[r]).__name__}, not an object"
    )
    objects: list[dict[str, Any]] = [d if type(d) is dict else {} for d in docs] if not_objects else docs
    # one pass per field that occurs at all: most terminals send a handful of the optional fields
    present: set[str] = set().union(*objects) if objects else set()
    n = len(objects)
    fast = _fast_numbers(objects, present, declared) if not not_objects else None
    absent: list[Any] = [None] * n

    def read(column: FixColumn) -> NDArray[Any]:
        if fast is not None and column.name in fast:
            return fast[column.name]
        key = column.payload_key
        assert key is not None
        values = [d.get(key) for d in objects] if key in present else absent
        dtype = column.dtype
        if column.sql_type is SqlType.TIMESTAMPTZ:
            return _time_column(values, key, flags)
        if column.sql_type is SqlType.BOOL:
            # 1 / 0 / -1 (not reported); a column with a default holds it where not reported
            flags_ = _bool_column(values, key, flags) if key in present else np.full(n, -1, np.int16)
            if column.nullable:
                return flags_
            return np.where(flags_ < 0, bool(column.default), flags_ == 1)
        if dtype.kind == "f":
            if key not in present and not column.required:
                return np.full(n, np.nan, dtype=dtype)
            return _number_column(values, key, flags, required=column.required, dtype=dtype.type)
        if key not in present:
            return np.full(n, -1, dtype=dtype)
        return _int_column(values, key, flags, dtype=dtype.type)

    columns = {column.name: _read_only(read(column)) for column in declared}
    return Fixes(
        message_index=_read_only(np.array(message_index, dtype=np.int32)),
        fix_index=_read_only(np.array(fix_index, dtype=np.int32)),
        columns=MappingProxyType(columns),
        reason=_read_only(flags.reason),
        detail=MappingProxyType(flags.detail),
    )


def _read_only(values: NDArray[Any]) -> NDArray[Any]:
    view = values.view()
    view.flags.writeable = False
    return view
