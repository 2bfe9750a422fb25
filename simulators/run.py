"""One simulation run, the order of its steps in one place.

plan the days (orders, dispatch, violations, fuel stops) → for each batch of cars: route the legs →
drive them (speed profiles) → put them on the clock → take the terminals' fixes → deliver them as
messages → decide the truth (trips, orders, records, expected alerts) → join the batches.
Batches have a fixed size and their own seeded generator, so the output depends only on the inputs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import date, timedelta

import numpy as np
from numpy.typing import NDArray

from rules.calendar import local_midnight_s
from simulators.documents import document_alerts, make_documents
from simulators.drive import DriveParams, Legs, drive_legs, time_at
from simulators.labels import Batch, trip_alerts
from simulators.orders import DispatchOrder, OrderRequest, OrderStatus, order_code
from simulators.outings import Outing, leg_routes
from simulators.plan import Plan, PlanParams, plan_days
from simulators.records import make_records
from simulators.routing import Route, join_routes
from simulators.schedule import Timeline, schedule
from simulators.terminal import Deliveries, Fixes, TerminalParams, deliver, take_fixes
from simulators.truth import ExpectedAlert, FuelRecord, MaintenanceRecord, TrueTrip, Truth, label_trips
from simulators.violations import ViolationParams, ViolationRates
from simulators.world import World

log = logging.getLogger(__name__)

Floats = NDArray[np.float64]


@dataclass(frozen=True, slots=True, kw_only=True)
class SimParams:
    start: date = date(2026, 12, 1)
    days: int = 1
    rates: ViolationRates = field(default_factory=ViolationRates)
    thresholds: ViolationParams = field(default_factory=ViolationParams)
    drive: DriveParams = field(default_factory=DriveParams)
    terminal: TerminalParams = field(default_factory=TerminalParams)
    orders_per_vehicle_day: float = 1.3
    maintenance_rate: float = 0.01  # per car and working day
    fuel_start_share: tuple[float, float] = (0.45, 0.95)
    batch_vehicles: int = 250


@dataclass(frozen=True, slots=True, kw_only=True)
class SimRun:
    world: World
    params: SimParams
    start_s: float
    end_s: float
    fixes: Fixes
    deliveries: Deliveries
    truth: Truth


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchPart:
    fixes: Fixes
    deliveries: Deliveries
    trips: list[TrueTrip]
    alerts: list[ExpectedAlert]
    orders: list[DispatchOrder]
    fuel: list[FuelRecord]
    maintenance: list[MaintenanceRecord]


def simulate(world: World, params: SimParams, progress: Callable[[int], None] | None = None) -> SimRun:
    """Generate fixes, messages and truth for every car over ``params.days`` days from ``params.start``."""
    if params.days < 1:
        raise ValueError(f"days must be at least 1, got {params.days}")
    for day in (params.start, params.start + timedelta(days=params.days - 1)):
        if not world.calendar.covers(day):
            log.warning(
                "no holiday notice for %d in the calendar: weekends are the only rest days then", day.year
            )
    plan = plan_days(
        world,
        PlanParams(
            start=params.start,
            days=params.days,
            rates=params.rates,
            orders_per_vehicle_day=params.orders_per_vehicle_day,
            maintenance_rate=params.maintenance_rate,
            fuel_start_share=params.fuel_start_share,
        ),
    )

    start_s = float(local_midnight_s(params.start))
    end_s = start_s + params.days * 86_400.0
    n = len(world.fleet.vehicles)
    car_of_outing = np.array([o.vehicle for o in plan.outings], dtype=np.int64)
    parts: list[BatchPart] = []
    for b, v0 in enumerate(range(0, n, params.batch_vehicles)):
        v1 = min(n, v0 + params.batch_vehicles)
        lo, hi = np.searchsorted(car_of_outing, [v0, v1])
        parts.append(
            run_batch(
                world,
                plan,
                plan.outings[lo:hi],
                vehicles=np.arange(v0, v1),
                batch=b,
                params=params,
                start_s=start_s,
                end_s=end_s,
            )
        )
        if progress is not None:
            progress(v1 - v0)
    return with_documents(join_batches(world, params, plan, parts, start_s=start_s, end_s=end_s))


def with_documents(run: SimRun) -> SimRun:
    """The run with its cars' insurance policies and inspections and the alerts they call for."""
    params = run.params
    documents = make_documents(
        run.world, start=params.start, days=params.days, rates=params.rates, p=params.thresholds
    )
    found = document_alerts(
        documents, run.truth.trips, start=params.start, days=params.days, p=params.thresholds
    )
    alerts = sorted((*run.truth.alerts, *found), key=lambda a: (a.start_s, a.vehicle, a.kind.value, a.end_s))
    truth = replace(
        run.truth,
        trips=tuple(label_trips(list(run.truth.trips), alerts)),
        alerts=tuple(alerts),
        documents=tuple(documents),
    )
    if found:
        log.info("documents: %d, expected alerts %d", len(documents), len(found))
    return replace(run, truth=truth)


