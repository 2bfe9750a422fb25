"""The track engine's I/O shell: stored fixes → ``tracks.pipeline`` → stored trips.

Two ways in, one way out:
- live (``fleetwatch engine``): ingest marks vehicles in ``engine_queue``; the worker claims them,
  recomputes each from the end of its last final trip before the changed fixes (minus the context the
  pipeline needs, see tracks/pipeline.py) to its newest fix, and replaces the trips after that anchor;
- batch (``fleetwatch engine recompute``): a range of days for every vehicle, read as one sequential
  time window (reading vehicle by vehicle through the index is several times slower), a day at a time.
Both store the same trips for the same fixes, whatever the window: that is the pipeline's windowing rule.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import numpy as np
import orjson
import psycopg
from numpy.typing import NDArray
from psycopg.abc import Query

from store.copy import read_binary_copy
from store.epoch import utc
from store.fixsql import engine_layout, fix_query
from store.queries import query
from store.retry import TRANSIENT, Backoff
from tracks.match import DispatchOrder, LinkRole, orders_table
from tracks.params import Params
from tracks.pipeline import Context, VehicleResult, final_trips, run_fleet
from tracks.places import StopKind, join_places, places
from tracks.track import Track, make_track

log = logging.getLogger(__name__)

MARGIN_S = 3_600.0  # fixes read before the context starts: parked terminals report every few minutes
_ROLES = tuple(LinkRole)
_NEVER = -(2**62)  # "no anchor": every stored trip of the vehicle is recomputed


# the fix columns (store.fixcolumns) that are Track's own arrays; other engine columns go to Track.extra
_TRACK_ARRAYS = {
    "vehicle_id": "vehicle_id",
    "fix_at": "t_us",
    "lon": "lon",
    "lat": "lat",
    "speed_kmh": "speed_kmh",
    "ignition": "ignition",
    "odometer_km": "odometer_km",
}


def read_track(conn: psycopg.Connection[Any], sql: Query, params: dict[str, Any]) -> Track:
    """Fixes from a binary COPY of the engine's fix columns (``{engine_columns}``: fixed-width rows,
    NULLs as NaN / -1) straight into numpy; read by store.copy.read_binary_copy."""
    buffer = bytearray()
    with conn.cursor() as cur, cur.copy(sql, params) as copy:
        for chunk in copy:
            buffer += chunk
    columns = read_binary_copy(buffer, engine_layout())
    own = {_TRACK_ARRAYS[name]: values for name, values in columns.items() if name in _TRACK_ARRAYS}
    extra = {name: values for name, values in columns.items() if name not in _TRACK_ARRAYS}
    return make_track(**own, extra=extra)


def load_context(
    conn: psycopg.Connection[Any], vehicle_ids: Sequence[int], from_us: int, to_us: int
) -> Context:
    """The vehicles' approved orders overlapping the window, and the depots."""
    rows = conn.execute(
        query("orders_of_vehicles"),
        {"vehicle_ids": list(vehicle_ids), "from": utc(from_us), "to": utc(to_us)},
    ).fetchall()
    orders = []
    for order_id, vehicle_id, start_us, end_us, o_lon, o_lat, d_lon, d_lat, route in rows:
        # route as text parsed by orjson: psycopg's jsonb decoding was most of loading the context
        coordinates = (
            np.asarray(orjson.loads(route)["coordinates"], dtype=np.float64).reshape(-1, 2)
            if route
            else np.zeros((0, 2))
        )
        orders.append(
            DispatchOrder(
                order_id=order_id,
                vehicle_id=vehicle_id,
                window_start_us=start_us,
                window_end_us=end_us,
                origin_lon=o_lon,
                origin_lat=o_lat,
                destination_lon=d_lon,
                destination_lat=d_lat,
                route_lon=coordinates[:, 0].copy(),
                route_lat=coordinates[:, 1].copy(),
            )
        )
    depots = np.array(conn.execute(query("depots")).fetchall(), dtype=np.float64).reshape(-1, 3)
    depot_places = places(StopKind.DEPOT, depots[:, 0], depots[:, 1], depots[:, 2])
    return Context(orders=orders_table(orders), places=join_places(depot_places))


class AfterRound(Protocol):
    """Called in the round's transaction once its trips are stored (the rules hook in here)."""

    def __call__(
        self,
        conn: psycopg.Connection[Any],
        result: VehicleResult,
        *,
        context: Context,
        vehicle_ids: Sequence[int],
        after_us: Sequence[int],
        window_us: tuple[int, int],
        until_us: Sequence[int],
    ) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Stored:
    trips: int
    links: int
    conformance: int


