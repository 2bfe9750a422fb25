"""An agency's rule configuration: its calendar, vehicles and depots, forbidden zones, speed limits and
the thresholds of every rule, declared once with units and defaults.

The defaults follow ``simulators.violations.ViolationParams`` (the definitions the simulator labels
with), so that the simulator's expected alerts and the rules agree; where a default differs, the
comment says so and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rules.calendar import WorkCalendar, china_calendar
from tracks.columns import ColumnError, column, freeze_columns


@dataclass(frozen=True, slots=True, kw_only=True)
class Vehicles:
    """Per vehicle: its depot (a circle) and fuel figures. Vehicles absent here get no depot or fuel
    rules (their alerts would have nothing to compare with)."""

    vehicle_id: NDArray[np.int64]
    depot_lon: NDArray[np.float64]
    depot_lat: NDArray[np.float64]
    depot_radius_m: NDArray[np.float64]
    tank_l: NDArray[np.float64]
    fuel_norm_l_per_100km: NDArray[np.float64]

    def __post_init__(self) -> None:
        freeze_columns(self)
        if np.any(np.diff(self.vehicle_id) <= 0):
            raise ColumnError("Vehicles must be sorted by vehicle_id, each once")

    def __len__(self) -> int:
        return len(self.vehicle_id)

    def index(self, vehicle_id: ArrayLike) -> NDArray[np.int64]:
        """Row of each vehicle id, -1 where unknown."""
        v = np.asarray(vehicle_id, dtype=np.int64)
        if len(self.vehicle_id) == 0:
            return np.full(v.shape, -1, np.int64)
        at = np.minimum(np.searchsorted(self.vehicle_id, v), len(self.vehicle_id) - 1)
        return np.where(self.vehicle_id[at] == v, at, -1).astype(np.int64)


def no_vehicles() -> Vehicles:
    i, f = np.zeros(0, np.int64), np.zeros(0, np.float64)
    return Vehicles(
        vehicle_id=i, depot_lon=f, depot_lat=f, depot_radius_m=f, tank_l=f, fuel_norm_l_per_100km=f
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Polylines:
    """Lines or rings in WGS-84: item k's vertices are ``lon/lat[offset[k]:offset[k + 1]]``."""

    offset: NDArray[np.int64]
    lon: NDArray[np.float64]
    lat: NDArray[np.float64]

    def __post_init__(self) -> None:
        freeze_columns(self, same_length=False)
        if len(self.lon) != len(self.lat) or len(self.offset) == 0 or self.offset[-1] != len(self.lon):
            raise ColumnError("Polylines: offset must run from 0 to the number of vertices")

    def __len__(self) -> int:
        return len(self.offset) - 1


