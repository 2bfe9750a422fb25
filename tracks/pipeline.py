"""The track engine's order of steps, written once: clean → split → measure → match → conform → usage.

``run_fleet`` takes the concatenated columns of many vehicles (a ``Track`` is sorted by vehicle, then
time) and runs every step once over all of them; ``run_vehicle`` is the same for one vehicle. Both
are pure: arrays and frozen dataclasses in, frozen dataclasses out.

Windowed recompute (the same trips whatever window is processed)
------------------------------------------------------------------
Trip boundaries depend only on the data near them: the cleaner looks a few fixes either side, the
split's dwell test looks ``min_stop_s`` back (and at least one fix), ACC-off spells and idle stops
need up to ``max(min_idle_stop_s, ignition_debounce_s)`` of context, and a stop's ends are settled
within ``min_stop_s`` of them; only a trip's minimum distance and duration look at the whole trip.
So a trip computed from a window of fixes is *final* — identical to the trip computed from the whole
history — when its measured span (departure row to arrival row) lies at least
``TripParams.context_s`` seconds and ``CONTEXT_ROWS`` kept rows inside the window, for its vehicle,
at both ends (``final_trips``). Trips nearer a window edge are provisional.

A worker recomputing after late fixes arrive at times [a, b] therefore:
1. extends the window to the enclosing stops: from the start of the last stored trip that ends
   before ``a`` (or ``a``) minus ``context_s``, to the end of the first stored trip that starts after
   ``b`` (or ``b``) plus ``context_s``, and at least ``CONTEXT_ROWS`` fixes further each way;
2. runs the engine on that window and replaces the stored trips inside it by the window's final
   trips; provisional ones at the newest end stay open until more data arrives.
The property tests (``tests/test_tracks_pipeline.py``) check exactly this rule on random windows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from tracks.clean import Cleaned, clean_track
from tracks.conform import Conformance, conform_trips, routes_from
from tracks.match import ROLE_CODE, LinkRole, Matches, Orders, match_orders
from tracks.measure import Gaps, Stops, Trips, find_gaps, measure_stops, measure_trips
from tracks.params import Params
from tracks.places import Places, StopKind, join_places, places
from tracks.split import Geometry, Segments, geometry, split_track
from tracks.track import Track, vehicle_starts
from tracks.usage import Usage, daily_usage, local_day

CONTEXT_ROWS = 8  # kept rows of margin a final trip needs beyond its span (cleaning looks 3-4 away)


def no_orders() -> Orders:
    empty_i, empty_f = np.zeros(0, np.int64), np.zeros(0, np.float64)
    return Orders(
        order_id=empty_i,
        vehicle_id=empty_i,
        window_start_us=empty_i,
        window_end_us=empty_i,
        origin_lon=empty_f,
        origin_lat=empty_f,
        destination_lon=empty_f,
        destination_lat=empty_f,
        routes=routes_from([], []),
    )


def no_places() -> Places:
    return join_places()


@dataclass(frozen=True, slots=True, kw_only=True)
class Context:
    """What the engine knows besides the fixes: dispatch orders and known places (depots, approved
    destinations). The orders' destinations count as approved destinations too."""

    orders: Orders = field(default_factory=no_orders)
    places: Places = field(default_factory=no_places)


@dataclass(frozen=True, slots=True, kw_only=True)
class VehicleResult:
    """Everything the engine found, for one vehicle or many. Row numbers in ``segments``, ``trips``,
    ``stops`` and ``gaps`` refer to ``kept`` (the fixes the cleaner kept); ``cleaned.reason`` is per
    input fix, and ``kept_rows`` maps kept rows back to input rows."""

    cleaned: Cleaned
    kept_rows: NDArray[np.intp]
    kept: Track
    segments: Segments
    trips: Trips
    stops: Stops
    gaps: Gaps
    matches: Matches
    conformance: Conformance  # per main (trip, order) link whose order has a route
    usage: Usage  # per vehicle per local day the track touches


