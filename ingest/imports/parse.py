"""A table's cells checked and typed column by column against a kind's declaration.

Every problem is a ``RowError`` (row, column, value, reason), returned as a value: a file is judged
whole, so nothing stops at the first error. Coordinates given in GCJ-02 are converted to WGS-84 here,
all points of a column at once.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from enum import StrEnum
from typing import Any

import numpy as np
import orjson

from ingest.imports.kinds import Col, ColType, Kind
from ingest.imports.read import Table
from tracks.geo import gcj02_to_wgs84

CST = timezone(timedelta(hours=8))  # a time without an offset is China local time
FILE_ROW = 0  # row number of an error about the file (header) rather than a row
EARLIEST = datetime(1970, 1, 1, tzinfo=CST)  # records of a fleet, not of history: and no overflow
LATEST = datetime(2200, 1, 1, tzinfo=CST)  # when converted to UTC at either end of datetime's range
TRUE_WORDS = frozenset({"true", "1", "yes", "y", "t", "是"})
FALSE_WORDS = frozenset({"false", "0", "no", "n", "f", "否"})


class Datum(StrEnum):
    WGS84 = "wgs84"
    GCJ02 = "gcj02"  # Amap, Tencent: converted to WGS-84 on the way in


@dataclass(frozen=True, slots=True, kw_only=True)
class RowError:
    row_no: int  # 1 = the first data row; 0 = the file itself (its header)
    column: str
    value: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Parsed:
    row_count: int
    columns: Mapping[str, list[object]]  # typed values, None where empty; one list per declared column
    errors: tuple[RowError, ...]

    @property
    def bad_rows(self) -> frozenset[int]:
        return frozenset(e.row_no for e in self.errors)


class _BadCellError(ValueError):
    """A cell that is not what its column holds; the message is the reason."""


def _text(v: object) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))  # a code typed as a number in Excel
    if isinstance(v, (dict, list)):
        raise _BadCellError("text expected")
    text = str(v).strip()
    if "\x00" in text:
        raise _BadCellError("a NUL character in text")
    return text


def _int(v: object) -> int:
    n = _int_value(v)
    if not -(2**63) <= n < 2**63:
        raise _BadCellError("an integer out of range")
    return n


def _int_value(v: object) -> int:
    if isinstance(v, bool):
        raise _BadCellError("an integer expected")
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        if not v.is_integer():
            raise _BadCellError("an integer expected")
        return int(v)
    try:
        return int(str(v).strip())
    except ValueError:
        raise _BadCellError("an integer expected") from None


def _float(v: object) -> float:
    if isinstance(v, bool):
        raise _BadCellError("a number expected")
    try:
        x = float(v) if isinstance(v, (int, float)) else float(str(v).strip())
    except ValueError:
        raise _BadCellError("a number expected") from None
    if not math.isfinite(x):
        raise _BadCellError("a finite number expected")
    return x


def _bool(v: object) -> bool:
    if isinstance(v, bool):
        return v
    word = _text(v).lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise _BadCellError("true or false expected")


def _date(v: object) -> date:
    if isinstance(v, datetime):
        return v.date()
    if isinstance(v, date):
        return v
    try:
        return date.fromisoformat(str(v).strip())
    except ValueError:
        raise _BadCellError("a date YYYY-MM-DD expected") from None


def _time(v: object) -> datetime:
    if isinstance(v, datetime):
        t = v
    else:
        try:
            t = datetime.fromisoformat(str(v).strip())
        except ValueError:
            raise _BadCellError("a time YYYY-MM-DDTHH:MM[:SS][+08:00] expected") from None
    t = t.replace(tzinfo=CST) if t.tzinfo is None else t
    if not EARLIEST <= t <= LATEST:
        raise _BadCellError(f"a time between {EARLIEST.year} and {LATEST.year} expected")
    return t


def _clock(v: object) -> time:
    if isinstance(v, time):
        return v
    try:
        t = time.fromisoformat(str(v).strip())
    except ValueError:
        raise _BadCellError("a local time HH:MM expected") from None
    if t.tzinfo is not None:
        raise _BadCellError("a local time without an offset expected")
    return t


def _geometry(v: object, kind: str) -> dict[str, object]:
    if isinstance(v, str):
        try:
            v = orjson.loads(v)
        except orjson.JSONDecodeError:
            raise _BadCellError(f"a GeoJSON {kind} expected (not JSON)") from None
    if not isinstance(v, dict) or v.get("type") != kind:
        raise _BadCellError(f"a GeoJSON {kind} expected")
    coords = v.get("coordinates")
    rings = coords if kind == "Polygon" else [coords]
    if not isinstance(rings, list) or not rings:
        raise _BadCellError(f"a {kind} needs coordinates")
    clean: list[list[list[float]]] = []
    for ring in rings:
        points = _positions(ring)
        if kind == "LineString" and len(points) < 2:
            raise _BadCellError("a LineString needs at least 2 positions")
        if kind == "Polygon" and (len(points) < 4 or points[0] != points[-1]):
            raise _BadCellError("a Polygon ring needs at least 4 positions, the last equal to the first")
        clean.append(points)
    return {"type": kind, "coordinates": clean if kind == "Polygon" else clean[0]}


def _positions(ring: object) -> list[list[float]]:
    if not isinstance(ring, list):
        raise _BadCellError("positions must be a list of [lon, lat]")
    points: list[list[float]] = []
    for p in ring:
        if not isinstance(p, list) or len(p) < 2:
            raise _BadCellError("a position is [lon, lat]")
        lon, lat = _float(p[0]), _float(p[1])
        if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
            raise _BadCellError(f"position [{lon}, {lat}] is outside [-180, 180] x [-90, 90]")
        points.append([lon, lat])
    return points


PARSERS: Mapping[ColType, Callable[[object], object]] = {
    ColType.TEXT: _text,
    ColType.INT: _int,
    ColType.FLOAT: _float,
    ColType.BOOL: _bool,
    ColType.DATE: _date,
    ColType.TIME: _time,
    ColType.CLOCK: _clock,
    ColType.POLYGON: lambda v: _geometry(v, "Polygon"),
    ColType.LINE: lambda v: _geometry(v, "LineString"),
}


def _shown(v: object) -> str:
    if isinstance(v, (dict, list)):
        return orjson.dumps(v).decode()[:200]
    return "" if v is None else str(v)[:200]


def _check(col: Col, value: object) -> None:
    if col.choices and value not in col.choices:
        raise _BadCellError(f"one of {', '.join(col.choices)} expected")
    if col.pattern is not None and isinstance(value, str) and re.fullmatch(col.pattern, value) is None:
        raise _BadCellError(f"does not match {col.pattern}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if col.min_value is not None and value < col.min_value:
            raise _BadCellError(f"below the minimum {col.min_value:g}")
        if col.max_value is not None and value > col.max_value:
            raise _BadCellError(f"above the maximum {col.max_value:g}")


# A whole column of well-formed text (a CSV's usual case) is converted in one pass; any doubt (a
# non-text cell, an empty one, a failed conversion or check) falls back to the cell-by-cell path,
# which names every problem.
FAST: Mapping[ColType, Callable[[str], object]] = {
    ColType.TEXT: str.strip,
    ColType.INT: int,
    ColType.FLOAT: float,
    ColType.DATE: date.fromisoformat,
    ColType.TIME: datetime.fromisoformat,
}


def _parse_clean(col: Col, cells: Sequence[object]) -> list[object] | None:
    convert = FAST.get(col.type)
    if convert is None or not all(type(c) is str for c in cells):
        return None
    try:
        values: list[Any] = list(map(convert, cells))  # type: ignore[arg-type]
    except (ValueError, TypeError):
        return None
    if not values:
        return values
    if col.type is ColType.TEXT:
        if not all(values) or "\x00" in "".join(values):
            return None
        if col.choices and not set(values) <= set(col.choices):
            return None
        if col.pattern is not None and not all(map(re.compile(col.pattern).fullmatch, values)):
            return None
    elif col.type in (ColType.INT, ColType.FLOAT):
        low, high = min(values), max(values)
        if col.type is ColType.FLOAT and not np.isfinite(np.asarray(values, np.float64)).all():
            return None
        if col.type is ColType.INT and not (low >= -(2**63) and high < 2**63):
            return None
        if (col.min_value is not None and low < col.min_value) or (
            col.max_value is not None and high > col.max_value
        ):
            return None
    elif col.type is ColType.TIME:
        values = [t if t.tzinfo is not None else t.replace(tzinfo=CST) for t in values]
        if not (min(values) >= EARLIEST and max(values) <= LATEST):
            return None
    return values


def parse_column(col: Col, cells: Sequence[object], errors: list[RowError]) -> list[object]:
    """One column's cells typed and checked; row i of ``cells`` is file row i + 1."""
    clean = _parse_clean(col, cells)
    if clean is not None:
        return clean
    parse = PARSERS[col.type]
    out: list[object] = []
    for i, cell in enumerate(cells):
        if cell is None or (isinstance(cell, str) and not cell.strip()):
            if not col.optional:
                errors.append(RowError(row_no=i + 1, column=col.name, value="", reason="required"))
            out.append(col.default)
            continue
        try:
            value = parse(cell)
            _check(col, value)
        except _BadCellError as e:
            errors.append(RowError(row_no=i + 1, column=col.name, value=_shown(cell), reason=str(e)))
            value = None
        out.append(value)
    return out