def run_batch(
    world: World,
    plan: Plan,
    outings: Sequence[Outing],
    *,
    vehicles: NDArray[np.int64],
    batch: int,
    params: SimParams,
    start_s: float,
    end_s: float,
    with_truth: bool = True,
) -> BatchPart:
    """One batch of cars through every step; ``with_truth=False`` skips orders, records and alerts."""
    rng = np.random.default_rng([world.seed, 5, batch])
    fleet = world.fleet
    routes: list[Route] = []
    for outing in outings:
        routes += leg_routes(world.router, outing.start, outing.visits)
    faults = [f for o in outings for f in o.leg_faults()]
    legs = drive_legs(
        routes, np.array([f.overspeed for f in faults], dtype=np.bool_), world.city.network, params.drive, rng
    )
    depots = [world.depot_of(fleet.vehicles[int(v)]) for v in vehicles]
    home = (
        np.array([d.place_id for d in depots], dtype=np.int64),
        np.array([d.lon for d in depots]),
        np.array([d.lat for d in depots]),
    )
    place_lonlat = (np.array([p.lon for p in world.places]), np.array([p.lat for p in world.places]))
    timeline = schedule(
        outings,
        legs.duration_s,
        vehicles=vehicles,
        home=home,
        place_lonlat=place_lonlat,
        start_s=start_s,
        end_s=end_s,
        rng=rng,
    )

    silent_from, silent_to = np.full(len(legs), np.nan), np.full(len(legs), np.nan)
    for k, fault in enumerate(faults):
        if fault.silent:
            t = time_at(legs, k, np.array([0.25, 0.75]) * legs.length_m[k]) + timeline.depart_s[k]
            silent_from[k], silent_to[k] = t
    factor = np.array([f.odometer_factor for f in faults], dtype=np.float64)
    cars = fleet.vehicles
    fixes, no_coverage = take_fixes(
        timeline,
        legs,
        parked_interval_s=np.array([c.parked_interval_s for c in cars], dtype=np.float64),
        odometer_start_km=np.array([c.odometer_start_km for c in cars]),
        odometer_factor=factor,
        silent=(silent_from, silent_to),
        blind_areas=world.city.blind_areas,
        sim_start_s=start_s,
        params=params.terminal,
        rng=rng,
    )
    descending = np.array([c.vehicle_id % 3 == 0 for c in cars], dtype=np.bool_)
    fixes, deliveries = deliver(fixes, no_coverage, params.terminal, rng, descending)

    trips = [_trip(world, outings, timeline, legs, k) for k in range(len(legs))]
    if not with_truth:
        return BatchPart(
            fixes=fixes, deliveries=deliveries, trips=trips, alerts=[], orders=[], fuel=[], maintenance=[]
        )
    windows, approved, orders = _orders(world, plan, outings, tl=timeline, end_s=end_s, rng=rng)
    trip_id = np.arange(1, len(legs) + 1, dtype=np.int64)
    facts = Batch(
        world=world,
        outings=outings,
        timeline=timeline,
        legs=legs,
        trip_id=trip_id,
        window_start_s=windows[0],
        window_end_s=windows[1],
        approved=approved,
        silent_from_s=silent_from,
        silent_to_s=silent_to,
        odometer_factor=factor,
        first_day=plan.params.start,
        days=plan.params.days,
    )
    alerts = trip_alerts(facts, params.thresholds, world.calendar)
    records = make_records(
        world,
        outings,
        timeline,
        legs,
        fuel_start_l=plan.fuel_start_l,
        days=params.days,
        rates=params.rates,
        p=params.thresholds,
        rng=rng,
    )
    return BatchPart(
        fixes=fixes,
        deliveries=deliveries,
        trips=trips,
        alerts=alerts + records.alerts,
        orders=orders,
        fuel=records.fuel,
        maintenance=records.maintenance,
    )


