"""Plan the days: requests, dispatch of the nearest free car (就近调配), maintenance, violations, fuel stops.

Planning works with generous duration estimates; the exact times come later from the driven speed
profiles (simulators.schedule). Every draw comes from a generator seeded by (seed, purpose, day), so a
plan depends only on the world, the parameters and the seed.
"""

from __future__ import annotations

import heapq
import logging
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

import numpy as np
from numpy.typing import NDArray

from rules.alert import AlertKind
from rules.calendar import local_midnight_s
from simulators.fleet import Depot, PoolKind, Vehicle, VehicleKind
from simulators.orders import (
    MAINTENANCE_PURPOSE,
    OrderRequest,
    make_request,
    pick_destination,
    served_agencies,
)
from simulators.outings import LegFault, Outing, OutingKind, Visit, estimate_s, leg_routes, merge_same_node
from simulators.places import FORBIDDEN_KINDS, Place, PlaceKind
from simulators.violations import ViolationRates, inject_order_faults
from simulators.world import World
from tracks.geo import haversine_m

log = logging.getLogger(__name__)

H = 3600.0


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanParams:
    start: date
    days: int
    rates: ViolationRates = field(default_factory=ViolationRates)
    orders_per_vehicle_day: float = 1.3  # requests per car of the city and district pools, per working day
    maintenance_rate: float = 0.01  # per car and working day
    earliest_depart_local_s: float = 7.25 * H
    latest_return_local_s: float = 18.5 * H  # compliant outings are planned to be back by then
    refuel_below: float = 0.3  # share of the tank
    fuel_start_share: tuple[float, float] = (0.45, 0.95)  # of the tank, per car at the start


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    params: PlanParams
    requests: tuple[OrderRequest, ...]
    order_vehicle: dict[int, int]  # order id → vehicle index, for dispatched orders
    outings: tuple[Outing, ...]  # sorted by (vehicle, depart)
    fuel_start_l: NDArray[np.float64]  # per vehicle at the start


class _Dispatcher:
    """Free cars per (depot, seats), each a heap on the time the car is free (lazy: stale entries skipped)."""

    def __init__(self, world: World) -> None:
        vehicles = world.fleet.vehicles
        self.free_at = np.full(len(vehicles), -np.inf)
        self.heaps: dict[tuple[int, int], list[tuple[float, int]]] = {}
        for i, v in enumerate(vehicles):
            self.heaps.setdefault((v.depot_id, v.seats), []).append((-np.inf, i))
        self.seat_classes = sorted({v.seats for v in vehicles if v.kind is not VehicleKind.VAN})
        self.pool_depots: dict[int, list[Depot]] = {}
        for depot in world.fleet.depots:
            self.pool_depots.setdefault(depot.pool_id, []).append(depot)

    def set_free(self, vehicle: int, at_s: float, key: tuple[int, int]) -> None:
        self.free_at[vehicle] = at_s
        heapq.heappush(self.heaps[key], (at_s, vehicle))

    def first_free(self, key: tuple[int, int]) -> int | None:
        heap = self.heaps.get(key)
        while heap and heap[0][0] != self.free_at[heap[0][1]]:
            heapq.heappop(heap)
        return heap[0][1] if heap else None

    def take(self, key: tuple[int, int]) -> None:
        heapq.heappop(self.heaps[key])

    def nearest_depots(self, pool_id: int, place: Place, k: int = 8) -> list[Depot]:
        depots = self.pool_depots.get(pool_id, [])
        if len(depots) <= 1:
            return depots
        d = haversine_m([x.lon for x in depots], [x.lat for x in depots], place.lon, place.lat)
        return [depots[i] for i in np.argsort(d, kind="stable")[:k]]


def _order_outing(
    world: World,
    *,
    vehicle: int,
    depot: Depot,
    depart_s: float,
    request: OrderRequest,
    rng: np.random.Generator,
    kind: OutingKind = OutingKind.ORDER,
) -> Outing | None:
    visits = [
        Visit(
            place_id=request.origin.place_id, node=request.origin.node, dwell_s=float(rng.uniform(180, 600))
        )
    ]
    stay = request.wait_s if request.round_trip else float(rng.uniform(120, 300))
    visits.append(Visit(place_id=request.destination.place_id, node=request.destination.node, dwell_s=stay))
    if request.round_trip and kind is OutingKind.ORDER:
        visits.append(
            Visit(
                place_id=request.origin.place_id,
                node=request.origin.node,
                dwell_s=float(rng.uniform(120, 300)),
            )
        )
    visits.append(Visit(place_id=depot.place_id, node=depot.node))
    merged = merge_same_node(visits, depot.node)
    main = [i for i, v in enumerate(merged) if v.node == request.destination.node]
    if not merged or not main:
        return None
    start = Visit(place_id=depot.place_id, node=depot.node)
    return Outing(
        outing_id=0,
        vehicle=vehicle,
        kind=kind,
        order_id=request.order_id,
        depart_s=depart_s,
        start=start,
        visits=merged,
        planned=merged,
        main_leg=main[0],
    )


