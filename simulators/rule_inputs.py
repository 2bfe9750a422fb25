"""A simulator run as the rules' inputs, in-process (no database, no MQTT): the shell around the core
that ``simulators.score`` and the tests use.

The fixes go to the track engine as ingest would store them (fixes the terminal marked not valid are
quarantined, so left out of the track but kept as reports); the engine gets the run's dispatched orders
and depots; the rules get the world's calendar, depots, forbidden zones, road speed limits, tanks and
fuel norms, and the run's fuel and maintenance records.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rules.calendar import day_number
from rules.catalogue import RULES, Evaluation, Rule, evaluate
from rules.config import ForbiddenZones, RuleConfig, SpeedLimits, Vehicles, polylines
from rules.facts import DOCUMENT_KINDS, Documents, FuelRecords, MaintenanceRecords, Reports, RuleInputs
from simulators.run import SimRun
from simulators.world import World
from tracks.match import DispatchOrder, Orders, orders_table
from tracks.params import Params
from tracks.pipeline import Context, VehicleResult, run_fleet
from tracks.places import StopKind, places
from tracks.track import Track, make_track

S = 1_000_000


def track_of(run: SimRun) -> Track:
    """The fixes ingest would store: every valid fix, vehicle ids as in the registry."""
    f = run.fixes
    ok = f.valid
    ids = vehicle_ids(run.world)
    return make_track(
        vehicle_id=ids[f.vehicle[ok]],
        t_us=f.t_ms[ok] * 1000,
        lon=f.lon[ok],
        lat=f.lat[ok],
        speed_kmh=f.speed_kmh[ok],
        ignition=f.ignition[ok].astype(np.int8),
        odometer_km=f.odometer_km[ok],
    )


def vehicle_ids(world: World) -> np.ndarray:
    return np.array([v.vehicle_id for v in world.fleet.vehicles], dtype=np.int64)


def reports_of(run: SimRun) -> Reports:
    """Every report the terminals sent, valid or not (a tunnel is not a silence)."""
    f = run.fixes
    v = vehicle_ids(run.world)[f.vehicle]
    t = f.t_ms * 1000
    order = np.lexsort((t, v))
    return Reports(vehicle_id=v[order], t_us=t[order])


def orders_of(run: SimRun) -> Orders:
    """The dispatched orders (a cancelled one has no car)."""
    return orders_table(
        [
            DispatchOrder(
                order_id=o.order_id,
                vehicle_id=o.vehicle_id,
                window_start_us=round(o.window_start_s * S),
                window_end_us=round(o.window_end_s * S),
                origin_lon=o.origin_lon,
                origin_lat=o.origin_lat,
                destination_lon=o.destination_lon,
                destination_lat=o.destination_lat,
                route_lon=o.route_lon,
                route_lat=o.route_lat,
            )
            for o in run.truth.orders
            if o.vehicle_id is not None
        ]
    )


def context_of(run: SimRun, orders: Orders) -> Context:
    depots = run.world.fleet.depots
    return Context(
        orders=orders,
        places=places(
            StopKind.DEPOT, [d.lon for d in depots], [d.lat for d in depots], [d.radius_m for d in depots]
        ),
    )


def config_of(world: World) -> RuleConfig:
    """The agency's configuration as the registry and the map layers of the world hold it."""
    fleet = world.fleet
    depot = [world.depot_of(v) for v in fleet.vehicles]
    vehicles = Vehicles(
        vehicle_id=vehicle_ids(world),
        depot_lon=np.array([d.lon for d in depot], dtype=np.float64),
        depot_lat=np.array([d.lat for d in depot], dtype=np.float64),
        depot_radius_m=np.array([d.radius_m for d in depot], dtype=np.float64),
        tank_l=np.array([v.tank_l for v in fleet.vehicles], dtype=np.float64),
        fuel_norm_l_per_100km=np.array([v.fuel_norm_l_per_100km for v in fleet.vehicles], dtype=np.float64),
    )
    zones = [
        p for p in world.places if p.forbidden and p.polygon_lon is not None and p.polygon_lat is not None
    ]
    forbidden = ForbiddenZones(
        zone_id=np.array([p.place_id for p in zones], dtype=np.int64),
        rings=polylines([p.polygon_lon for p in zones], [p.polygon_lat for p in zones]),  # type: ignore[misc]
    )
    net = world.city.network
    edges = range(net.edges)
    speed = SpeedLimits(
        roads=polylines(
            [net.vertex_lon[net.vertex_start[e] : net.vertex_start[e + 1]] for e in edges],
            [net.vertex_lat[net.vertex_start[e] : net.vertex_start[e + 1]] for e in edges],
        ),
        limit_kmh=net.edge_speed_kmh,
    )
    return RuleConfig(calendar=world.calendar, vehicles=vehicles, forbidden=forbidden, speed=speed)