def polylines(lons: list[ArrayLike], lats: list[ArrayLike]) -> Polylines:
    x = [np.asarray(v, dtype=np.float64).ravel() for v in lons]
    y = [np.asarray(v, dtype=np.float64).ravel() for v in lats]
    return Polylines(
        offset=np.concatenate(([0], np.cumsum([len(v) for v in x], dtype=np.int64))),
        lon=np.concatenate([*x, np.zeros(0)]),
        lat=np.concatenate([*y, np.zeros(0)]),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class ForbiddenZones:
    """Polygons no official car may stay in (scenic spots, golf clubs, entertainment venues …)."""

    zone_id: NDArray[np.int64]  # the place id
    rings: Polylines  # one outer ring per zone (closed or not)
    # per zone: its own minimum dwell (place.min_dwell_s); NaN, or None for all, takes the rule's default
    # StayParams.forbidden_min_dwell_s
    min_dwell_s: NDArray[np.float64] | None = None

    def __post_init__(self) -> None:
        own = np.full(len(self.zone_id), np.nan) if self.min_dwell_s is None else self.min_dwell_s
        object.__setattr__(self, "min_dwell_s", column(own, np.float64))
        if freeze_columns(self) != len(self.rings) or len(own) != len(self.zone_id):
            raise ColumnError("ForbiddenZones needs one ring and one minimum dwell per zone")

    def dwell_s(self, default_s: float) -> NDArray[np.float64]:
        """Per zone: the minimum dwell that applies (its own, else ``default_s``)."""
        own = np.asarray(self.min_dwell_s, dtype=np.float64)
        return np.where(np.isnan(own), default_s, own)

    def __len__(self) -> int:
        return len(self.zone_id)


def no_zones() -> ForbiddenZones:
    return ForbiddenZones(zone_id=np.zeros(0, np.int64), rings=polylines([], []))


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeedLimits:
    """Roads with their limit (a speed-limit map layer). A fix takes the highest limit of the roads
    within ``snap_m`` (at a junction the faster road wins: no alert from the cross street); a fix
    near no road takes ``default_limit_kmh`` (None: not judged)."""

    roads: Polylines
    limit_kmh: NDArray[np.float64]  # per road
    snap_m: float = 30.0  # GNSS noise (≈5 m) plus half a carriageway, well below street spacing
    default_limit_kmh: float | None = 120.0  # the national maximum (expressways)

    def __post_init__(self) -> None:
        if freeze_columns(self) != len(self.roads):
            raise ColumnError("SpeedLimits needs one limit per road")


def no_roads(default_limit_kmh: float | None = 120.0) -> SpeedLimits:
    return SpeedLimits(
        roads=polylines([], []), limit_kmh=np.zeros(0, np.float64), default_limit_kmh=default_limit_kmh
    )


# --- thresholds ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderParams:
    """Which order a trip belongs to, and its window.

    Trips are chained into outings (出车 → 回场: from leaving the depot to coming back). An outing
    qualifies for an order of its vehicle when one of its trips overlaps the order's window widened by
    ``attribution_tolerance_s``, or when it drove the order's journey (from its origin, or to its
    destination, within ``journey_radius_m``) no more than ``early_limit_s`` before / ``late_limit_s``
    after the window: a driver who left an hour early is on the order, early — not without one. It
    takes a qualifying order whose journey it drove, then the one whose window its trips overlap
    longest; see ``rules.facts.attribute_trips``.
    """

    attribution_tolerance_s: float = 1_800.0  # tracks MatchParams.time_tolerance_s
    # the car was at an order's origin or destination within this (ViolationParams.destination_radius_m);
    # tighter than tracks MatchParams.proximity_m (1 km), which would take a block away for the place
    journey_radius_m: float = 300.0
    early_limit_s: float = 3 * 3600.0  # the simulator's drivers leave up to 2 h early
    late_limit_s: float = 3 * 3600.0  # … and stay up to 2.5 h longer
    window_grace_s: float = 900.0  # ViolationParams.window_grace_s
    not_executed_grace_s: float = 1_800.0  # an order is "never executed" this long after its window
    # … unless its whole approved route is shorter than this (two places next to each other: the car
    # moves less than the engine's shortest trip, tracks TripParams.min_trip_distance_m)
    not_executed_min_route_m: float = 500.0


@dataclass(frozen=True, slots=True, kw_only=True)
class OffHoursParams:
    # The simulator labels every trip outside working hours, approved or not; the issue asks for use
    # *without an order*. Approved off-hours trips are raised too by default, at LOW severity with the
    # order named, so that both readings are served; set False to raise only unapproved ones.
    include_approved: bool = True
    min_off_hours_s: float = 0.0  # ViolationParams: any part outside the hours counts


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteParams:
    corridor_m: float = 200.0  # ViolationParams.corridor_m (tracks ConformParams uses 300 m for its share)
    min_off_route_m: float = 500.0  # ViolationParams.min_off_route_m: a stretch at least this long …
    min_off_route_fixes: int = 2  # … of at least this many fixes (one GNSS jump is not a detour)
    destination_radius_m: float = 300.0  # ViolationParams.destination_radius_m
    # Mileage of an order vs its approved route (not labelled by the simulator): above
    # (1 + mileage_tolerance) x the route and by at least mileage_min_excess_m.
    mileage_tolerance: float = 0.2
    mileage_min_excess_m: float = 2_000.0


@dataclass(frozen=True, slots=True, kw_only=True)
class StayParams:
    night_check_local_s: int = 3 * 3600  # ViolationParams.night_check_local_s: where the car is at 03:00
    forbidden_min_dwell_s: float = 300.0  # ViolationParams.forbidden_min_dwell_s
    # a stay continues across fixes outside the zone or without data for up to this long (parked
    # terminals report every 1-5 min, and drift may put a fix just outside the edge)
    forbidden_bridge_s: float = 900.0
    # not back at the depot after an order (not labelled by the simulator): parked elsewhere this long
    # after the order's last trip
    not_returned_min_s: float = 2 * 3600.0


@dataclass(frozen=True, slots=True, kw_only=True)
class OverspeedParams:
    ratio: float = 1.2  # ViolationParams.overspeed_ratio: reported speed above ratio x limit …
    min_s: float = 60.0  # … ViolationParams.overspeed_min_s, from the first to the last fix over
    bridge_s: float = 30.0  # a run continues across fixes under the threshold for up to this long …
    max_silence_s: float = 120.0  # … and across a stretch without fixes (a tunnel) up to this long
    # A run's ends fall between fixes (10 s apart while moving); they are placed from the distance
    # driven between the fixes around them, to within about a second. A run estimated up to this much
    # shorter than min_s still counts.
    timing_allowance_s: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class SilentParams:
    min_s: float = 120.0  # ViolationParams.silent_min_s: no report for at least this long …
    # … while the car moved at least this far. The simulator measures the path driven; the rules see
    # only the straight line between the reports around the silence (never more than the path).
    min_m: float = 500.0
    # the positions around the silence come from kept fixes at most this far outside it (the reports
    # that bound it may be quarantined, e.g. "not valid" at a tunnel's mouth: then it is not judged)
    edge_slack_s: float = 30.0


@dataclass(frozen=True, slots=True, kw_only=True)
class AlarmParams:
    # JT/T 808 alarm bits: reports with the bit set at most this far apart are one episode (one alert)
    max_gap_s: float = 300.0


@dataclass(frozen=True, slots=True, kw_only=True)
class OdometerParams:
    padding_ratio: float = 0.15  # ViolationParams.padding_ratio: odometer - GNSS above this share …
    padding_min_m: float = 500.0  # … ViolationParams.padding_min_m and above this many metres
    # Compared leg by leg, on legs where both fixes carry an odometer reading and at most max_leg_s
    # apart: across a longer silence the GNSS straight line says nothing about the road driven.
    max_leg_s: float = 60.0  # tracks MeasureParams.bridge_gap_s


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordParams:
    radius_m: float = 500.0  # ViolationParams.record_radius_m: "where the car was" within this
    max_fix_age_s: float = 1_800.0  # a position older than this (either side) says nothing
    # litres above tank x (1 + tank_tolerance). The simulator labels anything above the tank; pumps and
    # filler necks make a few per cent above the nominal capacity normal in practice.
    tank_tolerance: float = 0.05
    # litres / GNSS km since the previous fill above norm x consumption_ratio (not labelled by the
    # simulator), over at least consumption_min_km
    consumption_ratio: float = 1.5
    consumption_min_km: float = 100.0


@dataclass(frozen=True, slots=True, kw_only=True)
class DocumentParams:
    # document_expiring from this many days before an insurance policy or inspection expires (the
    # simulator labels with the same figure: simulators.documents.DocumentPlan.lead_days)
    expiring_lead_days: int = 30


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleConfig:
    """Everything the rules of one agency need besides the data. ``version`` names the thresholds in
    force ("<agency code>@<effective date>" of the newest rule_threshold row applied, or "default")."""

    agency_id: int | None = None
    version: str = "default"
    calendar: WorkCalendar = field(default_factory=china_calendar)
    vehicles: Vehicles = field(default_factory=no_vehicles)
    forbidden: ForbiddenZones = field(default_factory=no_zones)
    speed: SpeedLimits = field(default_factory=no_roads)
    orders: OrderParams = field(default_factory=OrderParams)
    off_hours: OffHoursParams = field(default_factory=OffHoursParams)
    route: RouteParams = field(default_factory=RouteParams)
    stay: StayParams = field(default_factory=StayParams)
    overspeed: OverspeedParams = field(default_factory=OverspeedParams)
    silent: SilentParams = field(default_factory=SilentParams)
    odometer: OdometerParams = field(default_factory=OdometerParams)
    alarm: AlarmParams = field(default_factory=AlarmParams)
    records: RecordParams = field(default_factory=RecordParams)
    documents: DocumentParams = field(default_factory=DocumentParams)