def _simple_outing(
    *,
    vehicle: int,
    kind: OutingKind,
    depot: Depot,
    depart_s: float,
    stop: Visit,
    intent: AlertKind,
) -> Outing:
    home = Visit(place_id=depot.place_id, node=depot.node)
    visits = (stop, home)
    return Outing(
        outing_id=0,
        vehicle=vehicle,
        kind=kind,
        order_id=None,
        depart_s=depart_s,
        start=home,
        visits=visits,
        planned=visits,
        main_leg=0,
        intents=(intent,),
    )


def plan_days(world: World, params: PlanParams) -> Plan:
    fleet = world.fleet
    vehicles = fleet.vehicles
    n = len(vehicles)
    dispatcher = _Dispatcher(world)
    served = served_agencies(world)
    rental = next(p.pool_id for p in fleet.pools if p.kind is PoolKind.RENTAL)
    pool_size = Counter(v.pool_id for v in vehicles)
    requests: list[OrderRequest] = []
    order_vehicle: dict[int, int] = {}
    outings: list[Outing] = []
    counts: Counter[str] = Counter()
    rates = params.rates

    def key(v: Vehicle) -> tuple[int, int]:
        return (v.depot_id, v.seats)

    for d in range(params.days):
        day = params.start + timedelta(days=d)
        midnight = float(local_midnight_s(day))
        working = world.calendar.is_working_day(day)
        if not world.calendar.covers(day):
            counts["days without a calendar notice"] += 1
        rng = np.random.default_rng([world.seed, 2, d])

        def new_request(
            pool_id: int, pickup_s: float, *, agencies_of: int | None = None, rng: np.random.Generator = rng
        ) -> OrderRequest:
            agencies = served.get(agencies_of or pool_id) or list(fleet.agencies)
            pool = fleet.pools[pool_id - 1]
            request = make_request(
                world, len(requests) + 1, pool, agencies=agencies, pickup_s=pickup_s, rng=rng
            )
            requests.append(request)
            return request

        def dispatch(
            request: OrderRequest,
            pools: list[int],
            *,
            rng: np.random.Generator = rng,
            midnight: float = midnight,
            working: bool = working,
        ) -> Outing | None:
            """The nearest free car with enough seats; the rental firm when the own pool has none."""
            classes = [
                s for s in dispatcher.seat_classes if s >= request.passengers
            ] or dispatcher.seat_classes[-1:]
            for pool_id in pools:
                for seats in classes:
                    for depot in dispatcher.nearest_depots(pool_id, request.origin):
                        slot = (depot.depot_id, seats)
                        vehicle = dispatcher.first_free(slot)
                        if vehicle is None:
                            continue
                        to_origin = world.router.travel_time_s(depot.node, request.origin.node) / 0.7 + 120.0
                        depart = request.pickup_s - to_origin
                        if dispatcher.free_at[vehicle] > depart:
                            continue
                        outing = _order_outing(
                            world, vehicle=vehicle, depot=depot, depart_s=depart, request=request, rng=rng
                        )
                        if outing is None:
                            return None
                        end = depart + estimate_s(world.router, outing.start, outing.visits)
                        if working and end > midnight + params.latest_return_local_s:
                            counts["requests too late to serve"] += 1
                            return None
                        dispatcher.take(slot)
                        dispatcher.set_free(vehicle, end + 1_800.0, slot)
                        order_vehicle[request.order_id] = vehicle
                        return outing
            counts["requests without a free car"] += 1
            return None

        def free_vehicles(before_s: float, count: int, *, rng: np.random.Generator = rng) -> list[int]:
            if count <= 0:
                return []
            chosen = rng.permutation(n)
            ok = chosen[(dispatcher.free_at[chosen] <= before_s)]
            return [int(i) for i in ok if vehicles[i].kind is not VehicleKind.VAN][:count]

        day_outings: list[Outing] = []
        if working:
            # maintenance first: the car is away in the morning
            shops = world.by_kind[PlaceKind.REPAIR_SHOP]
            for v in free_vehicles(midnight + 8.5 * H, int(rng.binomial(n, params.maintenance_rate))):
                vehicle = vehicles[v]
                pool = fleet.pools[vehicle.pool_id - 1]
                if pool.kind is PoolKind.RENTAL or pool.agency_id is None:
                    continue
                depot = world.depot_of(vehicle)
                shop = shops[int(rng.integers(len(shops)))]
                request = OrderRequest(
                    order_id=len(requests) + 1,
                    agency_id=pool.agency_id,
                    pool_id=pool.pool_id,
                    passengers=1,
                    purpose=MAINTENANCE_PURPOSE,
                    origin=world.place(depot.place_id),
                    destination=shop,
                    pickup_s=midnight + float(rng.uniform(8.5, 9.5)) * H,
                    wait_s=float(rng.uniform(1.5, 4.0)) * H,
                    round_trip=True,
                    cross_region=False,
                )
                requests.append(request)
                outing = _order_outing(
                    world,
                    vehicle=v,
                    depot=depot,
                    depart_s=request.pickup_s,
                    request=request,
                    rng=rng,
                    kind=OutingKind.MAINTENANCE,
                )
                if outing is None:
                    continue
                end = request.pickup_s + estimate_s(world.router, outing.start, outing.visits)
                dispatcher.set_free(v, end + 1_800.0, key(vehicle))
                order_vehicle[request.order_id] = v
                day_outings.append(outing)
            # the day's requests, in pickup order
            todays: list[OrderRequest] = []
            for pool in fleet.pools:
                if pool.kind in (PoolKind.CITY, PoolKind.DISTRICT) and served.get(pool.pool_id):
                    k = int(rng.poisson(params.orders_per_vehicle_day * pool_size[pool.pool_id]))
                    morning = rng.random(k) < 0.6
                    pickup = np.where(morning, rng.uniform(8.0, 10.5, k), rng.uniform(13.5, 15.5, k))
                    todays += [new_request(pool.pool_id, midnight + float(p) * H) for p in pickup]
            todays.sort(key=lambda r: (r.pickup_s, r.order_id))
            for request in todays:
                outing = dispatch(request, [request.pool_id, rental])
                if outing is not None:
                    faulty = inject_order_faults(outing, world, rates, rng)
                    end = faulty.depart_s + estimate_s(world.router, faulty.start, faulty.visits) + 1_800.0
                    car = vehicles[faulty.vehicle]
                    dispatcher.set_free(
                        faulty.vehicle, max(end, dispatcher.free_at[faulty.vehicle]), key(car)
                    )
                    day_outings.append(faulty)
            # a private outing without an order, in working hours
            for v in free_vehicles(midnight + 14.5 * H, int(rng.binomial(n, rates.no_order))):
                vehicle, depot = vehicles[v], world.depot_of(vehicles[v])
                depart = max(dispatcher.free_at[v] + 1.5 * H, midnight + float(rng.uniform(9.5, 15.0)) * H)
                options = (
                    [p for k in FORBIDDEN_KINDS for p in world.by_kind[k]] if rng.random() < 0.25 else []
                )
                place = (
                    options[int(rng.integers(len(options)))]
                    if options
                    else pick_destination(world, world.place(depot.place_id), rng)
                )
                if place.node == depot.node:
                    continue
                stop = Visit(
                    place_id=place.place_id, node=place.node, dwell_s=float(rng.uniform(1_200, 5_400))
                )
                outing = _simple_outing(
                    vehicle=v,
                    kind=OutingKind.PRIVATE,
                    depot=depot,
                    depart_s=depart,
                    stop=stop,
                    intent=AlertKind.NO_ORDER,
                )
                dispatcher.set_free(
                    v, depart + estimate_s(world.router, outing.start, outing.visits) + 1_800, key(vehicle)
                )
                day_outings.append(outing)
            # taken home for the night, back next morning
            if d + 1 < params.days:
                residences = world.by_kind[PlaceKind.RESIDENCE]
                for v in free_vehicles(midnight + 17.75 * H, int(rng.binomial(n, rates.overnight_away))):
                    vehicle, depot = vehicles[v], world.depot_of(vehicles[v])
                    home = residences[int(rng.integers(len(residences)))]
                    if home.node == depot.node:
                        continue
                    leave = midnight + 86_400.0 + float(rng.uniform(7.17, 7.83)) * H
                    stop = Visit(place_id=home.place_id, node=home.node, leave_at_s=leave)
                    depart = midnight + float(rng.uniform(18.0, 19.5)) * H
                    day_outings.append(
                        _simple_outing(
                            vehicle=v,
                            kind=OutingKind.OVERNIGHT,
                            depot=depot,
                            depart_s=depart,
                            stop=stop,
                            intent=AlertKind.OVERNIGHT_AWAY,
                        )
                    )
                    dispatcher.set_free(v, leave + 2 * H, key(vehicle))
        # an approved order at an odd time: the evening of a working day, or a rest day
        for v in free_vehicles(
            midnight + (20.0 if working else 9.0) * H, int(rng.binomial(n, rates.off_hours))
        ):
            vehicle = vehicles[v]
            odd_s = midnight + float(rng.uniform(20.0, 21.0) if working else rng.uniform(9.0, 15.0)) * H
            agencies_of = (
                vehicle.pool_id if fleet.pools[vehicle.pool_id - 1].kind is not PoolKind.RENTAL else 1
            )
            request = new_request(vehicle.pool_id, odd_s, agencies_of=agencies_of)
            depot = world.depot_of(vehicle)
            depart = odd_s - world.router.travel_time_s(depot.node, request.origin.node) / 0.7 - 120.0
            outing = _order_outing(world, vehicle=v, depot=depot, depart_s=depart, request=request, rng=rng)
            if outing is None or dispatcher.free_at[v] > depart:
                continue
            order_vehicle[request.order_id] = v
            dispatcher.set_free(
                v, depart + estimate_s(world.router, outing.start, outing.visits) + 1_800, key(vehicle)
            )
            day_outings.append(replace(outing, intents=(AlertKind.OFF_HOURS,)))
        outings += day_outings

    ordered = sorted(outings, key=lambda o: (o.vehicle, o.depart_s))
    fuel_rng = np.random.default_rng([world.seed, 4])
    fuel_start = np.array([v.tank_l for v in vehicles]) * fuel_rng.uniform(*params.fuel_start_share, n)
    fuelled = _add_fuel_stops(world, ordered, fuel_start, params.refuel_below, fuel_rng)
    numbered = tuple(replace(o, outing_id=i + 1) for i, o in enumerate(fuelled))
    intents = Counter(str(i) for o in numbered for i in o.intents)
    cancelled = len(requests) - len(order_vehicle)
    log.info(
        "planned %d days from %s: %d requests, %d dispatched, %d cancelled; %d outings; injected %s%s",
        params.days,
        params.start,
        len(requests),
        len(order_vehicle),
        cancelled,
        len(numbered),
        dict(sorted(intents.items())) or "nothing",
        "; " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) if counts else "",
    )
    return Plan(
        params=params,
        requests=tuple(requests),
        order_vehicle=order_vehicle,
        outings=numbered,
        fuel_start_l=fuel_start,
    )