def _trip(world: World, outings: Sequence[Outing], tl: Timeline, legs: Legs, k: int) -> TrueTrip:
    outing = outings[int(tl.leg_outing[k])]
    visit = int(tl.leg_visit[k])
    came_from = outing.start if visit == 0 else outing.visits[visit - 1]
    lon, lat = legs.path(k)
    return TrueTrip(
        trip_id=k + 1,
        vehicle=outing.vehicle,
        outing_id=outing.outing_id,
        outing_kind=outing.kind.value,
        order_id=outing.order_id,
        start_s=float(tl.depart_s[k]),
        end_s=float(tl.arrive_s[k]),
        path_length_m=float(legs.length_m[k]),
        from_place_id=came_from.place_id,
        to_place_id=outing.visits[visit].place_id,
        path_lon=lon,
        path_lat=lat,
    )


def _orders(
    world: World,
    plan: Plan,
    outings: Sequence[Outing],
    *,
    tl: Timeline,
    end_s: float,
    rng: np.random.Generator,
) -> tuple[tuple[Floats, Floats], list[tuple[Floats, Floats] | None], list[DispatchOrder]]:
    """Each order's approved window (around the compliant outing) and route (the planned path)."""
    requests = {r.order_id: r for r in plan.requests}
    ws, we = np.full(len(outings), np.nan), np.full(len(outings), np.nan)
    approved: list[tuple[Floats, Floats] | None] = []
    orders: list[DispatchOrder] = []
    for j, outing in enumerate(outings):
        if outing.order_id is None:
            approved.append(None)
            continue
        ws[j] = tl.outing_compliant_start_s[j] - rng.uniform(600.0, 1_800.0)
        compliant_end = max(tl.outing_end_s[j] - outing.late_s, tl.outing_compliant_start_s[j] + 600.0)
        we[j] = compliant_end + rng.uniform(1_200.0, 3_600.0)
        route = join_routes(leg_routes(world.router, outing.start, outing.planned))
        approved.append((route.lon, route.lat))
        request = requests[outing.order_id]
        car = world.fleet.vehicles[outing.vehicle]
        orders.append(
            _order(
                request,
                requested_s=ws[j] - rng.uniform(3_600.0, 86_400.0),
                window_start_s=ws[j],
                window_end_s=we[j],
                route=route,
                status=OrderStatus.COMPLETED if tl.outing_end_s[j] <= end_s else OrderStatus.DISPATCHED,
                vehicle_id=car.vehicle_id,
                pool_id=car.pool_id,
            )
        )
    return (ws, we), approved, orders


