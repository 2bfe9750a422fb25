"""A simulated world loads into a fresh database and reads back as it was written."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import psycopg
import pytest

from simulators.database import DatabaseNotEmptyError, load_run
from simulators.run import SimParams, SimRun, simulate
from simulators.violations import ViolationRates
from simulators.world import build_world


@pytest.fixture(scope="module")
def run() -> SimRun:
    params = SimParams(
        start=date(2026, 12, 3),
        days=2,
        rates=ViolationRates().scaled(5.0),
        maintenance_rate=0.2,
        fuel_start_share=(0.3, 0.4),
    )
    return simulate(build_world(20, 9), params)


def test_loaded_world_reads_back(db: str, run: SimRun) -> None:
    written = load_run(db, run)
    fleet = run.world.fleet
    assert written["vehicle"] == len(fleet.vehicles) and written["dispatch_order"] == len(run.truth.orders)
    with psycopg.connect(db) as conn:
        vehicles = conn.execute(
            "SELECT v.vehicle_id, v.plate, v.seats, v.depot_id, t.terminal_id, t.terminal_no"
            " FROM vehicle v JOIN terminal t USING (vehicle_id) ORDER BY v.vehicle_id"
        ).fetchall()
        assert [(r[0], r[1], r[2], r[3], r[4]) for r in vehicles] == [
            (v.vehicle_id, v.plate, v.seats, v.depot_id, v.terminal_id) for v in fleet.vehicles
        ]
        assert all(r[5] is not None for r in vehicles)
        order = max(run.truth.orders, key=lambda o: o.route_length_m)
        row = conn.execute(
            "SELECT route, route_length_m, window_start_at, window_end_at, vehicle_id, status"
            " FROM dispatch_order WHERE dispatch_order_id = %s",
            (order.order_id,),
        ).fetchone()
        assert row is not None
        route, length_m, start_at, end_at, vehicle_id, status = row
        assert np.allclose(
            np.array(route["coordinates"]), np.column_stack((order.route_lon, order.route_lat))
        )
        assert length_m == pytest.approx(order.route_length_m, rel=1e-6)
        assert start_at == datetime.fromtimestamp(order.window_start_s, UTC)
        assert end_at == datetime.fromtimestamp(order.window_end_s, UTC)
        assert (vehicle_id, status) == (order.vehicle_id, order.status.value)
        forbidden = conn.execute(
            "SELECT count(*) FROM place WHERE forbidden AND polygon->>'type' = 'Polygon'"
        )
        assert forbidden.fetchone() == (sum(p.forbidden for p in run.world.places),)
        assert conn.execute(
            "SELECT kind FROM calendar_day WHERE day = %s", (date(2026, 10, 10),)
        ).fetchone() == ("workday",)
        fuel = conn.execute("SELECT count(*), sum(litres) FROM fuel_record").fetchone()
        assert fuel is not None and fuel[0] == len(run.truth.fuel) > 0
        assert fuel[1] == pytest.approx(sum(r.litres for r in run.truth.fuel), rel=1e-5)
        shops = conn.execute(
            "SELECT count(*) FROM maintenance_record m JOIN place p USING (place_id)"
            " WHERE p.kind = 'repair_shop'"
        ).fetchone()
        assert shops == (len(run.truth.maintenance),) and shops[0] > 0
        # identities continue after the simulator's ids
        new_id = conn.execute(
            "INSERT INTO agency (code, name) VALUES ('X-NEW', 'new') RETURNING agency_id"
        ).fetchone()
        assert new_id == (len(fleet.agencies) + 1,)


def test_loading_twice_is_refused(db: str, run: SimRun) -> None:
    load_run(db, run)
    with pytest.raises(DatabaseNotEmptyError):
        load_run(db, run)
