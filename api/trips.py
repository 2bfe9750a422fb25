"""Supervision of trips: the list with filters (car, agency, time, flagged, without an order) and one
trip with its track, the orders it served (with their roles and approved routes), its route
conformance and the alerts about it. A trip is in scope when its car's agency is, or the agency of an
order it served; the orders and alerts shown with it are those in the caller's scope."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from psycopg import AsyncConnection
from psycopg.rows import TupleRow, class_row, dict_row
from pydantic import AwareDatetime

from api.alerts import list_alert_rows
from api.auth import Caller, CallerDep
from api.connection import Conn, Settings
from api.errors import InvalidInputError, NotFoundError
from api.fleet import read_track
from api.schemas import Id
from api.schemas_supervision import Conformance, TripDetail, TripOrder, TripSummary
from store.queries import query

router = APIRouter(prefix="/v1", tags=["supervision"])

BigPathId = Annotated[int, Path(ge=1, le=2**62)]
CONFORMANCE_FIELDS = tuple(Conformance.model_fields)


async def trip_rows(conn: AsyncConnection[TupleRow], caller: Caller, **filters: Any) -> list[TripSummary]:
    params: dict[str, Any] = {
        "trip_id": None,
        "vehicle_id": None,
        "agency_id": None,
        "start_at": None,
        "end_at": None,
        "without_order": None,
        "flagged": None,
        "limit": 1,
        "offset": 0,
    }
    params |= filters | caller.scope()
    async with conn.cursor(row_factory=class_row(TripSummary)) as cur:
        await cur.execute(query("api_trips"), params)
        return await cur.fetchall()


@router.get("/trips", summary="Trips in the caller's scope, newest first")
async def list_trips(
    *,
    conn: Conn,
    caller: CallerDep,
    vehicle_id: Id | None = None,
    agency_id: Annotated[Id | None, Query(description="the car's agency or an agency it served")] = None,
    start_at: Annotated[AwareDatetime | None, Query(description="trips ending at or after this")] = None,
    end_at: Annotated[AwareDatetime | None, Query(description="trips starting before this")] = None,
    flagged: Annotated[bool | None, Query(description="true: with open alerts; false: without")] = None,
    without_order: Annotated[
        bool | None, Query(description="true: trips serving no order; false: trips serving one")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=5_000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> list[TripSummary]:
    if start_at is not None and end_at is not None and end_at <= start_at:
        raise InvalidInputError("end_at must be after start_at")
    return await trip_rows(
        conn,
        caller,
        vehicle_id=vehicle_id,
        agency_id=agency_id,
        start_at=start_at,
        end_at=end_at,
        flagged=flagged,
        without_order=without_order,
        limit=limit,
        offset=offset,
    )


def _trip_order(row: dict[str, Any]) -> TripOrder:
    conformance = None
    if row["inside_share"] is not None:
        conformance = Conformance(**{f: row[f] for f in CONFORMANCE_FIELDS})
    fields = {k: v for k, v in row.items() if k not in CONFORMANCE_FIELDS}
    return TripOrder(conformance=conformance, **fields)


@router.get("/trips/{trip_id}", summary="One trip: track, orders served, approved routes, conformance")
async def read_trip(*, trip_id: BigPathId, conn: Conn, caller: CallerDep, settings: Settings) -> TripDetail:
    found = await trip_rows(conn, caller, trip_id=trip_id)
    if not found:
        raise NotFoundError("trip", trip_id)
    trip = found[0]
    track = await read_track(
        conn,
        vehicle_id=trip.vehicle_id,
        start_at=trip.start_at,
        end_at=trip.end_at + timedelta(microseconds=1),  # the trip's last fix too
        page=settings.max_track_points,
        include_invalid=False,
    )
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query("api_trip_orders"), {"trip_id": trip_id} | caller.scope())
        orders = [_trip_order(row) for row in await cur.fetchall()]
    alerts = await list_alert_rows(
        conn,
        caller,
        vehicle_id=trip.vehicle_id,
        start_at=trip.start_at,
        end_at=trip.end_at + timedelta(microseconds=1),  # spans that meet the trip's, ends included
        limit=1_000,
    )
    return TripDetail(track=track, orders=orders, alerts=alerts, **trip.model_dump())