def parse_table(
    kind: Kind, table: Table, *, datum: Datum = Datum.WGS84, defaults: Mapping[str, object] | None = None
) -> Parsed:
    """Check every cell of ``table`` against ``kind``; ``defaults`` fill a column's empty cells (--agency)."""
    errors: list[RowError] = []
    declared = {c.name: c for c in kind.columns}
    for name in table.header:
        if name not in declared:
            reason = f"unknown column; {kind.name} has {', '.join(declared)}"
            errors.append(RowError(row_no=FILE_ROW, column=name, value=name, reason=reason))
    index = {name: i for i, name in enumerate(table.header)}
    n = len(table.rows)
    for i, row in enumerate(table.rows):
        if len(row) > len(table.header):
            errors.append(
                RowError(
                    row_no=i + 1,
                    column="",
                    value=_shown(row[len(table.header)]),
                    reason=f"{len(row)} cells for {len(table.header)} columns",
                )
            )
    columns: dict[str, list[object]] = {}
    for col in kind.columns:
        given = (defaults or {}).get(col.name)
        if col.name not in index:
            if not col.optional and given is None:
                errors.append(RowError(row_no=FILE_ROW, column=col.name, value="", reason="missing column"))
            columns[col.name] = [given if given is not None else col.default] * n
            continue
        at = index[col.name]
        cells = [row[at] if at < len(row) else None for row in table.rows]
        if given is not None:
            cells = [given if c is None else c for c in cells]
        columns[col.name] = parse_column(col, cells, errors)
    _check_order(kind, columns, errors)
    _place_points(kind, columns, errors, datum)
    return Parsed(row_count=n, columns=columns, errors=tuple(sorted(errors, key=_error_order)))


