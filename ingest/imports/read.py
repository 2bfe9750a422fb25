"""Files to rows: CSV (UTF-8, UTF-8 with BOM, GB18030; lines starting with # are comments), XLSX
(python-calamine), GeoJSON, .osm.pbf.

A ``Table`` is the header and the rows as read, cells untyped (text from CSV; numbers, dates and text
from XLSX; dicts for GeoJSON geometries). Checking them is parse.py's job.
"""

from __future__ import annotations

import csv
import gc
import io
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

GEOMETRY_COLUMNS = {"Polygon": "polygon", "LineString": "geometry"}


class FileError(Exception):
    """A file that cannot be read at all (not a table, unknown format, broken encoding)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Table:
    header: tuple[str, ...]
    rows: Sequence[Sequence[object]]  # each as long as the header; None for an empty cell
    source: str  # a file name, or "api"


@contextmanager
def gc_paused() -> Iterator[None]:
    """While millions of small objects (cells, rows) are built: the cyclic collector would rescan the
    growing heap again and again (it halves the time of reading a million-row file). None of them form
    cycles; the collector runs again afterwards."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def decode_text(data: bytes) -> str:
    """UTF-8 (with or without a BOM), else GB18030 (a superset of GBK/GB2312, what Chinese Excel saves)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError as e:
        raise FileError(f"neither UTF-8 nor GB18030 text (byte {e.start})") from e


def read_csv(data: bytes, source: str) -> Table:
    reader = csv.reader(io.StringIO(decode_text(data), newline=""))
    header = next(reader, None)
    while header is not None and (not header or header[0].startswith("#")):
        header = next(reader, None)  # comment lines above the header (the packaged notices file has them)
    if header is None:
        raise FileError("the file is empty: a header line is needed")
    names = tuple(h.strip() for h in header)
    width = len(names)
    rows: list[list[object]] = []
    with gc_paused():
        for line in reader:  # empty and blank cells stay "": parse.py reads them as empty
            if not "".join(line).strip() or line[0].startswith("#"):
                continue  # a blank line (Excel leaves them at the end, as ",,,,"), or a comment
            if len(line) < width:
                line.extend([""] * (width - len(line)))  # longer rows keep their cells: parse.py reports them
            rows.append(line)  # type: ignore[arg-type]
    return Table(header=names, rows=rows, source=source)


def read_xlsx(data: bytes, source: str) -> Table:
    from python_calamine import CalamineError, CalamineWorkbook

    try:
        book = CalamineWorkbook.from_filelike(io.BytesIO(data))
        sheet: list[list[Any]] = book.get_sheet_by_index(0).to_python(skip_empty_area=False)
    except (CalamineError, ValueError, OSError) as e:
        raise FileError(f"not a readable XLSX workbook: {e}") from e
    if not sheet:
        raise FileError("the first sheet is empty: a header row is needed")
    names = tuple(str(h).strip() for h in sheet[0])
    while names and not names[-1]:
        names = names[:-1]
    rows: list[list[object]] = []
    for line in sheet[1:]:
        cells: list[object] = [None if c == "" else c for c in line]
        if all(c is None for c in cells):
            continue
        cells.extend([None] * (len(names) - len(cells)))
        while len(cells) > len(names) and cells[-1] is None:
            cells.pop()
        rows.append(cells)
    return Table(header=names, rows=rows, source=source)


def read_geojson(data: bytes, source: str) -> Table:
    """A FeatureCollection: properties become columns; a Point gives lon/lat, a Polygon ``polygon``, a
    LineString ``geometry``; a feature's ``id`` fills an absent ``key``."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise FileError(f"not JSON: {e}") from e
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise FileError("a GeoJSON FeatureCollection is expected")
    features = doc.get("features")
    if not isinstance(features, list):
        raise FileError("the FeatureCollection has no features list")
    records = [_feature_record(f) for f in features]
    return table_from_records(records, source)


def _feature_record(feature: object) -> dict[str, object]:
    if not isinstance(feature, dict):
        return {"geometry": feature}
    props = feature.get("properties") or {}
    record: dict[str, object] = dict(props) if isinstance(props, dict) else {}
    geometry = feature.get("geometry")
    kind = geometry.get("type") if isinstance(geometry, dict) else None
    if kind == "Point" and isinstance(geometry, dict):
        coords = geometry.get("coordinates")
        if isinstance(coords, list) and len(coords) >= 2:
            record.setdefault("lon", coords[0])
            record.setdefault("lat", coords[1])
    elif isinstance(kind, str) and kind in GEOMETRY_COLUMNS:
        record[GEOMETRY_COLUMNS[kind]] = geometry
    else:
        record["geometry"] = geometry  # parse.py names what is wrong with it
    if "id" in feature and "key" not in record:
        record["key"] = str(feature["id"])
    return record


def table_from_records(records: Sequence[Mapping[str, object]], source: str) -> Table:
    """JSON objects (the API's batch, GeoJSON features) as a table: the union of their fields."""
    names: dict[str, None] = {}
    for record in records:
        names.update(dict.fromkeys(record))
    header = tuple(names)
    rows = [[_cell(record.get(name)) for name in header] for record in records]
    return Table(header=header, rows=rows, source=source)


def _cell(value: object) -> object:
    return None if value == "" else value


def read_file(data: bytes, name: str) -> Table:
    """By the file name's ending: .csv, .xlsx, .geojson / .json, .osm.pbf / .osm."""
    lower = name.lower()
    if lower.endswith(".csv"):
        return read_csv(data, name)
    if lower.endswith(".xlsx"):
        return read_xlsx(data, name)
    if lower.endswith((".geojson", ".json")):
        return read_geojson(data, name)
    if lower.endswith((".osm.pbf", ".osm")):
        from ingest.imports.osm import read_osm

        return read_osm(data, name)
    raise FileError(f"{name}: unknown file type (expected .csv, .xlsx, .geojson, .osm.pbf)")


def read_path(path: Path) -> Table:
    return read_file(path.read_bytes(), path.name)
