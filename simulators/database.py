"""Write a simulated world into the database: registry, places, calendar, orders, fuel, maintenance,
vehicle documents.

Rows keep the simulator's ids (vehicle_id, dispatch_order_id, …), so the truth files name database rows.
Bulk rows go by COPY; the identities are moved past the ids written. The database must not hold a
registry yet (load a run into a fresh database); the calendar is merged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, LiteralString

import numpy as np
import orjson
import psycopg

from simulators.city import ROAD_KINDS
from simulators.output import truth_rows, world_rows
from simulators.run import SimRun
from store.queries import query

log = logging.getLogger(__name__)


class DatabaseNotEmptyError(Exception):
    """The database already holds a registry, so simulator ids could collide."""

    def __init__(self, rows: int) -> None:
        super().__init__(f"the database already holds {rows} registry rows; load a run into a fresh database")
        self.rows = rows


def _at(t_s: float) -> datetime:
    return datetime.fromtimestamp(t_s, UTC)


def _json(value: object) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _copy(cur: psycopg.Cursor[Any], sql: LiteralString, rows: Iterable[Sequence[object]]) -> int:
    n = 0
    with cur.copy(sql) as copy:
        for row in rows:
            copy.write_row(row)
            n += 1
    return n


def load_run(conninfo: str, run: SimRun) -> dict[str, int]:
    """Write the run's world, orders and records in one transaction; returns rows per table."""
    world = world_rows(run)
    truth = truth_rows(run)
    fleet = run.world.fleet
    written: dict[str, int] = {}
    with psycopg.connect(conninfo) as conn, conn.cursor() as cur:
        row = cur.execute(query("registry_rows")).fetchone()
        if row and row[0]:
            raise DatabaseNotEmptyError(int(row[0]))
        written["agency"] = _copy(
            cur,
            query("copy_agency"),
            ((a.agency_id, a.code, a.name, a.parent_agency_id) for a in fleet.agencies),
        )
        written["pool"] = _copy(
            cur,
            query("copy_pool"),
            ((p.pool_id, p.code, p.name, p.kind.value, p.agency_id) for p in fleet.pools),
        )
        written["place"] = _copy(
            cur,
            query("copy_place"),
            (
                (
                    p["place_id"],
                    p["code"],
                    p["kind"],
                    p["name"],
                    p["forbidden"],
                    p["lon"],
                    p["lat"],
                    p["radius_m"],
                    _json(p["polygon"]),
                )
                for p in world["places"]
            ),
        )
        written["depot"] = _copy(
            cur,
            query("copy_depot"),
            ((d.depot_id, d.pool_id, d.name, d.lon, d.lat, d.radius_m) for d in fleet.depots),
        )
        written["vehicle"] = _copy(
            cur,
            query("copy_vehicle"),
            (
                (
                    v.vehicle_id,
                    v.plate,
                    v.kind.value,
                    v.seats,
                    v.pool_id,
                    v.agency_id,
                    v.depot_id,
                    "in_service",
                    v.tank_l,
                    v.fuel_norm_l_per_100km,
                )
                for v in fleet.vehicles
            ),
        )
        written["terminal"] = _copy(
            cur, query("copy_terminal"), ((v.terminal_id, v.vehicle_id, "fleet") for v in fleet.vehicles)
        )
        cur.executemany(query("upsert_calendar_day"), world["calendar"])
        written["calendar_day"] = len(world["calendar"])
        orders = run.truth.orders
        written["dispatch_order"] = _copy(
            cur,
            query("copy_dispatch_order"),
            (
                (
                    o.order_id,
                    o.code,
                    o.agency_id,
                    o.passengers,
                    o.purpose,
                    o.origin_place_id,
                    o.origin_lon,
                    o.origin_lat,
                    o.destination_place_id,
                    o.destination_lon,
                    o.destination_lat,
                    _at(o.requested_at_s),
                    _at(o.window_start_s),
                    _at(o.window_end_s),
                    _json(row["route"]),
                    o.route_length_m,
                    o.status.value,
                    o.vehicle_id,
                    o.pool_id,
                    o.cross_region,
                )
                for o, row in zip(orders, truth["orders"], strict=True)
            ),
        )
        cars = fleet.vehicles
        written["fuel_record"] = _copy(
            cur,
            query("copy_fuel_record"),
            (
                (
                    r.fuel_record_id,
                    cars[r.vehicle].vehicle_id,
                    r.card,
                    r.place_id,
                    r.lon,
                    r.lat,
                    _at(r.at_s),
                    r.litres,
                )
                for r in run.truth.fuel
            ),
        )
        written["maintenance_record"] = _copy(
            cur,
            query("copy_maintenance_record"),
            (
                (
                    r.maintenance_record_id,
                    cars[r.vehicle].vehicle_id,
                    r.place_id,
                    r.lon,
                    r.lat,
                    _at(r.start_s),
                    _at(r.end_s),
                )
                for r in run.truth.maintenance
            ),
        )
        written["vehicle_document"] = _copy(
            cur,
            query("copy_vehicle_document"),
            (
                (
                    d.document_id,
                    cars[d.vehicle].vehicle_id,
                    d.kind,
                    d.number,
                    d.issuer,
                    d.valid_from,
                    d.expires_on,
                    d.cost_fen,
                )
                for d in run.truth.documents
            ),
        )
        net = run.world.city.network
        written["road"] = _copy(
            cur,
            query("copy_road"),
            (
                (
                    e + 1,
                    net.roads[int(net.edge_road[e])].name if len(net.roads) else "",
                    ROAD_KINDS[int(net.edge_kind[e])].value,
                    float(net.edge_speed_kmh[e]),
                    _json(
                        {
                            "type": "LineString",
                            "coordinates": np.column_stack(
                                (
                                    net.vertex_lon[net.vertex_start[e] : net.vertex_start[e + 1]],
                                    net.vertex_lat[net.vertex_start[e] : net.vertex_start[e + 1]],
                                )
                            )
                            .round(7)
                            .tolist(),
                        }
                    ),
                )
                for e in range(len(net.edge_speed_kmh))
            ),
        )
        cur.execute(query("sync_identities")).fetchall()
    log.info("loaded into the database: %s", ", ".join(f"{n} {table}" for table, n in written.items()))
    return written