def _add_fuel_stops(
    world: World, outings: list[Outing], level_l: NDArray[np.float64], below: float, rng: np.random.Generator
) -> list[Outing]:
    """Follow each car's fuel through its outings; when low, stop at a station before the last leg."""
    level = level_l.copy()
    stations = world.by_kind[PlaceKind.FUEL_STATION]
    s_lon, s_lat = np.array([p.lon for p in stations]), np.array([p.lat for p in stations])
    out: list[Outing] = []
    for original in outings:
        outing = original
        vehicle = world.fleet.vehicles[outing.vehicle]
        per_m = vehicle.fuel_norm_l_per_100km / 100_000.0
        lengths = [r.length_m for r in leg_routes(world.router, outing.start, outing.visits)]
        before_last = level[outing.vehicle] - per_m * sum(lengths[:-1])
        if (
            len(outing.visits) >= 2
            and outing.kind is not OutingKind.OVERNIGHT
            and (before_last - per_m * lengths[-1] < below * vehicle.tank_l)
        ):
            here = world.place(outing.visits[-2].place_id)
            order = np.argsort(haversine_m(s_lon, s_lat, here.lon, here.lat), kind="stable")
            station = next(
                (stations[i] for i in order if stations[i].node not in (here.node, outing.visits[-1].node)),
                None,
            )
            if station is not None:
                stop = Visit(
                    place_id=station.place_id, node=station.node, dwell_s=float(rng.uniform(240.0, 480.0))
                )
                at = len(outing.visits) - 1
                visits = (*outing.visits[:at], stop, outing.visits[at])
                planned = (*outing.planned[:-1], stop, outing.planned[-1])  # refuelling is part of the plan
                faults = list(outing.leg_faults())
                faults.insert(at, LegFault())
                outing = replace(
                    outing,
                    visits=visits,
                    planned=planned,
                    faults=tuple(faults),
                    main_leg=outing.main_leg + (1 if at <= outing.main_leg else 0),
                )
                lengths = [r.length_m for r in leg_routes(world.router, outing.start, outing.visits)]
                level[outing.vehicle] = vehicle.tank_l - per_m * lengths[-1]
                out.append(outing)
                continue
        level[outing.vehicle] -= per_m * sum(lengths)
        out.append(outing)
    return out
