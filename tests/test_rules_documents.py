"""Vehicle documents: a policy or inspection due for renewal (document_expiring, a sweep not tied to
trips) and a car driven after one lapsed (vehicle_unfit) — positive and negative cases."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import numpy as np

from rules.alert import AlertKind, Anchor
from rules.calendar import day_number
from rules.catalogue import evaluate
from rules.config import DocumentParams, RuleConfig
from rules.documents import ANCHOR_DAYS, document_expiring, vehicle_unfit
from rules.facts import DOCUMENT_KINDS, NO_DAY, Documents, Facts
from rules.synth import DEPOT, Drive, Park, Scene, agency_config, itinerary, scene_facts, scene_inputs
from tracks.synth import DAY, at_us

Doc = tuple[int, int, str, date | None, date]  # id, vehicle, kind, valid from, expires on


def documents(*docs: Doc) -> Documents:
    return Documents(
        document_id=np.array([d[0] for d in docs], dtype=np.int64),
        vehicle_id=np.array([d[1] for d in docs], dtype=np.int64),
        kind=np.array([DOCUMENT_KINDS.index(d[2]) for d in docs], dtype=np.int8),
        valid_from_day=np.array([NO_DAY if d[3] is None else day_number(d[3]) for d in docs], dtype=np.int64),
        expires_day=np.array([day_number(d[4]) for d in docs], dtype=np.int64),
        number=np.array([f"N{d[0]}" for d in docs], dtype=np.str_),
    )


def errand_facts(*docs: Doc, window: tuple[str, str] = ("00:00", "24:00")) -> tuple[Facts, RuleConfig]:
    day = itinerary(
        Park("09:00"), Drive([DEPOT, (3000.0, 0.0)]), Park("10:00"), Drive([(3000.0, 0.0), DEPOT])
    )
    facts, config = scene_facts(Scene(days={1: day}, window=window))
    return replace(facts, documents=documents(*docs)), config


def days(n: int) -> date:
    return DAY + timedelta(days=n)


def test_a_policy_expiring_within_the_lead_is_due_once_with_its_document_named() -> None:
    facts, config = errand_facts((7, 1, "insurance", days(-300), days(20)))
    (alert,) = document_expiring(facts, config)
    assert alert.kind is AlertKind.DOCUMENT_EXPIRING and alert.anchor is Anchor.DOCUMENT
    assert alert.anchor_value == 7 * ANCHOR_DAYS + day_number(days(20))
    (ref,) = alert.documents
    assert (ref.document_id, ref.kind, ref.number, ref.expires_on) == (7, "insurance", "N7", days(20))
    assert alert.start_us == at_us("00:00", days(20 - 30)) and alert.end_us == at_us("00:00", days(21))
    assert alert.evidence.value("days_left") == 20 and alert.evidence.value("expiring_lead_days") == 30


def test_the_same_document_on_another_day_keeps_its_key() -> None:
    first, config = errand_facts((7, 1, "inspection", None, days(20)))
    (a,) = document_expiring(first, config)
    later = replace(first, start_us=at_us("00:00", days(5)), end_us=at_us("00:00", days(6)))
    (b,) = document_expiring(later, config)
    assert a.key == b.key and b.evidence.value("days_left") == 15


def test_a_document_far_from_expiry_expired_or_renewed_is_not_due() -> None:
    facts, config = errand_facts(
        (1, 1, "insurance", None, days(31)),  # beyond the 30-day lead
        (2, 1, "inspection", None, days(-1)),  # expired yesterday: vehicle_unfit's business
        (3, 2, "insurance", None, days(10)),  # due, but renewed:
        (4, 2, "insurance", days(11), days(376)),
    )
    assert document_expiring(facts, config) == ()
    longer = replace(config, documents=DocumentParams(expiring_lead_days=31))
    assert [a.documents[0].document_id for a in document_expiring(facts, longer)] == [1]


def test_driving_after_the_inspection_lapsed_is_unfit_per_trip() -> None:
    facts, config = errand_facts(
        (1, 1, "insurance", days(-100), days(200)), (2, 1, "inspection", days(-730), days(-3))
    )
    alerts = vehicle_unfit(facts, config)
    assert len(alerts) == len(facts.trips) == 2
    for alert, start in zip(alerts, facts.trips.start_us.tolist(), strict=True):
        assert alert.anchor is Anchor.TRIP and alert.start_us == start
        assert [d.document_id for d in alert.documents] == [2]
        assert alert.evidence.value("inspection_lapsed_days") == 3


def test_driving_with_valid_renewed_or_no_documents_is_not_unfit() -> None:
    valid = errand_facts((1, 1, "insurance", None, days(0)))  # valid through today
    renewed = errand_facts((1, 1, "insurance", None, days(-5)), (2, 1, "insurance", days(-4), days(360)))
    unknown = errand_facts()
    for facts, config in (valid, renewed, unknown):
        assert vehicle_unfit(facts, config) == ()


def test_a_policy_that_has_not_begun_does_not_cover_the_trip() -> None:
    facts, config = errand_facts((1, 1, "insurance", None, days(-5)), (2, 1, "insurance", days(1), days(360)))
    assert len(vehicle_unfit(facts, config)) == 2


def test_the_catalogue_names_the_version_in_every_alert() -> None:
    inputs = replace(
        scene_inputs(Scene(days={1: itinerary(Park("21:00"), Drive([DEPOT, (3000.0, 0.0)]), Park("23:00"))})),
        documents=documents((5, 1, "insurance", None, days(-2))),
    )
    config = replace(agency_config(Scene(days={}).agency), version="A01@2026-01-01")
    found = evaluate(inputs, config)
    assert {a.kind for a in found.alerts} >= {
        AlertKind.OFF_HOURS,
        AlertKind.NO_ORDER,
        AlertKind.VEHICLE_UNFIT,
    }
    assert {a.evidence.version for a in found.alerts} == {"A01@2026-01-01"}
