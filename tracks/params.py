"""The engine's thresholds, declared once with their units and defaults (Traccar's ``TripsConfig``)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True, kw_only=True)
class CleanParams:
    # A fix is a jump when it lies at least min_jump_m from both kept neighbours and either the car
    # would need more than max_implied_speed_kmh to get there and back, or it is a sharp out-and-back
    # that the speeds the terminal reported at the three fixes cannot explain (a parked car
    # "teleporting" for one fix; but a car that drove into a cul-de-sac, stopped and came back is kept).
    max_implied_speed_kmh: float = 250.0  # well above any official car; below GNSS-jump speeds
    min_jump_m: float = 100.0  # parked drift (5-50 m) never qualifies; real jumps are hundreds of metres
    jump_speed_slack: float = 1.5  # mean reported speed of a leg x its time x slack must cover it
    max_jump_window_s: float = 900.0  # neighbours further apart in time say nothing about a fix
    # A fix is parked drift when it and its previous kept fix are both stationary by the terminal's
    # account (ACC off, or Doppler speed below drift_speed_kmh) and it lies within drift_radius_m.
    drift_radius_m: float = 50.0  # the 5-50 m wander of a parked receiver
    drift_speed_kmh: float = 3.0  # Doppler speed noise of a standing receiver stays below this
    # ... except the first and last fix of each halt and one fix per drift_keep_s of it (counted from
    # the halt's start), so that the split still sees how long the car stood there
    drift_keep_s: float = 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class TripParams:
    # Traccar 2026: a stop is declared at a fix when nothing in the last min_stop_s is at least
    # stop_radius_m away; a trip starts when the car is stop_radius_m from its stop.
    stop_radius_m: float = 200.0
    min_stop_s: float = 180.0
    max_gap_s: float = 3_600.0  # Traccar: a data gap above 1 h ends a trip
    min_trip_distance_m: float = 300.0  # above the stop radius, drift and car-park moves; Traccar uses 500
    min_trip_duration_s: float = 30.0  # drops ignition flicker; Traccar's 300 s would drop real short hops
    ignition_debounce_s: float = 60.0  # an ACC-off spell shorter than this is flicker, not a stop
    # With ACC on, standing still only ends a trip after this long (a jam or a long red light does not);
    # without ignition data the Traccar rule above applies unchanged.
    min_idle_stop_s: float = 600.0
    # A stop's ends are trimmed to the fixes where the car actually stood: within settle_radius_m of
    # where the stop was declared and (when speed is reported) slower than settle_speed_kmh.
    settle_radius_m: float = 60.0
    settle_speed_kmh: float = 3.0
    # A trip starts when, at its mean speed, it would have left its last standing fix to reach its
    # first moving one (a parked terminal may report every few minutes); a trip without a usable
    # speed starts at most max_edge_s before its first moving fix. Likewise at its end.
    max_edge_s: float = 60.0

    @property
    def context_s(self) -> float:
        """How far (s) a trip boundary can look beyond itself; see ``tracks.pipeline`` on windows."""
        return max(self.min_idle_stop_s, self.ignition_debounce_s) + 2 * self.min_stop_s


@dataclass(frozen=True, slots=True, kw_only=True)
class MeasureParams:
    bridge_gap_s: float = 60.0  # moving terminals report every 10-30 s; a longer silence is a gap
    bridge_min_m: float = 100.0  # ... that matters only when the car moved (not a standstill at a light)
    moving_speed_kmh: float = 5.0  # a leg slower than this counts as standing time, not moving time
    standing_speed_kmh: float = 3.0  # a leg whose both ends report less adds no mileage (GNSS noise)
    stand_fixes: int = 5  # a trip leaves from the mean of the stop's last 5 fixes (arrives likewise)
    odometer_tolerance: float = 0.2  # odometer vs GNSS: confidence falls to 0 at a 20 % disagreement
    odometer_resolution_km: float = 0.1  # JT/T 808 reports the odometer in 1/10 km


@dataclass(frozen=True, slots=True, kw_only=True)
class MatchParams:
    time_tolerance_s: float = 1_800.0  # drivers leave before the approved window; orders run late
    min_overlap_share: float = 0.5  # at least half the trip inside the widened window
    proximity_m: float = 1_000.0  # order places are geocoded addresses; cars park a few hundred metres off
    # an outing far outside its window is still that order's (and flagged as such) when it drives from the
    # order's origin to its destination within this long of the window
    late_tolerance_s: float = 6 * 3_600.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ConformParams:
    corridor_m: float = 300.0  # the default corridor half-width
    arrival_radius_m: float = 300.0  # "arrived" = the trip ended this close to the approved destination
    simplify_m: float = 1.0  # the route is simplified (Douglas-Peucker) first; distances are within this


@dataclass(frozen=True, slots=True, kw_only=True)
class UsageParams:
    utc_offset_s: int = 8 * 3_600  # days, weeks and months are China Standard Time (UTC+8, no DST)


@dataclass(frozen=True, slots=True, kw_only=True)
class Params:
    clean: CleanParams = field(default_factory=CleanParams)
    trip: TripParams = field(default_factory=TripParams)
    measure: MeasureParams = field(default_factory=MeasureParams)
    match: MatchParams = field(default_factory=MatchParams)
    conform: ConformParams = field(default_factory=ConformParams)
    usage: UsageParams = field(default_factory=UsageParams)
