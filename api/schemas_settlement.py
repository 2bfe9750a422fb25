"""Response and request bodies of settlement: lines per executed order, monthly statements, provider
reports. Money in fen (integers, 0.01 CNY) with yuan strings for display."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, Field, model_validator

from api.lifecycle import OrderStatus
from api.schemas import Agency, Body, TariffKind, Text
from api.schemas_supervision import TripRole


class LineTrip(BaseModel):
    trip_id: int
    role: TripRole


class SettlementLine(BaseModel):
    dispatch_order_id: int
    code: str
    agency_id: int
    pool_id: int
    pool_kind: str
    vehicle_id: int | None
    plate: str | None
    status: OrderStatus
    window_start_at: datetime
    window_end_at: datetime
    trips: list[LineTrip]  # main, positioning and return trips, in time order
    final: bool  # false: a trip is at the newest edge of the data and may still change
    first_start_at: datetime
    last_end_at: datetime
    verified_km: float  # sum of the linked trips' distances
    verified_hours: float  # from the first trip's start to the last one's end
    tariff_id: int | None  # the pool's tariff valid on the window's first day (China time)
    tariff_kind: TariffKind | None
    cost_fen: int | None  # None: no tariff, or a ride-hailing fare not reported yet (see cost_basis)
    cost_yuan: str | None
    cost_basis: str
    provider_km: float | None  # what the provider billed
    provider_fare_fen: int | None
    provider_reference: str | None
    km_difference: float | None  # provider_km − verified_km
    km_difference_pct: float | None  # of verified_km


class StatementTotals(BaseModel):
    orders: int
    verified_km: float
    verified_hours: float
    cost_fen: int  # of the priced lines
    cost_yuan: str
    unpriced_lines: int
    provider_km: float  # of the lines with a provider report
    measured_km_of_reported: float  # verified km of those same lines
    km_difference: float


class Statement(BaseModel):
    agency: Agency
    month: str  # YYYY-MM, China time, by the order's window start
    lines: list[SettlementLine]
    totals: StatementTotals


class ProviderReportIn(Body):
    """What the provider billed for an order: km, and for ride-hailing its fare before the discount."""

    provider_km: Annotated[Decimal, Field(ge=0, le=1_000_000, max_digits=10, decimal_places=3)] | None = None
    fare_fen: Annotated[int, Field(ge=0, le=10_000_000_000)] | None = None
    reference: Annotated[Text, Field(max_length=200)] = ""

    @model_validator(mode="after")
    def _something(self) -> ProviderReportIn:
        if self.provider_km is None and self.fare_fen is None:
            raise ValueError("a provider report has provider_km, fare_fen or both")
        return self


class ProviderReport(BaseModel):
    dispatch_order_id: int
    provider_km: float | None
    fare_fen: int | None
    reference: str
    reported_at: datetime


class OperatingCost(BaseModel):
    """One car's running cost in a month, in fen by category (see api.operating for the allocation)."""

    vehicle_id: int | None  # None: rental contracts bound to no car, one row per agency
    plate: str | None
    agency_id: int | None
    fuel_fen: int
    maintenance_fen: int
    insurance_fen: int
    inspection_fen: int
    rental_fen: int
    total_fen: int
    total_yuan: str
    distance_km: float  # driven in the month, from the daily usage
    fen_per_km: float | None  # None: no km driven


class OperatingCosts(BaseModel):
    month: str  # YYYY-MM, China time
    agency_id: int | None
    vehicles: list[OperatingCost]
    totals: OperatingCost  # vehicle_id and plate None; agency_id the one asked for
