"""PostgreSQL binary COPY payloads built from numpy columns, with no Python object per row."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

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
