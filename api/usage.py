"""``GET /v1/usage``: trips, km, hours in use and idle days per day, ISO week or month (China time),
for one car, one agency's cars or every car in the caller's scope, from vehicle_day_usage."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from psycopg.rows import class_row

from api.auth import CallerDep
from api.connection import Conn
from api.errors import InvalidInputError
from api.fleet import get_vehicle
from api.schemas import Id
from api.schemas_supervision import Period, Usage, UsageBucket
from store.queries import query

router = APIRouter(prefix="/v1", tags=["supervision"])

CHINA = timedelta(hours=8)  # China Standard Time, no daylight saving
MAX_DAYS = 366 * 3


def china_today() -> date:
    return (datetime.now(UTC) + CHINA).date()


@router.get("/usage", summary="Usage statistics per day, week or month (China time)")
async def usage(
    *,
    conn: Conn,
    caller: CallerDep,
    vehicle: Annotated[Id | None, Query(description="one car")] = None,
    agency: Annotated[Id | None, Query(description="the cars of one agency")] = None,
    period: Period = Period.DAY,
    from_day: Annotated[date, Query(alias="from", description="first China-local day")],
    to_day: Annotated[date, Query(alias="to", description="last China-local day, included")],
) -> Usage:
    """Idle days count the days up to today an in-service car made no trip; a car's status is
    today's, retired cars are left out. Without ``vehicle`` or ``agency``: every car in scope."""
    if vehicle is not None and agency is not None:
        raise InvalidInputError("give vehicle or agency, not both")
    if to_day < from_day:
        raise InvalidInputError("to must not be before from")
    if (to_day - from_day).days >= MAX_DAYS:
        raise InvalidInputError(f"a usage query spans at most {MAX_DAYS} days")
    if vehicle is not None:
        await get_vehicle(conn, caller, vehicle)
    if agency is not None:
        caller.require_agency(agency)
    last_day = min(to_day, china_today())  # days still to come are not idle
    buckets: list[UsageBucket] = []
    if last_day >= from_day:
        params = caller.scope() | {
            "vehicle_id": vehicle,
            "agency_id": agency,
            "period": period.value,
            "from": from_day,
            "to": last_day,
        }
        async with conn.cursor(row_factory=class_row(UsageBucket)) as cur:
            await cur.execute(query("api_usage"), params)
            buckets = await cur.fetchall()
    return Usage(
        vehicle_id=vehicle,
        agency_id=agency,
        period=period,
        from_day=from_day,
        to_day=to_day,
        buckets=buckets,
        trips=sum(b.trips for b in buckets),
        distance_km=sum(b.distance_km for b in buckets),
        hours_in_use=sum(b.hours_in_use for b in buckets),
        idle_days=sum(b.idle_days for b in buckets),
    )
