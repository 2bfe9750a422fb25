"""Split a cleaned track into trips and stops: index ranges, a partition of its rows.

The rules, in the order applied (all vectorized over every vehicle of the track at once):

1. Dwell (Traccar 2026). A row is *standing* when nothing in the ``min_stop_s`` before it, nor the
   last row before that (however old), is ``stop_radius_m`` or more away. The rows of that look-back
   are standing too: a stop covers the whole dwell that declared it.
2. Ignition. Where the terminal reports ACC, an ACC-off spell of at least ``ignition_debounce_s`` is a
   stop whatever the positions say. A dwell with ACC on everywhere is only a stop after
   ``min_idle_stop_s`` (a jam or a red light does not end a trip); without ACC the dwell rule alone
   decides.
3. Settling. A stop's ends are trimmed back to where the car actually stood (within ``settle_radius_m``
   of where it was declared, and slower than ``settle_speed_kmh`` when speed is reported); the trimmed
   rows are given to the neighbouring trips, so the approach and the departure count as mileage.
4. Gaps. A silence above ``max_gap_s`` ends a trip; a stop is cut where the car moved during one
   (``stop_radius_m`` or more: a terminal unplugged to hide a trip shows up here).
5. Trips shorter than ``min_trip_distance_m`` or ``min_trip_duration_s`` become part of the stops
   around them.

Each label depends only on rows within ``TripParams.context_s`` (and a few rows) of it, except that a
trip's acceptance depends on the whole trip; ``tracks.pipeline`` spells out the windowing rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from tracks.columns import Rows, freeze_columns, spec
from tracks.geo import Metric, leg_m, metric, pair_m
from tracks.params import TripParams
from tracks.ranges import in_ranges, reduce_ranges
from tracks.track import IGNITION_OFF, IGNITION_UNKNOWN, Track, continues, look_back, vehicle_starts


@dataclass(frozen=True, slots=True, kw_only=True)
class Segments:
    """Consecutive row ranges ``[start, end)`` of a track, each a trip or a stop, covering every row."""

    vehicle_id: NDArray[np.int64]
    start: NDArray[np.int64] = spec(index=Rows.KEPT)
    end: NDArray[np.int64] = spec(index=Rows.KEPT)
    is_trip: NDArray[np.bool_]

    def __post_init__(self) -> None:
        freeze_columns(self)

    def __len__(self) -> int:
        return len(self.start)


@dataclass(frozen=True, slots=True, kw_only=True)
class Geometry:
    """What split and measure both need about a track's positions, computed once."""

    metric: Metric
    leg_m: NDArray[np.float64]  # per row: length of the leg from the previous row (0 at a vehicle's first)


def geometry(track: Track) -> Geometry:
    m = metric(track.lon, track.lat)
    legs = np.zeros(len(track), np.float64)
    legs[1:] = leg_m(m)
    legs[~continues(track.vehicle_id)] = 0.0
    return Geometry(metric=m, leg_m=legs)


def split_track(track: Track, params: TripParams, geo: Geometry | None = None) -> Segments:
    """Trips and stops of a (cleaned) track, one or many vehicles."""
    n = len(track)
    if n == 0:
        nothing = np.zeros(0, np.bool_)
        return _segments(track, nothing, nothing, nothing)
    geo = geo if geo is not None else geometry(track)
    same = continues(track.vehicle_id)
    dt_us = np.zeros(n, np.int64)
    dt_us[1:] = np.diff(track.t_us)
    gap = same & (dt_us > params.max_gap_s * 1e6)  # the leg into this row is a gap
    relocated = gap & (geo.leg_m >= params.stop_radius_m)

    lo = _window_start(track, params.min_stop_s)
    dwell = _dwell(geo, lo, params.stop_radius_m)
    forced = _ignition_stops(track, same, params.ignition_debounce_s)
    covered = in_ranges(n, lo[dwell], np.flatnonzero(dwell) + 1) | forced
    standing = _settle(
        track, geo, params, covered=covered, joined=same & ~relocated, lo=lo, dwell=dwell, forced=forced
    )

    is_trip = ~standing
    segments = _segments(track, is_trip, gap, relocated)
    too_short = _too_short(track, segments, geo, params)
    if np.any(too_short):
        is_trip &= ~in_ranges(n, segments.start[too_short], segments.end[too_short])
        segments = _segments(track, is_trip, gap, relocated)
    return segments


def _window_start(track: Track, window_s: float) -> NDArray[np.intp]:
    """Per row, the first row of its look-back: the last row at least ``window_s`` older than it.

    Reaching one row past the window makes the dwell test see ``window_s`` of data even when the
    terminal reports rarely (a parked car every few minutes) or has just come out of a tunnel.
    At a vehicle's first rows the look-back is cut at its first row.
    """
    return look_back(track.vehicle_id, track.t_us, window_s)