def _order(
    request: OrderRequest,
    *,
    requested_s: float,
    window_start_s: float,
    window_end_s: float,
    route: Route | None,
    status: OrderStatus,
    vehicle_id: int | None,
    pool_id: int,
) -> DispatchOrder:
    day = date(1970, 1, 1) + timedelta(days=int((request.pickup_s + 8 * 3600) // 86_400))
    empty = np.zeros(0)
    return DispatchOrder(
        order_id=request.order_id,
        code=order_code(request.order_id, day.strftime("%Y%m%d")),
        agency_id=request.agency_id,
        passengers=request.passengers,
        purpose=request.purpose,
        origin_place_id=request.origin.place_id,
        origin_lon=request.origin.lon,
        origin_lat=request.origin.lat,
        destination_place_id=request.destination.place_id,
        destination_lon=request.destination.lon,
        destination_lat=request.destination.lat,
        requested_at_s=float(requested_s),
        window_start_s=float(window_start_s),
        window_end_s=float(window_end_s),
        route_lon=route.lon if route else empty,
        route_lat=route.lat if route else empty,
        route_length_m=route.length_m if route else 0.0,
        status=status,
        vehicle_id=vehicle_id,
        pool_id=pool_id,
        cross_region=request.cross_region,
    )


def join_batches(
    world: World, params: SimParams, plan: Plan, parts: list[BatchPart], *, start_s: float, end_s: float
) -> SimRun:
    trips: list[TrueTrip] = []
    alerts: list[ExpectedAlert] = []
    fuel: list[FuelRecord] = []
    maintenance: list[MaintenanceRecord] = []
    orders: list[DispatchOrder] = []
    fix_parts: list[Fixes] = []
    message_parts: list[Deliveries] = []
    rows = 0
    for part in parts:
        t0, f0, m0 = len(trips), len(fuel), len(maintenance)
        trips += [replace(t, trip_id=t.trip_id + t0) for t in part.trips]
        alerts += [
            replace(
                a,
                trip_id=None if a.trip_id is None else a.trip_id + t0,
                fuel_record_id=None if a.fuel_record_id is None else a.fuel_record_id + f0,
                maintenance_record_id=None
                if a.maintenance_record_id is None
                else a.maintenance_record_id + m0,
            )
            for a in part.alerts
        ]
        fuel += [replace(r, fuel_record_id=r.fuel_record_id + f0) for r in part.fuel]
        maintenance += [
            replace(r, maintenance_record_id=r.maintenance_record_id + m0) for r in part.maintenance
        ]
        orders += part.orders
        fix_parts.append(replace(part.fixes, trip=np.where(part.fixes.trip >= 0, part.fixes.trip + t0, -1)))
        d = part.deliveries
        message_parts.append(replace(d, rows=d.rows + rows))
        rows += len(part.fixes)
    dispatched = {o.order_id for o in orders}
    for request in plan.requests:
        if request.order_id not in dispatched:
            window_end = request.pickup_s + request.wait_s + 3_600.0
            orders.append(
                _order(
                    request,
                    requested_s=request.pickup_s - 86_400.0,
                    window_start_s=request.pickup_s - 1_800.0,
                    window_end_s=window_end,
                    route=None,
                    status=OrderStatus.CANCELLED,
                    vehicle_id=None,
                    pool_id=request.pool_id,
                )
            )
    orders.sort(key=lambda o: o.order_id)
    alerts.sort(key=lambda a: (a.start_s, a.vehicle, a.kind.value, a.end_s))
    fixes = _concat_fixes(fix_parts)
    deliveries = _concat_deliveries(message_parts)
    truth = Truth(
        trips=tuple(label_trips(trips, alerts)),
        alerts=tuple(alerts),
        orders=tuple(orders),
        fuel=tuple(fuel),
        maintenance=tuple(maintenance),
    )
    kinds: dict[str, int] = {}
    for a in alerts:
        kinds[a.kind.value] = kinds.get(a.kind.value, 0) + 1
    log.info(
        "generated %d fixes in %d messages (%d back-fill batches), %d true trips (%.0f km), %d alerts %s",
        len(fixes),
        len(deliveries),
        int(deliveries.batch.sum()),
        len(trips),
        sum(t.path_length_m for t in trips) / 1000,
        len(alerts),
        dict(sorted(kinds.items())),
    )
    return SimRun(
        world=world,
        params=params,
        start_s=start_s,
        end_s=end_s,
        fixes=fixes,
        deliveries=deliveries,
        truth=truth,
    )


def _concat_fixes(parts: list[Fixes]) -> Fixes:
    return Fixes(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Fixes)})


def _concat_deliveries(parts: list[Deliveries]) -> Deliveries:
    starts = np.cumsum([0] + [len(p.rows) for p in parts[:-1]])
    joined = Deliveries(
        sent_ms=np.concatenate([p.sent_ms for p in parts]),
        vehicle=np.concatenate([p.vehicle for p in parts]),
        row_start=np.concatenate([p.row_start + s for p, s in zip(parts, starts, strict=True)]),
        row_count=np.concatenate([p.row_count for p in parts]),
        batch=np.concatenate([p.batch for p in parts]),
        rows=np.concatenate([p.rows for p in parts]),
    )
    order = np.lexsort((joined.row_start, joined.vehicle, joined.sent_ms))
    return replace(
        joined,
        sent_ms=joined.sent_ms[order],
        vehicle=joined.vehicle[order],
        row_start=joined.row_start[order],
        row_count=joined.row_count[order],
        batch=joined.batch[order],
    )
