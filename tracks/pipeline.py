"""The track engine's order of steps, written once: clean → split → measure → match → conform → usage.

``run_fleet`` takes the concatenated columns of many vehicles (a ``Track`` is sorted by vehicle, then
time) and runs every step once over all of them; ``run_vehicle`` is the same for one vehicle. Both
are pure: arrays and frozen dataclasses in, frozen dataclasses out.

Windowed recompute (the same trips whatever window is processed)
------------------------------------------------------------------
A window is a time range of fixes, for one vehicle or many. Trip boundaries and figures depend only
on the data near them: the cleaner looks a few fixes either side (and drift thinning counts from the
halt's start, which moves only which standing fixes of a halt are kept, never a trip); the split's
dwell test looks ``min_stop_s`` back plus one fix, ACC-off spells and idle stops need up to
``max(min_idle_stop_s, ignition_debounce_s)`` of context, and a stop's ends are settled within
``min_stop_s``; a trip's stand positions average at most ``stand_fixes`` fixes beyond it; only its
minimum distance and duration look at the whole trip. So a trip computed from a window is *final* —
bit for bit the trip computed from the whole history — when its measured span (departure row to
arrival row) lies at least ``TripParams.context_s`` seconds and ``CONTEXT_ROWS`` kept fixes inside
the window at both ends, for its vehicle (``final_trips``). Trips nearer an edge are provisional, and
so are the figures of stops cut by an edge (their mean position, length, path).

A worker recomputing after late fixes arrive at times [a, b] therefore:
1. extends the window to the enclosing stops: from the start of the last stored trip that ends
   before ``a`` (or ``a``) minus ``context_s``, to the end of the first stored trip that starts after
   ``b`` (or ``b``) plus ``context_s``, and at least ``CONTEXT_ROWS`` fixes further each way;
2. runs the engine on that window and replaces the stored trips inside it by the window's final
   trips; a provisional trip at the newest end stays open until more data arrives (a car parked
   without ACC reporting is only known to have stopped once ``min_stop_s`` of standing is seen).
The property tests (``tests/test_tracks_pipeline.py``) check this rule on random windows.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from tracks.clean import CODE, KEPT, Cleaned, Reason, clean_track
from tracks.columns import Rows, spec, stack
from tracks.conform import Conformance, conform_trips, routes_from
from tracks.match import ROLE_CODE, LinkRole, Links, Matches, Orders, link_orders, matches_from
from tracks.measure import Gaps, Standing, Stops, Trips, find_gaps, measure_stops, measure_trips
from tracks.params import Params
from tracks.places import STOP_KIND_CODE, Places, StopKind, join_places, places, places_of, take_places
from tracks.split import Segments, geometry, split_track
from tracks.track import Track, vehicle_starts
from tracks.usage import Usage, daily_usage, local_day

CONTEXT_ROWS = 8  # kept rows of margin a final trip needs beyond its span (cleaning looks 3-4 away)
STEPS = ("clean", "split", "measure", "match", "conform", "usage", "join")  # as reported to on_step


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
    """Everything the engine found, for one vehicle or many.

    ``cleaned.reason`` is per input fix; ``kept_rows`` are the input rows the cleaner kept, and row
    numbers in ``segments``, ``trips``, ``stops`` and ``gaps`` count those kept rows (``kept``): each
    column says which rows it numbers (``tracks.columns.spec``). ``leg_m`` is per kept fix the metres
    from the kept fix before it of the same vehicle (0 at its first): what the steps measured with.
    """

    track: Track
    cleaned: Cleaned
    kept_rows: NDArray[np.intp]
    leg_m: NDArray[np.float64]
    segments: Segments
    trips: Trips
    stops: Stops
    gaps: Gaps
    matches: Matches
    conformance: Conformance  # per main (trip, order) link whose order has a route
    usage: Usage  # per vehicle per local day the track touches

    @property
    def kept(self) -> Track:
        """The fixes the cleaner kept (built on demand: a fleet's worth is hundreds of megabytes)."""
        return self.track.take(self.kept_rows)


def run_fleet(
    track: Track,
    context: Context,
    params: Params,
    on_step: Callable[[str], None] | None = None,
    *,
    block_rows: int = 100_000,
) -> VehicleResult:
    """All steps over every vehicle of ``track``; ``on_step(name)`` is called after each (for timing).

    Vehicles are independent, so the steps run on blocks of whole vehicles of about ``block_rows``
    fixes — their working arrays stay in the CPU cache — and the blocks' results are joined; they
    are the same whatever the blocks.
    """
    done = on_step or (lambda _name: None)
    known = _known_places(context, params)
    days = _days(track, params)
    bounds = _block_starts(track, block_rows)
    parts = []
    for a, b in itertools.pairwise(bounds):
        block = track.take(slice(int(a), int(b)))
        here = places_of(known, int(block.vehicle_id[0]), int(block.vehicle_id[-1]))
        parts.append(_steps(block, context.orders, known=here, days=days, params=params, done=done))
    if not parts:
        parts.append(_steps(track, context.orders, known=known, days=days, params=params, done=done))
    result = _join(track, parts, bounds, orders=len(context.orders))
    done("join")
    return result


def run_vehicle(track: Track, context: Context, params: Params) -> VehicleResult:
    """``run_fleet`` for a track of one vehicle (checked)."""
    if len(track) and track.vehicle_id[0] != track.vehicle_id[-1]:
        raise ValueError("run_vehicle got several vehicles; use run_fleet")
    return run_fleet(track, context, params)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Part:
    """What the steps found in one block of whole vehicles (rows counted from the block's start)."""

    cleaned: Cleaned
    kept_rows: NDArray[np.intp] = spec(index=Rows.INPUT)
    leg_m: NDArray[np.float64]
    segments: Segments
    trips: Trips
    stops: Stops
    gaps: Gaps
    links: Links
    conformance: Conformance
    usage: Usage


def _steps(
    track: Track,
    orders: Orders,
    *,
    known: Places,
    days: tuple[int, int],
    params: Params,
    done: Callable[[str], None],
) -> _Part:
    """The order of the steps, for a block of whole vehicles."""
    cleaned = clean_track(track, params.clean)
    kept_rows = cleaned.kept_rows
    kept = track.take(kept_rows)
    done("clean")
    geo = geometry(kept)
    segments = split_track(kept, params.trip, geo)
    done("split")
    usable = np.flatnonzero((cleaned.reason == KEPT) | (cleaned.reason == CODE[Reason.DRIFT]))
    standing = Standing(lon=track.lon[usable], lat=track.lat[usable], at=np.searchsorted(usable, kept_rows))
    trips = measure_trips(kept, segments, params.measure, params.trip, geo, standing=standing)
    stops = measure_stops(kept, segments, trips, known, geo)
    gaps = find_gaps(kept, params.trip, geo)
    done("measure")
    depots = known.kind == STOP_KIND_CODE[StopKind.DEPOT]
    links = link_orders(trips, orders, params.match, take_places(known, depots))
    done("match")
    conformance = _conform_main_links(kept, trips, links, orders=orders, params=params, leg_m=geo.leg_m)
    done("conform")
    vehicles = track.vehicle_id[vehicle_starts(track.vehicle_id)[:-1]]
    usage = daily_usage(trips, vehicles, days[0], days[1], params.usage)
    done("usage")
    return _Part(
        cleaned=cleaned,
        kept_rows=kept_rows,
        leg_m=geo.leg_m,
        segments=segments,
        trips=trips,
        stops=stops,
        gaps=gaps,
        links=links,
        conformance=conformance,
        usage=usage,
    )


def final_trips(result: VehicleResult, params: Params) -> NDArray[np.bool_]:
    """Per trip: far enough inside the window to be final (see the module docstring)."""
    trips = result.trips
    vehicle_id = result.track.vehicle_id[result.kept_rows]
    t = result.track.t_us[result.kept_rows]
    starts = vehicle_starts(vehicle_id)
    vehicle = np.searchsorted(starts, trips.from_row, side="right") - 1
    first_row, last_row = starts[vehicle], starts[vehicle + 1] - 1
    context_us = params.trip.context_s * 1e6
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


def _days(track: Track, params: Params) -> tuple[int, int]:
    """The local days the track touches (empty: an empty range)."""
    if len(track) == 0:
        return 0, -1
    first = int(local_day(int(np.min(track.t_us)), params.usage))
    return first, int(local_day(int(np.max(track.t_us)), params.usage))


def _conform_main_links(
    kept: Track,
    trips: Trips,
    links: Links,
    *,
    orders: Orders,
    params: Params,
    leg_m: NDArray[np.float64],
) -> Conformance:
    """Conformance of each main link whose order has a route."""
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
        leg_m=leg_m,
    )


