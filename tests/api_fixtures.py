"""A small, hand-made world for the API tests: two agency trees, three pools, cars with live fixes,
and one user per role, each with a bearer token (made through the command line's ``issue_token``).

    bureau (BUR) ── office A (OFA), office B (OFB)       city pool CITY (bureau): cars 1–4
    district head (DIS) ── district office (DSO)         district pool DIST (district head): cars 5–6
                                                          rental pool RENT (no agency): no live cars
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, LiteralString

import httpx
import psycopg
import pytest

from api.app import create_app
from api.schemas import Role
from api.settings import ApiSettings
from api.users import issue_token

CENTRE_LON, CENTRE_LAT = 119.97, 31.81  # Changzhou
M_PER_DEG_LAT = 111_195.0


def east_north(east_m: float, north_m: float) -> tuple[float, float]:
    """(lon, lat) that far east and north of the centre (a small-distance approximation)."""
    import math

    lon = CENTRE_LON + east_m / (M_PER_DEG_LAT * math.cos(math.radians(CENTRE_LAT)))
    return lon, CENTRE_LAT + north_m / M_PER_DEG_LAT


@dataclass(frozen=True, slots=True, kw_only=True)
class World:
    url: str
    agency: dict[str, int]  # code → id
    pool: dict[str, int]
    vehicle: dict[str, int]  # plate → id
    token: dict[str, str]  # user name → bearer token
    now: datetime

    def auth(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token[user]}"}


# cars: plate, pool, agency, seats, status, (east m, north m) or None (no fix), fix age s
CARS = (
    ("CAR1", "CITY", "BUR", 5, "in_service", (100.0, 0.0), 10),
    ("CAR2", "CITY", "BUR", 7, "in_service", (300.0, 0.0), 20),
    ("CAR3", "CITY", "BUR", 5, "maintenance", (50.0, 0.0), 5),
    ("CAR4", "CITY", "BUR", 5, "in_service", (80.0, 0.0), 3_600),  # offline: fix an hour old
    ("DIS1", "DIST", "DIS", 5, "in_service", (200.0, 0.0), 30),
    ("DIS2", "DIST", "DIS", 15, "in_service", (5_000.0, 0.0), 30),
    ("RNT1", "RENT", None, 5, "in_service", None, 0),
)

# user name → (role, agency codes)
USERS = {
    "admin": (Role.ADMIN, []),
    "city_dispatcher": (Role.DISPATCHER, ["BUR"]),
    "district_dispatcher": (Role.DISPATCHER, ["DIS"]),
    "city_supervisor": (Role.SUPERVISOR, ["BUR"]),
    "district_supervisor": (Role.SUPERVISOR, ["DIS"]),
    "office_a_viewer": (Role.AGENCY_VIEWER, ["OFA"]),
    "district_viewer": (Role.AGENCY_VIEWER, ["DSO"]),
}


def build_world(url: str) -> World:
    now = datetime.now(UTC)
    with psycopg.connect(url) as conn:
        agency: dict[str, int] = {}
        for code, parent in (("BUR", None), ("OFA", "BUR"), ("OFB", "BUR"), ("DIS", None), ("DSO", "DIS")):
            row = conn.execute(
                "INSERT INTO agency (code, name, parent_agency_id) VALUES (%s, %s, %s) RETURNING agency_id",
                (code, f"agency {code}", agency.get(parent) if parent else None),
            ).fetchone()
            assert row
            agency[code] = row[0]
        pool: dict[str, int] = {}
        pools = (("CITY", "city", "BUR"), ("DIST", "district", "DIS"), ("RENT", "rental", None))
        for code, kind, owner in pools:
            row = conn.execute(
                "INSERT INTO pool (code, name, kind, agency_id) VALUES (%s, %s, %s, %s) RETURNING pool_id",
                (code, f"pool {code}", kind, agency[owner] if owner else None),
            ).fetchone()
            assert row
            pool[code] = row[0]
        conn.execute(
            "INSERT INTO depot (pool_id, name, lon, lat) VALUES (%s, 'city depot', %s, %s)",
            (pool["CITY"], CENTRE_LON, CENTRE_LAT),
        )
        vehicle: dict[str, int] = {}
        for plate, pool_code, agency_code, seats, status, offset, age_s in CARS:
            row = conn.execute(
                "INSERT INTO vehicle (plate, kind, seats, pool_id, agency_id, status)"
                " VALUES (%s, 'sedan', %s, %s, %s, %s) RETURNING vehicle_id",
                (plate, seats, pool[pool_code], agency[agency_code] if agency_code else None, status),
            ).fetchone()
            assert row
            vehicle[plate] = row[0]
            conn.execute(
                "INSERT INTO terminal (terminal_id, vehicle_id) VALUES (%s, %s)", (f"T-{plate}", row[0])
            )
            if offset is not None:
                lon, lat = east_north(*offset)
                fix_at = now - timedelta(seconds=age_s)
                conn.execute(
                    "INSERT INTO latest_position (vehicle_id, fix_at, received_at, lon, lat, speed_kmh)"
                    " VALUES (%s, %s, %s, %s, %s, 0)",
                    (row[0], fix_at, fix_at, lon, lat),
                )
        conn.commit()
        token = {}
        for name, (role, codes) in USERS.items():
            _, token[name] = issue_token(conn, name=name, role=role, agency_codes=codes, ttl_days=1)
    return World(url=url, agency=agency, pool=pool, vehicle=vehicle, token=token, now=now)


@pytest.fixture
def world(db: str) -> World:
    return build_world(db)


def api_settings(url: str) -> ApiSettings:
    return ApiSettings(database_url=url, db_pool_min=1, db_pool_max=4, online_within_s=300)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def client(world: World) -> AsyncIterator[httpx.AsyncClient]:
    """The app in-process (httpx's ASGI transport), its lifespan (the connection pool) around the test."""
    app = create_app(api_settings(world.url))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as test_client,
    ):
        yield test_client


def rows(url: str, sql: LiteralString, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return list(conn.execute(sql, params).fetchall())
