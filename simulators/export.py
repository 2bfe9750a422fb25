"""A simulated world written as import files (the formats of ``fleetwatch import``, README "Operating
the platform"), so that the demo and the accuracy benchmark load it through the same doors as an
operator: agencies, pools, depots, places (CSV) and forbidden zones (GeoJSON polygons), vehicles with
their terminals and maintenance work orders (XLSX), drivers, fuel cards, fuel-card transactions, the
holiday calendar, working hours, a threshold version, the road speed-limit layer (GeoJSON lines),
insurance policies and annual inspections.

Everything is named by code, never by database id: vehicles by plate, places and depots by code, fuel
records by card + time + station, repairs by work order. ``IMPORT_ORDER`` is the order the files must
be imported in (references first). Dispatch orders are not an import kind (they come through the
dispatch API); ``simulators.database.load_orders`` writes them by code.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from openpyxl import Workbook

from simulators.output import world_rows
from simulators.run import SimRun

IMPORT_ORDER = (
    "agencies",
    "pools",
    "depots",
    "places",
    "forbidden_zones",
    "vehicles",
    "drivers",
    "fuel_cards",
    "calendar",
    "working_hours",
    "thresholds",
    "roads",
    "insurance",
    "inspections",
    "fuel",
    "maintenance",
)
FUEL_PRICE_FEN_PER_L = 780  # 7.80 yuan a litre
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ("伟", "芳", "娜", "敏", "静", "强", "磊", "军", "洋", "勇", "艳", "杰", "涛", "明", "超")


def depot_code(depot_id: int) -> str:
    return f"DEP{depot_id:04d}"


def work_order(maintenance_record_id: int) -> str:
    return f"WO{maintenance_record_id:07d}"


def _time(t_s: float) -> str:
    """ISO 8601 with the China offset, to the second (as a station's system prints it)."""
    return (datetime.fromtimestamp(round(t_s), UTC) + timedelta(hours=8)).strftime("%Y-%m-%dT%H:%M:%S+08:00")


def _csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        out = csv.writer(f)
        out.writerow(header)
        for row in rows:
            out.writerow(["" if v is None else v for v in row])
    return path


def _xlsx(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> Path:
    book = Workbook(write_only=True)
    sheet = book.create_sheet("data")
    sheet.append(list(header))
    for row in rows:
        sheet.append(list(row))
    book.save(path)
    return path


def _geojson(path: Path, features: Iterable[dict[str, Any]]) -> Path:
    path.write_bytes(orjson.dumps({"type": "FeatureCollection", "features": list(features)}))
    return path


def export_world(run: SimRun, folder: Path) -> dict[str, Path]:
    """Write the run's world and records as import files into ``folder``; kind → file, in IMPORT_ORDER."""
    folder.mkdir(parents=True, exist_ok=True)
    world, truth = run.world, run.truth
    fleet = world.fleet
    rows = world_rows(run)
    agency_code = {a.agency_id: a.code for a in fleet.agencies}
    pool_code = {p.pool_id: p.code for p in fleet.pools}
    pool_agency = {p.pool_id: p.agency_id for p in fleet.pools}
    root = next(a for a in fleet.agencies if a.parent_agency_id is None)
    cars = fleet.vehicles
    files: dict[str, Path] = {}
    files["agencies"] = _csv(
        folder / "agencies.csv",
        ("code", "name", "parent_code"),
        ((a.code, a.name, agency_code.get(a.parent_agency_id or 0)) for a in fleet.agencies),
    )
    files["pools"] = _csv(
        folder / "pools.csv",
        ("code", "name", "kind", "agency_code"),
        ((p.code, p.name, p.kind.value, agency_code.get(p.agency_id or 0)) for p in fleet.pools),
    )
    files["depots"] = _csv(
        folder / "depots.csv",
        ("code", "pool_code", "name", "lon", "lat", "radius_m"),
        (
            (depot_code(d.depot_id), pool_code[d.pool_id], d.name, d.lon, d.lat, d.radius_m)
            for d in fleet.depots
        ),
    )
    places = rows["places"]
    files["places"] = _csv(
        folder / "places.csv",
        ("code", "kind", "name", "lon", "lat", "radius_m"),
        (
            (p["code"], p["kind"], p["name"], p["lon"], p["lat"], p["radius_m"])
            for p in places
            if not p["forbidden"]
        ),
    )
    files["forbidden_zones"] = _geojson(
        folder / "forbidden_zones.geojson",
        (
            {
                "type": "Feature",
                "geometry": p["polygon"],
                "properties": {
                    "code": p["code"],
                    "kind": p["kind"],
                    "name": p["name"],
                    "lon": p["lon"],
                    "lat": p["lat"],
                    "radius_m": p["radius_m"],
                },
            }
            for p in places
            if p["forbidden"] and p["polygon"] is not None
        ),
    )
    files["vehicles"] = _xlsx(
        folder / "vehicles.xlsx",
        (
            "plate",
            "kind",
            "seats",
            "pool_code",
            "agency_code",
            "depot_code",
            "status",
            "tank_l",
            "fuel_norm_l_per_100km",
            "terminal_id",
            "protocol",
        ),
        (
            (
                v.plate,
                v.kind.value,
                v.seats,
                pool_code[v.pool_id],
                agency_code.get(v.agency_id or 0, ""),
                depot_code(v.depot_id),
                "in_service",
                v.tank_l,
                v.fuel_norm_l_per_100km,
                v.terminal_id,
                "fleet",
            )
            for v in cars
        ),
    )
    files["drivers"] = _csv(
        folder / "drivers.csv",
        ("licence_no", "name", "agency_code", "licence_class", "licence_expires_on", "phone"),
        (
            (
                f"3204{v.vehicle_id:014d}",
                SURNAMES[v.vehicle_id % len(SURNAMES)] + GIVEN[v.vehicle_id * 7 % len(GIVEN)],
                agency_code.get(v.agency_id or pool_agency[v.pool_id] or root.agency_id, root.code),
                {"bus": "A1", "minibus": "B1"}.get(v.kind.value, "C1"),
                (run.params.start + timedelta(days=365 * 3 + v.vehicle_id % 700)).isoformat(),
                f"139{v.vehicle_id:08d}",
            )
            for v in cars
        ),
    )
    files["fuel_cards"] = _csv(
        folder / "fuel_cards.csv",
        ("card", "plate", "agency_code"),
        ((v.fuel_card, v.plate, "") for v in cars),
    )
    files["calendar"] = _csv(
        folder / "calendar.csv",
        ("day", "kind", "name"),
        ((c["day"], c["kind"], c["name"]) for c in rows["calendar"]),
    )
    hours = world.calendar.hours
    files["working_hours"] = _csv(
        folder / "working_hours.csv",
        ("agency_code", "start_local", "end_local"),
        [(root.code, _clock(hours.start_s), _clock(hours.end_s))],
    )
    # the code defaults as the city's first version (a year before the run): alerts name "<city>@<date>"
    effective = (run.params.start - timedelta(days=365)).isoformat()
    p = run.params.thresholds
    files["thresholds"] = _csv(
        folder / "thresholds.csv",
        ("agency_code", "name", "effective_from", "value"),
        [
            (root.code, "stay.forbidden_min_dwell_s", effective, p.forbidden_min_dwell_s),
            (root.code, "overspeed.ratio", effective, p.overspeed_ratio),
            (root.code, "documents.expiring_lead_days", effective, p.document_lead_days),
        ],
    )
    files["roads"] = _geojson(
        folder / "roads.geojson",
        (
            {
                "type": "Feature",
                "geometry": r["geometry"],
                "properties": {
                    "key": f"sim:{r['edge'] + 1}",
                    "name": r["road"],
                    "kind": r["kind"],
                    "speed_limit_kmh": r["speed_limit_kmh"],
                },
            }
            for r in rows["roads"]
            if r["geometry"] is not None
        ),
    )
    documents = truth.documents
    # the two document kinds: the same fields under their own names
    for kind, document, header in (
        ("insurance", "insurance", ("policy_no", "insurer", "valid_from", "expires_on", "premium_fen")),
        (
            "inspections",
            "inspection",
            ("certificate_no", "station", "inspected_on", "expires_on", "cost_fen"),
        ),
    ):
        files[kind] = _csv(
            folder / f"{kind}.csv",
            ("plate", *header),
            (
                (
                    cars[d.vehicle].plate,
                    d.number,
                    d.issuer,
                    d.valid_from.isoformat(),
                    d.expires_on.isoformat(),
                    d.cost_fen,
                )
                for d in documents
                if d.kind == document
            ),
        )
    name = {p.place_id: p.name for p in world.places}
    files["fuel"] = _csv(
        folder / "fuel.csv",
        ("card", "fuelled_at", "station", "lon", "lat", "litres", "amount_fen"),
        (
            (
                r.card,
                _time(r.at_s),
                name[r.place_id],
                r.lon,
                r.lat,
                round(r.litres, 2),
                round(r.litres * FUEL_PRICE_FEN_PER_L),
            )
            for r in truth.fuel
        ),
    )
    files["maintenance"] = _xlsx(
        folder / "maintenance.xlsx",
        ("work_order", "plate", "shop", "lon", "lat", "started_at", "ended_at", "items", "cost_fen"),
        (
            (
                work_order(r.maintenance_record_id),
                cars[r.vehicle].plate,
                name[r.place_id],
                r.lon,
                r.lat,
                _time(r.start_s),
                _time(r.end_s),
                "保养",
                50_000 + 1_000 * (r.maintenance_record_id % 50),
            )
            for r in truth.maintenance
        ),
    )
    return {kind: files[kind] for kind in IMPORT_ORDER}


def _clock(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"


def write_import_script(folder: Path, files: dict[str, Path]) -> Path:
    """``import.sh`` beside the files: one ``fleetwatch import KIND FILE`` per file, in order."""
    lines = [
        "#!/bin/sh",
        "# the exported world, in the order its references need",
        "set -e",
        'cd "$(dirname "$0")"',
    ]
    lines += [f"fleetwatch import {kind} {path.name}" for kind, path in files.items()]
    script = folder / "import.sh"
    script.write_text("\n".join(lines) + "\n", encoding="utf-8")
    script.chmod(0o755)
    return script


class ImportRefusedError(Exception):
    """An exported file did not import cleanly (a bug in the exporter or in the doors)."""

    def __init__(self, kind: str, errors: Sequence[dict[str, object]]) -> None:
        super().__init__(f"import of {kind} refused: {list(errors)[:5]}")
        self.kind = kind
        self.errors = errors


def import_files(
    conninfo: str, files: dict[str, Path], *, actor: str = "simulator"
) -> dict[str, dict[str, Any]]:
    """Import every file through ``fleetwatch import``'s functions, in order; kind → its summary."""
    import psycopg

    from ingest.imports.kinds import KINDS
    from ingest.imports.read import read_path
    from ingest.imports.run import Actor, run_import

    who = Actor(api_user_id=None, name=actor)
    done: dict[str, dict[str, Any]] = {}
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for kind, path in files.items():
            result = run_import(conn, KINDS[kind], read_path(path), actor=who)
            summary = result.summary()
            if result.refused or result.errors:
                raise ImportRefusedError(kind, summary["errors"])
            done[kind] = summary
    return done
