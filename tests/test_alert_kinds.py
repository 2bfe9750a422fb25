"""One list of alert kinds and severities (rules.alert): the API documents exactly those, and the
simulator labels only kinds from it."""

from __future__ import annotations

from typing import Any

from api.app import create_app
from api.settings import ApiSettings
from rules.alert import AlertKind, Severity
from rules.catalogue import RULES
from simulators.violations import LABELLED


def openapi_enum(name: str) -> list[str]:
    # the schema is built without the lifespan: no database connection is opened
    schema: dict[str, Any] = create_app(ApiSettings(database_url="postgresql://unused")).openapi()
    values: list[str] = schema["components"]["schemas"][name]["enum"]
    return values


def test_openapi_lists_every_alert_kind_of_the_rules() -> None:
    assert openapi_enum("AlertKind") == [k.value for k in AlertKind]


def test_openapi_lists_every_severity_of_the_rules() -> None:
    assert openapi_enum("Severity") == [s.value for s in Severity]


def test_simulator_labels_kinds_some_rule_raises() -> None:
    raised = {rule.kind for rule in RULES}
    assert raised >= LABELLED
    assert AlertKind.FUEL_CONSUMPTION in raised - LABELLED  # a kind the simulator does not label
