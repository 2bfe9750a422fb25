"""Vehicle documents: every car's insurance policy and annual inspection (年检), some due for renewal
during the run and some already lapsed, with the expected alerts decided from them and the true trips.

Each car has one policy and one inspection certificate. Most expire long after the run. A car drawn
with ``ViolationRates.document_expiring`` has one of them expire within the run's days plus the
warning lead; a car drawn with ``ViolationRates.vehicle_unfit`` has one lapsed 1-60 days before the
run starts (and keeps driving). Documents come from a generator of their own, so adding them leaves
every other output of a seeded run unchanged.

Labels (``ViolationParams.document_lead_days``, the rules' ``DocumentParams.expiring_lead_days``):
- document_expiring: a document whose warning period (local days ``expires_on - lead`` … ``expires_on``)
  overlaps the run's days; span from local midnight ``expires_on - lead`` to the end of ``expires_on``.
- vehicle_unfit: a true trip that starts on a local day after the last valid day of the car's newest
  begun document of a kind; span = the trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from rules.alert import AlertKind
from rules.calendar import local_midnight_s
from simulators.truth import ExpectedAlert, TrueTrip
from simulators.violations import ViolationParams, ViolationRates
from simulators.world import World

KINDS = ("insurance", "inspection")
INSURERS = ("中国人保财险常州分公司", "平安财险常州中心支公司", "太平洋财险常州中心支公司")
STATIONS = ("常州市机动车检测中心", "武进机动车检测站", "新北机动车检测站")


@dataclass(frozen=True, slots=True, kw_only=True)
class VehicleDocument:
    document_id: int
    vehicle: int  # index into fleet.vehicles
    kind: str  # "insurance" | "inspection"
    number: str  # policy number / inspection certificate number
    issuer: str  # insurer / inspection station
    valid_from: date
    expires_on: date  # the last day it is valid
    cost_fen: int  # premium / inspection fee


def _local_day(t_s: float) -> date:
    return date(1970, 1, 1) + timedelta(days=int((t_s + 8 * 3600) // 86_400))


def make_documents(
    world: World, *, start: date, days: int, rates: ViolationRates, p: ViolationParams
) -> list[VehicleDocument]:
    rng = np.random.default_rng([world.seed, 11])
    n = len(world.fleet.vehicles)
    last = start + timedelta(days=days - 1)
    expiring = rng.random(n) < rates.document_expiring
    lapsed = rng.random(n) < rates.vehicle_unfit
    which = rng.integers(0, len(KINDS), n)  # the document that expires or lapsed
    documents: list[VehicleDocument] = []
    for v in range(n):
        for k, kind in enumerate(KINDS):
            years = 1 if kind == "insurance" else 2
            expires = last + timedelta(days=p.document_lead_days + int(rng.integers(5, 330)))
            if k == which[v] and lapsed[v]:
                expires = start - timedelta(days=int(rng.integers(1, 61)))
            elif k == which[v] and expiring[v]:
                expires = start + timedelta(days=int(rng.integers(0, days + p.document_lead_days)))
            valid_from = expires - timedelta(days=365 * years - 1)
            serial = len(documents) + 1
            number = (
                f"PDAA{valid_from.year}3204{serial:08d}" if kind == "insurance" else f"JY3204{serial:08d}"
            )
            documents.append(
                VehicleDocument(
                    document_id=serial,
                    vehicle=v,
                    kind=kind,
                    number=number,
                    issuer=(INSURERS if kind == "insurance" else STATIONS)[int(rng.integers(0, 3))],
                    valid_from=valid_from,
                    expires_on=expires,
                    cost_fen=int(rng.integers(300_000, 900_000)) if kind == "insurance" else 28_000,
                )
            )
    return documents


def document_alerts(
    documents: Sequence[VehicleDocument],
    trips: Sequence[TrueTrip],
    *,
    start: date,
    days: int,
    p: ViolationParams,
) -> list[ExpectedAlert]:
    last = start + timedelta(days=days - 1)
    alerts: list[ExpectedAlert] = []
    for d in documents:
        due = d.expires_on - timedelta(days=p.document_lead_days)
        if due <= last and d.expires_on >= start:
            alerts.append(
                ExpectedAlert(
                    kind=AlertKind.DOCUMENT_EXPIRING,
                    vehicle=d.vehicle,
                    start_s=float(local_midnight_s(due)),
                    end_s=float(local_midnight_s(d.expires_on + timedelta(days=1))),
                    document_id=d.document_id,
                    value=float((d.expires_on - max(start, due)).days),
                    limit=float(p.document_lead_days),
                    unit="d",
                )
            )
    by_vehicle: dict[int, list[VehicleDocument]] = {}
    for d in documents:
        by_vehicle.setdefault(d.vehicle, []).append(d)
    for trip in trips:
        day = _local_day(trip.start_s)
        lapsed = []
        for kind in KINDS:
            begun = [d for d in by_vehicle.get(trip.vehicle, ()) if d.kind == kind and d.valid_from <= day]
            if begun:
                newest = max(begun, key=lambda d: d.expires_on)
                if newest.expires_on < day:
                    lapsed.append(newest)
        if lapsed:
            alerts.append(
                ExpectedAlert(
                    kind=AlertKind.VEHICLE_UNFIT,
                    vehicle=trip.vehicle,
                    start_s=trip.start_s,
                    end_s=trip.end_s,
                    trip_id=trip.trip_id,
                    order_id=trip.order_id,
                    document_id=lapsed[0].document_id,
                    value=float(max((day - d.expires_on).days for d in lapsed)),
                    unit="d",
                )
            )
    return alerts
