"""Value filters over decoded fix columns (Traccar's filter.* switches, as reasons instead of drops)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ingest.decode import Fixes
from ingest.reasons import CODE, Reason
from tracks.geo import haversine_m


@dataclass(frozen=True, slots=True, kw_only=True)
class FilterParams:
    max_future_s: float = 300.0  # a clock ahead by more is wrong (e.g. GMT+8 sent as UTC is 8 h ahead)
    max_past_s: float = 30 * 86_400.0  # blind-area back-fill older than this is refused
    max_speed_kmh: float = 400.0  # a reported speed above this is a bad value
    max_hdop: float = 50.0
    max_accuracy_m: float = 2_000.0
    max_implied_speed_kmh: float = 300.0  # between a fix and its stored / batch neighbours
    min_jump_m: float = 1_000.0  # smaller jumps are the track cleaner's business, not ingest's
    implied_speed_window_s: float = 900.0  # neighbours further apart in time say nothing


@dataclass(frozen=True, slots=True, kw_only=True)
class Anchors:
    """The last stored fix of each vehicle in a batch."""

    vehicle_id: NDArray[np.int32]
    t_us: NDArray[np.int64]
    lon: NDArray[np.float64]
    lat: NDArray[np.float64]

    @staticmethod
    def empty() -> Anchors:
        return Anchors(
            vehicle_id=np.zeros(0, np.int32),
            t_us=np.zeros(0, np.int64),
            lon=np.zeros(0, np.float64),
            lat=np.zeros(0, np.float64),
        )


def screen(
    fixes: Fixes, vehicle_id: NDArray[np.int32], now_us: int, anchors: Anchors, params: FilterParams
) -> tuple[NDArray[np.uint8], dict[int, str]]:
    """Reason code per fix (0 = store it) and a detail per rejected fix; the first failing filter wins."""
    reason = fixes.reason.copy()
    detail = dict(fixes.detail)

    def mark(mask: NDArray[np.bool_], why: Reason, say: str) -> None:
        rows = np.flatnonzero(mask & (reason == 0))
        reason[rows] = CODE[why]
        for row in rows:
            detail[int(row)] = say.format(row=int(row))

    lon, lat = fixes.lon, fixes.lat
    mark(~fixes.valid, Reason.INVALID_FIX, "terminal reports the fix as not valid")
    out = ~((np.abs(lon) <= 180.0) & (np.abs(lat) <= 90.0))
    mark(out, Reason.OUT_OF_RANGE, "lon/lat outside ±180/±90")
    mark((np.abs(lon) < 1e-7) & (np.abs(lat) < 1e-7), Reason.NULL_ISLAND, "lon = lat = 0 (no fix)")
    with np.errstate(invalid="ignore"):
        mark(
            (fixes.speed_kmh < 0) | (fixes.speed_kmh > params.max_speed_kmh),
            Reason.BAD_VALUE,
            f"speed_kmh outside 0–{params.max_speed_kmh:g}",
        )
        mark(
            (fixes.heading_deg < 0) | (fixes.heading_deg > 360), Reason.BAD_VALUE, "heading_deg outside 0–360"
        )
        mark((fixes.hdop < 0) | (fixes.accuracy_m < 0), Reason.BAD_VALUE, "negative hdop or accuracy_m")
        mark(fixes.odometer_km < 0, Reason.BAD_VALUE, "negative odometer_km")
        mark(
            (fixes.hdop > params.max_hdop) | (fixes.accuracy_m > params.max_accuracy_m),
            Reason.LOW_ACCURACY,
            f"hdop > {params.max_hdop:g} or accuracy_m > {params.max_accuracy_m:g}",
        )
    ahead_s = (fixes.t_us - now_us) / 1e6
    mark(
        ahead_s > params.max_future_s,
        Reason.FUTURE_TIME,
        f"fix time more than {params.max_future_s:g} s ahead",
    )
    mark(-ahead_s > params.max_past_s, Reason.PAST_TIME, f"fix time more than {params.max_past_s:g} s old")

    jumps, jump_detail = _implied_speed_spikes(fixes, vehicle_id, reason == 0, anchors, params)
    reason[jumps] = CODE[Reason.IMPOSSIBLE_SPEED]
    detail.update(jump_detail)
    return reason, detail


def _implied_speed_spikes(
    fixes: Fixes,
    vehicle_id: NDArray[np.int32],
    candidate: NDArray[np.bool_],
    anchors: Anchors,
    params: FilterParams,
) -> tuple[NDArray[np.intp], dict[int, str]]:
    """Rows that are isolated spikes: impossible to reach from their neighbour before *and* after.

    Neighbours are the vehicle's last stored fix and the other candidate fixes of the batch, in time order.
    First the fixes impossible on both sides go; then, among the rest, a fix whose only neighbour (the
    first or last of a run) is impossible to reach. A run of fixes that agree with each other is kept even
    when the stored fix disagrees with it (the stored one may be the bad one).
    """
    rows = np.flatnonzero(candidate)
    vehicle = np.concatenate((vehicle_id[rows], anchors.vehicle_id))
    t_us = np.concatenate((fixes.t_us[rows], anchors.t_us))
    order = np.lexsort((t_us, vehicle))
    vehicle, t_us = vehicle[order], t_us[order]
    lon = np.concatenate((fixes.lon[rows], anchors.lon))[order]
    lat = np.concatenate((fixes.lat[rows], anchors.lat))[order]
    source = np.concatenate((rows, np.full(len(anchors.t_us), -1, dtype=np.intp)))[order]

    detail: dict[int, str] = {}
    keep = np.ones(len(source), dtype=np.bool_)
    for both_sides in (True, False):
        k = np.flatnonzero(keep)
        if len(k) < 2:
            break
        dt_s = np.diff(t_us[k]) / 1e6
        dist_m = haversine_m(lon[k][:-1], lat[k][:-1], lon[k][1:], lat[k][1:])
        near = (vehicle[k][1:] == vehicle[k][:-1]) & (dt_s <= params.implied_speed_window_s)
        speed_kmh = dist_m / np.maximum(dt_s, 1e-3) * 3.6
        high = near & (dist_m > params.min_jump_m) & (speed_kmh > params.max_implied_speed_kmh)
        false = np.zeros(1, dtype=np.bool_)
        in_high, has_prev = np.concatenate((false, high)), np.concatenate((false, near))
        out_high, has_next = np.concatenate((high, false)), np.concatenate((near, false))
        spike = (in_high & out_high) if both_sides else (in_high & ~has_next) | (out_high & ~has_prev)
        spike &= source[k] >= 0
        for j in np.flatnonzero(spike):
            pair = j - 1 if in_high[j] else j
            detail[int(source[k[j]])] = (
                f"implied {speed_kmh[pair]:.0f} km/h over {dist_m[pair]:.0f} m in {dt_s[pair]:.0f} s"
                f" (limit {params.max_implied_speed_kmh:g} km/h)"
            )
        keep[k[spike]] = False
    flagged = source[~keep]
    return flagged, detail
