"""Vehicles, terminals, live positions and tracks: scoping, writes with audit, bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest

from tests import api_fixtures
from tests.api_fixtures import World, east_north, rows

pytestmark = pytest.mark.anyio
world, client, anyio_backend = api_fixtures.world, api_fixtures.client, api_fixtures.anyio_backend


def counts(url: str) -> list[tuple[object, ...]]:
    return rows(
        url,
        "SELECT (SELECT count(*) FROM vehicle), (SELECT count(*) FROM terminal),"
        " (SELECT count(*) FROM audit)",
    )


@pytest.mark.parametrize(
    ("user", "plates"),
    [
        ("admin", ["CAR1", "CAR2", "CAR3", "CAR4", "DIS1", "DIS2", "RNT1"]),
        ("city_dispatcher", ["CAR1", "CAR2", "CAR3", "CAR4"]),
        ("city_supervisor", ["CAR1", "CAR2", "CAR3", "CAR4"]),
        ("district_dispatcher", ["DIS1", "DIS2"]),
        ("district_viewer", []),  # the district office owns no car; the district head does
        ("office_a_viewer", []),
    ],
)
async def test_vehicles_are_scoped_to_the_callers_agencies(
    client: httpx.AsyncClient, world: World, user: str, plates: list[str]
) -> None:
    r = await client.get("/v1/vehicles", headers=world.auth(user))
    assert r.status_code == 200
    assert [v["plate"] for v in r.json()] == plates
    live = await client.get("/v1/positions/live", headers=world.auth(user))
    assert {p["plate"] for p in live.json()} == set(plates) - {"RNT1"}
    terminals = await client.get("/v1/terminals", headers=world.auth(user))
    assert {t["terminal_id"] for t in terminals.json()} == {f"T-{p}" for p in plates}


async def test_a_vehicle_of_another_agency_is_not_found(client: httpx.AsyncClient, world: World) -> None:
    dis1 = world.vehicle["DIS1"]
    r = await client.get(f"/v1/vehicles/{dis1}", headers=world.auth("city_dispatcher"))
    assert r.status_code == 404 and r.json()["detail"] == f"no vehicle {dis1}"
    r = await client.get(f"/v1/vehicles/{dis1}", headers=world.auth("district_dispatcher"))
    assert r.status_code == 200 and r.json()["terminal_ids"] == ["T-DIS1"]
    r = await client.put(
        f"/v1/vehicles/{dis1}/status", json={"status": "retired"}, headers=world.auth("city_dispatcher")
    )
    assert r.status_code == 404
    assert rows(world.url, "SELECT status FROM vehicle WHERE vehicle_id = %s", (dis1,)) == [("in_service",)]


async def test_register_a_vehicle_is_audited(client: httpx.AsyncClient, world: World) -> None:
    depot_id = rows(world.url, "SELECT depot_id FROM depot")[0][0]
    body = {
        "plate": "苏D·N0001",
        "kind": "mpv",
        "seats": 7,
        "pool_id": world.pool["CITY"],
        "agency_id": world.agency["OFA"],
        "depot_id": depot_id,
    }
    r = await client.post("/v1/vehicles", json=body, headers=world.auth("city_dispatcher"))
    assert r.status_code == 201, r.text
    vehicle = r.json()
    assert vehicle["status"] == "in_service" and vehicle["terminal_ids"] == []
    audit = rows(
        world.url,
        "SELECT actor, action, entity_id, agency_id, before, after->>'plate' FROM audit"
        " WHERE entity = 'vehicle'",
    )
    assert audit == [
        (
            "city_dispatcher",
            "vehicle.create",
            str(vehicle["vehicle_id"]),
            world.agency["OFA"],
            None,
            "苏D·N0001",
        )
    ]
    # the office's viewer now sees it
    r = await client.get("/v1/vehicles", headers=world.auth("office_a_viewer"))
    assert [v["plate"] for v in r.json()] == ["苏D·N0001"]


@pytest.mark.parametrize(
    ("user", "change", "status", "reason"),
    [
        ("office_a_viewer", {}, 403, "needs one of the roles"),
        ("city_supervisor", {}, 403, "needs one of the roles"),
        ("city_dispatcher", {"agency_id": "DIS"}, 403, "not one of city_dispatcher's agencies"),
        ("city_dispatcher", {"pool_id": "DIST"}, 403, "not a pool city_dispatcher may use"),
        ("city_dispatcher", {"agency_id": None}, 422, "agency_id is required"),
        ("city_dispatcher", {"seats": 0}, 422, "seats"),
        ("city_dispatcher", {"kind": "tank"}, 422, "kind"),
        ("city_dispatcher", {"plate": "CAR1"}, 409, "already exists"),
        ("city_dispatcher", {"plate": "bad\u0000"}, 422, "NUL"),
        ("city_dispatcher", {"depot_id": "other"}, 422, "is not a depot of pool"),
        ("city_dispatcher", {"extra": 1}, 422, "extra"),
        ("admin", {"pool_id": 999_999, "agency_id": None}, 422, "pool_id"),
    ],
)
async def test_bad_vehicle_registrations_are_refused_and_write_nothing(
    *, client: httpx.AsyncClient, world: World, user: str, change: dict[str, object], status: int, reason: str
) -> None:
    body: dict[str, object] = {
        "plate": "NEW1",
        "kind": "sedan",
        "seats": 5,
        "pool_id": world.pool["CITY"],
        "agency_id": world.agency["BUR"],
    }
    for key, given in change.items():
        value = given
        if key == "agency_id" and isinstance(given, str):
            value = world.agency[given]
        if key == "pool_id" and isinstance(given, str):
            value = world.pool[given]
        if key == "depot_id":
            with psycopg.connect(world.url) as conn:
                row = conn.execute(
                    "INSERT INTO depot (pool_id, name, lon, lat) VALUES (%s, 'd', 120, 31.8)"
                    " RETURNING depot_id",
                    (world.pool["DIST"],),
                ).fetchone()
                assert row
            value = row[0]
        body[key] = value
    before = counts(world.url)
    r = await client.post("/v1/vehicles", json=body, headers=world.auth(user))
    assert r.status_code == status, r.text
    assert reason in r.json()["detail"]
    assert counts(world.url) == before


async def test_vehicle_status_changes_with_reasons(client: httpx.AsyncClient, world: World) -> None:
    car1, auth = world.vehicle["CAR1"], world.auth("city_dispatcher")
    r = await client.put(f"/v1/vehicles/{car1}/status", json={"status": "maintenance"}, headers=auth)
    assert r.status_code == 200 and r.json()["status"] == "maintenance"
    audit = rows(
        world.url, "SELECT before->>'status', after->>'status' FROM audit WHERE action = 'vehicle.status'"
    )
    assert audit == [("in_service", "maintenance")]
    # setting the same status again writes nothing
    r = await client.put(f"/v1/vehicles/{car1}/status", json={"status": "maintenance"}, headers=auth)
    assert r.status_code == 200
    assert len(rows(world.url, "SELECT 1 FROM audit WHERE action = 'vehicle.status'")) == 1
    assert (
        await client.put(f"/v1/vehicles/{car1}/status", json={"status": "retired"}, headers=auth)
    ).status_code == 200
    r = await client.put(f"/v1/vehicles/{car1}/status", json={"status": "in_service"}, headers=auth)
    assert r.status_code == 409 and "stays retired" in r.json()["detail"]
    r = await client.put(f"/v1/vehicles/{car1}/status", json={"status": "scrapped"}, headers=auth)
    assert r.status_code == 422


async def test_a_car_holding_an_order_cannot_go_to_maintenance(
    client: httpx.AsyncClient, world: World
) -> None:
    car2 = world.vehicle["CAR2"]
    start = datetime.now(UTC) + timedelta(hours=1)
    with psycopg.connect(world.url) as conn:
        row = conn.execute(
            "INSERT INTO dispatch_order (code, agency_id, passengers, purpose, origin_lon, origin_lat,"
            " destination_lon, destination_lat, requested_at, window_start_at, window_end_at, status,"
            " vehicle_id, pool_id) VALUES ('O1', %s, 2, 'meeting', 119.9, 31.8, 120.0, 31.8, now(), %s, %s,"
            " 'assigned', %s, %s) RETURNING dispatch_order_id",
            (world.agency["OFA"], start, start + timedelta(hours=2), car2, world.pool["CITY"]),
        ).fetchone()
        assert row
    r = await client.put(
        f"/v1/vehicles/{car2}/status", json={"status": "maintenance"}, headers=world.auth("admin")
    )
    assert r.status_code == 409
    assert f"holds assigned or running orders [{row[0]}]" in r.json()["detail"]


async def test_bind_and_unbind_terminals(client: httpx.AsyncClient, world: World) -> None:
    car1, auth = world.vehicle["CAR1"], world.auth("city_dispatcher")
    r = await client.put(f"/v1/vehicles/{car1}/terminals", json={"terminal_id": "NEW-T1"}, headers=auth)
    assert r.status_code == 200, r.text
    assert r.json()["vehicle_id"] == car1 and r.json()["protocol"] == "fleet"
    assert (await client.get(f"/v1/vehicles/{car1}", headers=auth)).json()["terminal_ids"] == [
        "NEW-T1",
        "T-CAR1",
    ]
    # a terminal bound to another car must be unbound first
    r = await client.put(f"/v1/vehicles/{car1}/terminals", json={"terminal_id": "T-CAR2"}, headers=auth)
    assert r.status_code == 409 and "bound to vehicle" in r.json()["detail"]
    r = await client.delete(f"/v1/vehicles/{car1}/terminals/NEW-T1", headers=auth)
    assert r.status_code == 200 and r.json()["vehicle_id"] is None
    assert (await client.delete(f"/v1/vehicles/{car1}/terminals/T-CAR2", headers=auth)).status_code == 404
    # an unbound terminal can be bound again (to any car in scope), with another protocol
    r = await client.put(
        f"/v1/vehicles/{world.vehicle['CAR2']}/terminals",
        json={"terminal_id": "NEW-T1", "protocol": "jt808"},
        headers=auth,
    )
    assert r.status_code == 200 and r.json()["protocol"] == "jt808"
    bad = await client.put(f"/v1/vehicles/{car1}/terminals", json={"terminal_id": "no spaces"}, headers=auth)
    assert bad.status_code == 422
    audit = rows(world.url, "SELECT action, entity_id FROM audit WHERE entity = 'terminal' ORDER BY audit_id")
    assert audit == [("terminal.bind", "NEW-T1"), ("terminal.unbind", "NEW-T1"), ("terminal.bind", "NEW-T1")]


async def test_live_positions_carry_fix_age_and_online(client: httpx.AsyncClient, world: World) -> None:
    r = await client.get("/v1/positions/live", headers=world.auth("city_dispatcher"))
    by_plate = {p["plate"]: p for p in r.json()}
    assert by_plate["CAR1"]["fix_age_s"] == pytest.approx(10, abs=5)
    assert by_plate["CAR4"]["fix_age_s"] == pytest.approx(3_600, abs=5)
    assert by_plate["CAR1"]["online"] and not by_plate["CAR4"]["online"]
    assert (by_plate["CAR1"]["lon"], by_plate["CAR1"]["lat"]) == pytest.approx(east_north(100, 0))
    online = await client.get(
        "/v1/positions/live", params={"online_only": True}, headers=world.auth("city_dispatcher")
    )
    assert {p["plate"] for p in online.json()} == {"CAR1", "CAR2", "CAR3"}


def insert_fixes(url: str, vehicle_id: int, start: datetime, n: int, *, invalid_every: int = 0) -> None:
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO position (vehicle_id, fix_at, received_at, terminal_no, lon, lat, speed_kmh, valid)"
            " VALUES (%s, %s, %s, 1, %s, %s, 30, %s)",
            [
                (
                    vehicle_id,
                    start + timedelta(seconds=10 * i),
                    start,
                    *east_north(10.0 * i, 0.0),
                    not (invalid_every and i % invalid_every == invalid_every - 1),
                )
                for i in range(n)
            ],
        )


async def test_track_is_geojson_in_pages(client: httpx.AsyncClient, world: World) -> None:
    car1 = world.vehicle["CAR1"]
    start = datetime(2026, 11, 20, 8, tzinfo=UTC)
    insert_fixes(world.url, car1, start, 25, invalid_every=5)  # 5 invalid fixes
    params: dict[str, str | int] = {
        "start_at": start.isoformat(),
        "end_at": (start + timedelta(hours=1)).isoformat(),
        "limit": 8,
    }
    coords: list[list[float]] = []
    pages = 0
    while True:
        r = await client.get(
            f"/v1/vehicles/{car1}/track", params=params, headers=world.auth("city_supervisor")
        )
        assert r.status_code == 200, r.text
        feature = r.json()
        assert feature["type"] == "Feature"
        props = feature["properties"]
        assert props["points"] == len(props["fix_at"]) == len(props["speed_kmh"])
        if props["points"] >= 2:
            assert feature["geometry"]["type"] == "LineString"
            coords += feature["geometry"]["coordinates"]
        elif props["points"] == 1:
            assert feature["geometry"]["type"] == "Point"
            coords.append(feature["geometry"]["coordinates"])
        pages += 1
        if props["next_start_at"] is None:
            break
        params["start_at"] = props["next_start_at"]
    assert pages == 3 and len(coords) == 20
    assert coords[0] == pytest.approx(list(east_north(0, 0)))
    assert [c[0] for c in coords] == sorted(c[0] for c in coords)  # oldest first, never repeated
    params = {"start_at": start.isoformat(), "end_at": (start + timedelta(hours=1)).isoformat()}
    everything = await client.get(
        f"/v1/vehicles/{car1}/track", params=params | {"include_invalid": True}, headers=world.auth("admin")
    )
    assert everything.json()["properties"]["points"] == 25
    empty = await client.get(
        f"/v1/vehicles/{car1}/track",
        params={"start_at": "2020-01-01T00:00:00Z", "end_at": "2020-01-02T00:00:00Z"},
        headers=world.auth("admin"),
    )
    assert empty.json()["geometry"] is None and empty.json()["properties"]["points"] == 0


@pytest.mark.parametrize(
    ("start_at", "end_at", "reason"),
    [
        ("2026-11-20T08:00:00Z", "2026-11-28T08:00:01Z", "at most 604800 s"),
        ("2026-11-20T08:00:00Z", "2026-11-20T07:00:00Z", "end_at must be after start_at"),
        ("2026-11-20T08:00:00", "2026-11-20T09:00:00Z", "timezone"),
        ("yesterday", "2026-11-20T09:00:00Z", "datetime"),
    ],
)
async def test_track_range_must_be_bounded_and_explicit(
    client: httpx.AsyncClient, world: World, start_at: str, end_at: str, reason: str
) -> None:
    r = await client.get(
        f"/v1/vehicles/{world.vehicle['CAR1']}/track",
        params={"start_at": start_at, "end_at": end_at},
        headers=world.auth("admin"),
    )
    assert r.status_code == 422 and reason in r.json()["detail"]


async def test_track_of_another_agencys_vehicle_is_not_found(client: httpx.AsyncClient, world: World) -> None:
    r = await client.get(
        f"/v1/vehicles/{world.vehicle['DIS1']}/track",
        params={"start_at": "2026-11-20T08:00:00Z", "end_at": "2026-11-20T09:00:00Z"},
        headers=world.auth("city_supervisor"),
    )
    assert r.status_code == 404


async def test_agencies_and_pools_in_scope(client: httpx.AsyncClient, world: World) -> None:
    agencies = (await client.get("/v1/agencies", headers=world.auth("district_viewer"))).json()
    assert [a["code"] for a in agencies] == ["DSO"]
    pools = (await client.get("/v1/pools", headers=world.auth("district_viewer"))).json()
    assert [p["code"] for p in pools] == ["DIST", "RENT"]
    pools = (await client.get("/v1/pools", headers=world.auth("admin"))).json()
    assert [p["code"] for p in pools] == ["CITY", "DIST", "RENT"]