def _error_order(e: RowError) -> tuple[int, str]:
    return (e.row_no, e.column)


def _check_order(kind: Kind, columns: Mapping[str, list[object]], errors: list[RowError]) -> None:
    for first, last in kind.ordered:
        strict = next(c.type for c in kind.columns if c.name == first) is ColType.CLOCK
        for i, (a, b) in enumerate(zip(columns[first], columns[last], strict=True)):
            if a is None or b is None:
                continue
            if b < a or (strict and b == a):  # type: ignore[operator]
                errors.append(
                    RowError(
                        row_no=i + 1, column=last, value=_shown(b), reason=f"before {first} ({_shown(a)})"
                    )
                )


def _place_points(kind: Kind, columns: dict[str, list[object]], errors: list[RowError], datum: Datum) -> None:
    """GCJ-02 → WGS-84 for points and geometries; a place without lon/lat takes its polygon's centroid."""
    geometry_cols = [c.name for c in kind.columns if c.type in (ColType.POLYGON, ColType.LINE)]
    if datum is Datum.GCJ02:
        if kind.point is not None:
            lon_name, lat_name = kind.point
            lons, lats = columns[lon_name], columns[lat_name]
            given = np.array([a is not None and b is not None for a, b in zip(lons, lats, strict=True)], bool)
            at = np.flatnonzero(given)
            x, y = gcj02_to_wgs84(
                np.array([lons[i] for i in at], np.float64), np.array([lats[i] for i in at], np.float64)
            )
            for i, xi, yi in zip(at.tolist(), x.tolist(), y.tolist(), strict=True):
                lons[i], lats[i] = xi, yi
        for name in geometry_cols:
            columns[name] = [_convert_geometry(g) for g in columns[name]]
    if kind.point is None or "polygon" not in columns:
        return
    lon_name, lat_name = kind.point
    bad = {(e.row_no, e.column) for e in errors}
    for i, polygon in enumerate(columns["polygon"]):
        if columns[lon_name][i] is not None and columns[lat_name][i] is not None:
            continue
        if isinstance(polygon, dict):
            ring = np.asarray(polygon["coordinates"][0][:-1], np.float64)
            columns[lon_name][i], columns[lat_name][i] = float(ring[:, 0].mean()), float(ring[:, 1].mean())
        elif (i + 1, "polygon") not in bad and (i + 1, lon_name) not in bad:
            errors.append(
                RowError(row_no=i + 1, column=lon_name, value="", reason="lon/lat or a polygon needed")
            )


def _convert_geometry(g: object) -> object:
    if not isinstance(g, dict):
        return g
    coords = g["coordinates"]
    rings = coords if g["type"] == "Polygon" else [coords]
    out = []
    for ring in rings:
        a = np.asarray(ring, np.float64)
        x, y = gcj02_to_wgs84(a[:, 0], a[:, 1])
        out.append(np.column_stack((x, y)).tolist())
    return {"type": g["type"], "coordinates": out if g["type"] == "Polygon" else out[0]}
