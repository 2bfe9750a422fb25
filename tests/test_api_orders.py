"""Dispatch orders: the lifecycle, assignment checks, GCJ-02 routes, merge suggestions, scoping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np
import pytest

from api.lifecycle import IllegalTransition, OrderAction, OrderStatus, transition
from api.merge import MergeParams, Requests, merge_groups
from tests import api_fixtures
from tests.api_fixtures import World, east_north, rows
from tracks.geo import wgs84_to_gcj02

pytestmark = pytest.mark.anyio
world, client, anyio_backend = api_fixtures.world, api_fixtures.client, api_fixtures.anyio_backend

S, A = OrderStatus, OrderAction
START = datetime(2026, 12, 1, 9, tzinfo=UTC)


def order_body(world: World, **change: Any) -> dict[str, Any]:
    o_lon, o_lat = east_north(0, 0)
    d_lon, d_lat = east_north(8_000, 3_000)
    body: dict[str, Any] = {
        "agency_id": world.agency["OFA"],
        "pool_id": world.pool["CITY"],
        "passengers": 3,
        "purpose": "inspection",
        "origin_lon": o_lon,
        "origin_lat": o_lat,
        "destination_lon": d_lon,
        "destination_lat": d_lat,
        "window_start_at": START.isoformat(),
        "window_end_at": (START + timedelta(hours=3)).isoformat(),
    }
    return body | change


async def new_order(client: httpx.AsyncClient, world: World, *, approve: bool = False, **change: Any) -> int:
    r = await client.post(
        "/v1/orders", json=order_body(world, **change), headers=world.auth("city_dispatcher")
    )
    assert r.status_code == 201, r.text
    order_id = int(r.json()["dispatch_order_id"])
    if approve:
        r = await client.post(f"/v1/orders/{order_id}/approve", headers=world.auth("city_supervisor"))
        assert r.status_code == 200, r.text
    return order_id


def test_lifecycle_table() -> None:
    assert transition(S.REQUESTED, A.APPROVE) is S.APPROVED
    assert transition(S.APPROVED, A.ASSIGN) is S.ASSIGNED
    assert transition(S.ASSIGNED, A.ASSIGN) is S.ASSIGNED  # another car, before it sets off
    assert transition(S.ASSIGNED, A.START) is S.IN_PROGRESS
    assert transition(S.IN_PROGRESS, A.COMPLETE) is S.COMPLETED
    assert transition(S.DISPATCHED, A.COMPLETE) is S.COMPLETED  # the simulator's orders
    for status in (S.REQUESTED, S.APPROVED, S.ASSIGNED):
        assert transition(status, A.CANCEL) is S.CANCELLED
    refused = transition(S.IN_PROGRESS, A.CANCEL)
    assert isinstance(refused, IllegalTransition)
    assert (
        refused.reason == "cannot cancel an order that is in_progress"
        " (allowed from: approved, assigned, dispatched, requested)"
    )
    for status in (S.COMPLETED, S.CANCELLED):
        assert all(isinstance(transition(status, action), IllegalTransition) for action in A)


async def test_an_order_through_its_whole_life_is_audited_at_every_step(
    client: httpx.AsyncClient, world: World
) -> None:
    order_id = await new_order(client, world)
    car2 = world.vehicle["CAR2"]
    steps: list[tuple[str, str, dict[str, Any] | None, str]] = [
        ("approve", "city_supervisor", None, "approved"),
        ("assign", "city_dispatcher", {"vehicle_id": car2}, "assigned"),
        ("start", "city_dispatcher", None, "in_progress"),
        ("complete", "city_dispatcher", None, "completed"),
    ]
    for action, user, body, status in steps:
        r = await client.post(f"/v1/orders/{order_id}/{action}", json=body, headers=world.auth(user))
        assert r.status_code == 200, r.text
        assert r.json()["status"] == status
    order = (await client.get(f"/v1/orders/{order_id}", headers=world.auth("office_a_viewer"))).json()
    assert order["vehicle_id"] == car2 and order["status"] == "completed"
    audit = rows(
        world.url,
        "SELECT action, actor, before->>'status', after->>'status', agency_id FROM audit"
        " WHERE entity = 'dispatch_order' AND entity_id = %s ORDER BY audit_id",
        (str(order_id),),
    )
    a = world.agency["OFA"]
    assert audit == [
        ("order.create", "city_dispatcher", None, "requested", a),
        ("order.approve", "city_supervisor", "requested", "approved", a),
        ("order.assign", "city_dispatcher", "approved", "assigned", a),
        ("order.start", "city_dispatcher", "assigned", "in_progress", a),
        ("order.complete", "city_dispatcher", "in_progress", "completed", a),
    ]


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("start", "cannot start an order that is requested"),
        ("complete", "cannot complete an order that is requested"),
        ("assign", "cannot assign an order that is requested"),
    ],
)
async def test_illegal_transitions_are_409_with_the_reason(
    client: httpx.AsyncClient, world: World, path: str, reason: str
) -> None:
    order_id = await new_order(client, world)
    body = {"vehicle_id": world.vehicle["CAR1"]} if path == "assign" else None
    before = rows(world.url, "SELECT count(*) FROM audit")
    r = await client.post(f"/v1/orders/{order_id}/{path}", json=body, headers=world.auth("admin"))
    assert r.status_code == 409
    assert r.json() == {
        "error": "conflict",
        "detail": f"order {order_id}: {reason} (allowed from: "
        + r.json()["detail"].split("(allowed from: ")[1],
    }
    assert reason in r.json()["detail"]
    assert rows(world.url, "SELECT count(*) FROM audit") == before
    assert rows(world.url, "SELECT status FROM dispatch_order WHERE dispatch_order_id = %s", (order_id,)) == [
        ("requested",)
    ]


async def test_cancel_needs_a_reason_and_ends_the_order(client: httpx.AsyncClient, world: World) -> None:
    order_id = await new_order(client, world, approve=True)
    auth = world.auth("city_dispatcher")
    assert (await client.post(f"/v1/orders/{order_id}/cancel", json={}, headers=auth)).status_code == 422
    r = await client.post(f"/v1/orders/{order_id}/cancel", json={"reason": "meeting moved"}, headers=auth)
    assert r.status_code == 200 and r.json()["cancel_reason"] == "meeting moved"
    again = await client.post(f"/v1/orders/{order_id}/cancel", json={"reason": "x"}, headers=auth)
    assert again.status_code == 409 and "that is cancelled" in again.json()["detail"]


@pytest.mark.parametrize(
    ("user", "action", "status"),
    [
        ("city_dispatcher", "approve", 403),  # a dispatcher does not approve requests
        ("office_a_viewer", "approve", 403),
        ("city_supervisor", "start", 403),
        ("district_supervisor", "approve", 404),  # not their agency's order
    ],
)
async def test_roles_and_agencies_on_transitions(
    client: httpx.AsyncClient, world: World, user: str, action: str, status: int
) -> None:
    order_id = await new_order(client, world)
    r = await client.post(f"/v1/orders/{order_id}/{action}", headers=world.auth(user))
    assert r.status_code == status


@pytest.mark.parametrize(
    ("user", "change", "status", "reason"),
    [
        ("city_supervisor", {}, 403, "needs one of the roles"),
        ("district_dispatcher", {}, 403, "not one of district_dispatcher's agencies"),
        ("city_dispatcher", {"pool_id": "DIST"}, 403, "not a pool city_dispatcher may use"),
        ("city_dispatcher", {"window_end_at": "2026-12-01T08:00:00Z"}, 422, "window_end_at must be after"),
        ("city_dispatcher", {"window_start_at": "2026-12-01T09:00:00"}, 422, "timezone"),
        ("city_dispatcher", {"origin_lon": 200.0}, 422, "origin_lon"),
        ("city_dispatcher", {"passengers": 0}, 422, "passengers"),
        ("city_dispatcher", {"purpose": ""}, 422, "purpose"),
        ("city_dispatcher", {"datum": "bd09"}, 422, "datum"),
        ("city_dispatcher", {"code": "DUP"}, 409, "already exists"),
    ],
)
async def test_bad_orders_are_refused_and_write_nothing(
    *, client: httpx.AsyncClient, world: World, user: str, change: dict[str, Any], status: int, reason: str
) -> None:
    await new_order(client, world, code="DUP")
    if isinstance(change.get("pool_id"), str):
        change["pool_id"] = world.pool[change["pool_id"]]
    before = rows(world.url, "SELECT (SELECT count(*) FROM dispatch_order), (SELECT count(*) FROM audit)")
    r = await client.post("/v1/orders", json=order_body(world, **change), headers=world.auth(user))
    assert r.status_code == status, r.text
    assert reason in r.json()["detail"]
    assert (
        rows(world.url, "SELECT (SELECT count(*) FROM dispatch_order), (SELECT count(*) FROM audit)")
        == before
    )


@pytest.mark.parametrize(
    ("plate", "status", "reason"),
    [
        ("CAR3", 409, "is maintenance, not in service"),
        ("CAR1", 409, "has 5 seats; the order needs 6"),
        ("DIS1", 403, "not a pool city_dispatcher may use"),
        ("CAR2", 409, "is taken during the window by orders"),
    ],
)
async def test_assignment_checks_the_car(
    client: httpx.AsyncClient, world: World, plate: str, status: int, reason: str
) -> None:
    busy = await new_order(client, world, approve=True, passengers=2)
    r = await client.post(
        f"/v1/orders/{busy}/assign",
        json={"vehicle_id": world.vehicle["CAR2"]},
        headers=world.auth("city_dispatcher"),
    )
    assert r.status_code == 200
    order_id = await new_order(
        client,
        world,
        approve=True,
        passengers=6 if plate == "CAR1" else 2,
        window_start_at=(START + timedelta(hours=2)).isoformat(),
        window_end_at=(START + timedelta(hours=4)).isoformat(),
    )
    r = await client.post(
        f"/v1/orders/{order_id}/assign",
        json={"vehicle_id": world.vehicle[plate]},
        headers=world.auth("city_dispatcher"),
    )
    assert r.status_code == status, r.text
    assert reason in r.json()["detail"]
    assert rows(
        world.url, "SELECT status, vehicle_id FROM dispatch_order WHERE dispatch_order_id = %s", (order_id,)
    ) == [("approved", None)]


async def test_the_database_refuses_a_double_booking_too(client: httpx.AsyncClient, world: World) -> None:
    first = await new_order(client, world, approve=True)
    second = await new_order(client, world, approve=True)
    car1 = world.vehicle["CAR1"]
    r = await client.post(
        f"/v1/orders/{first}/assign", json={"vehicle_id": car1}, headers=world.auth("admin")
    )
    assert r.status_code == 200
    import psycopg

    with psycopg.connect(world.url) as conn, pytest.raises(psycopg.errors.ExclusionViolation):
        conn.execute(
            "UPDATE dispatch_order SET status = 'assigned', vehicle_id = %s WHERE dispatch_order_id = %s",
            (car1, second),
        )


async def test_route_in_gcj02_is_stored_in_wgs84(client: httpx.AsyncClient, world: World) -> None:
    order_id = await new_order(client, world, approve=True)
    wgs = np.array([east_north(0, 0), east_north(2_000, 0), east_north(2_000, 1_500)])
    gcj_lon, gcj_lat = wgs84_to_gcj02(wgs[:, 0], wgs[:, 1])
    assert abs(gcj_lon[0] - wgs[0, 0]) > 1e-3  # GCJ-02 is hundreds of metres off here
    route = {"type": "LineString", "coordinates": np.column_stack((gcj_lon, gcj_lat)).tolist()}
    r = await client.put(
        f"/v1/orders/{order_id}/route",
        json={"datum": "gcj02", "route": route},
        headers=world.auth("city_supervisor"),
    )
    assert r.status_code == 200, r.text
    stored = rows(
        world.url,
        "SELECT route, route_length_m FROM dispatch_order WHERE dispatch_order_id = %s",
        (order_id,),
    )
    route_stored, length_m = stored[0]
    assert route_stored["type"] == "LineString"
    assert np.abs(np.array(route_stored["coordinates"]) - wgs).max() < 1e-6
    assert length_m == pytest.approx(3_500, rel=2e-3)
    audit = rows(
        world.url, "SELECT before->'route', after->'route'->>'type' FROM audit WHERE action = 'order.route'"
    )
    assert audit == [(None, "LineString")]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"datum": "wgs84", "route": {"type": "Point", "coordinates": [120, 31]}}, "route"),
        ({"datum": "wgs84", "route": {"type": "LineString", "coordinates": [[120, 31]]}}, "at least 2"),
        (
            {"datum": "wgs84", "route": {"type": "LineString", "coordinates": [[120, 31], [120, 95]]}},
            "less than or equal to 90",
        ),
        ({"datum": "mars", "route": {"type": "LineString", "coordinates": [[120, 31], [120, 32]]}}, "datum"),
    ],
)
async def test_bad_routes_are_refused(
    client: httpx.AsyncClient, world: World, body: dict[str, Any], reason: str
) -> None:
    order_id = await new_order(client, world)
    r = await client.put(f"/v1/orders/{order_id}/route", json=body, headers=world.auth("city_dispatcher"))
    assert r.status_code == 422 and reason in r.json()["detail"]
    assert rows(world.url, "SELECT route FROM dispatch_order WHERE dispatch_order_id = %s", (order_id,)) == [
        (None,)
    ]


async def test_route_is_frozen_once_the_car_set_off(client: httpx.AsyncClient, world: World) -> None:
    order_id = await new_order(client, world, approve=True)
    auth = world.auth("admin")
    await client.post(
        f"/v1/orders/{order_id}/assign", json={"vehicle_id": world.vehicle["CAR1"]}, headers=auth
    )
    await client.post(f"/v1/orders/{order_id}/start", headers=auth)
    body = {"datum": "wgs84", "route": {"type": "LineString", "coordinates": [[120, 31], [120.1, 31]]}}
    r = await client.put(f"/v1/orders/{order_id}/route", json=body, headers=auth)
    assert r.status_code == 409 and "cannot set route an order that is in_progress" in r.json()["detail"]


async def test_orders_are_scoped_and_filtered(client: httpx.AsyncClient, world: World) -> None:
    first = await new_order(client, world, approve=True)
    second = await new_order(client, world, agency_id=world.agency["OFB"])
    r = await client.get("/v1/orders", headers=world.auth("city_supervisor"))
    assert [o["dispatch_order_id"] for o in r.json()] == [first, second]
    r = await client.get("/v1/orders", params={"status": "approved"}, headers=world.auth("city_supervisor"))
    assert [o["dispatch_order_id"] for o in r.json()] == [first]
    r = await client.get("/v1/orders", headers=world.auth("office_a_viewer"))
    assert [o["dispatch_order_id"] for o in r.json()] == [first]
    assert (await client.get("/v1/orders", headers=world.auth("district_supervisor"))).json() == []
    assert (
        await client.get(f"/v1/orders/{second}", headers=world.auth("office_a_viewer"))
    ).status_code == 404
    late = {"start_at": "2026-12-02T00:00:00Z"}
    assert (await client.get("/v1/orders", params=late, headers=world.auth("admin"))).json() == []


async def test_merge_suggestions_group_compatible_requests(client: httpx.AsyncClient, world: World) -> None:
    a = await new_order(client, world, approve=True, passengers=2)
    o_lon, o_lat = east_north(300, 200)
    d_lon, d_lat = east_north(8_300, 3_000)
    b = await new_order(
        client,
        world,
        approve=True,
        passengers=3,
        agency_id=world.agency["OFB"],
        origin_lon=o_lon,
        origin_lat=o_lat,
        destination_lon=d_lon,
        destination_lat=d_lat,
        window_start_at=(START + timedelta(minutes=20)).isoformat(),
    )
    far_lon, far_lat = east_north(-9_000, 0)
    await new_order(
        client, world, approve=True, passengers=1, destination_lon=far_lon, destination_lat=far_lat
    )
    await new_order(client, world, passengers=1)  # requested, not approved: not merged
    params = {"start_at": "2026-12-01T00:00:00Z"}
    r = await client.get("/v1/orders/merge-suggestions", params=params, headers=world.auth("city_dispatcher"))
    assert r.status_code == 200, r.text
    assert r.json() == [
        {
            "dispatch_order_ids": [a, b],
            "passengers": 5,
            "window_start_at": "2026-12-01T09:00:00Z",
            "window_end_at": "2026-12-01T12:00:00Z",
        }
    ]
    # the admin sees the same requests
    assert (
        await client.get("/v1/orders/merge-suggestions", params=params, headers=world.auth("admin"))
    ).json()
    r = await client.get(
        "/v1/orders/merge-suggestions",
        params=params | {"max_passengers": 4},
        headers=world.auth("city_dispatcher"),
    )
    assert r.json() == []
    assert (
        await client.get("/v1/orders/merge-suggestions", params=params, headers=world.auth("office_a_viewer"))
    ).status_code == 403
    bad = await client.get(
        "/v1/orders/merge-suggestions",
        params={"start_at": "2026-12-01T00:00:00Z", "end_at": "2026-12-30T00:00:00Z"},
        headers=world.auth("admin"),
    )
    assert bad.status_code == 422 and "at most 7 days" in bad.json()["detail"]
    late = await client.get(
        "/v1/orders/merge-suggestions",
        params={"start_at": "9999-12-31T12:00:00Z"},
        headers=world.auth("admin"),
    )
    assert late.status_code == 422 and "give end_at" in late.json()["detail"]


def requests_of(*rows_: tuple[int, float, float, float, float, float, float]) -> Requests:
    cols = np.array(rows_, dtype=np.float64).reshape(-1, 7).T
    return Requests(
        passengers=cols[0].astype(np.int64),
        start_s=cols[1],
        end_s=cols[2],
        origin_lon=cols[3],
        origin_lat=cols[4],
        destination_lon=cols[5],
        destination_lat=cols[6],
    )


def test_merge_groups_respect_seats_windows_and_distance() -> None:
    near, far = 120.0005, 120.5
    reqs = requests_of(
        (2, 0, 3600, 120, 31, 121, 31),
        (2, 600, 4200, near, 31, 121, 31),
        (2, 900, 4500, 120, 31, 121, 31),  # fits with both (6 seats)
        (2, 1200, 4800, 120, 31, 121, 31),  # would make 8: starts a new group, alone
        (1, 1300, 4800, far, 31, 121, 31),  # origin too far
        (1, 9000, 9900, 120, 31, 121, 31),  # window too late
    )
    assert merge_groups(reqs, MergeParams(max_passengers=7)) == [(0, 1, 2)]
    assert merge_groups(reqs, MergeParams(max_passengers=4)) == [(0, 1), (2, 3)]
    assert merge_groups(requests_of(), MergeParams()) == []
    with pytest.raises(ValueError, match="sorted"):
        requests_of((1, 10, 20, 0, 0, 0, 0), (1, 5, 20, 0, 0, 0, 0))