def load_orders(conninfo: str, run: SimRun) -> dict[int, int]:
    """Write the run's dispatch orders into a database whose world came through the imports: every
    reference by code (agency, pool, places) or plate; returns simulator order id → database id."""
    world = run.world
    agency = {a.agency_id: a.code for a in world.fleet.agencies}
    pool = {p.pool_id: p.code for p in world.fleet.pools}
    place = {p.place_id: p.code for p in world.places}
    plate = {v.vehicle_id: v.plate for v in world.fleet.vehicles}
    rows = truth_rows(run)["orders"]
    with psycopg.connect(conninfo) as conn, conn.cursor() as cur:
        cur.execute(query("stage_orders"))
        _copy(
            cur,
            query("copy_order_stage"),
            (
                (
                    o.code,
                    agency[o.agency_id],
                    o.passengers,
                    o.purpose,
                    place.get(o.origin_place_id),
                    o.origin_lon,
                    o.origin_lat,
                    place.get(o.destination_place_id),
                    o.destination_lon,
                    o.destination_lat,
                    _at(o.requested_at_s),
                    _at(o.window_start_s),
                    _at(o.window_end_s),
                    _json(row["route"]),
                    o.route_length_m,
                    o.status.value,
                    None if o.vehicle_id is None else plate[o.vehicle_id],
                    pool[o.pool_id],
                    o.cross_region,
                )
                for o, row in zip(run.truth.orders, rows, strict=True)
            ),
        )
        ids: dict[str, int] = dict(cur.execute(query("insert_staged_orders")).fetchall())
    if len(ids) != len(run.truth.orders):
        raise ValueError(f"{len(run.truth.orders) - len(ids)} orders named an unknown agency or pool")
    log.info("loaded %d dispatch orders by code", len(ids))
    return {o.order_id: int(ids[o.code]) for o in run.truth.orders}


def vehicle_ids_by_plate(conninfo: str, run: SimRun) -> list[int]:
    """Per simulated vehicle (fleet order): its database id, found by plate."""
    with psycopg.connect(conninfo) as conn:
        ids: dict[str, int] = dict(conn.execute(query("vehicles_by_plate")).fetchall())
    return [int(ids[v.plate]) for v in run.world.fleet.vehicles]
