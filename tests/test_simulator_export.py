"""The simulator's world written as import files goes through ``fleetwatch import`` whole: every row
accounted for, re-importing is a no-op, and the database then holds what the private loader would
(by code and plate, not by id)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import psycopg
import pytest

from simulators.database import load_orders, vehicle_ids_by_plate
from simulators.export import IMPORT_ORDER, export_world, import_files, write_import_script
from simulators.run import SimParams, SimRun, simulate
from simulators.violations import ViolationRates
from simulators.world import build_world


@pytest.fixture(scope="module")
def run() -> SimRun:
    rates = ViolationRates().scaled(6.0)
    return simulate(
        build_world(16, 9), SimParams(start=date(2026, 12, 2), days=2, rates=rates, maintenance_rate=0.3)
    )


def test_exported_files_import_whole_and_again_as_a_no_op(run: SimRun, db: str, tmp_path: Path) -> None:
    files = export_world(run, tmp_path)
    assert list(files) == list(IMPORT_ORDER)
    assert {p.suffix for p in files.values()} == {".csv", ".xlsx", ".geojson"}
    script = write_import_script(tmp_path, files).read_text(encoding="utf-8").splitlines()
    assert script[-len(files) :] == [f"fleetwatch import {k} {p.name}" for k, p in files.items()]
    first = import_files(db, files)
    world = run.world
    expected = {
        "agencies": len(world.fleet.agencies),
        "pools": len(world.fleet.pools),
        "depots": len(world.fleet.depots),
        "places": sum(not p.forbidden for p in world.places),
        "forbidden_zones": sum(p.forbidden for p in world.places),
        "vehicles": len(world.fleet.vehicles),
        "fuel": len(run.truth.fuel),
        "maintenance": len(run.truth.maintenance),
        "insurance": len(world.fleet.vehicles),
        "inspections": len(world.fleet.vehicles),
        "roads": world.city.network.edges,
        "calendar": len(world.calendar.days()),
    }
    assert {k: first[k]["inserted"] for k in expected} == expected
    assert len(run.truth.maintenance) > 0 and len(run.truth.fuel) > 0
    again = import_files(db, files)
    assert all(
        s["inserted"] == 0 and s["updated"] == 0 and s["unchanged"] == s["rows"] for s in again.values()
    )

    ids = load_orders(db, run)
    assert len(ids) == len(run.truth.orders)
    cars = vehicle_ids_by_plate(db, run)
    with psycopg.connect(db) as conn:
        terminals: dict[str, int] = dict(
            conn.execute("SELECT terminal_id, vehicle_id FROM terminal").fetchall()
        )
        for car, vehicle_id in zip(world.fleet.vehicles, cars, strict=True):
            assert terminals[car.terminal_id] == vehicle_id
        order = run.truth.orders[0]
        stored = conn.execute(
            "SELECT vehicle_id, window_start_at FROM dispatch_order WHERE code = %s", (order.code,)
        ).fetchone()
        assert stored is not None
        expected_car = None if order.vehicle_id is None else cars[order.vehicle_id - 1]
        assert stored[0] == expected_car and stored[1].timestamp() == pytest.approx(order.window_start_s)
        zones = conn.execute("SELECT count(*) FROM place WHERE forbidden AND polygon IS NOT NULL").fetchone()
        assert zones == (sum(p.forbidden for p in world.places),)
        documents = conn.execute(
            "SELECT v.plate, d.kind, d.number, d.expires_on FROM vehicle_document AS d"
            " JOIN vehicle AS v USING (vehicle_id) ORDER BY d.number"
        ).fetchall()
        plates = [c.plate for c in world.fleet.vehicles]
        assert documents == sorted(
            ((plates[d.vehicle], d.kind, d.number, d.expires_on) for d in run.truth.documents),
            key=lambda r: r[2],
        )
        versions = conn.execute("SELECT count(*) FROM rule_threshold").fetchone()
        assert versions == (3,)


def test_the_command_line_imports_an_exported_xlsx(run: SimRun, db: str, tmp_path: Path) -> None:
    files = export_world(run, tmp_path)
    import_files(db, {k: files[k] for k in IMPORT_ORDER[: IMPORT_ORDER.index("vehicles")]})
    env = dict(os.environ, FLEETWATCH_DATABASE_URL=db)
    done = subprocess.run(
        [sys.executable, "-m", "fleetwatch.cli", "import", "vehicles", str(files["vehicles"]), "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["inserted"] == len(run.world.fleet.vehicles) and summary["errors"] == []
