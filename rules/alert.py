"""What a rule produces: an ``Alert`` with its evidence, or a ``RuleFailure`` when the rule itself broke.

An alert's natural key is ``(kind, vehicle_id, anchor, anchor_value)``: the thing it is about, in terms
that do not change when the same data is processed again in another window — a trip's start time, a
stop's start time, an order id, a fuel or maintenance record id, the night checked, the start of a
silence, or a document and its expiry date. A store can upsert on it so that recomputation and late
data update an alert, never duplicate it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

import numpy as np
from numpy.typing import ArrayLike


class AlertKind(StrEnum):
    """Alert kinds; the values are the SQL values (and, where the simulator labels them, its kinds)."""

    NO_ORDER = "no_order"  # 无单出车: a trip that belongs to no dispatch order
    OUTSIDE_WINDOW = "outside_window"  # a trip of an order, outside the order's approved window
    OFF_HOURS = "off_hours"  # driving outside working hours or on a rest day (calendar as data)
    DETOUR = "detour"  # off the approved route's corridor along a stretch
    WRONG_DESTINATION = "wrong_destination"  # the order's destination was never reached
    MILEAGE_EXCESS = "mileage_excess"  # an order's driven distance above its approved route's length
    OVERNIGHT_AWAY = "overnight_away"  # parked away from the depot at night
    NOT_RETURNED = "not_returned"  # not back at the depot after the order
    FORBIDDEN_PLACE = "forbidden_place"  # stayed inside a forbidden zone
    OVERSPEED = "overspeed"  # sustained speed above the road's limit
    SILENT_TERMINAL = "silent_terminal"  # no report at all while the car moved (unplugged, hidden trip)
    MILEAGE_PADDING = "mileage_padding"  # the odometer advanced more than the car drove
    ORDER_NOT_EXECUTED = "order_not_executed"  # an approved, dispatched order no trip executed
    FUEL_CARD_ELSEWHERE = "fuel_card_elsewhere"  # 异常加油: fuel card used where the car was not
    FUEL_OVER_TANK = "fuel_over_tank"  # 异常加油: more litres than the tank holds
    FUEL_CONSUMPTION = "fuel_consumption"  # 异常加油: litres per 100 km far above the vehicle's norm
    MAINTENANCE_ELSEWHERE = "maintenance_elsewhere"  # 异常维保: repaired while the car was elsewhere
    # JT/T 808 terminal alarms (the 0x0200 alarm word), one alert per episode (rules/alarms.py)
    ALARM_EMERGENCY = "alarm_emergency"  # the driver pressed the emergency button
    ALARM_POWER_CUT = "alarm_power_cut"  # the terminal lost main power (unplugged?)
    ALARM_ANTENNA_CUT = "alarm_antenna_cut"  # the GNSS antenna was disconnected (hiding a trip?)
    ALARM_ILLEGAL_IGNITION = "alarm_illegal_ignition"
    ALARM_ILLEGAL_DISPLACEMENT = "alarm_illegal_displacement"  # moved while it should be parked
    ALARM_COLLISION = "alarm_collision"
    ALARM_ROLLOVER = "alarm_rollover"
    DOCUMENT_EXPIRING = "document_expiring"  # an insurance policy or annual inspection expires soon
    VEHICLE_UNFIT = "vehicle_unfit"  # driven while its insurance or annual inspection had expired


class Severity(StrEnum):
    LOW = "low"  # worth a look (e.g. approved use at an odd hour)
    MEDIUM = "medium"
    HIGH = "high"  # likely misuse or fraud


class Anchor(StrEnum):
    """What an alert is about, for its natural key."""

    TRIP = "trip"  # anchor_value: the trip's start, epoch µs
    STOP = "stop"  # the stop's start, epoch µs
    GAP = "gap"  # the last report before the silence, epoch µs
    NIGHT = "night"  # the night's check time, epoch µs
    ORDER = "order"  # the dispatch order id
    FUEL_RECORD = "fuel_record"  # the fuel record id
    MAINTENANCE_RECORD = "maintenance_record"  # the maintenance record id
    ALARM = "alarm"  # the first report of a terminal alarm's episode, epoch µs
    DOCUMENT = "document"  # the document id x 100,000 + its expiry date (days since 1970-01-01)


@dataclass(frozen=True, slots=True, kw_only=True)
class Figure:
    """A named number with its unit: a threshold or a measured value."""

    name: str
    value: float
    unit: str


def figure(name: str, value: float, unit: str, digits: int = 1) -> Figure:
    return Figure(name=name, value=round(float(value), digits), unit=unit)


Coordinates = tuple[tuple[float, float], ...]


def coordinates(lon: ArrayLike, lat: ArrayLike) -> Coordinates:
    """lon/lat pairs rounded to 1e-6° (about 0.1 m), as GeoJSON wants them."""
    x = np.round(np.asarray(lon, dtype=np.float64), 6)
    y = np.round(np.asarray(lat, dtype=np.float64), 6)
    return tuple(zip(x.tolist(), y.tolist(), strict=True))


@dataclass(frozen=True, slots=True, kw_only=True)
class Evidence:
    """Why the alert was raised: the thresholds applied, the values measured, and where (WGS-84)."""

    thresholds: tuple[Figure, ...] = ()
    measured: tuple[Figure, ...] = ()
    segments: tuple[Coordinates, ...] = ()  # the offending stretches, each a line (or one point)
    # the threshold version the alert was judged by: "<agency code>@<effective date>", or "default"
    version: str = "default"

    def geojson(self) -> dict[str, object] | None:
        """The segments as a GeoJSON geometry: Point, LineString or MultiLineString (None if none)."""
        parts = [[list(p) for p in s] for s in self.segments if s]
        if not parts:
            return None
        if len(parts) == 1 and len(parts[0]) == 1:
            return {"type": "Point", "coordinates": parts[0][0]}
        lines = [p if len(p) > 1 else p * 2 for p in parts]
        if len(lines) == 1:
            return {"type": "LineString", "coordinates": lines[0]}
        return {"type": "MultiLineString", "coordinates": lines}

    def value(self, name: str) -> float:
        """A measured value or threshold by name (KeyError if absent)."""
        for f in (*self.measured, *self.thresholds):
            if f.name == name:
                return f.value
        raise KeyError(name)


@dataclass(frozen=True, slots=True, kw_only=True)
class DocumentRef:
    """A vehicle document an alert is about: an insurance policy or an annual inspection (年检)."""

    document_id: int
    kind: str  # "insurance" | "inspection"
    number: str  # the policy or certificate number
    expires_on: date  # the last day it is valid


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    """One alert. Times are epoch µs (UTC); ``start_us``..``end_us`` is the offending span."""

    kind: AlertKind
    severity: Severity
    vehicle_id: int
    start_us: int
    end_us: int
    anchor: Anchor
    anchor_value: int
    trip_start_us: int | None = None  # the trip concerned (its start), if any
    order_id: int | None = None
    place_id: int | None = None  # a forbidden zone, a station, a shop
    fuel_record_id: int | None = None
    maintenance_record_id: int | None = None
    documents: tuple[DocumentRef, ...] = ()  # the documents concerned (expiring, or lapsed while driving)
    evidence: Evidence = Evidence()

    @property
    def key(self) -> tuple[str, int, str, int]:
        """The natural key: stable across windows and recomputation (see the module docstring)."""
        return (self.kind.value, self.vehicle_id, self.anchor.value, self.anchor_value)


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleFailure:
    """A rule raised: which rule, on which vehicle (None: on the whole batch), over which window."""

    rule: str
    error: str  # "ExceptionType: message"
    vehicle_id: int | None
    vehicles: int  # how many vehicles the failing call covered
    window_start_us: int
    window_end_us: int
