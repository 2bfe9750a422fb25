"""Response and request bodies of supervision: trips, alerts and their reviews, usage statistics."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import BaseModel, Field, model_validator

from api.lifecycle import OrderStatus
from api.schemas import Body, Text, Track
from rules.alert import AlertKind, Severity


class TripRole(StrEnum):
    MAIN = "main"
    POSITIONING = "positioning"
    RETURN = "return"


class AlertStatus(StrEnum):
    OPEN = "open"
    CONFIRMED = "confirmed"
    DISMISSED = "dismissed"


class ReviewStatus(StrEnum):
    CONFIRMED = "confirmed"
    DISMISSED = "dismissed"


class Period(StrEnum):
    DAY = "day"
    WEEK = "week"  # ISO weeks, Monday first, in China time
    MONTH = "month"


# --- trips --------------------------------------------------------------------------------------


class TripSummary(BaseModel):
    trip_id: int
    vehicle_id: int
    plate: str
    agency_id: int | None  # the car's
    start_at: datetime
    end_at: datetime
    distance_m: float
    duration_s: float
    moving_s: float
    bridged_m: float  # straight lines across signal gaps, inside distance_m
    max_speed_kmh: float | None
    odometer_m: float | None
    odometer_confidence: float | None
    start_lon: float
    start_lat: float
    end_lon: float
    end_lat: float
    final: bool  # false: at the newest edge of the data, may still change
    dispatch_order_ids: list[int]
    open_alerts: int  # open, unretracted alerts in the caller's scope about this car during the trip


class Conformance(BaseModel):
    inside_share: float
    max_deviation_m: float
    off_route_m: float
    approved_m: float
    detour_ratio: float
    arrived: bool
    arrival_distance_m: float


class TripOrder(BaseModel):
    dispatch_order_id: int
    code: str
    agency_id: int
    status: OrderStatus
    role: TripRole
    overlap_s: float
    start_distance_m: float
    end_distance_m: float
    window_start_at: datetime
    window_end_at: datetime
    route: dict[str, Any] | None  # the approved route, a GeoJSON LineString (WGS-84)
    route_length_m: float | None
    conformance: Conformance | None


class TripDetail(TripSummary):
    track: Track  # the car's fixes from start_at to end_at, a GeoJSON Feature
    orders: list[TripOrder]  # those in the caller's scope, main first
    alerts: list[AlertSummary]


# --- alerts -------------------------------------------------------------------------------------


class AlertSummary(BaseModel):
    alert_id: int
    kind: AlertKind
    severity: Severity
    vehicle_id: int
    plate: str
    agency_id: int | None
    anchor: str
    dispatch_order_id: int | None
    start_at: datetime
    end_at: datetime
    status: AlertStatus
    raised_at: datetime
    updated_at: datetime
    retracted_at: datetime | None  # the rules no longer raise it


class Review(BaseModel):
    alert_review_id: int
    alert_id: int
    status: str
    note: str
    reviewer: str
    reviewed_at: datetime


class AlertDetail(AlertSummary):
    evidence: dict[str, Any]  # thresholds, measured values, the offending segment (GeoJSON)
    trip_ids: list[int]  # the car's trips during the alert
    reviews: list[Review]  # oldest first; the last one set the status


class ReviewIn(Body):
    """Confirm or dismiss an alert. A dismissal needs a note saying why."""

    status: ReviewStatus
    note: Annotated[Text, Field(max_length=2_000)] = ""

    @model_validator(mode="after")
    def _note(self) -> Self:
        if self.status is ReviewStatus.DISMISSED and not self.note.strip():
            raise ValueError("dismissing an alert needs a note saying why")
        return self


class Reviewed(BaseModel):
    alert: AlertDetail
    review: Review


# --- usage --------------------------------------------------------------------------------------


class UsageBucket(BaseModel):
    period_start: date
    period_end: date  # the last day of the bucket inside [from, to]
    days: int  # days of the bucket inside [from, to]
    vehicles: int  # cars in scope (not retired)
    in_service_vehicles: int
    vehicles_used: int  # cars with at least one trip
    trips: int
    distance_km: float
    hours_in_use: float
    idle_days: int  # days an in-service car made no trip


class Usage(BaseModel):
    vehicle_id: int | None
    agency_id: int | None
    period: Period
    from_day: date
    to_day: date
    buckets: list[UsageBucket]
    trips: int
    distance_km: float
    hours_in_use: float
    idle_days: int


TripDetail.model_rebuild()