def records_of(run: SimRun) -> tuple[FuelRecords, MaintenanceRecords]:
    ids = vehicle_ids(run.world)
    fuel, repairs = run.truth.fuel, run.truth.maintenance
    return (
        FuelRecords(
            record_id=np.array([r.fuel_record_id for r in fuel], dtype=np.int64),
            vehicle_id=np.array([ids[r.vehicle] for r in fuel], dtype=np.int64),
            t_us=np.array([round(r.at_s * S) for r in fuel], dtype=np.int64),
            lon=np.array([r.lon for r in fuel], dtype=np.float64),
            lat=np.array([r.lat for r in fuel], dtype=np.float64),
            litres=np.array([r.litres for r in fuel], dtype=np.float64),
            place_id=np.array([r.place_id for r in fuel], dtype=np.int64),
        ),
        MaintenanceRecords(
            record_id=np.array([r.maintenance_record_id for r in repairs], dtype=np.int64),
            vehicle_id=np.array([ids[r.vehicle] for r in repairs], dtype=np.int64),
            start_us=np.array([round(r.start_s * S) for r in repairs], dtype=np.int64),
            end_us=np.array([round(r.end_s * S) for r in repairs], dtype=np.int64),
            lon=np.array([r.lon for r in repairs], dtype=np.float64),
            lat=np.array([r.lat for r in repairs], dtype=np.float64),
            place_id=np.array([r.place_id for r in repairs], dtype=np.int64),
        ),
    )


def documents_of(run: SimRun) -> Documents:
    """The cars' insurance policies and inspections as vehicle_document holds them."""
    ids, documents = vehicle_ids(run.world), run.truth.documents
    return Documents(
        document_id=np.array([d.document_id for d in documents], dtype=np.int64),
        vehicle_id=np.array([ids[d.vehicle] for d in documents], dtype=np.int64),
        kind=np.array([DOCUMENT_KINDS.index(d.kind) for d in documents], dtype=np.int8),
        valid_from_day=np.array([day_number(d.valid_from) for d in documents], dtype=np.int64),
        expires_day=np.array([day_number(d.expires_on) for d in documents], dtype=np.int64),
        number=np.array([d.number for d in documents], dtype=np.str_),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class RunAlerts:
    result: VehicleResult
    inputs: RuleInputs
    config: RuleConfig
    evaluation: Evaluation


def alerts_of(
    run: SimRun,
    *,
    params: Params | None = None,
    config: RuleConfig | None = None,
    rules: tuple[Rule, ...] = RULES,
) -> RunAlerts:
    """fixes → tracks.run_fleet (with the run's orders and depots) → rules."""
    orders = orders_of(run)
    result = run_fleet(track_of(run), context_of(run, orders), params or Params())
    fuel, maintenance = records_of(run)
    inputs = RuleInputs(
        result=result,
        orders=orders,
        start_us=round(run.start_s * S),
        end_us=round(run.end_s * S),
        fuel=fuel,
        maintenance=maintenance,
        reports=reports_of(run),
        documents=documents_of(run),
    )
    config = config or config_of(run.world)
    return RunAlerts(result=result, inputs=inputs, config=config, evaluation=evaluate(inputs, config, rules))
