"""PostgreSQL binary COPY, both ways, between numpy columns and the wire: no Python object per row.

``binary_copy_payload`` writes (``fix_copy_columns`` picks a fix's columns from store.fixcolumns);
``read_binary_copy`` reads a stream of fixed-width rows back into columns (the track engine's input).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from store.fixcolumns import FixColumn, SqlType

_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_TRAILER = b"\xff\xff"
PG_EPOCH_US = 946_684_800 * 1_000_000  # 2000-01-01T00:00:00Z in Unix microseconds

# PostgreSQL binary wire type of each type we write (all fixed width, big-endian).
WIRE = {
    "int2": ">i2",
    "int4": ">i4",
    "int8": ">i8",
    "float4": ">f4",
    "float8": ">f8",
    "bool": "?",
    "timestamptz": ">i8",  # microseconds since 2000-01-01 UTC
}

# (name, PostgreSQL type, values) or (name, PostgreSQL type, values, NULL mask)
Column = tuple[str, str, NDArray[np.generic]] | tuple[str, str, NDArray[np.generic], NDArray[np.bool_] | None]


def _records(columns: Sequence[Column], rows: NDArray[np.intp] | slice, null: Sequence[bool]) -> bytes:
    """Rows that share one NULL pattern have one fixed layout: one structured array for all of them."""
    fields: list[tuple[str, str]] = [("nfields", ">i2")]
    for column, is_null in zip(columns, null, strict=True):
        name, pg_type = column[0], column[1]
        fields.append((f"{name}__len", ">i4"))
        if not is_null:
            fields.append((name, WIRE[pg_type]))
    values0 = columns[0][2][rows]
    record = np.empty(len(values0), dtype=np.dtype(fields))
    record["nfields"] = len(columns)
    for column, is_null in zip(columns, null, strict=True):
        name, pg_type, values = column[0], column[1], column[2][rows]
        if is_null:
            record[f"{name}__len"] = -1
        else:
            record[f"{name}__len"] = record.dtype[name].itemsize
            record[name] = values - PG_EPOCH_US if pg_type == "timestamptz" else values
    return record.tobytes()


def binary_copy_payload(columns: Sequence[Column]) -> bytes:
    """One COPY … (FORMAT BINARY) stream for equal-length, fixed-width columns.

    ``timestamptz`` values are Unix epoch microseconds (int64). A column may carry a NULL mask; rows are
    grouped by their NULL pattern (COPY does not care about row order), so the work stays vectorized.
    """
    if not columns:
        raise ValueError("no columns")
    n = len(columns[0][2])
    for column in columns:
        if len(column[2]) != n:
            raise ValueError(f"column {column[0]} has {len(column[2])} values, expected {n}")
    masks = [(i, c[3]) for i, c in enumerate(columns) if len(c) == 4 and c[3] is not None and c[3].any()]
    if not masks:
        return _HEADER + _records(columns, slice(None), [False] * len(columns)) + _TRAILER
    pattern = np.zeros(n, dtype=np.int64)
    for bit, (_, mask) in enumerate(masks):
        pattern |= mask.astype(np.int64) << bit
    parts = [_HEADER]
    for key in np.unique(pattern).tolist():
        rows = np.flatnonzero(pattern == key)
        null = [False] * len(columns)
        for bit, (i, _) in enumerate(masks):
            null[i] = bool(key >> bit & 1)
        parts.append(_records(columns, rows, null))
    parts.append(_TRAILER)
    return b"".join(parts)


def fix_copy_columns(
    declared: Sequence[FixColumn], values: Mapping[str, NDArray[Any]], rows: NDArray[np.intp] | slice
) -> list[Column]:
    """COPY columns for ``rows`` of fix columns held with the declaration's sentinels (NaN, -1 and a
    nullable boolean as -1/0/1): what was not reported goes as NULL."""
    out: list[Column] = []
    for column in declared:
        value = values[column.name][rows]
        if not column.nullable:
            out.append((column.name, column.pg_name, value))
        elif column.sql_type is SqlType.BOOL:
            out.append((column.name, "bool", value == 1, value < 0))
        elif column.floating:
            out.append((column.name, column.pg_name, value, np.isnan(value)))
        else:
            out.append((column.name, column.pg_name, value, value < 0))
    return out


# --- reading ---------------------------------------------------------------------------------------

_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_OIDS_FLAG = 1 << 16


class CopyFormatError(ValueError):
    """A binary COPY stream does not have the layout its reader expects (a NULL, another column count or
    type, a cut stream)."""


# (name, PostgreSQL type as in WIRE): the columns a reader expects, in order
Layout = Sequence[tuple[str, str]]


def read_binary_copy(data: bytes | bytearray | memoryview, layout: Layout) -> dict[str, NDArray[Any]]:
    """Columns of a ``COPY … TO STDOUT (FORMAT BINARY)`` stream whose rows all have ``layout``: fixed
    width, no NULLs (the query substitutes its own sentinel, e.g. ``coalesce(x, 'NaN')``). Arrays are
    native-endian; ``timestamptz`` comes as Unix epoch microseconds. Anything else raises
    CopyFormatError saying what and where."""
    view = memoryview(data).cast("B")
    if len(view) < len(_SIGNATURE) + 8 or bytes(view[: len(_SIGNATURE)]) != _SIGNATURE:
        raise CopyFormatError("not a binary COPY stream (no PGCOPY signature)")
    flags = int.from_bytes(view[11:15], "big")
    if flags & _OIDS_FLAG:
        raise CopyFormatError("COPY stream carries OIDs; expected none")
    extension = int.from_bytes(view[15:19], "big", signed=True)
    start = 19 + extension
    if extension < 0 or start > len(view):
        raise CopyFormatError(f"COPY header extension of {extension} bytes does not fit the stream")
    body = view[start:]
    record = _record_dtype(layout)
    if len(body) < 2 or bytes(body[-2:]) != _TRAILER or (len(body) - 2) % record.itemsize:
        raise CopyFormatError(_diagnose(bytes(body), layout))
    rows = np.frombuffer(body[: len(body) - 2], dtype=record)
    bad = rows["nfields"] != len(layout)
    for k, (_, pg_type) in enumerate(layout):
        bad |= rows[f"l{k}"] != np.dtype(WIRE[pg_type]).itemsize
    if bad.any():
        raise CopyFormatError(_diagnose(bytes(body), layout))
    out: dict[str, NDArray[Any]] = {}
    for name, pg_type in layout:
        values = rows[name]
        native = values.astype(values.dtype.newbyteorder("="))
        out[name] = native + PG_EPOCH_US if pg_type == "timestamptz" else native
    return out


def _record_dtype(layout: Layout) -> np.dtype[np.void]:
    fields: list[tuple[str, str]] = [("nfields", ">i2")]
    for k, (name, pg_type) in enumerate(layout):
        if pg_type not in WIRE:
            raise ValueError(f"column {name}: no fixed-width binary COPY type {pg_type!r}")
        fields += [(f"l{k}", ">i4"), (name, WIRE[pg_type])]
    return np.dtype(fields)


def _diagnose(body: bytes, layout: Layout) -> str:
    """Walk the rows one by one (only once something is wrong) and say what the first problem is."""
    at, row = 0, 0
    while True:
        if at + 2 > len(body):
            return f"COPY stream cut short in row {row} (no trailer)"
        nfields = int.from_bytes(body[at : at + 2], "big", signed=True)
        if nfields == -1:
            rest = len(body) - at - 2
            return f"{rest} bytes after the COPY trailer" if rest else "COPY stream is well formed"
        if nfields != len(layout):
            return (
                f"row {row} has {nfields} columns, expected {len(layout)} ({', '.join(n for n, _ in layout)})"
            )
        at += 2
        for name, pg_type in layout:
            if at + 4 > len(body):
                return f"COPY stream cut short in row {row}, column {name}"
            size = int.from_bytes(body[at : at + 4], "big", signed=True)
            at += 4
            if size == -1:
                return f"NULL in column {name}, row {row}: the query must substitute a value"
            expected = np.dtype(WIRE[pg_type]).itemsize
            if size != expected:
                return f"column {name} (row {row}) is {size} bytes wide, expected {expected} ({pg_type})"
            if at + size > len(body):
                return f"COPY stream cut short in row {row}, column {name}"
            at += size
        row += 1
