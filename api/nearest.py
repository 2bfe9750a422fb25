"""``GET /v1/vehicles/nearest``: free cars ranked by great-circle distance from a point.

The database walks latest_position's GiST index (earthdistance points) outward from the point and stops
at the k-th car that is free (see ``api_nearest_free_vehicles`` in store/queries/api.sql); distances
are then measured here with the engine's haversine.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, LiteralString

import numpy as np
from fastapi import APIRouter, Query
from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from pydantic import AwareDatetime

from api.auth import DISPATCHERS, Caller, CallerDep
from api.connection import Conn, Settings
from api.errors import InvalidInputError
from api.schemas import Datum, Lat, Lon, Nearest, NearestVehicle
from store.queries import query
from tracks.geo import gcj02_to_wgs84, haversine_m

router = APIRouter(prefix="/v1", tags=["dispatch"])


async def find_nearest(
    conn: AsyncConnection[TupleRow],
    caller: Caller,
    *,
    lon: float,
    lat: float,
    k: int,
    seats: int,
    at: datetime,
    until: datetime,
    online_since: datetime,
    sql: LiteralString | None = None,
) -> list[NearestVehicle]:
    params = caller.scope() | {
        "lon": lon,
        "lat": lat,
        "k": k,
        "seats": seats,
        "at": at,
        "until": until,
        "online_since": online_since,
    }
    cur = await conn.execute(sql or query("api_nearest_free_vehicles"), params)
    rows = await cur.fetchall()
    if not rows:
        return []
    names = [c.name for c in cur.description or ()]
    lons = np.array([r[6] for r in rows], dtype=np.float64)
    lats = np.array([r[7] for r in rows], dtype=np.float64)
    distance_m = haversine_m(lons, lats, np.full_like(lons, lon), np.full_like(lats, lat)).tolist()
    out: list[NearestVehicle] = []
    for row, d in zip(rows, distance_m, strict=True):
        values: dict[str, Any] = dict(zip(names, row, strict=True))
        out.append(NearestVehicle(distance_m=round(d, 1), **values))
    return out


@router.get("/vehicles/nearest", summary="The k nearest free vehicles")
async def nearest_vehicles(
    *,
    lon: Annotated[Lon, Query()],
    lat: Annotated[Lat, Query()],
    conn: Conn,
    caller: CallerDep,
    settings: Settings,
    k: Annotated[int, Query(ge=1)] = 5,
    seats: Annotated[int, Query(ge=1, le=80, description="passengers to carry")] = 1,
    at: Annotated[AwareDatetime | None, Query(description="when the car is needed (default: now)")] = None,
    until: Annotated[AwareDatetime | None, Query(description="until when (default: at)")] = None,
    datum: Datum = Datum.WGS84,
) -> Nearest:
    """Free: in service, a fix within the server's online_within_s, at least ``seats`` seats, in a
    pool the caller may use, and no assigned or running order whose window meets [at, until]. Ranked
    by great-circle distance from (lon, lat), given in WGS-84 or GCJ-02."""
    caller.require(DISPATCHERS, "finding a free car")
    if k > settings.max_nearest_k:
        raise InvalidInputError(f"k is at most {settings.max_nearest_k}")
    now = datetime.now(UTC)
    at = at or now
    until = until or at
    if until < at:
        raise InvalidInputError("until must not be before at")
    if datum is Datum.GCJ02:
        wgs_lon, wgs_lat = gcj02_to_wgs84(lon, lat)
        lon, lat = float(wgs_lon), float(wgs_lat)
    vehicles = await find_nearest(
        conn,
        caller,
        lon=lon,
        lat=lat,
        k=k,
        seats=seats,
        at=at,
        until=until,
        online_since=now - timedelta(seconds=settings.online_within_s),
    )
    return Nearest(lon=lon, lat=lat, at=at, until=until, vehicles=vehicles)
