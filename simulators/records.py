"""Fuel-card and maintenance records as stations and repair shops report them, with anomalies.

A refuelling is recorded while the car stands at the station; its litres refill the tank (the fuel used
since the last fill, from the true distance and the car's norm). Anomalies: a card used at a station
while the car was elsewhere, litres above what the tank holds, and a repair recorded at a shop while the
car was elsewhere. Whether a record is anomalous is decided from the car's true position.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from rules.alert import AlertKind
from simulators.drive import Legs
from simulators.outings import Outing, OutingKind
from simulators.places import PlaceKind
from simulators.schedule import Timeline, true_position
from simulators.truth import ExpectedAlert, FuelRecord, MaintenanceRecord
from simulators.violations import ViolationParams, ViolationRates
from simulators.world import World
from tracks.geo import haversine_m

Floats = NDArray[np.float64]


@dataclass(frozen=True, slots=True, kw_only=True)
class Records:
    fuel: list[FuelRecord]
    maintenance: list[MaintenanceRecord]
    alerts: list[ExpectedAlert]


def make_records(
    world: World,
    outings: Sequence[Outing],
    timeline: Timeline,
    legs: Legs,
    *,
    fuel_start_l: Floats,
    days: int,
    rates: ViolationRates,
    p: ViolationParams,
    rng: np.random.Generator,
) -> Records:
    tl = timeline
    vehicles = world.fleet.vehicles
    fuel: list[FuelRecord] = []
    maintenance: list[MaintenanceRecord] = []
    level = {int(v): float(fuel_start_l[v]) for v in np.unique(tl.leg_vehicle)}
    for k in range(len(tl.depart_s)):
        v = int(tl.leg_vehicle[k])
        car = vehicles[v]
        level[v] -= legs.length_m[k] * car.fuel_norm_l_per_100km / 100_000.0
        outing = outings[int(tl.leg_outing[k])]
        visit = outing.visits[int(tl.leg_visit[k])]
        place = world.place(visit.place_id)
        next_leg = k + 1 < len(tl.depart_s) and tl.leg_outing[k + 1] == tl.leg_outing[k]
        if not next_leg:
            continue
        leave = float(tl.depart_s[k + 1])
        if place.kind is PlaceKind.FUEL_STATION:
            litres = car.tank_l - level[v]
            level[v] = car.tank_l
            if rng.random() < rates.fuel_over_tank:
                litres = car.tank_l * float(rng.uniform(1.15, 1.5))
            at = float(
                tl.arrive_s[k] + rng.uniform(60.0, max(90.0, min(240.0, leave - tl.arrive_s[k] - 60.0)))
            )
            fuel.append(
                FuelRecord(
                    fuel_record_id=len(fuel) + 1,
                    vehicle=v,
                    card=car.fuel_card,
                    place_id=place.place_id,
                    lon=place.lon,
                    lat=place.lat,
                    at_s=at,
                    litres=round(litres, 2),
                )
            )
        elif place.kind is PlaceKind.REPAIR_SHOP and outing.kind is OutingKind.MAINTENANCE:
            maintenance.append(
                MaintenanceRecord(
                    maintenance_record_id=len(maintenance) + 1,
                    vehicle=v,
                    place_id=place.place_id,
                    lon=place.lon,
                    lat=place.lat,
                    start_s=float(tl.arrive_s[k] + 300.0),
                    end_s=leave - 300.0,
                )
            )
    # anomalies made up from stays: a card used far from where the car stands, a repair while it is parked
    stations = world.by_kind[PlaceKind.FUEL_STATION]
    shops = world.by_kind[PlaceKind.REPAIR_SHOP]
    long_stays = np.flatnonzero(tl.park_end_s - tl.park_start_s > 3 * 3600)
    cars = np.unique(tl.park_vehicle)
    for v in cars[rng.random(len(cars)) < 1 - (1 - rates.fuel_card_elsewhere) ** days]:
        stays = long_stays[tl.park_vehicle[long_stays] == v]
        if len(stays) == 0:
            continue
        i = int(stays[rng.integers(len(stays))])
        at = float(rng.uniform(tl.park_start_s[i] + 1_800, tl.park_end_s[i] - 1_800))
        far = [s for s in stations if haversine_m(s.lon, s.lat, tl.park_lon[i], tl.park_lat[i]) > 3_000.0]
        if far:
            station = far[int(rng.integers(len(far)))]
            car = vehicles[int(v)]
            fuel.append(
                FuelRecord(
                    fuel_record_id=len(fuel) + 1,
                    vehicle=int(v),
                    card=car.fuel_card,
                    place_id=station.place_id,
                    lon=station.lon,
                    lat=station.lat,
                    at_s=at,
                    litres=round(float(rng.uniform(0.4, 0.8) * car.tank_l), 2),
                )
            )
    for record in list(maintenance):
        if rng.random() < rates.maintenance_elsewhere:
            stays = long_stays[tl.park_vehicle[long_stays] == record.vehicle]
            far = (
                [
                    s
                    for s in shops
                    if haversine_m(s.lon, s.lat, tl.park_lon[stays], tl.park_lat[stays]).min() > 3_000.0
                ]
                if len(stays)
                else []
            )
            if len(stays) and far:
                i = int(stays[rng.integers(len(stays))])
                start = float(rng.uniform(tl.park_start_s[i], tl.park_end_s[i] - 2 * 3600))
                shop = far[int(rng.integers(len(far)))]
                maintenance.append(
                    MaintenanceRecord(
                        maintenance_record_id=len(maintenance) + 1,
                        vehicle=record.vehicle,
                        place_id=shop.place_id,
                        lon=shop.lon,
                        lat=shop.lat,
                        start_s=start,
                        end_s=start + float(rng.uniform(1.0, 2.0)) * 3600,
                    )
                )
    return Records(
        fuel=fuel,
        maintenance=maintenance,
        alerts=record_alerts(world, fuel, maintenance, timeline=tl, legs=legs, p=p),
    )


def record_alerts(
    world: World,
    fuel: list[FuelRecord],
    maintenance: list[MaintenanceRecord],
    *,
    timeline: Timeline,
    legs: Legs,
    p: ViolationParams,
) -> list[ExpectedAlert]:
    alerts: list[ExpectedAlert] = []
    if fuel:
        v = np.array([r.vehicle for r in fuel], dtype=np.int64)
        t = np.array([r.at_s for r in fuel])
        lon, lat, _ = true_position(timeline, legs, v, t)
        gap = haversine_m(lon, lat, [r.lon for r in fuel], [r.lat for r in fuel])
        for r, g in zip(fuel, gap, strict=True):
            if g > p.record_radius_m:
                alerts.append(
                    ExpectedAlert(
                        kind=AlertKind.FUEL_CARD_ELSEWHERE,
                        vehicle=r.vehicle,
                        start_s=r.at_s,
                        end_s=r.at_s,
                        place_id=r.place_id,
                        fuel_record_id=r.fuel_record_id,
                        value=round(float(g), 1),
                        limit=p.record_radius_m,
                        unit="m",
                    )
                )
            tank = world.fleet.vehicles[r.vehicle].tank_l
            if r.litres > tank:
                alerts.append(
                    ExpectedAlert(
                        kind=AlertKind.FUEL_OVER_TANK,
                        vehicle=r.vehicle,
                        start_s=r.at_s,
                        end_s=r.at_s,
                        place_id=r.place_id,
                        fuel_record_id=r.fuel_record_id,
                        value=r.litres,
                        limit=tank,
                        unit="L",
                    )
                )
    for m in maintenance:
        t = np.arange(m.start_s, m.end_s + 1.0, 60.0)
        lon, lat, _ = true_position(timeline, legs, np.full(len(t), m.vehicle, dtype=np.int64), t)
        nearest = float(haversine_m(lon, lat, m.lon, m.lat).min())
        if nearest > p.record_radius_m:
            alerts.append(
                ExpectedAlert(
                    kind=AlertKind.MAINTENANCE_ELSEWHERE,
                    vehicle=m.vehicle,
                    start_s=m.start_s,
                    end_s=m.end_s,
                    place_id=m.place_id,
                    maintenance_record_id=m.maintenance_record_id,
                    value=round(nearest, 1),
                    limit=p.record_radius_m,
                    unit="m",
                )
            )
    return alerts