def _dwell(geo: Geometry, lo: NDArray[np.intp], radius_m: float) -> NDArray[np.bool_]:
    """Per row: nothing in ``[lo, row)`` is ``radius_m`` or more away (the Traccar stop condition).

    Cheap bounds decide most rows: a path shorter than the radius since ``lo`` cannot have left it,
    and a chord to ``lo`` at least the radius has. The rest are checked fix by fix, lag by lag.
    """
    n = len(lo)
    rows = np.arange(n, dtype=np.intp)
    path = np.cumsum(geo.leg_m)
    stand = path - path[lo] < radius_m  # includes rows with an empty window
    left = pair_m(geo.metric, lo, rows) >= radius_m
    stand &= ~left
    unsure = np.flatnonzero(~stand & ~left)
    lag = 1
    while len(unsure):
        earlier = unsure - lag
        inside = earlier >= lo[unsure]
        far = np.zeros(len(unsure), np.bool_)
        far[inside] = pair_m(geo.metric, earlier[inside], unsure[inside]) >= radius_m
        done = far | ~inside
        stand[unsure[~inside & ~far]] = True
        unsure = unsure[~done]
        lag += 1
    return stand


def _runs(mask: NDArray[np.bool_], joined: NDArray[np.bool_]) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """(first, last) row of each maximal run of ``mask``; ``joined[k]``: row k may continue row k-1's run."""
    continues_run = np.zeros(len(mask), np.bool_)
    continues_run[1:] = mask[1:] & mask[:-1] & joined[1:]
    first = np.flatnonzero(mask & ~continues_run)
    ends_run = np.ones(len(mask), np.bool_)
    ends_run[:-1] = ~continues_run[1:]
    last = np.flatnonzero(mask & ends_run)
    return first, last


def _ignition_stops(track: Track, same: NDArray[np.bool_], debounce_s: float) -> NDArray[np.bool_]:
    """Rows of ACC-off spells lasting at least ``debounce_s`` (until the next row that is not off)."""
    off = track.ignition == IGNITION_OFF
    first, last = _runs(off, same)
    after = np.minimum(last + 1, len(off) - 1)
    has_after = (last + 1 < len(off)) & same[after]
    until_us = np.where(has_after, track.t_us[after], track.t_us[last])
    long_enough = until_us - track.t_us[first] >= debounce_s * 1e6
    return in_ranges(len(off), first[long_enough], last[long_enough] + 1)


def _settle(
    track: Track,
    geo: Geometry,
    params: TripParams,
    *,
    covered: NDArray[np.bool_],
    joined: NDArray[np.bool_],
    lo: NDArray[np.intp],
    dwell: NDArray[np.bool_],
    forced: NDArray[np.bool_],
) -> NDArray[np.bool_]:
    """Rows that belong to stops: covered runs that qualify as stops, trimmed to where the car stood."""
    standing = np.zeros(len(track), np.bool_)
    first, last = _runs(covered, joined)
    if len(first) == 0:
        return standing
    rows = np.flatnonzero(covered)  # the runs' rows, run after run
    run_of = np.searchsorted(first, rows, side="right") - 1
    at = np.searchsorted(rows, first)  # where each run starts in ``rows``
    big = np.iinfo(np.intp).max

    def first_where(mask: NDArray[np.bool_]) -> NDArray[np.intp]:
        return np.asarray(np.minimum.reduceat(np.where(mask, rows, big), at), dtype=np.intp)

    def last_where(mask: NDArray[np.bool_]) -> NDArray[np.intp]:
        return np.asarray(np.maximum.reduceat(np.where(mask, rows, -1), at), dtype=np.intp)

    run_dwell, run_forced = dwell[rows], forced[rows]
    speed = track.speed_kmh[rows]
    with np.errstate(invalid="ignore"):
        slow = ~(speed >= params.settle_speed_kmh)  # NaN (not reported) is no objection
        still = run_forced | (speed < params.settle_speed_kmh)  # standing by the terminal's account
    last_dwell, last_forced, last_still = last_where(run_dwell), last_where(run_forced), last_where(still)
    # where the car stood: by the terminal's account (ACC off, zero speed) where it says so, else
    # where the dwell was first declared (arrival) and the oldest row of the last dwell window (the
    # car was still there when it left)
    lead_anchor = first_where(still | (run_dwell & np.isnan(speed)))
    lead_anchor = np.where(lead_anchor == big, first_where(run_dwell | run_forced), lead_anchor)
    lead_anchor = np.where(lead_anchor == big, first, lead_anchor)  # (a dwell cut by a relocation)
    trail_anchor = np.where(last_dwell >= 0, lo[np.maximum(last_dwell, 0)], last)
    trail_anchor = np.where(last_still >= 0, last_still, np.maximum(trail_anchor, first))

    unknown = last_where(track.ignition[rows] == IGNITION_UNKNOWN) >= 0
    idle_s = (track.t_us[last] - track.t_us[first]) / 1e6
    is_stop = unknown | (last_forced >= 0) | (idle_s >= params.min_idle_stop_s)

    radius_m = params.settle_radius_m
    lead_ok = run_forced | (slow & (pair_m(geo.metric, lead_anchor[run_of], rows) <= radius_m))
    trail_ok = run_forced | (slow & (pair_m(geo.metric, trail_anchor[run_of], rows) <= radius_m))
    lead, trail = first_where(lead_ok), last_where(trail_ok)
    untrimmed = (lead == big) | (trail < 0) | (lead > trail)
    lead, trail = np.where(untrimmed, first, lead), np.where(untrimmed, last, trail)

    standing[rows[(rows >= lead[run_of]) & (rows <= trail[run_of]) & is_stop[run_of]]] = True
    return standing


