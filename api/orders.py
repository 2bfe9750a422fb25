"""Dispatch orders: request, approve, assign a car, start, complete, cancel; the approved route; merge
suggestions. Every write checks the lifecycle (api.lifecycle) and is audited in its transaction."""

from __future__ import annotations

import math
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Query, status
from psycopg import AsyncConnection
from psycopg.rows import TupleRow, class_row
from psycopg.types.json import Jsonb
from pydantic import AwareDatetime

from api.audit import write_audit
from api.auth import ORDER_APPROVERS, ORDER_WRITERS, PLANNERS, Caller, CallerDep
from api.connection import Conn
from api.errors import ConflictError, InvalidInputError, NotFoundError
from api.lifecycle import IllegalTransition, OrderAction, OrderStatus, transition
from api.merge import MergeParams, Requests, merge_groups
from api.schemas import (
    AssignIn,
    CancelIn,
    Datum,
    DriverIn,
    Id,
    MergeGroup,
    Order,
    OrderIn,
    RouteIn,
    VehicleStatus,
)
from store.queries import query
from tracks.geo import distance_m, gcj02_to_wgs84, haversine_m

router = APIRouter(prefix="/v1", tags=["dispatch"])

MAX_MERGE_REQUESTS = 5_000


def to_wgs84(datum: Datum, lon: list[float], lat: list[float]) -> tuple[list[float], list[float]]:
    if datum is Datum.WGS84:
        return lon, lat
    wgs_lon, wgs_lat = gcj02_to_wgs84(np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64))
    return wgs_lon.tolist(), wgs_lat.tolist()


def line_length_m(lon: list[float], lat: list[float]) -> float:
    a_lon, a_lat = np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
    legs = distance_m(a_lon[:-1], a_lat[:-1], a_lon[1:], a_lat[1:])
    if not np.all(np.isfinite(legs)):  # the ellipsoidal plane near a pole: the sphere is enough there
        legs = haversine_m(a_lon[:-1], a_lat[:-1], a_lon[1:], a_lat[1:])
    return float(legs.sum())


async def get_order(conn: AsyncConnection[TupleRow], caller: Caller, dispatch_order_id: int) -> Order:
    found = await _orders(conn, caller, dispatch_order_id=dispatch_order_id)
    if not found:
        raise NotFoundError("order", dispatch_order_id)
    return found[0]


async def _orders(conn: AsyncConnection[TupleRow], caller: Caller, **filters: Any) -> list[Order]:
    params: dict[str, Any] = {
        "dispatch_order_id": None,
        "status": None,
        "agency_id": None,
        "vehicle_id": None,
        "start_at": None,
        "end_at": None,
        "limit": 1,
        "offset": 0,
    }
    params |= filters | caller.scope()
    async with conn.cursor(row_factory=class_row(Order)) as cur:
        await cur.execute(query("api_orders"), params)
        return await cur.fetchall()


