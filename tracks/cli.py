"""``fleetwatch analyze FILE.csv [--route ROUTE.geojson]``: the track engine on a CSV export, no database.

For auditors handed a terminal's data dump. The CSV has a header row with the columns
``vehicle_id, time, lon, lat`` and optionally ``speed_kmh, ignition, odometer_km`` (empty = not
reported); ``time`` is ISO 8601 or epoch seconds. One JSON line per trip goes to stdout.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray

from tracks.conform import Conformance, Routes, conform_trips, routes_from
from tracks.geo import gcj02_to_wgs84
from tracks.params import Params
from tracks.pipeline import Context, run_fleet
from tracks.track import IGNITION_OFF, IGNITION_ON, IGNITION_UNKNOWN, make_track

REQUIRED = ("vehicle_id", "time", "lon", "lat")
OPTIONAL = ("speed_kmh", "ignition", "odometer_km")
_IGNITION = {
    "1": IGNITION_ON, "true": IGNITION_ON, "on": IGNITION_ON, "yes": IGNITION_ON,
    "0": IGNITION_OFF, "false": IGNITION_OFF, "off": IGNITION_OFF, "no": IGNITION_OFF,
}  # fmt: skip


class InputError(Exception):
    """The CSV or the route file cannot be read; the message names the file, line and column."""


def add_analyze_parser(sub: Any) -> None:
    analyze = sub.add_parser(
        "analyze",
        help="run the track engine on a CSV export (no database); one JSON line per trip",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    analyze.add_argument("file", type=Path, help="CSV with a header row")
    analyze.add_argument("--route", type=Path, help="approved route: a GeoJSON LineString (Feature)")
    analyze.add_argument(
        "--route-datum",
        choices=("wgs84", "gcj02"),
        default="wgs84",
        help="datum of the route's coordinates (gcj02: drawn on Amap or Tencent maps)",
    )
    analyze.add_argument(
        "--utc-offset",
        default="+08:00",
        help="offset of times written without one, and of the times printed (default +08:00)",
    )
    analyze.set_defaults(func=cmd_analyze)


def cmd_analyze(args: argparse.Namespace) -> int:
    try:
        zone = _zone(args.utc_offset)
        fixes = read_fixes(args.file, zone)
        route = read_route(args.route, args.route_datum) if args.route else None
    except InputError as error:
        print(f"fleetwatch analyze: {error}", file=sys.stderr)
        return 2
    track = make_track(
        vehicle_id=fixes.vehicle_code,
        t_us=fixes.t_us,
        lon=fixes.lon,
        lat=fixes.lat,
        speed_kmh=fixes.speed_kmh,
        ignition=fixes.ignition,
        odometer_km=fixes.odometer_km,
    )
    params = Params()
    result = run_fleet(track, Context(), params)
    trips = result.trips
    conformance = None
    if route is not None:
        pairs = len(trips)
        conformance = conform_trips(
            result.kept,
            trips,
            trip=np.arange(pairs, dtype=np.int64),
            routes=route,
            route=np.zeros(pairs, np.int64),
            destination_lon=np.full(pairs, route.lon[-1]),
            destination_lat=np.full(pairs, route.lat[-1]),
            params=params.conform,
        )
    out = sys.stdout
    for k in range(len(trips)):
        line: dict[str, object] = {
            "vehicle_id": fixes.labels[int(trips.vehicle_id[k])],
            "start": _iso(int(trips.start_us[k]), zone),
            "end": _iso(int(trips.end_us[k]), zone),
            "distance_m": round(float(trips.distance_m[k]), 1),
            "duration_s": round(float(trips.duration_s[k]), 1),
            "moving_s": round(float(trips.moving_s[k]), 1),
            "bridged_m": round(float(trips.bridged_m[k]), 1),
            "speed_distance_m": _number(trips.speed_distance_m[k]),
            "max_speed_kmh": _number(trips.max_speed_kmh[k]),
            "odometer_m": _number(trips.odometer_m[k]),
            "odometer_confidence": round(float(trips.odometer_confidence[k]), 3),
        }
        if conformance is not None:
            line |= _conformance(conformance, k)
        out.write(orjson.dumps(line).decode() + "\n")
    return 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Fixes:
    """The CSV's rows as columns; vehicles numbered 0, 1, … in order of their label."""

    labels: list[str]
    vehicle_code: NDArray[np.int64]
    t_us: NDArray[np.int64]
    lon: NDArray[np.float64]
    lat: NDArray[np.float64]
    speed_kmh: NDArray[np.float64]
    ignition: NDArray[np.int8]
    odometer_km: NDArray[np.float64]


def read_fixes(path: Path, zone: timezone) -> Fixes:
    columns: dict[str, list[Any]] = {name: [] for name in (*REQUIRED, *OPTIONAL)}
    for line, row in _rows(path):
        columns["vehicle_id"].append(_text(row, "vehicle_id", path, line))
        columns["time"].append(_time(row, path, line, zone))
        for name in ("lon", "lat"):
            columns[name].append(_float(row, name, path, line, required=True))
        for name in ("speed_kmh", "odometer_km"):
            columns[name].append(_float(row, name, path, line, required=False))
        columns["ignition"].append(_ignition(row, path, line))
    labels, codes = np.unique(np.array(columns["vehicle_id"], dtype=str), return_inverse=True)
    return Fixes(
        labels=[str(label) for label in labels],
        vehicle_code=np.asarray(codes, dtype=np.int64).ravel(),
        t_us=np.array(columns["time"], dtype=np.int64),
        lon=np.array(columns["lon"], dtype=np.float64),
        lat=np.array(columns["lat"], dtype=np.float64),
        speed_kmh=np.array(columns["speed_kmh"], dtype=np.float64),
        ignition=np.array(columns["ignition"], dtype=np.int8),
        odometer_km=np.array(columns["odometer_km"], dtype=np.float64),
    )


