"""What the rules read: the engine's output and the records, and the facts derived once for all rules.

``RuleInputs`` is what a caller hands over: the track engine's ``VehicleResult`` for a window of fixes
(one or many vehicles), the dispatch orders given to the engine, fuel and maintenance records, the
times of every report the terminals sent (including fixes ingest quarantined, e.g. "not valid" in a
tunnel: a terminal that reports without a position is not silent), and the window the data covers.

``derive_facts`` adds what several rules share: for each trip the stop after it, the outing it belongs
to (出车 → 回场: trips chained from leaving the depot to coming back) and the order it is attributed to
(see ``config.OrderParams``). ``Facts.only(vehicle_id)`` is the same for one vehicle, so that a rule that
fails on a batch can be retried vehicle by vehicle.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rules.alert import Coordinates, coordinates
from rules.config import OrderParams, RuleConfig, Vehicles
from tracks.columns import ColumnError, Rows, column, freeze_columns, take
from tracks.conform import routes_from
from tracks.geo import plane_m
from tracks.match import Orders, same_vehicle_pairs
from tracks.measure import Stops, Trips
from tracks.pipeline import VehicleResult
from tracks.track import Track


@dataclass(frozen=True, slots=True, kw_only=True)
class FuelRecords:
    """Fuel-card transactions as the designated stations report them."""

    record_id: NDArray[np.int64]
    vehicle_id: NDArray[np.int64]
    t_us: NDArray[np.int64]
    lon: NDArray[np.float64]  # the station
    lat: NDArray[np.float64]
    litres: NDArray[np.float64]
    place_id: NDArray[np.int64]  # the station's place id, -1 if unknown

    def __post_init__(self) -> None:
        freeze_columns(self)

    def __len__(self) -> int:
        return len(self.record_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class MaintenanceRecords:
    """Repairs and servicing as the designated shops report them."""

    record_id: NDArray[np.int64]
    vehicle_id: NDArray[np.int64]
    start_us: NDArray[np.int64]
    end_us: NDArray[np.int64]
    lon: NDArray[np.float64]  # the shop
    lat: NDArray[np.float64]
    place_id: NDArray[np.int64]

    def __post_init__(self) -> None:
        freeze_columns(self)

    def __len__(self) -> int:
        return len(self.record_id)


DOCUMENT_KINDS = ("insurance", "inspection")  # Documents.kind indexes this (vehicle_document.kind)
NO_DAY = -(1 << 40)  # a date that is not given (valid_from), as days since 1970-01-01


@dataclass(frozen=True, slots=True, kw_only=True)
class Documents:
    """Insurance policies and annual inspections (年检) with their validity, dates as local days since
    1970-01-01 (``expires_day`` is the last day valid; ``valid_from_day`` NO_DAY when not given)."""

    document_id: NDArray[np.int64]
    vehicle_id: NDArray[np.int64]
    kind: NDArray[np.int8]  # index into DOCUMENT_KINDS
    valid_from_day: NDArray[np.int64]
    expires_day: NDArray[np.int64]
    number: NDArray[np.str_]  # the policy or certificate number

    def __post_init__(self) -> None:
        object.__setattr__(self, "number", column(self.number, np.str_))
        if freeze_columns(self) != len(self.number):
            raise ColumnError("Documents needs one number per document")

    def __len__(self) -> int:
        return len(self.document_id)


def no_documents() -> Documents:
    i = np.zeros(0, np.int64)
    return Documents(
        document_id=i, vehicle_id=i, kind=np.zeros(0, np.int8), valid_from_day=i, expires_day=i,
        number=np.zeros(0, np.str_),
    )  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class Reports:
    """When each terminal reported at all (kept, filtered or quarantined fixes), sorted by (vehicle, time)."""

    vehicle_id: NDArray[np.int64]
    t_us: NDArray[np.int64]

    def __post_init__(self) -> None:
        freeze_columns(self)

    def __len__(self) -> int:
        return len(self.t_us)


def no_fuel() -> FuelRecords:
    i, f = np.zeros(0, np.int64), np.zeros(0, np.float64)
    return FuelRecords(record_id=i, vehicle_id=i, t_us=i, lon=f, lat=f, litres=f, place_id=i)


def no_maintenance() -> MaintenanceRecords:
    i, f = np.zeros(0, np.int64), np.zeros(0, np.float64)
    return MaintenanceRecords(record_id=i, vehicle_id=i, start_us=i, end_us=i, lon=f, lat=f, place_id=i)


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleInputs:
    """The data of one evaluation. ``start_us``..``end_us`` is the window the fixes cover: rules judge
    nothing they could not see (an order whose window is not over by ``end_us`` is not "never
    executed" yet)."""

    result: VehicleResult
    orders: Orders  # the orders given to the engine's Context
    start_us: int
    end_us: int
    fuel: FuelRecords = dataclasses.field(default_factory=no_fuel)
    maintenance: MaintenanceRecords = dataclasses.field(default_factory=no_maintenance)
    reports: Reports | None = None  # None: the kept fixes' times stand in (a tunnel then looks silent)
    documents: Documents = dataclasses.field(default_factory=no_documents)


@dataclass(frozen=True, slots=True, kw_only=True)
class Facts:
    """Row numbers in ``trips`` and ``stops`` refer to ``fixes`` (the fixes the cleaner kept)."""

    fixes: Track
    leg_m: NDArray[np.float64]  # per fix: metres from the previous fix of the vehicle (0 at its first)
    trips: Trips
    stops: Stops
    trip_next_stop: NDArray[np.int64]  # per trip: the stop it arrived at, -1 if none (data ended)
    stop_arrival: NDArray[np.int64]  # per stop: the trip that arrived at it, -1 if none
    trip_outing: NDArray[np.int64]  # per trip: its outing (numbered across the fleet)
    trip_order: NDArray[np.int64]  # per trip: index into ``orders``, -1 without an order
    orders: Orders
    fuel: FuelRecords
    maintenance: MaintenanceRecords
    reports: Reports
    documents: Documents
    start_us: int
    end_us: int

    @property
    def vehicle_ids(self) -> NDArray[np.int64]:
        return np.unique(
            np.concatenate(
                (
                    self.fixes.vehicle_id,
                    self.orders.vehicle_id,
                    self.fuel.vehicle_id,
                    self.maintenance.vehicle_id,
                    self.documents.vehicle_id,
                )
            )
        )

    def only(self, vehicle_id: int) -> Facts:
        """The facts of one vehicle (row numbers re-based)."""
        fixes = _block(self.fixes.vehicle_id, vehicle_id)
        trips = _block(self.trips.vehicle_id, vehicle_id)
        stops = _block(self.stops.vehicle_id, vehicle_id)
        order_rows = np.flatnonzero(self.orders.vehicle_id == vehicle_id)
        order_map = np.full(len(self.orders) + 1, -1, np.int64)
        order_map[order_rows] = np.arange(len(order_rows))
        rows = {Rows.KEPT: -fixes.start, Rows.SEGMENT: 0}  # segment numbers stay the fleet's
        trip_order = self.trip_order[trips]
        return Facts(
            fixes=self.fixes.take(fixes),
            leg_m=self.leg_m[fixes],
            trips=take(self.trips, trips, rows),
            stops=take(self.stops, stops, rows),
            trip_next_stop=_rebase(self.trip_next_stop[trips], stops.start),
            stop_arrival=_rebase(self.stop_arrival[stops], trips.start),
            trip_outing=self.trip_outing[trips],
            trip_order=order_map[trip_order],
            orders=take_orders(self.orders, order_rows),
            fuel=take(self.fuel, np.flatnonzero(self.fuel.vehicle_id == vehicle_id), {}),
            maintenance=take(self.maintenance, np.flatnonzero(self.maintenance.vehicle_id == vehicle_id), {}),
            reports=take(self.reports, _block(self.reports.vehicle_id, vehicle_id), {}),
            documents=take(self.documents, np.flatnonzero(self.documents.vehicle_id == vehicle_id), {}),
            start_us=self.start_us,
            end_us=self.end_us,
        )


def derive_facts(inputs: RuleInputs, config: RuleConfig) -> Facts:
    result = inputs.result
    kept, trips, stops = result.kept, result.trips, result.stops
    next_stop, previous_stop, arrival = _neighbours(trips, stops)
    starts_home, _ = at_depot(config.vehicles, trips.vehicle_id, trips.start_lon, trips.start_lat)
    ends_home, _ = at_depot(config.vehicles, trips.vehicle_id, trips.end_lon, trips.end_lat)
    # … or the stop it arrived at / left from is (a trip may end short of the depot, e.g. at a red light
    # just before it, and the last metres become part of the stop)
    stop_home, _ = at_depot(config.vehicles, stops.vehicle_id, stops.lon, stops.lat)
    stop_home = np.append(stop_home, False)
    ends_home |= stop_home[next_stop]
    starts_home |= stop_home[previous_stop]
    outing = chain_outings(trips.vehicle_id, starts_home, ends_home)
    reports = inputs.reports or Reports(vehicle_id=kept.vehicle_id, t_us=kept.t_us)
    return Facts(
        fixes=kept,
        leg_m=result.leg_m,  # the legs the engine measured the same kept fixes with
        trips=trips,
        stops=stops,
        trip_next_stop=next_stop,
        stop_arrival=arrival,
        trip_outing=outing,
        trip_order=attribute_trips(
            trips,
            outing,
            inputs.orders,
            config.orders,
            home=(starts_home, ends_home),
            origin_home=at_depot(
                config.vehicles, inputs.orders.vehicle_id, inputs.orders.origin_lon, inputs.orders.origin_lat
            )[0],
        ),
        orders=inputs.orders,
        fuel=inputs.fuel,
        maintenance=inputs.maintenance,
        reports=reports,
        documents=inputs.documents,
        start_us=inputs.start_us,
        end_us=inputs.end_us,
    )


def _neighbours(trips: Trips, stops: Stops) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """Per trip the stop after it and the stop before it, per stop the trip that arrived at it (same
    vehicle, adjacent segments); -1 where there is none."""
    size = int(max(np.max(trips.segment, initial=-1), np.max(stops.segment, initial=-1))) + 2
    stop_at = np.full(size + 1, -1, np.int64)
    stop_at[stops.segment] = np.arange(len(stops))
    trip_at = np.full(size + 1, -1, np.int64)
    trip_at[trips.segment] = np.arange(len(trips))
    stop_vehicle = np.append(stops.vehicle_id, -1)
    trip_vehicle = np.append(trips.vehicle_id, -1)
    after = stop_at[trips.segment + 1]
    after = np.where(stop_vehicle[after] == trips.vehicle_id, after, -1)
    before = np.where(trips.segment > 0, stop_at[np.maximum(trips.segment - 1, 0)], -1)
    before = np.where(stop_vehicle[before] == trips.vehicle_id, before, -1)
    arrival = np.where(stops.segment > 0, trip_at[np.maximum(stops.segment - 1, 0)], -1)
    arrival = np.where(trip_vehicle[arrival] == stops.vehicle_id, arrival, -1)
    return after.astype(np.int64), before.astype(np.int64), arrival.astype(np.int64)


def at_depot(
    vehicles: Vehicles, vehicle_id: NDArray[np.int64], lon: NDArray[np.float64], lat: NDArray[np.float64]
) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
    """(within the vehicle's depot, distance to it in m; NaN for a vehicle without a depot)."""
    row = vehicles.index(vehicle_id)
    known = row >= 0
    r = np.maximum(row, 0)
    if len(vehicles) == 0:
        return np.zeros(len(row), np.bool_), np.full(len(row), np.nan)
    d = np.where(known, plane_m(lon, lat, vehicles.depot_lon[r], vehicles.depot_lat[r]), np.nan)
    with np.errstate(invalid="ignore"):
        inside = known & (d <= vehicles.depot_radius_m[r])
    return np.asarray(inside, dtype=np.bool_), np.asarray(d, dtype=np.float64)


def chain_outings(
    vehicle_id: NDArray[np.int64], starts_home: NDArray[np.bool_], ends_home: NDArray[np.bool_]
) -> NDArray[np.int64]:
    """Outing number per trip (trips in vehicle, time order): a new outing starts at a vehicle's first
    trip, after a trip that ended at the vehicle's depot, and at a trip that starts there."""
    n = len(vehicle_id)
    if n == 0:
        return np.zeros(0, np.int64)
    new = np.ones(n, np.bool_)
    new[1:] = (vehicle_id[1:] != vehicle_id[:-1]) | ends_home[:-1] | starts_home[1:]
    return np.cumsum(new, dtype=np.int64) - 1


def attribute_trips(
    trips: Trips,
    outing: NDArray[np.int64],
    orders: Orders,
    params: OrderParams,
    *,
    home: tuple[NDArray[np.bool_], NDArray[np.bool_]] | None = None,
    origin_home: NDArray[np.bool_] | None = None,
) -> NDArray[np.int64]:
    """The order each trip is attributed to (index into ``orders``), -1 for none.

    An outing qualifies for an order of its vehicle when one of its trips overlaps the order's window
    widened by ``attribution_tolerance_s``, or when it drove the order's journey within the early/late
    limits: a trip from the origin to somewhere other than the origin or the depot, or from somewhere
    other than the destination to the destination (within ``journey_radius_m``), not from the depot
    unless the order starts there (``home``: per trip, starts / ends at its depot; ``origin_home``: per
    order, its origin is at the vehicle's depot). Outings and the orders they qualify for are then
    paired greedily, the pairs whose trips overlap the (raw) window longest first, then the pairs
    that drove the whole journey, then the journey, then the nearest in time: each outing serves one
    order, and an order served already takes another outing only if it went to the order's places.
    An outing's trips within the early/late limits of its order are attributed to it. (Merged
    dispatch, several orders served by one outing, goes to one of them.)
    """
    chosen = np.full(len(trips), -1, np.int64)
    trip, order = same_vehicle_pairs(trips.vehicle_id, orders.vehicle_id)
    if len(trip) == 0:
        return chosen
    s, e = trips.start_us[trip], trips.end_us[trip]
    ws, we = orders.window_start_us[order], orders.window_end_us[order]
    tolerance = int(params.attribution_tolerance_s * 1e6)
    in_window = (s < we + tolerance) & (e > ws - tolerance)
    near_time = (s < we + int(params.late_limit_s * 1e6)) & (e > ws - int(params.early_limit_s * 1e6))
    overlap_us = np.maximum(np.minimum(e, we) - np.maximum(s, ws), 0)
    gap_us = np.maximum(np.maximum(ws - e, s - we), 0)
    r = params.journey_radius_m
    o_lon, o_lat = orders.origin_lon[order], orders.origin_lat[order]
    d_lon, d_lat = orders.destination_lon[order], orders.destination_lat[order]
    s_lon, s_lat = trips.start_lon[trip], trips.start_lat[trip]
    e_lon, e_lat = trips.end_lon[trip], trips.end_lat[trip]
    if home is None:
        starts_home = ends_home = np.zeros(len(trip), np.bool_)
    else:
        starts_home, ends_home = home[0][trip], home[1][trip]
    from_home = np.zeros(len(trip), np.bool_) if origin_home is None else origin_home[order]
    start_origin = plane_m(s_lon, s_lat, o_lon, o_lat) <= r
    end_origin = plane_m(e_lon, e_lat, o_lon, o_lat) <= r
    start_destination = plane_m(s_lon, s_lat, d_lon, d_lat) <= r
    end_destination = plane_m(e_lon, e_lat, d_lon, d_lat) <= r
    journey = near_time & (
        (start_origin & ~from_home & ~end_origin & ~ends_home)
        | (end_destination & ~start_destination & (~starts_home | from_home))
    )

    width = max(len(orders), 1)
    keys, group = np.unique(outing[trip] * width + order, return_inverse=True)
    group = group.ravel()

    def total(values: NDArray[np.generic]) -> NDArray[np.float64]:
        return np.asarray(np.bincount(group, weights=values, minlength=len(keys)), dtype=np.float64)

    drove = total(journey) > 0
    # the whole journey: at the origin (leaving or arriving) and arriving at the destination
    both = (total(near_time & (start_origin | end_origin)) > 0) & (total(near_time & end_destination) > 0)
    # at the order's places at all, away from the depot
    touched = (
        total(near_time & ((start_origin & ~starts_home) | (end_origin & ~ends_home) | end_destination)) > 0
    )
    qualifies = (total(in_window) > 0) | drove
    nearest_us = np.full(len(keys), np.inf)
    np.minimum.at(nearest_us, group, gap_us.astype(np.float64))
    group_outing, group_order = keys // width, keys % width
    pick = _assign_outings(
        group_outing[qualifies],
        group_order[qualifies],
        score=(
            -total(overlap_us)[qualifies],
            ~(drove & both)[qualifies],
            ~drove[qualifies],
            nearest_us[qualifies],
        ),
        touched=touched[qualifies],
        inside=total(overlap_us)[qualifies] > 0,
        outings=int(np.max(outing, initial=-1)) + 1,
    )
    mine = near_time & (pick[outing[trip]] == order)
    chosen[trip[mine]] = order[mine]
    return chosen


def _assign_outings(
    outing: NDArray[np.int64],
    order: NDArray[np.int64],
    *,
    score: tuple[NDArray[np.generic], ...],
    touched: NDArray[np.bool_],
    inside: NDArray[np.bool_],
    outings: int,
) -> NDArray[np.int64]:
    """Per outing the order it serves (-1 none), greedily from the best (outing, order) pair by
    ``score`` (lexicographic, smallest first): each outing serves one order, and an order already
    served by an outing takes another only if that outing went to the order's places (the car went
    back to the depot in between) — or, once every other pair is settled, if the outing lies partly
    inside the order's window (e.g. a fuel stop after passing the depot). A pass or two over the
    candidate pairs, a handful per outing."""
    pick = np.full(outings, -1, np.int64)
    served: set[int] = set()
    ranked = np.lexsort((order, *reversed(score))).tolist()
    for second in (False, True):
        for k in ranked:
            o, r = int(outing[k]), int(order[k])
            if pick[o] >= 0 or (r in served and not touched[k] and not (second and inside[k])):
                continue
            pick[o] = r
            served.add(r)
    return pick


# --- positions and evidence -------------------------------------------------------------------------


def rows_around(
    fixes: Track, vehicle_id: NDArray[np.int64], t_us: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """For each (vehicle, time): the last fix of the vehicle at or before it and the first at or after
    it; -1 where there is none."""
    return (
        last_at_or_before(fixes.vehicle_id, fixes.t_us, vehicle_id, t_us),
        first_at_or_after(fixes.vehicle_id, fixes.t_us, vehicle_id, t_us),
    )


def last_at_or_before(
    vehicle_id: NDArray[np.int64], t_us: NDArray[np.int64], q_vehicle: ArrayLike, q_t_us: ArrayLike
) -> NDArray[np.int64]:
    """For rows sorted by (vehicle, time): per query the last row of its vehicle at or before its time,
    -1 if none."""
    return _locate(vehicle_id, t_us, q_vehicle, q_t_us, after=False)


def first_at_or_after(
    vehicle_id: NDArray[np.int64], t_us: NDArray[np.int64], q_vehicle: ArrayLike, q_t_us: ArrayLike
) -> NDArray[np.int64]:
    """For rows sorted by (vehicle, time): per query the first row of its vehicle at or after its time,
    -1 if none."""
    return _locate(vehicle_id, t_us, q_vehicle, q_t_us, after=True)


def _locate(
    vehicle_id: NDArray[np.int64],
    t_us: NDArray[np.int64],
    q_vehicle: ArrayLike,
    q_t_us: ArrayLike,
    *,
    after: bool,
) -> NDArray[np.int64]:
    n = len(t_us)
    qv, qt = np.asarray(q_vehicle, np.int64).ravel(), np.asarray(q_t_us, np.int64).ravel()
    if n == 0 or len(qt) == 0:
        return np.full(len(qt), -1, np.int64)
    heads = np.concatenate(([0], np.flatnonzero(vehicle_id[1:] != vehicle_id[:-1]) + 1))
    vehicles = vehicle_id[heads]  # the rows are sorted by vehicle
    rank = np.repeat(np.arange(len(heads)), np.diff(np.append(heads, n)))
    q_rank = np.minimum(np.searchsorted(vehicles, qv), len(vehicles) - 1)
    lo = min(int(t_us.min()), int(qt.min()))
    span = max(int(t_us.max()), int(qt.max())) - lo + 1
    if span * len(vehicles) < 1 << 62:  # one sorted key: (vehicle rank, time)
        found = np.searchsorted(
            rank * span + (t_us - lo), q_rank * span + (qt - lo), side="left" if after else "right"
        )
        found = found - (0 if after else 1)
    else:  # in a merged sort the number of rows ahead of a query is the index of the first row after it
        v = np.concatenate((vehicle_id, qv))
        t = np.concatenate((t_us, qt))
        is_query = np.concatenate((np.zeros(n, np.int8), np.ones(len(qt), np.int8)))
        order = np.lexsort((1 - is_query if after else is_query, t, v))
        ahead = np.cumsum(is_query[order] == 0)
        at = np.empty(len(order), np.int64)
        at[order] = np.arange(len(order))
        found = np.asarray(ahead[at[n:]], dtype=np.int64) - (0 if after else 1)
    ok = (found >= 0) & (found < n)
    ok &= vehicle_id[np.clip(found, 0, n - 1)] == qv
    return np.where(ok, found, -1).astype(np.int64)


def fix_coordinates(fixes: Track, first: int, last: int, max_points: int = 200) -> Coordinates:
    """Fixes ``first..last`` (inclusive) as lon/lat pairs, thinned evenly to at most ``max_points``."""
    if last < first:
        return ()
    count = last - first + 1
    rows = first + np.unique(np.linspace(0, count - 1, min(count, max_points)).round().astype(np.int64))
    return coordinates(fixes.lon[rows], fixes.lat[rows])


def take_orders(orders: Orders, rows: NDArray[np.int64]) -> Orders:
    routes = orders.routes
    return Orders(
        order_id=orders.order_id[rows],
        vehicle_id=orders.vehicle_id[rows],
        window_start_us=orders.window_start_us[rows],
        window_end_us=orders.window_end_us[rows],
        origin_lon=orders.origin_lon[rows],
        origin_lat=orders.origin_lat[rows],
        destination_lon=orders.destination_lon[rows],
        destination_lat=orders.destination_lat[rows],
        routes=routes_from(
            [routes.lon[routes.offset[k] : routes.offset[k + 1]] for k in rows.tolist()],
            [routes.lat[routes.offset[k] : routes.offset[k + 1]] for k in rows.tolist()],
        ),
    )


def _block(vehicle_id: NDArray[np.int64], wanted: int) -> slice:
    """The rows of one vehicle in columns sorted by vehicle."""
    lo, hi = np.searchsorted(vehicle_id, [wanted, wanted + 1]) if len(vehicle_id) else (0, 0)
    return slice(int(lo), int(hi))


def _rebase(index: NDArray[np.int64], first: int) -> NDArray[np.int64]:
    return np.where(index >= 0, index - first, -1).astype(np.int64)