@router.get("/orders", summary="Orders of the caller's agencies, by window start")
async def list_orders(
    *,
    conn: Conn,
    caller: CallerDep,
    order_status: Annotated[OrderStatus | None, Query(alias="status")] = None,
    agency_id: Id | None = None,
    vehicle_id: Id | None = None,
    start_at: Annotated[AwareDatetime | None, Query(description="windows ending after this")] = None,
    end_at: Annotated[AwareDatetime | None, Query(description="windows starting before this")] = None,
    limit: Annotated[int, Query(ge=1, le=5_000)] = 1_000,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> list[Order]:
    return await _orders(
        conn,
        caller,
        status=order_status.value if order_status else None,
        agency_id=agency_id,
        vehicle_id=vehicle_id,
        start_at=start_at,
        end_at=end_at,
        limit=limit,
        offset=offset,
    )


@router.post("/orders", status_code=status.HTTP_201_CREATED, summary="Request a car (status requested)")
async def create_order(*, body: OrderIn, conn: Conn, caller: CallerDep) -> Order:
    caller.require(ORDER_WRITERS, "requesting a car")
    caller.require_agency(body.agency_id)
    caller.require_pool(body.pool_id)
    (origin_lon, destination_lon), (origin_lat, destination_lat) = to_wgs84(
        body.datum, [body.origin_lon, body.destination_lon], [body.origin_lat, body.destination_lat]
    )
    params = body.model_dump(exclude={"datum"}) | {
        "origin_lon": origin_lon,
        "origin_lat": origin_lat,
        "destination_lon": destination_lon,
        "destination_lat": destination_lat,
        "code": body.code or f"API-{secrets.token_hex(5).upper()}",
    }
    async with conn.transaction():
        cur = await conn.execute(query("api_insert_order"), params)
        row = await cur.fetchone()
        assert row is not None
        dispatch_order_id, after = row
        await write_audit(
            conn,
            caller,
            action="order.create",
            entity="dispatch_order",
            entity_id=dispatch_order_id,
            agency_id=body.agency_id,
            before=None,
            after=after,
        )
        return await get_order(conn, caller, dispatch_order_id)


@router.get("/orders/merge-suggestions", summary="Approved requests one car could serve together (合并派车)")
async def merge_suggestions(
    *,
    conn: Conn,
    caller: CallerDep,
    start_at: Annotated[
        AwareDatetime | None, Query(description="windows starting from (default: now)")
    ] = None,
    end_at: Annotated[AwareDatetime | None, Query(description="… until (default: start_at + 1 day)")] = None,
    max_origin_m: Annotated[float, Query(gt=0, le=50_000)] = 1_000.0,
    max_destination_m: Annotated[float, Query(gt=0, le=50_000)] = 1_000.0,
    max_start_gap_s: Annotated[float, Query(ge=0, le=86_400)] = 1_800.0,
    max_passengers: Annotated[int, Query(ge=2, le=80)] = 7,
) -> list[MergeGroup]:
    caller.require(PLANNERS, "merge suggestions")
    start_at = start_at or datetime.now(UTC)
    if end_at is None:
        if start_at.year >= 9999:
            raise InvalidInputError("start_at is too late for a default end_at; give end_at")
        end_at = start_at + timedelta(days=1)
    if end_at <= start_at or end_at - start_at > timedelta(days=7):
        raise InvalidInputError("end_at must be after start_at, at most 7 days later")
    params = caller.scope() | {"start_at": start_at, "end_at": end_at, "limit": MAX_MERGE_REQUESTS + 1}
    cur = await conn.execute(query("api_approved_orders"), params)
    rows = await cur.fetchall()
    if len(rows) > MAX_MERGE_REQUESTS:
        raise InvalidInputError(
            f"more than {MAX_MERGE_REQUESTS} approved requests in range; narrow start_at..end_at"
        )
    if len(rows) < 2:
        return []
    ids = [r[0] for r in rows]
    columns = list(zip(*rows, strict=True))
    requests = Requests(
        passengers=np.asarray(columns[1], dtype=np.int64),
        start_s=np.asarray([t.timestamp() for t in columns[2]], dtype=np.float64),
        end_s=np.asarray([t.timestamp() for t in columns[3]], dtype=np.float64),
        origin_lon=np.asarray(columns[4], dtype=np.float64),
        origin_lat=np.asarray(columns[5], dtype=np.float64),
        destination_lon=np.asarray(columns[6], dtype=np.float64),
        destination_lat=np.asarray(columns[7], dtype=np.float64),
    )
    params_merge = MergeParams(
        max_origin_m=max_origin_m,
        max_destination_m=max_destination_m,
        max_start_gap_s=max_start_gap_s,
        max_passengers=max_passengers,
    )
    return [
        MergeGroup(
            dispatch_order_ids=[ids[i] for i in group],
            passengers=int(requests.passengers[list(group)].sum()),
            window_start_at=min(rows[i][2] for i in group),
            window_end_at=max(rows[i][3] for i in group),
        )
        for group in merge_groups(requests, params_merge)
    ]


@router.get("/orders/{dispatch_order_id}", summary="One order")
async def read_order(*, dispatch_order_id: Id, conn: Conn, caller: CallerDep) -> Order:
    return await get_order(conn, caller, dispatch_order_id)


async def _lock_order(
    conn: AsyncConnection[TupleRow], caller: Caller, dispatch_order_id: int, action: OrderAction
) -> tuple[dict[str, Any], int, OrderStatus, OrderStatus, tuple[Any, ...]]:
    """The order's row (locked) and the status ``action`` leads to, or 409 with the reason."""
    cur = await conn.execute(
        query("api_order_row"), {"dispatch_order_id": dispatch_order_id} | caller.scope()
    )
    row = await cur.fetchone()
    if row is None:
        raise NotFoundError("order", dispatch_order_id)
    before, agency_id, current, *rest = row
    current_status = OrderStatus(current)
    to = transition(current_status, action)
    if isinstance(to, IllegalTransition):
        raise ConflictError(f"order {dispatch_order_id}: {to.reason}")
    return before, agency_id, current_status, to, tuple(rest)


async def _apply(
    conn: AsyncConnection[TupleRow],
    caller: Caller,
    dispatch_order_id: int,
    action: OrderAction,
    *,
    cancel_reason: str | None = None,
    check: Callable[[tuple[Any, ...]], Awaitable[dict[str, Any]]] | None = None,
) -> Order:
    """Take ``action`` on the order: lock it, check the lifecycle, then ``check`` (which sees the
    order's passengers, vehicle and window, and returns columns to set), write, audit."""
    async with conn.transaction():
        before, agency_id, _current, to, rest = await _lock_order(conn, caller, dispatch_order_id, action)
        params: dict[str, Any] = {
            "dispatch_order_id": dispatch_order_id,
            "status": to.value,
            "vehicle_id": None,
            "pool_id": None,
            "cancel_reason": cancel_reason,
        }
        if check is not None:
            params |= await check(rest)
        cur = await conn.execute(query("api_set_order_status"), params)
        row = await cur.fetchone()
        assert row is not None
        # late or back-dated (补单): an order whose window has begun changed: its cars' days are judged again
        vehicle_ids = sorted(
            {v for v in (before.get("vehicle_id"), row[0].get("vehicle_id")) if v is not None}
        )
        await conn.execute(
            query("api_requeue_order"), {"dispatch_order_id": dispatch_order_id, "vehicle_ids": vehicle_ids}
        )
        await write_audit(
            conn,
            caller,
            action=f"order.{action.value}",
            entity="dispatch_order",
            entity_id=dispatch_order_id,
            agency_id=agency_id,
            before=before,
            after=row[0],
        )
        return await get_order(conn, caller, dispatch_order_id)


@router.post("/orders/{dispatch_order_id}/approve", summary="requested → approved")
async def approve_order(*, dispatch_order_id: Id, conn: Conn, caller: CallerDep) -> Order:
    caller.require(ORDER_APPROVERS, "approving an order")
    return await _apply(conn, caller, dispatch_order_id, OrderAction.APPROVE)


@router.post("/orders/{dispatch_order_id}/assign", summary="approved → assigned: a car for the window")
async def assign_order(*, dispatch_order_id: Id, body: AssignIn, conn: Conn, caller: CallerDep) -> Order:
    caller.require(ORDER_WRITERS, "assigning a car")

    async def check(rest: tuple[Any, ...]) -> dict[str, Any]:
        passengers, _old_vehicle, start_at, end_at = rest
        cur = await conn.execute(query("api_vehicle_for_assign"), {"vehicle_id": body.vehicle_id})
        vehicle = await cur.fetchone()
        if vehicle is None:
            raise NotFoundError("vehicle", body.vehicle_id)
        pool_id, vehicle_status, seats = vehicle
        caller.require_pool(pool_id)
        if vehicle_status != VehicleStatus.IN_SERVICE.value:
            raise ConflictError(f"vehicle {body.vehicle_id} is {vehicle_status}, not in service")
        if seats < passengers:
            raise ConflictError(f"vehicle {body.vehicle_id} has {seats} seats; the order needs {passengers}")
        params = {"vehicle_id": body.vehicle_id, "dispatch_order_id": dispatch_order_id}
        cur = await conn.execute(query("api_vehicle_busy"), params | {"start_at": start_at, "end_at": end_at})
        busy = [r[0] for r in await cur.fetchall()]
        if busy:
            raise ConflictError(f"vehicle {body.vehicle_id} is taken during the window by orders {busy}")
        return {"vehicle_id": body.vehicle_id, "pool_id": pool_id}

    return await _apply(conn, caller, dispatch_order_id, OrderAction.ASSIGN, check=check)


@router.post("/orders/{dispatch_order_id}/start", summary="assigned → in_progress: the car set off")
async def start_order(*, dispatch_order_id: Id, conn: Conn, caller: CallerDep) -> Order:
    caller.require(ORDER_WRITERS, "starting an order")
    return await _apply(conn, caller, dispatch_order_id, OrderAction.START)


@router.post("/orders/{dispatch_order_id}/complete", summary="in_progress → completed")
async def complete_order(*, dispatch_order_id: Id, conn: Conn, caller: CallerDep) -> Order:
    caller.require(ORDER_WRITERS, "completing an order")
    return await _apply(conn, caller, dispatch_order_id, OrderAction.COMPLETE)


@router.post("/orders/{dispatch_order_id}/cancel", summary="requested / approved / assigned → cancelled")
async def cancel_order(*, dispatch_order_id: Id, body: CancelIn, conn: Conn, caller: CallerDep) -> Order:
    caller.require(ORDER_WRITERS, "cancelling an order")
    return await _apply(conn, caller, dispatch_order_id, OrderAction.CANCEL, cancel_reason=body.reason)


@router.put(
    "/orders/{dispatch_order_id}/route", summary="The approved route (GeoJSON LineString), stored in WGS-84"
)
async def set_route(*, dispatch_order_id: Id, body: RouteIn, conn: Conn, caller: CallerDep) -> Order:
    """The route may be drawn on a Chinese map service (GCJ-02: ``datum: gcj02``); it is converted
    with the exact iterative inverse and stored in WGS-84. Allowed until the car sets off."""
    caller.require(ORDER_APPROVERS | ORDER_WRITERS, "setting a route")
    lon, lat = to_wgs84(
        body.datum, [c[0] for c in body.route.coordinates], [c[1] for c in body.route.coordinates]
    )
    length_m = line_length_m(lon, lat)
    if not math.isfinite(length_m):
        raise InvalidInputError("the route's length is not finite")
    route = {"type": "LineString", "coordinates": [[x, y] for x, y in zip(lon, lat, strict=True)]}
    async with conn.transaction():
        before, agency_id, *_ = await _lock_order(conn, caller, dispatch_order_id, OrderAction.SET_ROUTE)
        params = {"dispatch_order_id": dispatch_order_id, "route": Jsonb(route), "route_length_m": length_m}
        cur = await conn.execute(query("api_set_order_route"), params)
        row = await cur.fetchone()
        assert row is not None
        await write_audit(
            conn,
            caller,
            action="order.route",
            entity="dispatch_order",
            entity_id=dispatch_order_id,
            agency_id=agency_id,
            before=before,
            after=row[0],
        )
        return await get_order(conn, caller, dispatch_order_id)


# Which licence classes (准驾车型) may drive which car: a large bus needs A1; a minibus (10-19 seats) A1
# or B1; a car, SUV, MPV or van of up to 9 seats any of A1 A2 A3 B1 B2 C1 (C2: automatic cars only).
BUS_CLASSES = frozenset({"A1"})
MINIBUS_CLASSES = frozenset({"A1", "B1"})
CAR_CLASSES = frozenset({"A1", "A2", "A3", "B1", "B2", "C1", "C2"})


def licence_refusal(
    licence_class: str, expires_on: date, last_day: date, vehicle_kind: str | None, seats: int | None
) -> str | None:
    """Why a driver may not take an order (None: they may): the licence must be valid through the order's
    last local day and cover the assigned car."""
    if expires_on < last_day:
        return f"the driver's licence expires on {expires_on}, before the order's last day {last_day}"
    if vehicle_kind is None:
        return None
    if vehicle_kind == "bus" or (seats is not None and seats > 19):
        allowed = BUS_CLASSES
    elif vehicle_kind == "minibus" or (seats is not None and seats > 9):
        allowed = MINIBUS_CLASSES
    else:
        allowed = CAR_CLASSES
    if licence_class not in allowed:
        return f"licence class {licence_class} does not cover a {vehicle_kind} ({', '.join(sorted(allowed))})"
    return None


@router.put("/orders/{dispatch_order_id}/driver", summary="The driver of an order (licence checked)")
async def set_driver(*, dispatch_order_id: Id, body: DriverIn, conn: Conn, caller: CallerDep) -> Order:
    caller.require(ORDER_WRITERS, "naming a driver")
    async with conn.transaction():
        cur = await conn.execute(
            query("api_order_row"), {"dispatch_order_id": dispatch_order_id} | caller.scope()
        )
        row = await cur.fetchone()
        if row is None:
            raise NotFoundError("order", dispatch_order_id)
        before, agency_id = row[0], row[1]
        check = await (
            await conn.execute(
                query("api_order_driver_check"),
                {"dispatch_order_id": dispatch_order_id, "driver_id": body.driver_id},
            )
        ).fetchone()
        assert check is not None
        last_day, vehicle_kind, seats, licence_class, expires_on, driver_agency_id = check
        if licence_class is None or not caller.sees_agency(driver_agency_id):
            raise NotFoundError("driver", body.driver_id)
        reason = licence_refusal(licence_class, expires_on, last_day, vehicle_kind, seats)
        if reason is not None:
            raise ConflictError(f"order {dispatch_order_id}: {reason}")
        cur = await conn.execute(
            query("api_set_order_driver"),
            {"dispatch_order_id": dispatch_order_id, "driver_id": body.driver_id},
        )
        after = await cur.fetchone()
        assert after is not None
        await write_audit(
            conn,
            caller,
            action="order.driver",
            entity="dispatch_order",
            entity_id=dispatch_order_id,
            agency_id=agency_id,
            before=before,
            after=after[0],
        )
        return await get_order(conn, caller, dispatch_order_id)
