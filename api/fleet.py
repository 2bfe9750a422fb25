"""Fleet: agencies and pools in scope, vehicles and terminals, live positions, a vehicle's track."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, status
from psycopg import AsyncConnection
from psycopg.rows import TupleRow, class_row
from pydantic import AwareDatetime

from api.audit import write_audit
from api.auth import FLEET_WRITERS, Caller, CallerDep
from api.connection import Conn, Settings
from api.errors import ConflictError, InvalidInputError, NotFoundError
from api.schemas import (
    Agency,
    Id,
    LineString,
    LivePosition,
    PointGeometry,
    Pool,
    StatusIn,
    Terminal,
    TerminalIn,
    Track,
    TrackProperties,
    Vehicle,
    VehicleIn,
    VehicleStatus,
)
from store.queries import query

router = APIRouter(prefix="/v1", tags=["fleet"])

Limit = Annotated[int, Query(ge=1, le=5_000)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]


@router.get("/agencies", summary="Agencies in the caller's scope")
async def list_agencies(*, conn: Conn, caller: CallerDep) -> list[Agency]:
    async with conn.cursor(row_factory=class_row(Agency)) as cur:
        await cur.execute(query("api_agencies"), caller.scope())
        return await cur.fetchall()


@router.get("/pools", summary="Pools the caller may draw cars from")
async def list_pools(*, conn: Conn, caller: CallerDep) -> list[Pool]:
    async with conn.cursor(row_factory=class_row(Pool)) as cur:
        await cur.execute(query("api_pools"), caller.scope())
        return await cur.fetchall()


async def _vehicles(conn: AsyncConnection[TupleRow], caller: Caller, **filters: Any) -> list[Vehicle]:
    params: dict[str, Any] = {"vehicle_id": None, "status": None, "pool_id": None, "agency_id": None}
    params |= {"limit": 1, "offset": 0} | filters | caller.scope()
    async with conn.cursor(row_factory=class_row(Vehicle)) as cur:
        await cur.execute(query("api_vehicles"), params)
        return await cur.fetchall()


async def get_vehicle(conn: AsyncConnection[TupleRow], caller: Caller, vehicle_id: int) -> Vehicle:
    found = await _vehicles(conn, caller, vehicle_id=vehicle_id)
    if not found:
        raise NotFoundError("vehicle", vehicle_id)
    return found[0]


@router.get("/vehicles", summary="Vehicles of the caller's agencies")
async def list_vehicles(
    *,
    conn: Conn,
    caller: CallerDep,
    vehicle_status: Annotated[VehicleStatus | None, Query(alias="status")] = None,
    pool_id: Id | None = None,
    agency_id: Id | None = None,
    limit: Limit = 1_000,
    offset: Offset = 0,
) -> list[Vehicle]:
    return await _vehicles(
        conn,
        caller,
        status=vehicle_status.value if vehicle_status else None,
        pool_id=pool_id,
        agency_id=agency_id,
        limit=limit,
        offset=offset,
    )


@router.post("/vehicles", status_code=status.HTTP_201_CREATED, summary="Register a vehicle")
async def create_vehicle(*, body: VehicleIn, conn: Conn, caller: CallerDep) -> Vehicle:
    caller.require(FLEET_WRITERS, "registering a vehicle")
    if body.agency_id is None and not caller.all_agencies:
        raise InvalidInputError("agency_id is required")
    caller.require_agency(body.agency_id)
    caller.require_pool(body.pool_id)
    async with conn.transaction():
        if body.depot_id is not None:
            cur = await conn.execute(query("api_depot"), {"depot_id": body.depot_id})
            depot = await cur.fetchone()
            if depot is None or depot[1] != body.pool_id:
                raise InvalidInputError(f"depot {body.depot_id} is not a depot of pool {body.pool_id}")
        cur = await conn.execute(query("api_insert_vehicle"), body.model_dump(mode="json"))
        row = await cur.fetchone()
        assert row is not None
        vehicle_id, after = row
        await write_audit(
            conn,
            caller,
            action="vehicle.create",
            entity="vehicle",
            entity_id=vehicle_id,
            agency_id=body.agency_id,
            before=None,
            after=after,
        )
        return await get_vehicle(conn, caller, vehicle_id)


@router.get("/vehicles/{vehicle_id}", summary="One vehicle")
async def read_vehicle(*, vehicle_id: Id, conn: Conn, caller: CallerDep) -> Vehicle:
    return await get_vehicle(conn, caller, vehicle_id)


async def _lock_vehicle(conn: AsyncConnection[TupleRow], caller: Caller, vehicle_id: int) -> tuple[Any, ...]:
    cur = await conn.execute(query("api_vehicle_row"), {"vehicle_id": vehicle_id} | caller.scope())
    row = await cur.fetchone()
    if row is None:
        raise NotFoundError("vehicle", vehicle_id)
    return tuple(row)


@router.put("/vehicles/{vehicle_id}/status", summary="Set in service / maintenance / retired")
async def set_vehicle_status(*, vehicle_id: Id, body: StatusIn, conn: Conn, caller: CallerDep) -> Vehicle:
    caller.require(FLEET_WRITERS, "changing a vehicle's status")
    async with conn.transaction():
        before, agency_id, _pool_id, current, _seats = await _lock_vehicle(conn, caller, vehicle_id)
        if current == body.status.value:
            return await get_vehicle(conn, caller, vehicle_id)  # nothing to write
        if current == VehicleStatus.RETIRED.value:
            raise ConflictError(f"vehicle {vehicle_id} is retired; a retired vehicle stays retired")
        if body.status is not VehicleStatus.IN_SERVICE:
            cur = await conn.execute(
                query("api_vehicle_open_orders"), {"vehicle_id": vehicle_id, "at": datetime.now(UTC)}
            )
            held = [r[0] for r in await cur.fetchall()]
            if held:
                raise ConflictError(
                    f"vehicle {vehicle_id} holds assigned or running orders {held}; reassign or finish them"
                    f" before setting it to {body.status.value}"
                )
        cur = await conn.execute(
            query("api_set_vehicle_status"), {"vehicle_id": vehicle_id, "status": body.status.value}
        )
        row = await cur.fetchone()
        assert row is not None
        await write_audit(
            conn,
            caller,
            action="vehicle.status",
            entity="vehicle",
            entity_id=vehicle_id,
            agency_id=agency_id,
            before=before,
            after=row[0],
        )
        return await get_vehicle(conn, caller, vehicle_id)


@router.get("/terminals", summary="Terminals bound to the caller's vehicles (admin: all, unbound too)")
async def list_terminals(
    *, conn: Conn, caller: CallerDep, vehicle_id: Id | None = None, limit: Limit = 1_000, offset: Offset = 0
) -> list[Terminal]:
    params = caller.scope() | {"vehicle_id": vehicle_id, "limit": limit, "offset": offset}
    async with conn.cursor(row_factory=class_row(Terminal)) as cur:
        await cur.execute(query("api_terminals"), params)
        return await cur.fetchall()


def _terminal(row: tuple[Any, ...]) -> Terminal:
    terminal_id, terminal_no, vehicle_id, protocol, bound_at, _ = row
    return Terminal(
        terminal_id=terminal_id,
        terminal_no=terminal_no,
        vehicle_id=vehicle_id,
        protocol=protocol,
        bound_at=bound_at,
    )


@router.put(
    "/vehicles/{vehicle_id}/terminals", summary="Bind a terminal to a vehicle (registering it if new)"
)
async def bind_terminal(*, vehicle_id: Id, body: TerminalIn, conn: Conn, caller: CallerDep) -> Terminal:
    caller.require(FLEET_WRITERS, "binding a terminal")
    async with conn.transaction():
        _, agency_id, *_ = await _lock_vehicle(conn, caller, vehicle_id)
        cur = await conn.execute(query("api_terminal_row"), {"terminal_id": body.terminal_id})
        existing = await cur.fetchone()
        params = {"terminal_id": body.terminal_id, "vehicle_id": vehicle_id, "protocol": body.protocol.value}
        if existing is None:
            before = None
            cur = await conn.execute(query("api_insert_terminal"), params)
        else:
            before, bound_to = existing
            if bound_to is not None and bound_to != vehicle_id:
                raise ConflictError(
                    f"terminal {body.terminal_id} is bound to vehicle {bound_to}; unbind it first"
                )
            cur = await conn.execute(query("api_bind_terminal"), params)
        row = await cur.fetchone()
        assert row is not None
        await write_audit(
            conn,
            caller,
            action="terminal.bind",
            entity="terminal",
            entity_id=body.terminal_id,
            agency_id=agency_id,
            before=before,
            after=row[-1],
        )
    return _terminal(tuple(row))


@router.delete("/vehicles/{vehicle_id}/terminals/{terminal_id}", summary="Unbind a terminal from a vehicle")
async def unbind_terminal(
    *,
    vehicle_id: Id,
    terminal_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")],
    conn: Conn,
    caller: CallerDep,
) -> Terminal:
    caller.require(FLEET_WRITERS, "unbinding a terminal")
    async with conn.transaction():
        _, agency_id, *_ = await _lock_vehicle(conn, caller, vehicle_id)
        cur = await conn.execute(query("api_terminal_row"), {"terminal_id": terminal_id})
        existing = await cur.fetchone()
        if existing is None or existing[1] != vehicle_id:
            raise NotFoundError(f"terminal of vehicle {vehicle_id}", terminal_id)
        cur = await conn.execute(query("api_unbind_terminal"), {"terminal_id": terminal_id})
        row = await cur.fetchone()
        assert row is not None
        await write_audit(
            conn,
            caller,
            action="terminal.unbind",
            entity="terminal",
            entity_id=terminal_id,
            agency_id=agency_id,
            before=existing[0],
            after=row[-1],
        )
    return _terminal(tuple(row))


@router.get("/positions/live", summary="Newest fix of each vehicle in scope, with its age")
async def live_positions(
    *,
    conn: Conn,
    caller: CallerDep,
    settings: Settings,
    agency_id: Id | None = None,
    pool_id: Id | None = None,
    online_only: bool = False,
    limit: Limit = 1_000,
    offset: Offset = 0,
) -> list[LivePosition]:
    online_since = datetime.now(UTC) - timedelta(seconds=settings.online_within_s)
    params = caller.scope() | {
        "agency_id": agency_id,
        "pool_id": pool_id,
        "online_since": online_since if online_only else None,
        "limit": limit,
        "offset": offset,
    }
    cur = await conn.execute(query("api_live_positions"), params)
    names = [c.name for c in cur.description or ()]
    out = []
    for row in await cur.fetchall():
        values = dict(zip(names, row, strict=True))
        out.append(LivePosition(online=values["fix_at"] >= online_since, **values))
    return out


@router.get("/vehicles/{vehicle_id}/track", summary="A vehicle's fixes over [start_at, end_at) as GeoJSON")
async def vehicle_track(
    *,
    vehicle_id: Id,
    start_at: AwareDatetime,
    end_at: AwareDatetime,
    conn: Conn,
    caller: CallerDep,
    settings: Settings,
    limit: Annotated[int | None, Query(ge=1)] = None,
    include_invalid: bool = False,
) -> Track:
    """Oldest first, at most ``limit`` fixes a page (default and maximum: the server's
    max_track_points); ``properties.next_start_at`` is the start_at of the next page."""
    if end_at <= start_at:
        raise InvalidInputError("end_at must be after start_at")
    if (end_at - start_at).total_seconds() > settings.max_track_range_s:
        raise InvalidInputError(
            f"a track spans at most {settings.max_track_range_s} s; narrow start_at..end_at"
        )
    await get_vehicle(conn, caller, vehicle_id)
    return await read_track(
        conn,
        vehicle_id=vehicle_id,
        start_at=start_at,
        end_at=end_at,
        page=min(limit or settings.max_track_points, settings.max_track_points),
        include_invalid=include_invalid,
    )


async def read_track(
    conn: AsyncConnection[TupleRow],
    *,
    vehicle_id: int,
    start_at: datetime,
    end_at: datetime,
    page: int,
    include_invalid: bool,
) -> Track:
    """One page of a vehicle's fixes in [start_at, end_at) as a GeoJSON Feature (scope: the caller's)."""
    params = {
        "vehicle_id": vehicle_id,
        "start_at": start_at,
        "end_at": end_at,
        "include_invalid": include_invalid,
        "limit": page + 1,
    }
    cur = await conn.execute(query("api_track"), params)
    rows = await cur.fetchall()
    next_start_at = rows[page][0] if len(rows) > page else None
    rows = rows[:page]
    coordinates = [(float(r[1]), float(r[2])) for r in rows]
    geometry: LineString | PointGeometry | None = None
    if len(rows) >= 2:
        geometry = LineString(type="LineString", coordinates=coordinates)
    elif rows:
        geometry = PointGeometry(type="Point", coordinates=coordinates[0])
    return Track(
        geometry=geometry,
        properties=TrackProperties(
            vehicle_id=vehicle_id,
            start_at=start_at,
            end_at=end_at,
            points=len(rows),
            fix_at=[r[0] for r in rows],
            speed_kmh=[r[3] for r in rows],
            ignition=[r[5] for r in rows],
            valid=[r[6] for r in rows],
            next_start_at=next_start_at,
        ),
    )