def store_result(
    conn: psycopg.Connection[Any],
    result: VehicleResult,
    context: Context,
    params: Params,
    chosen: NDArray[np.bool_],
) -> Stored:
    """Insert the chosen trips, their order links and conformance (the caller deleted what they replace)."""
    trips = result.trips
    final = final_trips(result, params)
    index = np.flatnonzero(chosen)
    with conn.cursor() as cur, cur.copy(query("copy_trips")) as copy:
        for i in index.tolist():
            copy.write_row(
                (
                    int(trips.vehicle_id[i]),
                    utc(int(trips.start_us[i])),
                    utc(int(trips.end_us[i])),
                    float(trips.duration_s[i]),
                    float(trips.moving_s[i]),
                    float(trips.distance_m[i]),
                    float(trips.bridged_m[i]),
                    int(trips.bridged_legs[i]),
                    _number(trips.speed_distance_m[i]),
                    _number(trips.max_speed_kmh[i]),
                    _number(trips.odometer_m[i]),
                    _number(trips.odometer_confidence[i]),
                    float(trips.start_lon[i]),
                    float(trips.start_lat[i]),
                    float(trips.end_lon[i]),
                    float(trips.end_lat[i]),
                    None,
                    None,
                    bool(final[i]),
                )
            )
    if not len(index):
        return Stored(trips=0, links=0, conformance=0)
    ids = conn.execute(
        query("trip_ids"),
        {
            "vehicle_ids": trips.vehicle_id[index].tolist(),
            "start_at": [utc(int(t)) for t in trips.start_us[index]],
        },
    ).fetchall()
    trip_id = {(vehicle, start): tid for tid, vehicle, start in ids}
    id_of = {int(i): trip_id[(int(trips.vehicle_id[i]), int(trips.start_us[i]))] for i in index}
    order_ids = context.orders.order_id
    links = result.matches.links
    with conn.cursor() as cur, cur.copy(query("copy_trip_orders")) as copy:
        linked = [k for k in range(len(links.trip)) if int(links.trip[k]) in id_of]
        for k in linked:
            copy.write_row(
                (
                    id_of[int(links.trip[k])],
                    int(order_ids[links.order[k]]),
                    _ROLES[links.role[k]].value,
                    float(links.overlap_s[k]),
                    float(links.start_distance_m[k]),
                    float(links.end_distance_m[k]),
                )
            )
    conformance = result.conformance
    with conn.cursor() as cur, cur.copy(query("copy_trip_conformance")) as copy:
        conformed = [k for k in range(len(conformance.trip)) if int(conformance.trip[k]) in id_of]
        for k in conformed:
            copy.write_row(
                (
                    id_of[int(conformance.trip[k])],
                    int(order_ids[conformance.route[k]]),
                    float(conformance.inside_share[k]),
                    float(conformance.max_deviation_m[k]),
                    float(conformance.off_route_m[k]),
                    float(conformance.approved_m[k]),
                    float(conformance.detour_ratio[k]),
                    bool(conformance.arrived[k]),
                    float(conformance.arrival_distance_m[k]),
                )
            )
    return Stored(trips=len(index), links=len(linked), conformance=len(conformed))


def _number(value: np.floating[Any]) -> float | None:
    return None if np.isnan(value) else float(value)


def refresh_usage(
    conn: psycopg.Connection[Any], vehicle_ids: Sequence[int], from_at: Sequence[datetime]
) -> None:
    values = {"vehicle_ids": list(vehicle_ids), "from": list(from_at)}
    conn.execute(query("delete_usage"), values)
    conn.execute(query("insert_usage"), values)


@dataclass(frozen=True, slots=True, kw_only=True)
class RoundOutcome:
    vehicles: int
    fixes: int
    trips: int
    seconds: float


