from __future__ import annotations

import httpx
import pytest

from tests import api_fixtures
from tests.api_fixtures import World

pytestmark = pytest.mark.anyio
world, client, anyio_backend = api_fixtures.world, api_fixtures.client, api_fixtures.anyio_backend


async def test_me(client: httpx.AsyncClient, world: World) -> None:
    r = await client.get("/v1/me", headers=world.auth("city_dispatcher"))
    assert r.status_code == 200, r.text
