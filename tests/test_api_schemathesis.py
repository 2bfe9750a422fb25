"""schemathesis against the OpenAPI schema, in-process (ASGI), as the admin on a seeded world: no
generated request, valid or not, may get a server error. Bounded: a few examples per operation."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

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


@pytest.fixture(scope="module")
def seeded(template_db: str, base_url: str) -> Iterator[World]:
    del template_db  # built and ready: the module's database is cloned from it
    url = with_dbname(base_url, f"fleetwatch_st_{uuid.uuid4().hex[:12]}")
    create_database(url, template=TEMPLATE)
    try:
        yield build_world(url)
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
    assert len(operations) == len(results) >= 25
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        for operation in operations:
            _run(operation, mode, seeded.auth("admin"))
