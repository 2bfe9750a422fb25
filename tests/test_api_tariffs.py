"""Settlement tariffs per provider pool: CRUD by admins, read by all, validated, audited."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests import api_fixtures
from tests.api_fixtures import World, rows

pytestmark = pytest.mark.anyio
world, client, anyio_backend = api_fixtures.world, api_fixtures.client, api_fixtures.anyio_backend


def own_pool(world: World, **change: Any) -> dict[str, Any]:
    body = {
        "pool_id": world.pool["CITY"],
        "kind": "own_pool",
        "per_km_fen": 180,
        "per_hour_fen": 2_500,
        "valid_from": "2026-01-01",
        "valid_until": "2027-01-01",
        "note": "市机关车队 2026",
    }
    return body | change


async def test_tariff_crud_is_audited(client: httpx.AsyncClient, world: World) -> None:
    admin = world.auth("admin")
    r = await client.post("/v1/tariffs", json=own_pool(world), headers=admin)
    assert r.status_code == 201, r.text
    tariff_id = r.json()["tariff_id"]
    rental = {"pool_id": world.pool["RENT"], "kind": "rental", "per_day_fen": 45_000, "per_hour_fen": 8_000}
    r = await client.post("/v1/tariffs", json=rental | {"valid_from": "2026-01-01"}, headers=admin)
    assert r.status_code == 201, r.text
    listed = await client.get("/v1/tariffs", headers=world.auth("office_a_viewer"))
    assert [t["kind"] for t in listed.json()] == ["own_pool", "rental"]
    only = await client.get("/v1/tariffs", params={"pool_id": world.pool["RENT"]}, headers=admin)
    assert [t["kind"] for t in only.json()] == ["rental"]
    r = await client.put(f"/v1/tariffs/{tariff_id}", json=own_pool(world, per_km_fen=200), headers=admin)
    assert r.status_code == 200 and r.json()["per_km_fen"] == 200
    assert (await client.get(f"/v1/tariffs/{tariff_id}", headers=admin)).json()["per_km_fen"] == 200
    assert (await client.delete(f"/v1/tariffs/{tariff_id}", headers=admin)).status_code == 204
    assert (await client.get(f"/v1/tariffs/{tariff_id}", headers=admin)).status_code == 404
    assert (await client.delete(f"/v1/tariffs/{tariff_id}", headers=admin)).status_code == 404
    audit = rows(
        world.url,
        "SELECT action, (before->>'per_km_fen')::int, (after->>'per_km_fen')::int FROM audit"
        " WHERE entity = 'tariff' AND entity_id = %s ORDER BY audit_id",
        (str(tariff_id),),
    )
    assert audit == [("tariff.create", None, 180), ("tariff.update", 180, 200), ("tariff.delete", 200, None)]


@pytest.mark.parametrize(
    ("user", "change", "status", "reason"),
    [
        ("city_dispatcher", {}, 403, "needs one of the roles admin"),
        ("city_supervisor", {}, 403, "writing tariffs"),
        ("admin", {"kind": "rental"}, 422, "a rental tariff has exactly per_day_fen, per_hour_fen"),
        ("admin", {"pool": "RENT"}, 422, "is a rental pool, billed by a rental tariff"),
        ("admin", {"per_km_fen": -1}, 422, "per_km_fen"),
        ("admin", {"valid_until": "2025-01-01"}, 422, "valid_until must be after valid_from"),
        ("admin", {"valid_from": "2026-13-01"}, 422, "valid_from"),
        ("admin", {"pool_id": 999_999}, 422, "no pool 999999"),
        ("admin", {"discount_pct": 10}, 422, "has exactly per_hour_fen, per_km_fen"),
        ("admin", {"valid_from": "2026-06-01", "valid_until": None}, 409, "tariff_one_at_a_time"),
    ],
)
async def test_bad_tariffs_are_refused_and_write_nothing(
    *, client: httpx.AsyncClient, world: World, user: str, change: dict[str, Any], status: int, reason: str
) -> None:
    assert (
        await client.post("/v1/tariffs", json=own_pool(world), headers=world.auth("admin"))
    ).status_code == 201
    if "pool" in change:
        change = {"pool_id": world.pool[change.pop("pool")]} | change
    before = rows(world.url, "SELECT (SELECT count(*) FROM tariff), (SELECT count(*) FROM audit)")
    r = await client.post("/v1/tariffs", json=own_pool(world, **change), headers=world.auth(user))
    assert r.status_code == status, r.text
    assert reason in r.json()["detail"]
    assert rows(world.url, "SELECT (SELECT count(*) FROM tariff), (SELECT count(*) FROM audit)") == before


async def test_ride_hailing_tariff_is_a_discount(client: httpx.AsyncClient, world: World) -> None:
    import psycopg

    with psycopg.connect(world.url) as conn:
        row = conn.execute(
            "INSERT INTO pool (code, name, kind) VALUES ('RIDE', 'ride hailing', 'ride_hailing')"
            " RETURNING pool_id"
        ).fetchone()
        assert row
    body = {"pool_id": row[0], "kind": "ride_hailing", "discount_pct": 12.5, "valid_from": "2026-01-01"}
    r = await client.post("/v1/tariffs", json=body, headers=world.auth("admin"))
    assert r.status_code == 201 and r.json()["discount_pct"] == 12.5
    r = await client.put(
        f"/v1/tariffs/{r.json()['tariff_id']}",
        json=body | {"pool_id": world.pool["RENT"]},
        headers=world.auth("admin"),
    )
    assert r.status_code == 422 and "add a new tariff for another pool" in r.json()["detail"]
