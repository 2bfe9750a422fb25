"""Ground truth of a run: true trips, expected alerts, orders, fuel and maintenance records.

Labels are decided from the generated truth (true positions, speeds and times) with the thresholds
of ``violations.ViolationParams``, never from what was meant to be injected; the thresholds are the
definitions the rules should implement. Times are UTC; local time is UTC+8.

Files written by ``--out DIR`` (JSON Lines, one object per line, UTF-8; times ISO 8601 UTC with ``Z``,
coordinates WGS-84 ``[lon, lat]``; ids are the database ids the loader writes):

trips.jsonl — one per true trip (a leg: the car moves from one stop to the next)::

    {"trip_id": 1, "vehicle_id": 12, "plate": "苏DA1234", "terminal_id": "010700000012",
     "outing_id": 5, "outing_kind": "order" | "maintenance" | "private" | "overnight",
     "dispatch_order_id": 31 | null, "start_at": "…Z", "end_at": "…Z",
     "path_length_m": 5321.7,            # haversine length of "path", which the car followed exactly
     "from_place_id": 3, "to_place_id": 40,
     "violations": ["detour", …],         # kinds of the expected alerts that name this trip
     "path": {"type": "LineString", "coordinates": [[lon, lat], …]}}

alerts.jsonl — one per expected alert::

    {"alert_id": 1, "kind": "<rules.alert.AlertKind>", "vehicle_id": 12, "plate": "…", "terminal_id": "…",
     "start_at": "…Z", "end_at": "…Z", "trip_id": 7 | null, "dispatch_order_id": 31 | null,
     "place_id": 44 | null, "fuel_record_id": 3 | null, "maintenance_record_id": null,
     "value": 812.0 | null, "limit": 200.0 | null, "unit": "m" | "km/h" | "s" | "L" | ""}

  kind            span (start_at … end_at)                     trip  value / limit
  no_order        the trip                                      yes   path m / —
  outside_window  the part of the trip outside window ± grace   yes   s outside / grace s
  off_hours       the part of the trip outside working hours    yes   s / —
  detour          first … last off-route point of a stretch     yes   farthest m / corridor m
  wrong_destination  the stop at the wrong place                yes   m from destination / radius m
  overnight_away  the stay (parked span) that covers 03:00      yes*  m from depot / radius
  forbidden_place the stay inside the polygon                   yes*  s / min dwell s
  overspeed       the run above ratio × limit                   yes   max km/h / limit km/h
  silent_terminal when the terminal took no fix                 yes   m driven meanwhile / min m
  mileage_padding the trip                                      yes   odometer excess m / threshold m
  fuel_card_elsewhere  the record's time (start = end)          no    m car–station / radius m
  fuel_over_tank  the record's time                             no    litres / tank litres
  maintenance_elsewhere  the record's span                      no    nearest m car–shop / radius m
  (* the trip that arrived at the stay)

orders.jsonl — every dispatch order (also in the database)::

    {"dispatch_order_id": 31, "code": "YC…", "agency_id": 4, "passengers": 2, "purpose": "会议",
     "origin_place_id": …, "origin": [lon, lat], "destination_place_id": …, "destination": [lon, lat],
     "requested_at": "…Z", "window_start_at": "…Z", "window_end_at": "…Z",
     "route": {"type": "LineString", …} | null, "route_length_m": …, "status": "completed" | "cancelled" | …,
     "vehicle_id": 12 | null, "pool_id": 1, "cross_region": false}

fuel.jsonl / maintenance.jsonl — the records as fed by stations and shops (also in the database)::

    {"fuel_record_id": 1, "vehicle_id": 12, "card": "9100…", "place_id": 9, "station": [lon, lat],
     "fuelled_at": "…Z", "litres": 38.2}
    {"maintenance_record_id": 1, "vehicle_id": 12, "place_id": 11, "shop": [lon, lat],
     "started_at": "…Z", "ended_at": "…Z"}

Fuel and maintenance anomalies are the alerts of kinds fuel_card_elsewhere, fuel_over_tank and
maintenance_elsewhere, which name the record.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from rules.alert import AlertKind
from rules.calendar import WorkCalendar, local_midnight_s
from simulators.orders import DispatchOrder

if TYPE_CHECKING:
    from simulators.documents import VehicleDocument

Floats = NDArray[np.float64]


@dataclass(frozen=True, slots=True, kw_only=True)
class TrueTrip:
    trip_id: int
    vehicle: int  # index into fleet.vehicles (vehicle_id - 1)
    outing_id: int
    outing_kind: str
    order_id: int | None
    start_s: float
    end_s: float
    path_length_m: float
    from_place_id: int
    to_place_id: int
    path_lon: Floats
    path_lat: Floats
    labels: tuple[AlertKind, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ExpectedAlert:
    kind: AlertKind
    vehicle: int
    start_s: float
    end_s: float
    trip_id: int | None = None
    order_id: int | None = None
    place_id: int | None = None
    fuel_record_id: int | None = None
    maintenance_record_id: int | None = None
    document_id: int | None = None  # simulators.documents.VehicleDocument
    value: float | None = None
    limit: float | None = None
    unit: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class FuelRecord:
    fuel_record_id: int
    vehicle: int
    card: str
    place_id: int
    lon: float
    lat: float
    at_s: float
    litres: float


@dataclass(frozen=True, slots=True, kw_only=True)
class MaintenanceRecord:
    maintenance_record_id: int
    vehicle: int
    place_id: int
    lon: float
    lat: float
    start_s: float
    end_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Truth:
    trips: tuple[TrueTrip, ...]
    alerts: tuple[ExpectedAlert, ...]
    orders: tuple[DispatchOrder, ...]
    fuel: tuple[FuelRecord, ...]
    maintenance: tuple[MaintenanceRecord, ...]
    documents: tuple[VehicleDocument, ...] = ()

    def alerts_of(self, kind: AlertKind) -> list[ExpectedAlert]:
        return [a for a in self.alerts if a.kind is kind]


def off_hours_spans(start_s: float, end_s: float, calendar: WorkCalendar) -> list[tuple[float, float]]:
    """The parts of [start_s, end_s] outside working hours or on rest days, as (from, to) epoch seconds."""
    spans: list[tuple[float, float]] = []
    day = date(1970, 1, 1) + timedelta(days=int((start_s + 8 * 3600) // 86_400))
    while local_midnight_s(day) < end_s:
        midnight = float(local_midnight_s(day))
        if calendar.is_working_day(day):
            rest = [
                (midnight, midnight + calendar.hours.start_s),
                (midnight + calendar.hours.end_s, midnight + 86_400),
            ]
        else:
            rest = [(midnight, midnight + 86_400.0)]
        for a, b in rest:
            lo, hi = max(a, start_s), min(b, end_s)
            if hi > lo:
                if spans and abs(spans[-1][1] - lo) < 1e-9:
                    spans[-1] = (spans[-1][0], hi)
                else:
                    spans.append((lo, hi))
        day += timedelta(days=1)
    return spans


def label_trips(trips: list[TrueTrip], alerts: list[ExpectedAlert]) -> list[TrueTrip]:
    kinds: dict[int, list[AlertKind]] = {}
    for alert in alerts:
        if alert.trip_id is not None:
            kinds.setdefault(alert.trip_id, [])
            if alert.kind not in kinds[alert.trip_id]:
                kinds[alert.trip_id].append(alert.kind)
    return [replace(t, labels=tuple(sorted(kinds.get(t.trip_id, ())))) for t in trips]