def _block_starts(track: Track, block_rows: int) -> NDArray[np.intp]:
    """First row of each block of whole vehicles, and the number of rows (just [0] when empty)."""
    if len(track) == 0:
        return np.zeros(1, np.intp)
    starts = vehicle_starts(track.vehicle_id)
    wanted = np.arange(block_rows, len(track), max(block_rows, 1))
    cuts = starts[np.minimum(np.searchsorted(starts, wanted), len(starts) - 1)]
    return np.unique(np.concatenate(([0], cuts, [len(track)]))).astype(np.intp)


def _join(track: Track, parts: list[_Part], bounds: NDArray[np.intp], *, orders: int) -> VehicleResult:
    """One result from consecutive blocks: row and trip numbers shifted to the whole track's (which
    columns hold row numbers of which table is declared on the columns, ``tracks.columns.spec``)."""

    def before(sizes: Sequence[int]) -> list[int]:
        return list(itertools.accumulate(sizes[:-1], initial=0))

    joined = stack(
        parts,
        {
            Rows.INPUT: [int(b) for b in bounds[:-1]] if len(parts) == len(bounds) - 1 else [0],
            Rows.KEPT: before([len(p.kept_rows) for p in parts]),
            Rows.SEGMENT: before([len(p.segments) for p in parts]),
            Rows.TRIP: before([len(p.trips) for p in parts]),
            Rows.STOP: before([len(p.stops) for p in parts]),
            Rows.ORDER: [0] * len(parts),  # every block matched against all of the context's orders
        },
    )
    return VehicleResult(
        track=track,
        cleaned=joined.cleaned,
        kept_rows=joined.kept_rows,
        leg_m=joined.leg_m,
        segments=joined.segments,
        trips=joined.trips,
        stops=joined.stops,
        gaps=joined.gaps,
        matches=matches_from(joined.links, len(joined.trips), orders),
        conformance=joined.conformance,
        usage=joined.usage,
    )
