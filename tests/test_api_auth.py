"""Bearer tokens, roles, users and the command line's token maker."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from fleetwatch.cli import main
from fleetwatch.processes import stop
from tests import api_fixtures
from tests.api_fixtures import World, rows

pytestmark = pytest.mark.anyio
world, client, anyio_backend = api_fixtures.world, api_fixtures.client, api_fixtures.anyio_backend


async def test_missing_token_is_401_with_a_reason(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/vehicles")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.json() == {
        "error": "not_authenticated",
        "detail": "an Authorization: Bearer <token> header is required",
    }


async def test_unknown_token_is_401(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/vehicles", headers={"Authorization": "Bearer fw_nope"})
    assert r.status_code == 401
    assert "unknown, expired or revoked" in r.json()["detail"]


async def test_me_shows_role_agencies_below_and_usable_pools(client: httpx.AsyncClient, world: World) -> None:
    r = await client.get("/v1/me", headers=world.auth("city_dispatcher"))
    assert r.status_code == 200
    me = r.json()
    a, p = world.agency, world.pool
    assert me["role"] == "dispatcher" and not me["all_agencies"]
    assert me["agency_ids"] == sorted([a["BUR"], a["OFA"], a["OFB"]])
    assert me["pool_ids"] == sorted([p["CITY"], p["RENT"]])
    # an office uses the pool of the agency above it, and sees only itself
    me = (await client.get("/v1/me", headers=world.auth("office_a_viewer"))).json()
    assert me["agency_ids"] == [a["OFA"]]
    assert me["pool_ids"] == sorted([p["CITY"], p["RENT"]])
    me = (await client.get("/v1/me", headers=world.auth("admin"))).json()
    assert me["all_agencies"] and me["pool_ids"] is None


async def test_admin_creates_a_user_whose_token_works_and_both_are_audited(
    client: httpx.AsyncClient, world: World
) -> None:
    body = {"name": "new.viewer", "role": "agency_viewer", "agency_ids": [world.agency["DSO"]]}
    r = await client.post("/v1/users", json=body, headers=world.auth("admin"))
    assert r.status_code == 201, r.text
    user = r.json()
    assert user["agency_ids"] == [world.agency["DSO"]]
    r = await client.post(
        f"/v1/users/{user['api_user_id']}/tokens", json={"label": "t"}, headers=world.auth("admin")
    )
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["name"] == "new.viewer"
    audit = rows(world.url, "SELECT action, actor, entity FROM audit WHERE actor = 'admin' ORDER BY audit_id")
    assert audit == [("user.create", "admin", "api_user"), ("token.create", "admin", "api_token")]
    # the token itself is never stored, only its hash
    stored = rows(world.url, "SELECT count(*) FROM audit WHERE after::text LIKE %s", (f"%{token}%",))
    assert stored == [(0,)]


async def test_revoked_token_is_refused(client: httpx.AsyncClient, world: World) -> None:
    token_id = rows(
        world.url,
        "SELECT t.api_token_id FROM api_token t JOIN api_user u USING (api_user_id)"
        " WHERE u.name = 'district_viewer'",
    )[0][0]
    r = await client.delete(f"/v1/tokens/{token_id}", headers=world.auth("admin"))
    assert r.status_code == 200 and r.json()["revoked_at"] is not None
    assert (await client.get("/v1/me", headers=world.auth("district_viewer"))).status_code == 401
    assert (await client.delete(f"/v1/tokens/{token_id}", headers=world.auth("admin"))).status_code == 404


@pytest.mark.parametrize("user", ["city_dispatcher", "city_supervisor", "office_a_viewer"])
async def test_only_admins_manage_users(client: httpx.AsyncClient, world: World, user: str) -> None:
    before = rows(world.url, "SELECT count(*) FROM api_user")
    r = await client.post("/v1/users", json={"name": "x", "role": "admin"}, headers=world.auth(user))
    assert r.status_code == 403
    assert "needs one of the roles admin" in r.json()["detail"]
    assert (await client.get("/v1/users", headers=world.auth(user))).status_code == 403
    assert rows(world.url, "SELECT count(*) FROM api_user") == before


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        ({"name": "admin", "role": "admin"}, 409, "exists"),
        ({"name": "lonely", "role": "dispatcher"}, 422, "needs at least one agency"),
        ({"name": "bad name!", "role": "admin"}, 422, "name"),
        ({"name": "x", "role": "king"}, 422, "role"),
        ({"name": "x", "role": "supervisor", "agency_ids": [999_999]}, 422, "agency"),
    ],
)
async def test_bad_user_input_is_refused_and_writes_nothing(
    client: httpx.AsyncClient, world: World, body: dict[str, object], status: int, reason: str
) -> None:
    before = rows(world.url, "SELECT (SELECT count(*) FROM api_user), (SELECT count(*) FROM audit)")
    r = await client.post("/v1/users", json=body, headers=world.auth("admin"))
    assert r.status_code == status, r.text
    assert reason in r.json()["detail"]
    assert rows(world.url, "SELECT (SELECT count(*) FROM api_user), (SELECT count(*) FROM audit)") == before


async def test_cli_token_creates_the_user_and_prints_a_working_token(
    client: httpx.AsyncClient, world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["api", "token", "--database-url", world.url, "--user", "cli.sup", "--role", "supervisor"]
    assert main([*argv, "--agency", "DIS", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["role"] == "supervisor" and printed["agency_ids"] == [world.agency["DIS"]]
    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {printed['token']}"})
    assert me.json()["agency_ids"] == sorted([world.agency["DIS"], world.agency["DSO"]])
    # a second token for the same user needs no role
    assert main(["api", "token", "--database-url", world.url, "--user", "cli.sup"]) == 0
    assert capsys.readouterr().out.strip().startswith("fw_")
    audit = rows(
        world.url, "SELECT action FROM audit WHERE actor = 'cli' AND entity_id <> '' ORDER BY audit_id"
    )
    assert [a for (a,) in audit][-3:] == ["user.create", "token.create", "token.create"]
    with pytest.raises(SystemExit, match="no agency with code NOPE"):
        main(
            [
                "api",
                "token",
                "--database-url",
                world.url,
                "--user",
                "u2",
                "--role",
                "supervisor",
                "--agency",
                "NOPE",
            ]
        )


async def test_admin_lists_users_with_their_agencies(client: httpx.AsyncClient, world: World) -> None:
    r = await client.get("/v1/users", headers=world.auth("admin"))
    users = {u["name"]: u for u in r.json()}
    assert set(users) == set(api_fixtures.USERS)
    assert users["district_viewer"]["agency_ids"] == [world.agency["DSO"]]
    assert users["admin"]["agency_ids"] == []


def test_fleetwatch_api_serves_on_loopback(world: World, tmp_path: Path) -> None:
    port = _free_port()
    log_path = tmp_path / "api.log"
    with log_path.open("wb") as handle:
        server = subprocess.Popen(
            [sys.executable, "-m", "fleetwatch.cli", "api", "--database-url", world.url, "--port", str(port)],
            stdout=handle,
            stderr=handle,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, log_path.read_text()
            try:
                r = httpx.get(
                    f"http://127.0.0.1:{port}/v1/me", headers=world.auth("city_supervisor"), timeout=2
                )
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "fleetwatch api did not answer"
                time.sleep(0.1)
        assert r.status_code == 200 and r.json()["name"] == "city_supervisor"
    finally:
        assert stop(server) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal it handled


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