def run_fleet(
    track: Track, context: Context, params: Params, on_step: Callable[[str], None] | None = None
) -> VehicleResult:
    """All steps over every vehicle of ``track``; ``on_step(name)`` is called after each (for timing)."""
    done = on_step or (lambda _name: None)
    cleaned = clean_track(track, params.clean)
    kept_rows = cleaned.kept_rows
    kept = track.take(kept_rows)
    done("clean")
    geo = geometry(kept)
    segments = split_track(kept, params.trip, geo)
    done("split")
    trips = measure_trips(kept, segments, params.measure, params.trip, geo)
    stops = measure_stops(kept, segments, trips, _known_places(context, params), geo)
    gaps = find_gaps(kept, params.trip, geo)
    done("measure")
    matches = match_orders(trips, context.orders, params.match)
    done("match")
    conformance = _conform_main_links(kept, trips, matches, orders=context.orders, params=params, geo=geo)
    done("conform")
    usage = _usage(track, trips, params)
    done("usage")
    return VehicleResult(
        cleaned=cleaned,
        kept_rows=kept_rows,
        kept=kept,
        segments=segments,
        trips=trips,
        stops=stops,
        gaps=gaps,
        matches=matches,
        conformance=conformance,
        usage=usage,
    )


STEPS = ("clean", "split", "measure", "match", "conform", "usage")


def run_vehicle(track: Track, context: Context, params: Params) -> VehicleResult:
    """``run_fleet`` for a track of one vehicle (checked)."""
    if len(track) and track.vehicle_id[0] != track.vehicle_id[-1]:
        raise ValueError("run_vehicle got several vehicles; use run_fleet")
    return run_fleet(track, context, params)


def final_trips(result: VehicleResult, params: Params) -> NDArray[np.bool_]:
    """Per trip: far enough inside the window to be final (see the module docstring)."""
    kept, trips = result.kept, result.trips
    starts = vehicle_starts(kept.vehicle_id)
    vehicle = np.searchsorted(starts, trips.from_row, side="right") - 1
    first_row, last_row = starts[vehicle], starts[vehicle + 1] - 1
    context_us = params.trip.context_s * 1e6
    t = kept.t_us
    return np.asarray(
        (trips.from_row - first_row >= CONTEXT_ROWS)
        & (last_row - trips.to_row >= CONTEXT_ROWS)
        & (t[trips.from_row] - t[first_row] >= context_us)
        & (t[last_row] - t[trips.to_row] >= context_us),
        dtype=np.bool_,
    )


def _known_places(context: Context, params: Params) -> Places:
    orders = context.orders
    destinations = places(
        StopKind.DESTINATION,
        orders.destination_lon,
        orders.destination_lat,
        params.conform.arrival_radius_m,
        orders.vehicle_id,
    )
    return join_places(context.places, destinations)


def _conform_main_links(
    kept: Track, trips: Trips, matches: Matches, *, orders: Orders, params: Params, geo: Geometry
) -> Conformance:
    links = matches.links
    chosen = np.flatnonzero(
        (links.role == ROLE_CODE[LinkRole.MAIN]) & (orders.routes.vertex_count[links.order] >= 2)
    )
    order = links.order[chosen]
    return conform_trips(
        kept,
        trips,
        trip=links.trip[chosen],
        routes=orders.routes,
        route=order,
        destination_lon=orders.destination_lon[order],
        destination_lat=orders.destination_lat[order],
        params=params.conform,
        geo=geo,
    )


def _usage(track: Track, trips: Trips, params: Params) -> Usage:
    vehicles = np.unique(track.vehicle_id)
    if len(track) == 0:
        return daily_usage(trips, vehicles, 0, -1, params.usage)
    first_day = int(local_day(int(np.min(track.t_us)), params.usage))
    last_day = int(local_day(int(np.max(track.t_us)), params.usage))
    return daily_usage(trips, vehicles, first_day, last_day, params.usage)
