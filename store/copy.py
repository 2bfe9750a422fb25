"""PostgreSQL binary COPY payloads built from numpy columns, with no Python object per row."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_TRAILER = b"\xff\xff"
PG_EPOCH_US = 946_684_800 * 1_000_000  # 2000-01-01T00:00:00Z in Unix microseconds

# PostgreSQL binary wire type of each numpy kind we write (all fixed width, big-endian).
WIRE = {
    "int2": ">i2",
    "int4": ">i4",
    "int8": ">i8",
    "float4": ">f4",
    "float8": ">f8",
    "bool": "?",
    "timestamptz": ">i8",  # microseconds since 2000-01-01 UTC
}

Column = tuple[str, str, NDArray[np.generic]]  # (name, PostgreSQL type, values)


def binary_copy_payload(columns: Sequence[Column]) -> bytes:
    """One COPY … (FORMAT BINARY) stream for equal-length, NULL-free, fixed-width columns.

    ``timestamptz`` values are Unix epoch microseconds (int64); they are shifted to PostgreSQL's epoch here.
    Absent values are written as sentinels (NaN, -1) and turned into NULL by the SQL that reads the stage.
    """
    if not columns:
        raise ValueError("no columns")
    n = len(columns[0][2])
    fields: list[tuple[str, str]] = [("nfields", ">i2")]
    for name, pg_type, values in columns:
        if len(values) != n:
            raise ValueError(f"column {name} has {len(values)} values, expected {n}")
        fields += [(f"{name}__len", ">i4"), (name, WIRE[pg_type])]
    record = np.empty(n, dtype=np.dtype(fields))
    record["nfields"] = len(columns)
    for name, pg_type, values in columns:
        record[f"{name}__len"] = record.dtype[name].itemsize
        record[name] = values - PG_EPOCH_US if pg_type == "timestamptz" else values
    return _HEADER + record.tobytes() + _TRAILER
