"""The nearest free car: ranking, every freedom filter, the caller's pools, and the KNN index against
the unindexed scan on a random fleet."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np
import psycopg
import pytest

from api.auth import Caller
from api.nearest import find_nearest
from api.schemas import Role
from store.queries import query
from tests import api_fixtures
from tests.api_fixtures import CENTRE_LAT, CENTRE_LON, World, east_north
from tracks.geo import wgs84_to_gcj02

pytestmark = pytest.mark.anyio
world, client, anyio_backend = api_fixtures.world, api_fixtures.client, api_fixtures.anyio_backend

CENTRE: dict[str, Any] = {"lon": CENTRE_LON, "lat": CENTRE_LAT}


async def nearest(client: httpx.AsyncClient, world: World, user: str, **params: Any) -> list[tuple[str, Any]]:
    r = await client.get("/v1/vehicles/nearest", params=CENTRE | params, headers=world.auth(user))
    assert r.status_code == 200, r.text
    return [(v["plate"], v["distance_m"]) for v in r.json()["vehicles"]]


async def test_free_cars_in_order_of_distance_with_fix_age(client: httpx.AsyncClient, world: World) -> None:
    r = await client.get(
        "/v1/vehicles/nearest", params=CENTRE | {"k": 5}, headers=world.auth("city_dispatcher")
    )
    body = r.json()
    # CAR3 is in maintenance, CAR4 offline (fix an hour old), DIS1/DIS2 in a pool the city may not use,
    # RNT1 has no fix
    assert [(v["plate"], v["distance_m"]) for v in body["vehicles"]] == [
        ("CAR1", pytest.approx(100, abs=0.5)),
        ("CAR2", pytest.approx(300, abs=0.5)),
    ]
    assert body["vehicles"][0]["fix_age_s"] == pytest.approx(10, abs=5)
    assert await nearest(client, world, "admin", k=3) == [
        ("CAR1", pytest.approx(100, abs=0.5)),
        ("DIS1", pytest.approx(200, abs=0.5)),
        ("CAR2", pytest.approx(300, abs=0.5)),
    ]
    assert [p for p, _ in await nearest(client, world, "district_dispatcher")] == ["DIS1", "DIS2"]
    assert [p for p, _ in await nearest(client, world, "admin", k=1)] == ["CAR1"]


async def test_seats_filter(client: httpx.AsyncClient, world: World) -> None:
    assert [p for p, _ in await nearest(client, world, "admin", seats=6)] == ["CAR2", "DIS2"]
    assert [p for p, _ in await nearest(client, world, "admin", seats=16)] == []


async def test_a_car_busy_at_the_time_is_not_free(client: httpx.AsyncClient, world: World) -> None:
    start = datetime(2026, 12, 1, 9, tzinfo=UTC)
    with psycopg.connect(world.url) as conn:
        conn.execute(
            "INSERT INTO dispatch_order (code, agency_id, passengers, purpose, origin_lon, origin_lat,"
            " destination_lon, destination_lat, requested_at, window_start_at, window_end_at, status,"
            " vehicle_id, pool_id) VALUES ('B1', %s, 2, 'x', 119.9, 31.8, 120.0, 31.8, now(), %s, %s,"
            " 'assigned', %s, %s)",
            (
                world.agency["BUR"],
                start,
                start + timedelta(hours=2),
                world.vehicle["CAR1"],
                world.pool["CITY"],
            ),
        )
    during = (start + timedelta(hours=1)).isoformat()
    assert [p for p, _ in await nearest(client, world, "city_dispatcher", at=during)] == ["CAR2"]
    after = (start + timedelta(hours=2)).isoformat()
    assert [p for p, _ in await nearest(client, world, "city_dispatcher", at=after)] == ["CAR1", "CAR2"]
    before, overlapping = (start - timedelta(hours=1)).isoformat(), start.isoformat()
    assert [p for p, _ in await nearest(client, world, "city_dispatcher", at=before)] == ["CAR1", "CAR2"]
    assert [p for p, _ in await nearest(client, world, "city_dispatcher", at=before, until=overlapping)] == [
        "CAR2"
    ]


async def test_point_given_in_gcj02(client: httpx.AsyncClient, world: World) -> None:
    lon, lat = east_north(100, 0)
    gcj_lon, gcj_lat = wgs84_to_gcj02(lon, lat)
    r = await client.get(
        "/v1/vehicles/nearest",
        params={"lon": float(gcj_lon), "lat": float(gcj_lat), "datum": "gcj02", "k": 1},
        headers=world.auth("admin"),
    )
    vehicle = r.json()["vehicles"][0]
    assert vehicle["plate"] == "CAR1" and vehicle["distance_m"] == pytest.approx(0, abs=0.1)
    assert (r.json()["lon"], r.json()["lat"]) == pytest.approx((lon, lat), abs=1e-8)


@pytest.mark.parametrize(
    ("user", "params", "status", "reason"),
    [
        ("office_a_viewer", {}, 403, "needs one of the roles admin, dispatcher"),
        ("city_supervisor", {}, 403, "finding a free car"),
        ("admin", {"k": 51}, 422, "k is at most 50"),
        ("admin", {"k": 0}, 422, "k"),
        ("admin", {"lat": 91}, 422, "lat"),
        ("admin", {"lon": "east"}, 422, "lon"),
        ("admin", {"seats": 81}, 422, "seats"),
        (
            "admin",
            {"at": "2026-12-01T10:00:00Z", "until": "2026-12-01T09:00:00Z"},
            422,
            "until must not be before",
        ),
        ("admin", {"at": "2026-12-01T10:00:00"}, 422, "timezone"),
    ],
)
async def test_bad_nearest_requests(
    *, client: httpx.AsyncClient, world: World, user: str, params: dict[str, Any], status: int, reason: str
) -> None:
    r = await client.get("/v1/vehicles/nearest", params=CENTRE | params, headers=world.auth(user))
    assert r.status_code == status, r.text
    assert reason in r.json()["detail"]


async def test_index_walk_matches_the_full_scan_on_a_random_fleet(world: World) -> None:
    rng = np.random.default_rng(3)
    n = 3_000
    now = datetime.now(UTC)
    lon = CENTRE_LON + rng.uniform(-0.3, 0.3, n)
    lat = CENTRE_LAT + rng.uniform(-0.3, 0.3, n)
    seats = rng.choice([2, 5, 7, 15], n)
    status = rng.choice(["in_service", "in_service", "in_service", "maintenance"], n)
    age_s = rng.choice([10, 60, 100_000], n)
    async with await psycopg.AsyncConnection.connect(world.url, autocommit=True) as conn:
        async with conn.transaction():
            cur = await conn.execute(
                "INSERT INTO vehicle (plate, kind, seats, pool_id, agency_id, status)"
                " SELECT 'R' || i, 'sedan', s, %s, %s, st FROM unnest(%s::int[], %s::text[])"
                " WITH ORDINALITY AS u(s, st, i) ORDER BY i RETURNING vehicle_id",
                (world.pool["DIST"], world.agency["DIS"], seats.tolist(), status.tolist()),
            )
            ids = [r[0] for r in await cur.fetchall()]
            fix_at = [now - timedelta(seconds=int(a)) for a in age_s]
            await conn.execute(
                "INSERT INTO latest_position (vehicle_id, fix_at, received_at, lon, lat)"
                " SELECT * FROM unnest(%s::int[], %s::timestamptz[], %s::timestamptz[],"
                " %s::float8[], %s::float8[])",
                (ids, fix_at, fix_at, lon.tolist(), lat.tolist()),
            )
        caller = Caller(
            api_user_id=1, name="t", role=Role.ADMIN, agency_ids=frozenset(), pool_ids=frozenset()
        )
        for q in range(40):
            point_lon, point_lat = (
                CENTRE_LON + rng.uniform(-0.35, 0.35),
                CENTRE_LAT + rng.uniform(-0.35, 0.35),
            )
            kwargs: dict[str, Any] = {
                "lon": point_lon,
                "lat": point_lat,
                "k": int(rng.integers(1, 30)),
                "seats": int(rng.choice([1, 5, 7])),
                "at": now,
                "until": now,
                "online_since": now - timedelta(seconds=300),
            }
            fast = await find_nearest(conn, caller, **kwargs)
            scan = query("api_nearest_free_vehicles_scan")
            slow = await find_nearest(conn, caller, sql=scan, **kwargs)
            assert [v.distance_m for v in fast] == pytest.approx([v.distance_m for v in slow], abs=0.2), q
            assert len(fast) == kwargs["k"]
            assert all(v.seats >= kwargs["seats"] and v.fix_age_s < 300 for v in fast)