def _segments(
    track: Track, is_trip: NDArray[np.bool_], gap: NDArray[np.bool_], relocated: NDArray[np.bool_]
) -> Segments:
    """Maximal runs of equal label per vehicle, cut at gaps (trips) and relocations (stops too).

    ``gap[k]`` / ``relocated[k]`` describe the leg into row k.
    """
    n = len(track)
    new = np.ones(n, np.bool_)
    if n > 1:
        new[1:] = (
            (track.vehicle_id[1:] != track.vehicle_id[:-1])
            | (is_trip[1:] != is_trip[:-1])
            | (gap[1:] & is_trip[1:])
            | relocated[1:]
        )
    start = np.flatnonzero(new)
    end = np.append(start[1:], n)[: len(start)]
    return Segments(vehicle_id=track.vehicle_id[start], start=start, end=end, is_trip=is_trip[start])


@dataclass(frozen=True, slots=True, kw_only=True)
class TripBounds:
    """Per trip: the rows its mileage runs between, and its start and end times.

    A trip's mileage runs from its departure row (the last row of the stop before it) to its arrival
    row (the first row of the stop after it), unless a gap above ``max_gap_s`` separates them; its
    start and end times are estimated from its mean speed (see below).
    """

    from_row: NDArray[np.int64]
    to_row: NDArray[np.int64]
    start_us: NDArray[np.int64]
    end_us: NDArray[np.int64]


def trip_bounds(
    track: Track, start: NDArray[np.int64], end: NDArray[np.int64], params: TripParams, geo: Geometry
) -> TripBounds:
    t = track.t_us
    n = len(track)
    max_gap_us = params.max_gap_s * 1e6
    before = np.maximum(start - 1, 0)
    after = np.minimum(end, max(n - 1, 0))
    joined_before = (
        (start > 0)
        & (track.vehicle_id[before] == track.vehicle_id[start])
        & (t[start] - t[before] <= max_gap_us)
    )
    joined_after = (
        (end < n)
        & (track.vehicle_id[after] == track.vehicle_id[end - 1])
        & (t[after] - t[end - 1] <= max_gap_us)
    )
    from_row = np.where(joined_before, before, start)
    to_row = np.where(joined_after, after, end - 1)
    # A parked terminal may report every few minutes, so the departure row says little about when the
    # car left: the trip starts when, at its own mean speed, it would have left the departure row's
    # position to reach its first row (not before the departure row's time); likewise it ends. A trip
    # of one row, or standing still, takes at most max_edge_s either side.
    own_m = reduce_ranges(np.add, geo.leg_m, start + 1, end, empty=0.0)
    own_s = (t[end - 1] - t[start]) / 1e6
    with np.errstate(invalid="ignore", divide="ignore"):
        speed_ms = np.where((own_s > 0) & (own_m > 0), own_m / own_s, np.nan)
        lead_s = np.where(np.isnan(speed_ms), params.max_edge_s, geo.leg_m[start] / speed_ms)
        trail_s = np.where(
            np.isnan(speed_ms), params.max_edge_s, geo.leg_m[np.minimum(end, n - 1)] / speed_ms
        )
    return TripBounds(
        from_row=from_row,
        to_row=to_row,
        start_us=np.maximum(t[from_row], t[start] - np.round(lead_s * 1e6).astype(np.int64)),
        end_us=np.minimum(t[to_row], t[end - 1] + np.round(trail_s * 1e6).astype(np.int64)),
    )


def _too_short(track: Track, segments: Segments, geo: Geometry, params: TripParams) -> NDArray[np.bool_]:
    """Per segment: a trip below the minimum distance or duration."""
    trips = np.flatnonzero(segments.is_trip)
    bounds = trip_bounds(track, segments.start[trips], segments.end[trips], params, geo)
    distance_m = reduce_ranges(np.add, geo.leg_m, bounds.from_row + 1, bounds.to_row + 1, empty=0.0)
    duration_s = (bounds.end_us - bounds.start_us) / 1e6
    # A trip still under way at the newest fix (its segment reaches the vehicle's last row) counts as
    # soon as the car is stop_radius_m from where it stood — Traccar's start rule — so the live rules see
    # a departure without an order at once; it is provisional (tracks.pipeline.final_trips) and dropped
    # again by a later round if it stays short.
    vehicle_end = vehicle_starts(track.vehicle_id)[1:]
    open_trip = np.isin(segments.end[trips], vehicle_end)
    min_m = np.where(
        open_trip, min(params.stop_radius_m, params.min_trip_distance_m), params.min_trip_distance_m
    )
    min_s = np.where(open_trip, 0.0, params.min_trip_duration_s)
    short = np.zeros(len(segments), np.bool_)
    short[trips] = (distance_m < min_m) | (duration_s < min_s)
    return short
