"""schemathesis against the OpenAPI schema, in-process (ASGI), as the admin on a seeded world: no
generated request, valid or not, may get a server error. Bounded: a few examples per operation."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.generation import GenerationMode
from schemathesis.python import asgi as schemathesis_asgi

from api.app import create_app
from store.db import create_database, drop_database, with_dbname
from tests.api_fixtures import World, api_settings, build_world
from tests.conftest import TEMPLATE

EXAMPLES_PER_OPERATION = 12
# an open stream never ends by itself: tested with a real server in tests/test_api_supervision.py
ENDLESS = frozenset({"/v1/alerts/stream"})


def add_supervision_rows(world: World) -> None:
    """A trip of CAR1 serving an order with its conformance, an alert about it, its day's usage, a tariff
    and a provider report: the supervision and settlement routes have rows to find."""
    with psycopg.connect(world.url) as conn:
        car, agency, pool = world.vehicle["CAR1"], world.agency["OFA"], world.pool["CITY"]
        start = world.now - timedelta(hours=3)
        end = start + timedelta(minutes=20)
        order = conn.execute(
            "INSERT INTO dispatch_order (code, agency_id, passengers, purpose, origin_lon, origin_lat,"
            " destination_lon, destination_lat, requested_at, window_start_at, window_end_at, status,"
            " vehicle_id, pool_id, route, route_length_m)"
            " VALUES ('ST-1', %s, 1, 'meeting', 119.97, 31.81, 119.99, 31.82, %s, %s, %s, 'completed',"
            " %s, %s,"
            ' \'{"type": "LineString", "coordinates": [[119.97, 31.81], [119.99, 31.82]]}\', 2300)'
            " RETURNING dispatch_order_id",
            (agency, start, start, end, car, pool),
        ).fetchone()
        assert order
        trip = conn.execute(
            "INSERT INTO trip (vehicle_id, start_at, end_at, duration_s, moving_s, distance_m, bridged_m,"
            " bridged_legs, start_lon, start_lat, end_lon, end_lat, final)"
            " VALUES (%s, %s, %s, 1200, 1100, 2500, 0, 0, 119.97, 31.81, 119.99, 31.82, true)"
            " RETURNING trip_id",
            (car, start, end),
        ).fetchone()
        assert trip
        conn.execute("INSERT INTO trip_order VALUES (%s, %s, 'main', 1200, 10, 20)", (trip[0], order[0]))
        conn.execute(
            "INSERT INTO trip_conformance VALUES (%s, %s, 0.9, 300, 250, 2300, 1.09, true, 20)",
            (trip[0], order[0]),
        )
        conn.execute(
            "INSERT INTO alert (kind, severity, vehicle_id, agency_id, anchor, anchor_value,"
            " dispatch_order_id, start_at, end_at, evidence)"
            " VALUES ('detour', 'high', %s, %s, 'trip', 1, %s, %s, %s, '{}')",
            (car, agency, order[0], start, end),
        )
        conn.execute(
            "INSERT INTO vehicle_day_usage"
            " VALUES (%s, (%s AT TIME ZONE 'Asia/Shanghai')::date, 1, 2.5, 0.33)",
            (car, start),
        )
        conn.execute(
            "INSERT INTO tariff (pool_id, kind, per_km_fen, per_hour_fen, valid_from)"
            " VALUES (%s, 'own_pool', 180, 2500, '2020-01-01')",
            (pool,),
        )
        conn.execute(
            "INSERT INTO provider_statement (dispatch_order_id, provider_km) VALUES (%s, 2.7)", (order[0],)
        )


@pytest.fixture(scope="module")
def seeded(template_db: str, base_url: str) -> Iterator[World]:
    del template_db  # built and ready: the module's database is cloned from it
    url = with_dbname(base_url, f"fleetwatch_st_{uuid.uuid4().hex[:12]}")
    create_database(url, template=TEMPLATE)
    try:
        world = build_world(url)
        add_supervision_rows(world)
        yield world
    finally:
        schemathesis_asgi.shutdown_lifespans()  # the app's pool, before its database goes
        drop_database(url)


def _run(operation: Any, mode: GenerationMode, headers: dict[str, str]) -> None:
    @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any, data: Any) -> None:
        del data
        case.call_and_validate(headers=headers, checks=[not_a_server_error])

    check()


def test_no_generated_request_gets_a_server_error(seeded: World) -> None:
    app = create_app(api_settings(seeded.url))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    results = list(schema.get_all_operations())
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) == len(results) >= 35
    operations = [op for op in operations if op.path not in ENDLESS]
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        for operation in operations:
            _run(operation, mode, seeded.auth("admin"))
