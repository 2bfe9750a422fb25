"""Dispatch orders (用车申请 → 审批 → 派车): who asked, for how many, from where to where, when, which way.

An order's approved window and route are fixed when its outing is planned: the window spans the
compliant outing (depot departure to return) with some slack either side, and the route is the planned
path of the whole outing (depot → origin → destination → … → depot) as one LineString.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray

from simulators.fleet import Agency, Pool, PoolKind
from simulators.places import DESTINATION_KINDS, Place, PlaceKind
from simulators.world import World


class OrderStatus(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    DISPATCHED = "dispatched"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


PURPOSES: tuple[str, ...] = (
    "会议",
    "公务接待",
    "调研",
    "检查督导",
    "应急处置",
    "机要通信",
    "外事活动",
    "学习培训",
)
MAINTENANCE_PURPOSE = "车辆维修保养"


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRequest:
    """A request before dispatch: no car yet, times are the passengers' wishes."""

    order_id: int
    agency_id: int
    pool_id: int  # the pool asked first
    passengers: int
    purpose: str
    origin: Place
    destination: Place
    pickup_s: float
    wait_s: float  # how long the car waits at the destination (round trip) or 0
    round_trip: bool
    cross_region: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class DispatchOrder:
    order_id: int
    code: str
    agency_id: int
    passengers: int
    purpose: str
    origin_place_id: int
    origin_lon: float
    origin_lat: float
    destination_place_id: int
    destination_lon: float
    destination_lat: float
    requested_at_s: float
    window_start_s: float
    window_end_s: float
    route_lon: NDArray[np.float64]  # the approved route, WGS-84; empty for a cancelled order
    route_lat: NDArray[np.float64]
    route_length_m: float
    status: OrderStatus
    vehicle_id: int | None
    pool_id: int  # the pool that provided the car (or was asked, if cancelled)
    cross_region: bool


def served_agencies(world: World) -> dict[int, list[Agency]]:
    """pool_id → the agencies it serves (city pool: city level; district pool: its district)."""
    served: dict[int, list[Agency]] = {p.pool_id: [] for p in world.fleet.pools}
    by_district = {p.district: p.pool_id for p in world.fleet.pools if p.kind is PoolKind.DISTRICT}
    city = next(p.pool_id for p in world.fleet.pools if p.kind is PoolKind.CITY)
    for agency in world.fleet.agencies:
        served[by_district.get(agency.district, city) if agency.district is not None else city].append(agency)
    return served


def passenger_count(rng: np.random.Generator) -> int:
    draw = rng.random()
    if draw < 0.85:
        return int(rng.integers(1, 5))
    if draw < 0.95:
        return int(rng.integers(5, 8))
    if draw < 0.99:
        return int(rng.integers(8, 16))
    return int(rng.integers(16, 31))


def pick_destination(world: World, origin: Place, rng: np.random.Generator) -> Place:
    kinds = list(DESTINATION_KINDS)
    weights = np.array([DESTINATION_KINDS[k] for k in kinds])
    while True:
        kind = kinds[int(rng.choice(len(kinds), p=weights / weights.sum()))]
        options = world.by_kind.get(kind, ())
        if options:
            place = options[int(rng.integers(len(options)))]
            if place.node != origin.node:
                return place


def make_request(
    world: World,
    order_id: int,
    pool: Pool,
    *,
    agencies: list[Agency],
    pickup_s: float,
    rng: np.random.Generator,
) -> OrderRequest:
    """One request from an agency the pool serves, with a realistic mix of trips."""
    agency = agencies[int(rng.integers(len(agencies)))]
    office = world.place(agency.office_place_id)
    draw = rng.random()
    cross_region = draw < 0.08
    if draw < 0.04:  # officials from another city arrive by train: station → office, one way
        stations = world.by_kind[PlaceKind.STATION]
        origin, destination = stations[int(rng.integers(len(stations)))], office
        round_trip = False
    elif draw < 0.08:  # to the city boundary where another city's delegation is met
        entries = world.by_kind[PlaceKind.CITY_ENTRY]
        origin, destination = office, entries[int(rng.integers(len(entries)))]
        round_trip = True
    else:
        origin, destination = office, pick_destination(world, office, rng)
        round_trip = bool(rng.random() < 0.7)
    return OrderRequest(
        order_id=order_id,
        agency_id=agency.agency_id,
        pool_id=pool.pool_id,
        passengers=passenger_count(rng),
        purpose=PURPOSES[int(rng.integers(len(PURPOSES)))],
        origin=origin,
        destination=destination,
        pickup_s=pickup_s,
        wait_s=float(rng.uniform(1_800, 9_000)) if round_trip else 0.0,
        round_trip=round_trip,
        cross_region=cross_region,
    )


def order_code(order_id: int, day_label: str) -> str:
    return f"YC{day_label}{order_id:07d}"
