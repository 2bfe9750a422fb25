"""A simulated day for the supervision and settlement tests: the simulator's world (12 cars, 1 day,
violations at 4× the usual rates) loaded, its fixes ingested, trips and alerts made by the engine's
rounds with the rules. Seeded once per session into a template database; each test gets a clone."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import date

import httpx
import psycopg
import pytest
from psycopg import sql

from api.app import create_app
from api.schemas import Role
from api.users import issue_token
from ingest.decode import DecodeLimits, Message
from ingest.filters import FilterParams
from ingest.write import create_stage, load_terminals, write_batch
from rules.worker import RulesStep
from simulators.database import load_run
from simulators.dates import recent_working_days
from simulators.output import messages
from simulators.run import SimParams, simulate
from simulators.violations import ViolationRates
from simulators.world import build_world
from store.db import create_database, drop_database, with_dbname
from tests.api_fixtures import api_settings
from tests.conftest import TEMPLATE, wait_until
from tracks.params import Params
from tracks.worker import process_dirty

BATCH = 2_000


def seed_day(url: str, day: date) -> None:
    run = simulate(build_world(12, 5), SimParams(start=day, days=1, rates=ViolationRates().scaled(4.0)))
    load_run(url, run)
    rules = RulesStep()
    with psycopg.connect(url, autocommit=True) as conn:
        create_stage(conn)
        terminals = load_terminals(conn)
        sent = list(messages(run))
        for lo in range(0, len(sent), BATCH):
            batch = [
                Message(topic=t, payload=p, received_at_us=time.time_ns() // 1000)
                for _, t, p in sent[lo : lo + BATCH]
            ]
            write_batch(conn, batch, terminals, worker="t", params=FilterParams(), limits=DecodeLimits())
            while process_dirty(conn, "t", Params(), after=rules) is not None:
                pass


def _allow_connections(base_url: str, name: str, allow: bool) -> None:
    with psycopg.connect(with_dbname(base_url, "postgres"), autocommit=True) as admin:
        admin.execute(
            sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS {}").format(
                sql.Identifier(name), sql.Literal(allow)
            )
        )
        if not allow:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
            )
            wait_until(
                lambda: (
                    admin.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (name,)
                    ).fetchone()
                    == (0,)
                ),
                10,
                "sim template sessions gone",
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class SimTemplate:
    name: str  # of the seeded database
    day: date  # the simulated China-local day


@pytest.fixture(scope="session")
def sim_template(template_db: str, base_url: str) -> Iterator[SimTemplate]:
    """The seeded database, a template. Each test module that imports this fixture gets its own."""
    del template_db
    name = f"fleetwatch_sim_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    url = with_dbname(base_url, name)
    create_database(url, template=TEMPLATE)
    day = recent_working_days(1, back_min=2)
    seed_day(url, day)
    _allow_connections(base_url, name, False)
    yield SimTemplate(name=name, day=day)
    _allow_connections(base_url, name, True)
    drop_database(url)


@dataclass(slots=True, kw_only=True)
class Sim:
    url: str
    day: date  # the simulated China-local day
    tokens: dict[tuple[Role, tuple[str, ...]], str] = field(default_factory=dict)

    def auth(self, role: Role, *agency_codes: str) -> dict[str, str]:
        """Headers of a user with this role and these agencies (made on first use)."""
        key = (role, agency_codes)
        if key not in self.tokens:
            name = f"{role.value}_{'_'.join(agency_codes) or 'all'}"
            with psycopg.connect(self.url) as conn:
                _, self.tokens[key] = issue_token(
                    conn, name=name, role=role, agency_codes=list(agency_codes), ttl_days=1
                )
        return {"Authorization": f"Bearer {self.tokens[key]}"}

    def admin(self) -> dict[str, str]:
        return self.auth(Role.ADMIN)


@pytest.fixture
def sim(sim_template: SimTemplate, base_url: str) -> Iterator[Sim]:
    url = with_dbname(base_url, f"fleetwatch_s_{uuid.uuid4().hex[:12]}")
    create_database(url, template=sim_template.name)
    yield Sim(url=url, day=sim_template.day)
    drop_database(url)


@pytest.fixture
async def sim_client(sim: Sim) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(api_settings(sim.url))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client,
    ):
        yield client