def _rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [name.strip() for name in reader.fieldnames or []]
            missing = [name for name in REQUIRED if name not in header]
            if missing:
                raise InputError(
                    f"{path}:1: missing column {', '.join(repr(m) for m in missing)}"
                    f" (the header has: {', '.join(header) or 'nothing'})"
                )
            reader.fieldnames = header
            for row in reader:
                if None in row:
                    raise InputError(f"{path}:{reader.line_num}: more fields than the header has columns")
                yield reader.line_num, {k: (v or "").strip() for k, v in row.items()}
    except OSError as error:
        raise InputError(f"{path}: cannot read: {error.strerror}") from error
    except (UnicodeDecodeError, csv.Error) as error:
        raise InputError(f"{path}: not a UTF-8 CSV file: {error}") from error


def _text(row: dict[str, str], name: str, path: Path, line: int) -> str:
    value = row.get(name, "")
    if not value:
        raise InputError(f"{path}:{line}: column {name!r} is empty")
    return value


def _float(row: dict[str, str], name: str, path: Path, line: int, *, required: bool) -> float:
    value = row.get(name, "")
    if not value and not required:
        return math.nan
    try:
        number = float(value)
    except ValueError:
        raise InputError(f"{path}:{line}: column {name!r}: {value!r} is not a number") from None
    if not math.isfinite(number):
        raise InputError(f"{path}:{line}: column {name!r}: {value!r} is not a finite number")
    return number


def _ignition(row: dict[str, str], path: Path, line: int) -> int:
    value = row.get("ignition", "").lower()
    if not value:
        return IGNITION_UNKNOWN
    if value not in _IGNITION:
        raise InputError(f"{path}:{line}: column 'ignition': {value!r} is not one of 1/0, true/false, on/off")
    return _IGNITION[value]


def _time(row: dict[str, str], path: Path, line: int, zone: timezone) -> int:
    value = _text(row, "time", path, line)
    try:
        return round(float(value) * 1e6)  # epoch seconds
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InputError(
            f"{path}:{line}: column 'time': {value!r} is neither ISO 8601 nor epoch seconds"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    whole = int(moment.replace(microsecond=0).timestamp())
    return whole * 1_000_000 + moment.microsecond


def read_route(path: Path, datum: str) -> Routes:
    """The LineString of a GeoJSON geometry, Feature or FeatureCollection (its first LineString)."""
    try:
        document = orjson.loads(path.read_bytes())
    except OSError as error:
        raise InputError(f"{path}: cannot read: {error.strerror}") from error
    except orjson.JSONDecodeError as error:
        raise InputError(f"{path}: not JSON: {error}") from error
    geometry = _line_string(document)
    if geometry is None:
        raise InputError(f"{path}: no LineString geometry found")
    try:
        coords = np.array(geometry["coordinates"], dtype=np.float64)
    except (KeyError, TypeError, ValueError):
        raise InputError(f"{path}: the LineString's coordinates are not [lon, lat] number pairs") from None
    if coords.ndim != 2 or coords.shape[1] < 2 or len(coords) < 2 or not np.all(np.isfinite(coords[:, :2])):
        raise InputError(f"{path}: the LineString needs at least two [lon, lat] positions")
    lon, lat = coords[:, 0], coords[:, 1]
    if np.any(np.abs(lon) > 180) or np.any(np.abs(lat) > 90):
        raise InputError(f"{path}: coordinates outside ±180/±90 (GeoJSON is [lon, lat])")
    if datum == "gcj02":
        lon, lat = gcj02_to_wgs84(lon, lat)
    return routes_from([lon], [lat])


def _line_string(document: object) -> dict[str, Any] | None:
    if not isinstance(document, dict):
        return None
    kind = document.get("type")
    if kind == "LineString":
        return document
    if kind == "Feature":
        return _line_string(document.get("geometry"))
    if kind == "FeatureCollection":
        for feature in document.get("features") or []:
            found = _line_string(feature)
            if found is not None:
                return found
    return None


def _zone(offset: str) -> timezone:
    try:
        moment = datetime.fromisoformat(f"2000-01-01T00:00:00{offset}")
    except ValueError:
        raise InputError(f"--utc-offset {offset!r} is not an offset like +08:00") from None
    assert moment.tzinfo is not None
    return timezone(moment.tzinfo.utcoffset(None) or timedelta(0))


def _iso(t_us: int, zone: timezone) -> str:
    return datetime.fromtimestamp(t_us / 1e6, tz=zone).isoformat(timespec="seconds")


def _number(value: np.floating[Any]) -> float | None:
    number = float(value)
    return round(number, 3) if math.isfinite(number) else None


def _conformance(conformance: Conformance, k: int) -> dict[str, object]:
    return {
        "inside_share": _number(conformance.inside_share[k]),
        "max_deviation_m": _number(conformance.max_deviation_m[k]),
        "off_route_m": _number(conformance.off_route_m[k]),
        "approved_m": _number(conformance.approved_m[k]),
        "detour_ratio": _number(conformance.detour_ratio[k]),
        "arrived": bool(conformance.arrived[k]),
        "arrival_distance_m": _number(conformance.arrival_distance_m[k]),
    }
