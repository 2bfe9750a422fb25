"""The fix record, declared once: every column of ``position`` with its type, unit and where it comes from.

Everything that handles a fix derives from ``FIX_COLUMNS``: the decoder's output arrays (ingest.decode),
the binary COPY writer and reader (store.copy), the column lists of the ingest and engine SQL
(store.fixsql fills the ``{…}`` placeholders of store/queries/ingest.sql and engine.sql), the staging
tables (``LIKE position``) and the engine's ``Track`` (engine columns that are not one of Track's own
arrive in ``Track.extra``). Adding a fix field is one entry here plus a migration that adds the column
(and to ``latest_position`` when ``latest``); tests/test_fix_declaration.py checks both agree.

Inside Python a value that was not reported is a sentinel — NaN for floats, -1 for integers and for a
nullable boolean (held as int16 -1/0/1) — and it is NULL in the database.

Read the declaration through ``fix_columns()`` (not ``from … import FIX_COLUMNS``), so that whatever
derives from it sees the same tuple (the fix-declaration test adds a throw-away column this way).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

import numpy as np


class Source(StrEnum):
    """Where a column's values come from."""

    PAYLOAD = "payload"  # a key of the terminal's JSON fix
    REGISTRY = "registry"  # the terminal registry (the message's topic names the terminal)
    RECEIVED = "received"  # when ingest received the message


class SqlType(StrEnum):
    """The PostgreSQL types a fix column may have: fixed width, so COPY stays vectorized."""

    INT2 = "smallint"
    INT4 = "integer"
    INT8 = "bigint"
    FLOAT4 = "real"
    FLOAT8 = "double precision"
    BOOL = "boolean"
    TIMESTAMPTZ = "timestamp with time zone"


