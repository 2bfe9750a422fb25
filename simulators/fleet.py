"""The motor pool's registry: agencies, pools, depots, vehicles and their terminals.

A city bureau (机关事务管理局) runs the city pool; each district's office runs a district pool;
a designated rental firm (定点租赁) supplements them; a ride-hailing pool exists without cars of
its own. Agencies ask for cars; city agencies are served by the city pool, district agencies by
their district's pool, and either by the rental firm when their pool has no suitable car free.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from simulators.city import City
from simulators.places import Place, PlaceKind, node_rings, place_name


class PoolKind(StrEnum):
    CITY = "city"
    DISTRICT = "district"
    RENTAL = "rental"
    RIDE_HAILING = "ride_hailing"


class VehicleKind(StrEnum):
    SEDAN = "sedan"
    SUV = "suv"
    MPV = "mpv"
    MINIBUS = "minibus"
    BUS = "bus"
    VAN = "van"


@dataclass(frozen=True, slots=True, kw_only=True)
class VehicleModel:
    kind: VehicleKind
    share: float
    seats: int
    tank_l: float
    fuel_norm_l_per_100km: float


MODELS: tuple[VehicleModel, ...] = (
    VehicleModel(kind=VehicleKind.SEDAN, share=0.58, seats=5, tank_l=55.0, fuel_norm_l_per_100km=9.0),
    VehicleModel(kind=VehicleKind.SUV, share=0.15, seats=5, tank_l=65.0, fuel_norm_l_per_100km=11.0),
    VehicleModel(kind=VehicleKind.MPV, share=0.13, seats=7, tank_l=70.0, fuel_norm_l_per_100km=12.0),
    VehicleModel(kind=VehicleKind.MINIBUS, share=0.08, seats=15, tank_l=90.0, fuel_norm_l_per_100km=16.0),
    VehicleModel(kind=VehicleKind.BUS, share=0.02, seats=35, tank_l=200.0, fuel_norm_l_per_100km=28.0),
    VehicleModel(kind=VehicleKind.VAN, share=0.04, seats=2, tank_l=60.0, fuel_norm_l_per_100km=12.0),
)
DISTRICTS: tuple[str, ...] = ("天宁区", "钟楼区", "新北区", "武进区", "经开区", "金坛区")
CITY_AGENCIES: tuple[str, ...] = (
    "市政府办公室",
    "市发展和改革委员会",
    "市财政局",
    "市教育局",
    "市公安局",
    "市卫生健康委员会",
    "市自然资源和规划局",
    "市生态环境局",
    "市住房和城乡建设局",
    "市交通运输局",
    "市农业农村局",
    "市商务局",
    "市文化广电和旅游局",
    "市应急管理局",
    "市审计局",
    "市市场监督管理局",
    "市统计局",
    "市信访局",
    "市人力资源和社会保障局",
    "市民政局",
)
DISTRICT_AGENCY_UNITS: tuple[str, ...] = (
    "办公室",
    "财政局",
    "教育局",
    "卫健局",
    "住建局",
    "农业农村局",
    "街道办事处",
)
_PLATE_CHARS = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no I or O on Chinese plates


@dataclass(frozen=True, slots=True, kw_only=True)
class Agency:
    agency_id: int
    code: str
    name: str
    parent_agency_id: int | None
    district: int | None  # index into DISTRICTS, None for city level
    office_place_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Pool:
    pool_id: int
    code: str
    name: str
    kind: PoolKind
    agency_id: int | None
    district: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Depot:
    depot_id: int
    pool_id: int
    name: str
    place_id: int
    node: int
    lon: float
    lat: float
    radius_m: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Vehicle:
    vehicle_id: int
    plate: str
    kind: VehicleKind
    seats: int
    pool_id: int
    agency_id: int | None
    depot_id: int
    tank_l: float
    fuel_norm_l_per_100km: float
    terminal_id: str
    fuel_card: str
    parked_interval_s: int  # how often the terminal reports with the ignition off
    iso_time: bool  # reports time as an ISO 8601 string instead of epoch ms
    odometer_start_km: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Fleet:
    agencies: tuple[Agency, ...]
    pools: tuple[Pool, ...]
    depots: tuple[Depot, ...]
    vehicles: tuple[Vehicle, ...]


def _plates(prefix: str, n: int, rng: np.random.Generator) -> list[str]:
    space = len(_PLATE_CHARS) ** 5
    draws = rng.integers(0, space, size=n + n // 10 + 16)
    _, first = np.unique(draws, return_index=True)
    codes = draws[np.sort(first)][:n]
    chars = np.array(list(_PLATE_CHARS))
    digits = np.stack(
        [(codes // len(_PLATE_CHARS) ** k) % len(_PLATE_CHARS) for k in range(4, -1, -1)], axis=1
    )
    return [prefix + "".join(row) for row in chars[digits]]


def build_fleet(
    city: City, places: list[Place], vehicles: int, rng: np.random.Generator, *, terminal_prefix: str
) -> Fleet:
    """Agencies with offices, pools with depots, and ``vehicles`` cars; adds office and depot places."""
    if not 1 <= vehicles <= 1_000_000:
        raise ValueError(f"vehicles must be between 1 and 1,000,000, got {vehicles}")
    rings = node_rings(city)
    net = city.network
    x, y = net.plane.to_xy(net.node_lon, net.node_lat)
    angle = np.arctan2(y, x)
    radius = np.hypot(x, y)

    seen = Counter(p.kind for p in places)

    def new_place(kind: PlaceKind, node: int, name: str) -> Place:
        index = seen[kind]
        seen[kind] += 1
        place = Place(
            place_id=len(places) + 1,
            code=f"{kind.value[:3].upper()}{index + 1:04d}",
            kind=kind,
            name=name,
            lon=float(net.node_lon[node]),
            lat=float(net.node_lat[node]),
            node=node,
            radius_m=150.0,
        )
        places.append(place)
        return place

    def district_nodes(d: int, r_min: float, r_max: float) -> np.ndarray:
        centre = 2 * np.pi * d / len(DISTRICTS)
        gap = np.abs((angle - centre + np.pi) % (2 * np.pi) - np.pi)
        found = np.flatnonzero(
            net.node_signal & (gap < np.pi / len(DISTRICTS)) & (radius >= r_min) & (radius < r_max)
        )
        return found if len(found) else rings.urban

    agencies: list[Agency] = []

    def new_agency(name: str, parent: int | None, district: int | None, node: int) -> Agency:
        office = new_place(PlaceKind.AGENCY_OFFICE, node, name)
        agency = Agency(
            agency_id=len(agencies) + 1,
            code=f"A{len(agencies) + 1:04d}",
            name=name,
            parent_agency_id=parent,
            district=district,
            office_place_id=office.place_id,
        )
        agencies.append(agency)
        return agency

    bureau = new_agency(f"{city.params.name}市机关事务管理局", None, None, int(rng.choice(rings.downtown)))
    district_heads = [
        new_agency(
            f"{name}机关事务管理中心", bureau.agency_id, d, int(rng.choice(district_nodes(d, 2_500, 8_000)))
        )
        for d, name in enumerate(DISTRICTS)
    ]
    wanted = max(8, vehicles // 15)
    for i in range(wanted):
        if i % 2 == 0:
            k = i // 2
            base = CITY_AGENCIES[k % len(CITY_AGENCIES)]
            name = base if k < len(CITY_AGENCIES) else f"{base}第{k // len(CITY_AGENCIES) + 1}分局"
            new_agency(name, bureau.agency_id, None, int(rng.choice(rings.downtown)))
        else:
            k = i // 2
            d = k % len(DISTRICTS)
            unit = DISTRICT_AGENCY_UNITS[(k // len(DISTRICTS)) % len(DISTRICT_AGENCY_UNITS)]
            serial = k // (len(DISTRICTS) * len(DISTRICT_AGENCY_UNITS))
            name = f"{DISTRICTS[d]}{unit}" + (f"{serial + 1}" if serial else "")
            head = district_heads[d]
            new_agency(name, head.agency_id, d, int(rng.choice(district_nodes(d, 2_000, 8_500))))

    pools = [
        Pool(
            pool_id=1,
            code="P-CITY",
            name=f"{city.params.name}市公务用车平台",
            kind=PoolKind.CITY,
            agency_id=bureau.agency_id,
            district=None,
        )
    ]
    for d, head in enumerate(district_heads):
        pools.append(
            Pool(
                pool_id=len(pools) + 1,
                code=f"P-D{d + 1}",
                name=f"{DISTRICTS[d]}公务用车平台",
                kind=PoolKind.DISTRICT,
                agency_id=head.agency_id,
                district=d,
            )
        )
    rental = Pool(
        pool_id=len(pools) + 1,
        code="P-RENT",
        name="定点租赁公司",
        kind=PoolKind.RENTAL,
        agency_id=None,
        district=None,
    )
    pools.append(rental)
    pools.append(
        Pool(
            pool_id=len(pools) + 1,
            code="P-RIDE",
            name="网约车补充平台",
            kind=PoolKind.RIDE_HAILING,
            agency_id=None,
            district=None,
        )
    )

    # cars per pool: 40 % city, 50 % districts, 10 % rental (at least one each where possible)
    share = np.array([0.40] + [0.50 / len(DISTRICTS)] * len(DISTRICTS) + [0.10])
    per_pool = np.floor(share * vehicles).astype(int)
    per_pool[0] += vehicles - per_pool.sum()
    depots: list[Depot] = []
    pool_depots: list[list[Depot]] = []
    for p, count in enumerate(per_pool):
        pool = pools[p]
        mine: list[Depot] = []
        for k in range(max(1, math.ceil(count / 400))):
            if pool.kind is PoolKind.DISTRICT:
                assert pool.district is not None
                candidates = district_nodes(pool.district, 3_000, 8_000)
            elif pool.kind is PoolKind.CITY:
                candidates = rings.downtown
            else:
                candidates = rings.urban
            node = int(rng.choice(candidates))
            place = new_place(PlaceKind.DEPOT, node, f"{pool.name}{place_name(PlaceKind.DEPOT, k)}")
            depot = Depot(
                depot_id=len(depots) + 1,
                pool_id=pool.pool_id,
                name=place.name,
                place_id=place.place_id,
                node=node,
                lon=place.lon,
                lat=place.lat,
                radius_m=150.0,
            )
            depots.append(depot)
            mine.append(depot)
        pool_depots.append(mine)

    plates = _plates(city.params.plate_prefix, vehicles, rng)
    shares = np.array([m.share for m in MODELS])
    model_of = rng.choice(len(MODELS), size=vehicles, p=shares / shares.sum())
    parked = rng.choice(np.array([60, 120, 180, 300]), size=vehicles)
    iso = rng.random(vehicles) < 0.1
    odometer = np.round(rng.uniform(5_000.0, 150_000.0, size=vehicles), 1)
    cards = rng.integers(10**11, 10**12, size=vehicles)
    fleet_vehicles: list[Vehicle] = []
    pool_of = np.repeat(np.arange(len(per_pool)), per_pool)
    for i in range(vehicles):
        p = int(pool_of[i])
        pool = pools[p]
        mine = pool_depots[p]
        depot = mine[i % len(mine)]
        model = MODELS[int(model_of[i])]
        fleet_vehicles.append(
            Vehicle(
                vehicle_id=i + 1,
                plate=plates[i],
                kind=model.kind,
                seats=model.seats,
                pool_id=pool.pool_id,
                agency_id=pool.agency_id,
                depot_id=depot.depot_id,
                tank_l=model.tank_l,
                fuel_norm_l_per_100km=model.fuel_norm_l_per_100km,
                terminal_id=f"{terminal_prefix}{i + 1:08d}",
                fuel_card=f"9100{int(cards[i]):012d}",
                parked_interval_s=int(parked[i]),
                iso_time=bool(iso[i]),
                odometer_start_km=float(odometer[i]),
            )
        )
    return Fleet(
        agencies=tuple(agencies), pools=tuple(pools), depots=tuple(depots), vehicles=tuple(fleet_vehicles)
    )
