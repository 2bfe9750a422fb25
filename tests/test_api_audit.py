"""The audit trail: insert-only, written in the write's transaction, read back within scope."""

from __future__ import annotations

import httpx
import psycopg
import pytest

from tests import api_fixtures
from tests.api_fixtures import World, rows

pytestmark = pytest.mark.anyio
world, client, anyio_backend = api_fixtures.world, api_fixtures.client, api_fixtures.anyio_backend


def test_audit_rows_cannot_be_changed_or_deleted(world: World) -> None:
    with psycopg.connect(world.url, autocommit=True) as conn:
        for sql in ("UPDATE audit SET actor = 'someone else'", "DELETE FROM audit", "TRUNCATE audit"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="audit is insert-only"):
                conn.execute(sql)
    assert rows(world.url, "SELECT count(*) FROM audit")[0][0] > 0  # the test users' tokens


async def test_audit_is_read_within_scope(client: httpx.AsyncClient, world: World) -> None:
    await client.put(
        f"/v1/vehicles/{world.vehicle['CAR1']}/status",
        json={"status": "maintenance"},
        headers=world.auth("admin"),
    )
    await client.put(
        f"/v1/vehicles/{world.vehicle['DIS1']}/status",
        json={"status": "maintenance"},
        headers=world.auth("admin"),
    )
    everything = (await client.get("/v1/audit", headers=world.auth("admin"))).json()
    assert [(a["action"], a["entity_id"]) for a in everything[:2]] == [
        ("vehicle.status", str(world.vehicle["DIS1"])),
        ("vehicle.status", str(world.vehicle["CAR1"])),
    ]
    city = (await client.get("/v1/audit", headers=world.auth("city_supervisor"))).json()
    assert [(a["action"], a["entity_id"]) for a in city] == [("vehicle.status", str(world.vehicle["CAR1"]))]
    assert city[0]["before"]["status"] == "in_service" and city[0]["after"]["status"] == "maintenance"
    filtered = await client.get(
        "/v1/audit",
        params={"entity": "vehicle", "entity_id": str(world.vehicle["DIS1"])},
        headers=world.auth("admin"),
    )
    assert len(filtered.json()) == 1
    page = await client.get(
        "/v1/audit",
        params={"before_audit_id": everything[0]["audit_id"], "limit": 1},
        headers=world.auth("admin"),
    )
    assert [a["audit_id"] for a in page.json()] == [everything[1]["audit_id"]]
    assert (await client.get("/v1/audit", headers=world.auth("city_dispatcher"))).status_code == 403


async def test_a_failed_write_leaves_no_audit_row(client: httpx.AsyncClient, world: World) -> None:
    """The vehicle row is written before the terminal conflict is found: both roll back together."""
    before = rows(world.url, "SELECT count(*) FROM audit")
    r = await client.post(
        "/v1/vehicles",
        json={
            "plate": "CAR1",
            "kind": "sedan",
            "seats": 5,
            "pool_id": world.pool["CITY"],
            "agency_id": world.agency["BUR"],
        },
        headers=world.auth("admin"),
    )
    assert r.status_code == 409
    assert rows(world.url, "SELECT count(*) FROM audit") == before