# per SQL type: numpy dtype of the values in Python, and the big-endian dtype on the COPY wire
_NUMPY: Final[dict[SqlType, type[np.generic]]] = {
    SqlType.INT2: np.int16,
    SqlType.INT4: np.int32,
    SqlType.INT8: np.int64,
    SqlType.FLOAT4: np.float32,
    SqlType.FLOAT8: np.float64,
    SqlType.BOOL: np.bool_,
    SqlType.TIMESTAMPTZ: np.int64,  # Unix epoch microseconds
}
_WIRE: Final[dict[SqlType, str]] = {
    SqlType.INT2: ">i2",
    SqlType.INT4: ">i4",
    SqlType.INT8: ">i8",
    SqlType.FLOAT4: ">f4",
    SqlType.FLOAT8: ">f8",
    SqlType.BOOL: "?",
    SqlType.TIMESTAMPTZ: ">i8",  # microseconds since 2000-01-01 UTC
}
_PG_NAME: Final[dict[SqlType, str]] = {  # the name COPY's writer takes (store.copy.WIRE)
    SqlType.INT2: "int2",
    SqlType.INT4: "int4",
    SqlType.INT8: "int8",
    SqlType.FLOAT4: "float4",
    SqlType.FLOAT8: "float8",
    SqlType.BOOL: "bool",
    SqlType.TIMESTAMPTZ: "timestamptz",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class FixColumn:
    """One column of ``position``.

    ``payload_key`` / ``owntracks_key``: the key in our JSON fix / in an OwnTracks location (None: not
    carried). ``nullable``: NULL when not reported; a column that is not nullable is required (the fix is
    quarantined without it) unless it has a ``default``. ``engine``: the track engine reads it.
    ``latest``: kept in ``latest_position``. ``compared``: a fix whose key is already stored with another
    value of this column is a conflict (quarantined), not a duplicate.
    """

    name: str
    sql_type: SqlType
    unit: str = ""
    nullable: bool = True
    source: Source = Source.PAYLOAD
    payload_key: str | None = None
    owntracks_key: str | None = None
    default: bool | None = None
    engine: bool = False
    latest: bool = False
    compared: bool = False

    @property
    def dtype(self) -> np.dtype[Any]:
        """The numpy dtype of the column's values in Python (a nullable boolean is int16 -1/0/1)."""
        if self.sql_type is SqlType.BOOL and self.nullable:
            return np.dtype(np.int16)
        return np.dtype(_NUMPY[self.sql_type])

    @property
    def wire(self) -> np.dtype[Any]:
        """The column's dtype on the binary COPY wire."""
        return np.dtype(_WIRE[self.sql_type])

    @property
    def pg_name(self) -> str:
        return _PG_NAME[self.sql_type]

    @property
    def floating(self) -> bool:
        return self.sql_type in (SqlType.FLOAT4, SqlType.FLOAT8)

    @property
    def required(self) -> bool:
        return not self.nullable and self.default is None


FIX_COLUMNS: tuple[FixColumn, ...] = (
    FixColumn(name="vehicle_id", sql_type=SqlType.INT4, nullable=False, source=Source.REGISTRY, engine=True,
              latest=True),
    FixColumn(name="fix_at", sql_type=SqlType.TIMESTAMPTZ, unit="µs since 1970 (UTC)", nullable=False,
              payload_key="time", owntracks_key="tst", engine=True, latest=True),
    FixColumn(name="received_at", sql_type=SqlType.TIMESTAMPTZ, unit="µs since 1970 (UTC)", nullable=False,
              source=Source.RECEIVED, latest=True),
    FixColumn(name="terminal_no", sql_type=SqlType.INT4, nullable=False, source=Source.REGISTRY),
    FixColumn(name="lon", sql_type=SqlType.FLOAT8, unit="degrees WGS-84", nullable=False, payload_key="lon",
              owntracks_key="lon", engine=True, latest=True, compared=True),
    FixColumn(name="lat", sql_type=SqlType.FLOAT8, unit="degrees WGS-84", nullable=False, payload_key="lat",
              owntracks_key="lat", engine=True, latest=True, compared=True),
    FixColumn(name="speed_kmh", sql_type=SqlType.FLOAT4, unit="km/h", payload_key="speed_kmh",
              owntracks_key="vel", engine=True, latest=True, compared=True),
    FixColumn(name="heading_deg", sql_type=SqlType.FLOAT4, unit="degrees from north",
              payload_key="heading_deg", owntracks_key="cog", latest=True, compared=True),
    FixColumn(name="altitude_m", sql_type=SqlType.FLOAT4, unit="m", payload_key="altitude_m",
              owntracks_key="alt", compared=True),
    FixColumn(name="satellites", sql_type=SqlType.INT2, payload_key="satellites"),
    FixColumn(name="hdop", sql_type=SqlType.FLOAT4, payload_key="hdop"),
    FixColumn(name="accuracy_m", sql_type=SqlType.FLOAT4, unit="m", payload_key="accuracy_m",
              owntracks_key="acc"),
    FixColumn(name="valid", sql_type=SqlType.BOOL, nullable=False, payload_key="valid", default=True,
              compared=True),
    FixColumn(name="ignition", sql_type=SqlType.BOOL, payload_key="ignition", engine=True, latest=True,
              compared=True),
    FixColumn(name="odometer_km", sql_type=SqlType.FLOAT8, unit="km", payload_key="odometer_km", engine=True,
              latest=True, compared=True),
    FixColumn(name="seq", sql_type=SqlType.INT8, payload_key="seq"),
)  # fmt: skip


def fix_columns() -> tuple[FixColumn, ...]:
    """The declaration as it stands now (read at call time: see the module docstring)."""
    return FIX_COLUMNS


def adopt(declared: tuple[FixColumn, ...]) -> None:
    """Use ``declared`` in this process. A spawned child (the ingest store process) imports this module
    afresh; it adopts its parent's declaration so that both sides derive the same columns."""
    global FIX_COLUMNS  # noqa: PLW0603 - the one place the declaration is replaced, on purpose
    FIX_COLUMNS = declared


def fix_column(name: str) -> FixColumn:
    for column in FIX_COLUMNS:
        if column.name == name:
            return column
    raise KeyError(f"no fix column {name!r}")


def payload_columns() -> tuple[FixColumn, ...]:
    return tuple(c for c in FIX_COLUMNS if c.source is Source.PAYLOAD)


def latest_columns() -> tuple[FixColumn, ...]:
    return tuple(c for c in FIX_COLUMNS if c.latest)


def engine_columns() -> tuple[FixColumn, ...]:
    """What the engine reads, vehicle and time first (its COPY reader's layout)."""
    return tuple(c for c in FIX_COLUMNS if c.engine)


def compared_columns() -> tuple[FixColumn, ...]:
    return tuple(c for c in FIX_COLUMNS if c.compared)


def missing_value(column: FixColumn) -> float | int | bool:
    """The Python sentinel for "not reported" (NaN, -1), or the default of a column that has one."""
    if column.default is not None:
        return column.default
    return float("nan") if column.floating else -1