def process_dirty(
    conn: psycopg.Connection[Any],
    worker: str,
    params: Params,
    *,
    limit: int = 500,
    settle_s: float = 0.0,
    lease_s: float = 120.0,
    after: AfterRound | None = None,
) -> RoundOutcome | None:
    """One round of the live engine: claim marked vehicles, recompute them, store, unmark."""
    started = time.perf_counter()
    with conn.transaction():
        claimed = conn.execute(
            query("claim_dirty"), {"worker": worker, "limit": limit, "settle_s": settle_s, "lease_s": lease_s}
        ).fetchall()
    if not claimed:
        return None
    claimed.sort()
    vehicle_ids = [int(v) for v, _, _ in claimed]
    dirty_from = [int(d) for _, d, _ in claimed]
    context_us = int(params.trip.context_s * 1e6)
    read_before_us = context_us + int(MARGIN_S * 1e6)
    with conn.transaction():
        anchor_rows = conn.execute(
            query("trip_anchors"),
            {"vehicle_ids": vehicle_ids, "before": [utc(d - context_us) for d in dirty_from]},
        ).fetchall()
        anchor = {int(v): (end, first) for v, end, first in anchor_rows}
        # trips after the anchor are replaced; with no final trip before the change, all of them
        keep_after_us = [anchor[v][0] if anchor[v][0] is not None else _NEVER for v in vehicle_ids]
        from_us = [
            (anchor[v][0] if anchor[v][0] is not None else min(d, anchor[v][1] or d)) - read_before_us
            for v, d in zip(vehicle_ids, dirty_from, strict=True)
        ]
        track = read_track(
            conn,
            fix_query("copy_fixes_of_vehicles"),
            {"vehicle_ids": vehicle_ids, "from": [utc(t) for t in from_us]},
        )
        now_us = time.time_ns() // 1000
        context = load_context(conn, vehicle_ids, min(from_us), now_us)
        result = run_fleet(track, context, params)
        slot = np.searchsorted(np.array(vehicle_ids), result.trips.vehicle_id)
        chosen = result.trips.start_us > np.array(keep_after_us, dtype=np.int64)[slot]
        conn.execute(
            query("delete_trips_after"),
            {"vehicle_ids": vehicle_ids, "after": [utc(max(a, 0)) for a in keep_after_us]},
        )
        stored = store_result(conn, result, context, params, chosen)
        refresh_usage(conn, vehicle_ids, [utc(t) for t in from_us])
        if after is not None and len(track):
            # each vehicle is judged up to its own newest fix: an order whose window is over by the wall
            # clock but whose fixes have not all arrived (blind-area back-fill) is not judged yet
            last_row = np.append(np.flatnonzero(np.diff(track.vehicle_id)), len(track) - 1)
            newest = dict(
                zip(track.vehicle_id[last_row].tolist(), track.t_us[last_row].tolist(), strict=True)
            )
            after(
                conn,
                result,
                context=context,
                vehicle_ids=vehicle_ids,
                after_us=keep_after_us,
                window_us=(min(from_us), max(newest.values())),
                until_us=[newest.get(v, a) for v, a in zip(vehicle_ids, keep_after_us, strict=True)],
            )
        conn.execute(
            query("done_dirty"),
            {"vehicle_ids": vehicle_ids, "dirty_at": [dirty_at for _, _, dirty_at in claimed]},
        )
    return RoundOutcome(
        vehicles=len(vehicle_ids), fixes=len(track), trips=stored.trips, seconds=time.perf_counter() - started
    )


def recompute(
    conn: psycopg.Connection[Any],
    from_us: int,
    to_us: int,
    params: Params,
    *,
    step_s: float = 86_400.0,
    progress: Callable[[int], None] | None = None,
    after: AfterRound | None = None,
) -> tuple[int, int]:
    """Recompute every vehicle's trips starting in [from_us, to_us), a step at a time; (fixes read, trips)."""
    margin_us = int((params.trip.context_s + MARGIN_S) * 1e6)
    fixes = trips = 0
    for lo in range(from_us, to_us, int(step_s * 1e6)):
        hi = min(to_us, lo + int(step_s * 1e6))
        with conn.transaction():
            track = read_track(
                conn,
                fix_query("copy_fixes_of_window"),
                {"from": utc(lo - margin_us), "to": utc(hi + margin_us)},
            )
            vehicles = np.unique(track.vehicle_id).tolist()
            context = load_context(conn, vehicles, lo - margin_us, hi + margin_us)
            result = run_fleet(track, context, params)
            chosen = (result.trips.start_us >= lo) & (result.trips.start_us < hi)
            conn.execute(query("delete_trips_in_range"), {"from": utc(lo), "to": utc(hi)})
            stored = store_result(conn, result, context, params, chosen)
            refresh_usage(conn, vehicles, [utc(lo)] * len(vehicles))
            if after is not None:
                after(
                    conn,
                    result,
                    context=context,
                    vehicle_ids=vehicles,
                    after_us=[lo - 1] * len(vehicles),
                    window_us=(lo - margin_us, hi + margin_us),
                    until_us=[hi] * len(vehicles),
                )
        fixes += len(track)
        trips += stored.trips
        if progress:
            progress(1)
    return fixes, trips


def run_engine(
    database_url: str,
    worker: str,
    params: Params,
    stop: threading.Event,
    *,
    poll_s: float = 0.5,
    limit: int = 500,
    lease_s: float = 120.0,
    after: AfterRound | None = None,
) -> None:
    """The live engine: rounds until ``stop``; a lost database connection is retried (``store.retry``)."""
    log.info("track engine %s: polling the engine queue every %.1f s", worker, poll_s)
    conn: psycopg.Connection[Any] | None = None
    backoff = Backoff(f"track engine {worker}: round", logger=log)
    while not stop.is_set():
        try:
            if conn is None:
                conn = psycopg.connect(database_url, autocommit=True)
            outcome = process_dirty(conn, worker, params, limit=limit, lease_s=lease_s, after=after)
            backoff.succeeded()
            if outcome is None:
                stop.wait(poll_s)
            else:
                log.info(
                    "recomputed %d vehicles (%d fixes) in %.2f s: %d trips stored",
                    outcome.vehicles,
                    outcome.fixes,
                    outcome.seconds,
                    outcome.trips,
                )
        except TRANSIENT as error:
            if conn is not None:
                conn.close()
            conn = None
            stop.wait(backoff.failed(error))
    if conn is not None:
        conn.close()
