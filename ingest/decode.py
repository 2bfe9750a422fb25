"""MQTT messages → fix columns, or a quarantine reason. Never raises on input.

Accepted payloads (topic ``fleet/<terminal_id>/pos``):
  one fix     {"time": …, "lon": …, "lat": …, …}
  a batch     {"fixes": [fix, …]}   or   [fix, …]
where ``time`` is epoch milliseconds (number) or an ISO 8601 string (UTC unless it carries an offset),
and the optional fields are ``speed_kmh, heading_deg, altitude_m, satellites, hdop, accuracy_m, valid,
ignition, odometer_km, seq``.

OwnTracks (topic ``owntracks/<user>/<device>``, terminal id ``<user>:<device>``):
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
from typing import Any, cast

import numpy as np
import orjson
from numpy.typing import NDArray

from ingest.reasons import CODE, Reason

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
    """Decoded fixes as equal-length columns. Not-reported values are NaN (floats) or -1 (ints).

    ``reason`` holds a fix-level reason code (ingest.reasons.CODE), 0 where the fix passed decoding.
    """

    message_index: NDArray[np.int32]
    fix_index: NDArray[np.int32]
    t_us: NDArray[np.int64]
    lon: NDArray[np.float64]
    lat: NDArray[np.float64]
    speed_kmh: NDArray[np.float32]
    heading_deg: NDArray[np.float32]
    altitude_m: NDArray[np.float32]
    satellites: NDArray[np.int16]
    hdop: NDArray[np.float32]
    accuracy_m: NDArray[np.float32]
    valid: NDArray[np.bool_]
    ignition: NDArray[np.int16]
    odometer_km: NDArray[np.float64]
    seq: NDArray[np.int64]
    reason: NDArray[np.uint8]
    detail: dict[int, str]  # row → what was wrong, for rows with a reason

    def __len__(self) -> int:
        return len(self.t_us)


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
    tst = doc.get("tst")
    return {
        "time": tst * 1000 if isinstance(tst, int | float) and type(tst) is not bool else tst,
        "lon": doc.get("lon"),
        "lat": doc.get("lat"),
        "speed_kmh": doc.get("vel"),
        "heading_deg": doc.get("cog"),
        "altitude_m": doc.get("alt"),
        "accuracy_m": doc.get("acc"),
    }


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


def _time_column(values: list[Any], flags: _Flags) -> NDArray[np.int64]:
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
            flags.one(row, Reason.WRONG_TYPE, "missing time")
        elif type(value) in _NUMBER:
            try:
                number = float(value)
            except OverflowError:
                number = math.inf
            if math.isfinite(number) and abs(number) < 1e15:
                out[row] = round(number * 1000.0)
            else:
                flags.one(row, Reason.OUT_OF_RANGE, f"time out of range: {_quote(value)}")
        elif type(value) is str and (us := _parse_iso_us(value)) is not None:
            out[row] = us
        else:
            flags.one(row, Reason.WRONG_TYPE, f"time is not epoch ms or ISO 8601: {_quote(value)}")
    return out


_FIELDS = (
    "time",
    "lon",
    "lat",
    "speed_kmh",
    "heading_deg",
    "altitude_m",
    "satellites",
    "hdop",
    "accuracy_m",
    "valid",
    "ignition",
    "odometer_km",
    "seq",
)
_BOOLEAN = frozenset(("valid", "ignition"))
_INTEGER: dict[str, type[np.signedinteger[Any]]] = {"satellites": np.int16, "seq": np.int64}
_FLOAT32 = frozenset(("speed_kmh", "heading_deg", "altitude_m", "hdop", "accuracy_m"))
_EXACT = 2.0**53  # every integer below this is exact in a float64


def _fast_numbers(objects: list[dict[str, Any]], present: set[str]) -> dict[str, NDArray[Any]] | None:
    """The common case in one C-level pass: every fix carries the same numeric fields, all plain numbers
    in range. Anything else (a missing key, a string, a huge value) returns None: the per-field path
    then finds and names each problem."""
    names = [name for name in _FIELDS if name in present and name not in _BOOLEAN]
    if not {"time", "lon", "lat"} <= set(names):
        return None
    try:
        rows = list(map(itemgetter(*names), objects))
    except KeyError:
        return None
    if not set(map(type, chain.from_iterable(rows))) <= {int, float}:
        return None
    matrix = np.array(rows, dtype=np.float64)
    if not np.isfinite(matrix).all() or (np.abs(matrix) >= _EXACT).any():
        return None
    out: dict[str, NDArray[Any]] = {}
    for j, name in enumerate(names):
        column = matrix[:, j]
        if name in _INTEGER:
            if {type(row[j]) for row in rows} != {int} or column.min() < 0:
                return None
            if column.max() > np.iinfo(_INTEGER[name]).max:
                return None
            out[name] = column.astype(_INTEGER[name])
        elif name in _FLOAT32:
            if (np.abs(column) > 1e30).any():
                return None
            out[name] = column.astype(np.float32)
        elif name == "time":
            if (np.abs(column) >= 1e15).any():
                return None
            out[name] = np.round(column * 1000.0).astype(np.int64)
        else:
            out[name] = column
    return out


def _columns(docs: list[Any], message_index: list[int], fix_index: list[int]) -> Fixes:
    flags = _Flags(len(docs))
    not_objects = [row for row, d in enumerate(docs) if type(d) is not dict]
    flags.mark(
        not_objects, Reason.WRONG_TYPE, lambda r: f"fix is a JSON {type(docs[r]).__name__}, not an object"
    )
    objects: list[dict[str, Any]] = [d if type(d) is dict else {} for d in docs] if not_objects else docs
    # one pass per field that occurs at all: most terminals send a handful of the optional fields
    present: set[str] = set().union(*objects) if objects else set()
    n = len(objects)
    fast = _fast_numbers(objects, present) if not not_objects else None
    absent: list[Any] = [None] * n

    def values(name: str) -> list[Any]:
        return [d.get(name) for d in objects] if name in present else absent

    def number(name: str, dtype: type[np.floating[Any]], *, required: bool = False) -> NDArray[Any]:
        if fast is not None and name in fast:
            return fast[name]
        if name not in present and not required:
            return np.full(n, np.nan, dtype=dtype)
        return _number_column(values(name), name, flags, required=required, dtype=dtype)

    def integer(name: str, dtype: type[np.signedinteger[Any]]) -> NDArray[Any]:
        if fast is not None and name in fast:
            return fast[name]
        if name not in present:
            return np.full(n, -1, dtype=dtype)
        return _int_column(values(name), name, flags, dtype=dtype)

    def boolean(name: str) -> NDArray[np.int16]:
        if name not in present:
            return np.full(n, -1, dtype=np.int16)
        return _bool_column(values(name), name, flags)

    return Fixes(
        message_index=np.array(message_index, dtype=np.int32),
        fix_index=np.array(fix_index, dtype=np.int32),
        t_us=fast["time"] if fast is not None else _time_column(values("time"), flags),
        lon=number("lon", np.float64, required=True),
        lat=number("lat", np.float64, required=True),
        speed_kmh=number("speed_kmh", np.float32),
        heading_deg=number("heading_deg", np.float32),
        altitude_m=number("altitude_m", np.float32),
        satellites=integer("satellites", np.int16),
        hdop=number("hdop", np.float32),
        accuracy_m=number("accuracy_m", np.float32),
        valid=boolean("valid") != 0,  # not reported counts as valid
        ignition=boolean("ignition"),
        odometer_km=number("odometer_km", np.float64),
        seq=integer("seq", np.int64),
        reason=flags.reason,
        detail=flags.detail,
    )
