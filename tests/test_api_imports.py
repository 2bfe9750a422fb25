"""The import doors through the API: JSON rows and batches, file uploads, refusals with every error,
batches and their quarantine, admin-only and agency-scoped; drivers and an order's driver; order changes
inside their window re-queue the engine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from api.schemas import Role
from api.users import issue_token
from tests import api_fixtures
from tests.api_fixtures import World, east_north, rows

pytestmark = pytest.mark.anyio
world, client, anyio_backend = api_fixtures.world, api_fixtures.client, api_fixtures.anyio_backend
EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "import"


def pool_row(code: str, agency: str = "OFA") -> dict[str, Any]:
    return {"code": code, "name": f"pool {code}", "kind": "district", "agency_code": agency}


def bureau_admin(world: World) -> dict[str, str]:
    """An administrator given the bureau (BUR and its offices): scoped to them like any other role."""
    with psycopg.connect(world.url) as conn:
        _, token = issue_token(conn, name="bur_admin", role=Role.ADMIN, agency_codes=["BUR"], ttl_days=1)
    return {"Authorization": f"Bearer {token}"}


async def test_one_row_and_a_batch_as_json_and_reimport_is_a_no_op(
    client: httpx.AsyncClient, world: World
) -> None:
    auth = world.auth("admin")
    one = await client.post("/v1/imports/pools", json=pool_row("P1"), headers=auth)
    assert one.status_code == 200, one.text
    assert (one.json()["inserted"], one.json()["refused"]) == (1, False)
    batch = [pool_row("P2"), pool_row("P3", "DSO")]
    r = await client.post("/v1/imports/pools", json=batch, headers=auth)
    assert r.json()["inserted"] == 2
    again = await client.post("/v1/imports/pools", json=batch, headers=auth)
    assert (again.json()["inserted"], again.json()["updated"], again.json()["unchanged"]) == (0, 0, 2)
    audited = rows(world.url, "SELECT count(*) FROM audit WHERE action = 'import.pools' AND actor = 'admin'")
    assert audited == [(3,)]


async def test_refused_import_is_422_with_every_error_and_writes_nothing(
    client: httpx.AsyncClient, world: World
) -> None:
    batch = [pool_row("P1"), {**pool_row("P2"), "kind": "taxi"}, pool_row("P3", "NOPE")]
    r = await client.post("/v1/imports/pools", json=batch, headers=world.auth("admin"))
    assert r.status_code == 422
    body = r.json()
    assert body["refused"] is True
    assert [(e["row"], e["column"]) for e in body["errors"]] == [(2, "kind"), (3, "agency_code")]
    assert rows(world.url, "SELECT count(*) FROM pool WHERE code LIKE 'P_'") == [(0,)]
    assert rows(world.url, "SELECT count(*) FROM import_batch") == [(0,)]


async def test_file_upload_with_partial_then_the_batch_and_its_quarantine(
    client: httpx.AsyncClient, world: World
) -> None:
    auth = world.auth("admin")
    data = "code,name,kind,agency_code\nP1,甲,city,OFA\nP2,乙,taxi,OFA\n".encode("gb18030")
    files = {"file": ("pools.csv", data, "text/csv")}
    refused = await client.post("/v1/imports/pools/file", files=files, headers=auth)
    assert refused.status_code == 422
    r = await client.post("/v1/imports/pools/file", files=files, params={"partial": "true"}, headers=auth)
    assert r.status_code == 200, r.text
    assert (r.json()["inserted"], r.json()["quarantined"]) == (1, 1)
    batch_id = r.json()["import_batch_id"]
    batches = (await client.get("/v1/imports/batches", headers=auth)).json()
    assert [(b["import_batch_id"], b["kind"], b["source"]) for b in batches] == [
        (batch_id, "pools", "pools.csv")
    ]
    quarantine = (await client.get(f"/v1/imports/batches/{batch_id}/quarantine", headers=auth)).json()
    assert [(q["row_no"], q["column_name"], q["value"]) for q in quarantine] == [(2, "kind", "taxi")]
    assert quarantine[0]["raw"]["name"] == "乙"


async def test_geojson_upload_in_gcj02_is_stored_in_wgs84(client: httpx.AsyncClient, world: World) -> None:
    data = (EXAMPLES / "forbidden_zones.geojson").read_bytes()
    files = {"file": ("zones.geojson", data, "application/geo+json")}
    r = await client.post(
        "/v1/imports/forbidden_zones/file",
        files=files,
        params={"datum": "gcj02"},
        headers=world.auth("admin"),
    )
    assert r.status_code == 200, r.text
    ((lon, lat),) = rows(world.url, "SELECT lon, lat FROM place WHERE code = 'Z-KTV'")
    assert 114.075 < lon < 114.080 and 22.542 < lat < 22.545  # ~500 m south-west of the GCJ-02 input


async def test_imports_need_an_admin_and_a_scoped_admin_writes_only_their_agencies(
    client: httpx.AsyncClient, world: World
) -> None:
    r = await client.post("/v1/imports/pools", json=pool_row("P1"), headers=world.auth("city_dispatcher"))
    assert r.status_code == 403
    scoped = bureau_admin(world)
    own = await client.post("/v1/imports/pools", json=pool_row("P1", "OFA"), headers=scoped)
    assert own.status_code == 200, own.text
    other = await client.post("/v1/imports/pools", json=pool_row("P2", "DSO"), headers=scoped)
    assert other.status_code == 422
    assert other.json()["errors"][0]["reason"] == "not one of the caller's agencies"
    calendar = await client.post(
        "/v1/imports/calendar",
        json={"day": "2026-10-01", "kind": "holiday", "name": "国庆节"},
        headers=scoped,
    )
    assert calendar.status_code == 422
    assert calendar.json()["errors"][0]["reason"] == "city-wide data: only an administrator without agencies"
    # the scoped admin sees the bureau's agencies only
    seen = {a["code"] for a in (await client.get("/v1/agencies", headers=scoped)).json()}
    assert seen == {"BUR", "OFA", "OFB"}


async def test_an_orders_driver_needs_a_valid_licence_of_the_right_class(
    client: httpx.AsyncClient, world: World
) -> None:
    auth = world.auth("admin")
    drivers = [
        {
            "licence_no": "D0000001",
            "name": "张伟",
            "agency_code": "DIS",
            "licence_class": "C1",
            "licence_expires_on": "2031-01-01",
        },
        {
            "licence_no": "D0000002",
            "name": "李娜",
            "agency_code": "DIS",
            "licence_class": "B1",
            "licence_expires_on": "2031-01-01",
        },
        {
            "licence_no": "D0000003",
            "name": "王强",
            "agency_code": "DIS",
            "licence_class": "B1",
            "licence_expires_on": "2026-01-01",
        },
    ]
    assert (await client.post("/v1/imports/drivers", json=drivers, headers=auth)).json()["inserted"] == 3
    listed = (await client.get("/v1/drivers", headers=world.auth("district_dispatcher"))).json()
    ids = {d["licence_no"]: d["driver_id"] for d in listed}
    assert set(ids) == {"D0000001", "D0000002", "D0000003"}
    assert (await client.get("/v1/drivers", headers=world.auth("city_dispatcher"))).json() == []

    # DIS2 has 15 seats: a minibus licence (A1 or B1) is needed, valid through the order's last day
    start = datetime(2026, 6, 1, 1, tzinfo=UTC)
    order_id = _order(world, ("DIS", "DIST", "DIS2"), start, start + timedelta(hours=20))
    path, who = f"/v1/orders/{order_id}/driver", world.auth("district_dispatcher")
    small = await client.put(path, json={"driver_id": ids["D0000001"]}, headers=who)
    assert small.status_code == 409 and "does not cover" in small.json()["detail"]
    expired = await client.put(path, json={"driver_id": ids["D0000003"]}, headers=who)
    assert expired.status_code == 409 and "expires on 2026-01-01" in expired.json()["detail"]
    ok = await client.put(path, json={"driver_id": ids["D0000002"]}, headers=who)
    assert ok.status_code == 200, ok.text
    assert rows(
        world.url, "SELECT driver_id FROM dispatch_order WHERE dispatch_order_id = %s", (order_id,)
    ) == [(ids["D0000002"],)]
    assert rows(world.url, "SELECT count(*) FROM audit WHERE action = 'order.driver'") == [(1,)]
    elsewhere = await client.put(
        path, json={"driver_id": ids["D0000002"]}, headers=world.auth("city_dispatcher")
    )
    assert elsewhere.status_code == 404


def _order(world: World, codes: tuple[str, str, str], start: datetime, end: datetime) -> int:
    """An assigned order of agency, pool and car ``codes``, written directly."""
    agency, pool, car = codes
    lon, lat = east_north(0, 0)
    found = rows(
        world.url,
        "INSERT INTO dispatch_order (code, agency_id, passengers, purpose, origin_lon, origin_lat,"
        " destination_lon, destination_lat, requested_at, window_start_at, window_end_at, status, vehicle_id,"
        " pool_id) VALUES (%s, %s, 1, 'visit', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " RETURNING dispatch_order_id",
        (
            f"O-{car}-{start.timestamp():.0f}",
            world.agency[agency],
            lon,
            lat,
            lon,
            lat,
            start,
            start,
            end,
            "assigned",
            world.vehicle[car],
            world.pool[pool],
        ),
    )
    return int(found[0][0])


async def test_an_order_changed_inside_its_window_requeues_its_car(
    client: httpx.AsyncClient, world: World
) -> None:
    now = datetime.now(UTC)
    later = _order(world, ("BUR", "CITY", "CAR1"), now + timedelta(days=2), now + timedelta(days=2, hours=2))
    r = await client.post(f"/v1/orders/{later}/start", headers=world.auth("city_dispatcher"))
    assert r.status_code == 200, r.text
    assert rows(world.url, "SELECT count(*) FROM engine_queue") == [(0,)]
    begun = _order(world, ("BUR", "CITY", "CAR2"), now - timedelta(hours=2), now + timedelta(hours=1))
    r = await client.post(f"/v1/orders/{begun}/start", headers=world.auth("city_dispatcher"))
    assert r.status_code == 200, r.text
    queued = rows(world.url, "SELECT vehicle_id, dirty_from FROM engine_queue")
    assert queued == [(world.vehicle["CAR2"], now - timedelta(hours=2))]
