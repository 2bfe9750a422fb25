"""Request and response bodies (pydantic, the HTTP edge only). Coordinates are (lon, lat) in degrees."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from api.lifecycle import OrderStatus

MAX_ID = 2_147_483_647
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
Lon = Annotated[float, Field(ge=-180.0, le=180.0)]
Lat = Annotated[float, Field(ge=-90.0, le=90.0)]


def _plain_text(value: str) -> str:
    """PostgreSQL text holds no NUL, and UTF-8 no lone surrogates: refuse them here, with a reason."""
    if "\x00" in value:
        raise ValueError("text must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("text must be valid Unicode (no lone surrogates)") from exc
    return value


Text = Annotated[str, AfterValidator(_plain_text)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Problem(BaseModel):
    """Every 4xx: what was wrong."""

    error: str
    detail: str


class Role(StrEnum):
    ADMIN = "admin"
    DISPATCHER = "dispatcher"
    SUPERVISOR = "supervisor"
    AGENCY_VIEWER = "agency_viewer"


class VehicleStatus(StrEnum):
    IN_SERVICE = "in_service"
    MAINTENANCE = "maintenance"
    RETIRED = "retired"


class VehicleKind(StrEnum):
    SEDAN = "sedan"
    SUV = "suv"
    MPV = "mpv"
    MINIBUS = "minibus"
    BUS = "bus"
    VAN = "van"


class Protocol(StrEnum):
    FLEET = "fleet"
    OWNTRACKS = "owntracks"
    JT808 = "jt808"


class Datum(StrEnum):
    WGS84 = "wgs84"
    GCJ02 = "gcj02"  # Amap, Tencent: converted to WGS-84 on the way in


class TariffKind(StrEnum):
    OWN_POOL = "own_pool"
    RENTAL = "rental"
    RIDE_HAILING = "ride_hailing"


# --- users --------------------------------------------------------------------------------------


class UserIn(Body):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.@-]{1,64}$")]
    role: Role
    agency_ids: Annotated[list[Id], Field(max_length=1000)] = []


class User(BaseModel):
    api_user_id: int
    name: str
    role: Role
    created_at: datetime
    disabled_at: datetime | None
    agency_ids: list[int]


class Me(BaseModel):
    api_user_id: int
    name: str
    role: Role
    all_agencies: bool
    agency_ids: list[int]
    pool_ids: list[int] | None


class TokenIn(Body):
    label: Annotated[Text, Field(max_length=200)] = ""
    ttl_days: Annotated[int, Field(ge=1, le=3650)] | None = None


class TokenInfo(BaseModel):
    api_token_id: int
    api_user_id: int
    label: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class NewToken(TokenInfo):
    token: str  # shown once; only its SHA-256 is stored


class AuditRow(BaseModel):
    audit_id: int
    at: datetime
    api_user_id: int | None
    actor: str
    action: str
    entity: str
    entity_id: str
    agency_id: int | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None


# --- registry -----------------------------------------------------------------------------------


class Agency(BaseModel):
    agency_id: int
    code: str
    name: str
    parent_agency_id: int | None


class Pool(BaseModel):
    pool_id: int
    code: str
    name: str
    kind: str
    agency_id: int | None


class VehicleIn(Body):
    plate: Annotated[Text, Field(min_length=1, max_length=16)]
    kind: VehicleKind
    seats: Annotated[int, Field(ge=1, le=80)]
    pool_id: Id
    agency_id: Id | None = None
    depot_id: Id | None = None
    tank_l: Annotated[float, Field(gt=0, le=2_000)] | None = None
    fuel_norm_l_per_100km: Annotated[float, Field(gt=0, le=200)] | None = None


class Vehicle(BaseModel):
    vehicle_id: int
    plate: str
    kind: VehicleKind
    seats: int
    pool_id: int
    agency_id: int | None
    depot_id: int | None
    status: VehicleStatus
    tank_l: float | None
    fuel_norm_l_per_100km: float | None
    created_at: datetime
    terminal_ids: list[str]


class StatusIn(Body):
    status: VehicleStatus


class TerminalIn(Body):
    terminal_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
    protocol: Protocol = Protocol.FLEET


class Terminal(BaseModel):
    terminal_id: str
    terminal_no: int
    vehicle_id: int | None
    protocol: Protocol
    bound_at: datetime


class LivePosition(BaseModel):
    vehicle_id: int
    plate: str
    status: VehicleStatus
    lon: float
    lat: float
    fix_at: datetime
    received_at: datetime
    fix_age_s: float
    online: bool
    speed_kmh: float | None
    heading_deg: float | None
    ignition: bool | None
    odometer_km: float | None


class NearestVehicle(BaseModel):
    vehicle_id: int
    plate: str
    kind: VehicleKind
    seats: int
    pool_id: int
    agency_id: int | None
    lon: float
    lat: float
    distance_m: float  # great circle on the mean sphere
    fix_at: datetime
    fix_age_s: float


class Nearest(BaseModel):
    lon: float
    lat: float
    at: datetime
    until: datetime
    vehicles: list[NearestVehicle]


# --- GeoJSON ------------------------------------------------------------------------------------


class LineString(Body):
    type: Literal["LineString"]
    coordinates: Annotated[list[tuple[Lon, Lat]], Field(min_length=2, max_length=20_000)]


class PointGeometry(BaseModel):
    type: Literal["Point"]
    coordinates: tuple[float, float]


class TrackProperties(BaseModel):
    vehicle_id: int
    start_at: datetime
    end_at: datetime
    points: int
    fix_at: list[datetime]
    speed_kmh: list[float | None]
    ignition: list[bool | None]
    valid: list[bool]
    next_start_at: datetime | None  # the start_at of the next page; None: this is the last


class Track(BaseModel):
    """A GeoJSON Feature: a LineString of two or more fixes, a Point for one, no geometry for none."""

    type: Literal["Feature"] = "Feature"
    geometry: LineString | PointGeometry | None
    properties: TrackProperties


# --- dispatch -----------------------------------------------------------------------------------


class OrderIn(Body):
    agency_id: Id
    pool_id: Id
    passengers: Annotated[int, Field(ge=1, le=80)]
    purpose: Annotated[Text, Field(min_length=1, max_length=500)]
    datum: Datum = Datum.WGS84  # of the origin and destination
    origin_lon: Lon
    origin_lat: Lat
    destination_lon: Lon
    destination_lat: Lat
    window_start_at: AwareDatetime
    window_end_at: AwareDatetime
    cross_region: bool = False
    code: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,40}$")] | None = None

    @model_validator(mode="after")
    def _window(self) -> OrderIn:
        if self.window_end_at <= self.window_start_at:
            raise ValueError("window_end_at must be after window_start_at")
        return self


class Order(BaseModel):
    dispatch_order_id: int
    code: str
    agency_id: int
    passengers: int
    purpose: str
    origin_place_id: int | None
    origin_lon: float
    origin_lat: float
    destination_place_id: int | None
    destination_lon: float
    destination_lat: float
    requested_at: datetime
    window_start_at: datetime
    window_end_at: datetime
    route: dict[str, Any] | None  # GeoJSON LineString, WGS-84
    route_length_m: float | None
    status: OrderStatus
    vehicle_id: int | None
    pool_id: int
    cross_region: bool
    status_changed_at: datetime | None
    cancel_reason: str | None


class RouteIn(Body):
    datum: Datum
    route: LineString


class AssignIn(Body):
    vehicle_id: Id


class DriverIn(Body):
    driver_id: Id


class CancelIn(Body):
    reason: Annotated[Text, Field(min_length=1, max_length=500)]


class MergeGroup(BaseModel):
    dispatch_order_ids: list[int]
    passengers: int
    window_start_at: datetime  # the earliest start of the group
    window_end_at: datetime  # the latest end of the group


# --- settlement ---------------------------------------------------------------------------------


class TariffIn(Body):
    """own_pool: per_km_fen and per_hour_fen; rental: per_day_fen and per_hour_fen; ride_hailing:
    discount_pct off the provider's fare. Amounts in fen (0.01 CNY)."""

    pool_id: Id
    kind: TariffKind
    per_km_fen: Annotated[int, Field(ge=0, le=1_000_000)] | None = None
    per_hour_fen: Annotated[int, Field(ge=0, le=10_000_000)] | None = None
    per_day_fen: Annotated[int, Field(ge=0, le=100_000_000)] | None = None
    discount_pct: Annotated[float, Field(ge=0, lt=100)] | None = None
    valid_from: date
    valid_until: date | None = None
    note: Annotated[Text, Field(max_length=500)] = ""

    @model_validator(mode="after")
    def _shape(self) -> TariffIn:
        needed = {
            TariffKind.OWN_POOL: {"per_km_fen", "per_hour_fen"},
            TariffKind.RENTAL: {"per_day_fen", "per_hour_fen"},
            TariffKind.RIDE_HAILING: {"discount_pct"},
        }[self.kind]
        given = {
            f
            for f in ("per_km_fen", "per_hour_fen", "per_day_fen", "discount_pct")
            if getattr(self, f) is not None
        }
        if given != needed:
            raise ValueError(f"a {self.kind.value} tariff has exactly {', '.join(sorted(needed))}")
        if self.valid_until is not None and self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        return self


class Tariff(BaseModel):
    tariff_id: int
    pool_id: int
    kind: TariffKind
    per_km_fen: int | None
    per_hour_fen: int | None
    per_day_fen: int | None
    discount_pct: float | None
    valid_from: date
    valid_until: date | None
    note: str
    created_at: datetime
