"""Places on the map: where cars are kept, where officials go, and where they must not go.

Every place sits on a junction of the road network (cars park there); a forbidden place is a polygon
at the end of its own access road. Coordinates are WGS-84 lon/lat.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray

from simulators.city import ROAD_KINDS, City, RoadKind


class PlaceKind(StrEnum):
    AGENCY_OFFICE = "agency_office"
    DEPOT = "depot"
    HOSPITAL = "hospital"
    STATION = "station"
    HOTEL = "hotel"
    VENUE = "venue"
    GOVERNMENT = "government"
    CITY_ENTRY = "city_entry"
    FUEL_STATION = "fuel_station"
    REPAIR_SHOP = "repair_shop"
    RESIDENCE = "residence"
    SCENIC_SPOT = "scenic_spot"
    GOLF_CLUB = "golf_club"
    ENTERTAINMENT = "entertainment"


FORBIDDEN_KINDS = (PlaceKind.SCENIC_SPOT, PlaceKind.GOLF_CLUB, PlaceKind.ENTERTAINMENT)  # ordered: iterated
# Where ordinary orders go, with weights.
DESTINATION_KINDS: dict[PlaceKind, float] = {
    PlaceKind.AGENCY_OFFICE: 0.30,
    PlaceKind.GOVERNMENT: 0.20,
    PlaceKind.VENUE: 0.15,
    PlaceKind.HOTEL: 0.15,
    PlaceKind.HOSPITAL: 0.10,
    PlaceKind.STATION: 0.10,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Place:
    place_id: int
    code: str
    kind: PlaceKind
    name: str
    lon: float
    lat: float
    node: int
    radius_m: float
    polygon_lon: NDArray[np.float64] | None = None  # closed ring for a polygon place
    polygon_lat: NDArray[np.float64] | None = None

    @property
    def forbidden(self) -> bool:
        return self.kind in FORBIDDEN_KINDS


_NAMES: dict[PlaceKind, tuple[str, ...]] = {
    PlaceKind.HOSPITAL: ("市第一人民医院", "市第二人民医院", "市中医医院", "市妇幼保健院", "市第三人民医院"),
    PlaceKind.STATION: ("常州站", "常州北站", "常州汽车客运总站"),
    PlaceKind.HOTEL: ("市政府接待宾馆", "天宁宾馆", "钟楼大酒店", "新北国际酒店", "武进宾馆", "运河饭店"),
    PlaceKind.VENUE: ("市会议中心", "市行政中心礼堂", "市体育馆", "市规划展览馆", "市文化宫"),
    PlaceKind.GOVERNMENT: (
        "天宁区政府",
        "钟楼区政府",
        "新北区政府",
        "武进区政府",
        "经开区管委会",
        "金坛区政府",
    ),
    PlaceKind.CITY_ENTRY: (
        "沪宁高速常州东入口",
        "扬溧高速常州北入口",
        "沿江高速常州西入口",
        "常宜高速常州南入口",
    ),
    PlaceKind.SCENIC_SPOT: ("天目湖度假区", "中华恐龙园", "淹城春秋乐园", "茅山风景区"),
    PlaceKind.GOLF_CLUB: ("太湖湾高尔夫俱乐部", "武进高尔夫球场", "西太湖高尔夫会所", "常州乡村高尔夫"),
    PlaceKind.ENTERTAINMENT: ("金色年华KTV", "皇家会所", "星光娱乐城", "不夜城洗浴中心"),
}
_GENERIC = {
    PlaceKind.AGENCY_OFFICE: "办公楼",
    PlaceKind.HOSPITAL: "医院",
    PlaceKind.HOTEL: "宾馆",
    PlaceKind.VENUE: "会议中心",
    PlaceKind.FUEL_STATION: "定点加油站",
    PlaceKind.REPAIR_SHOP: "定点维修厂",
    PlaceKind.RESIDENCE: "住宅小区",
    PlaceKind.DEPOT: "停车场",
}


def place_name(kind: PlaceKind, index: int) -> str:
    names = _NAMES.get(kind, ())
    if index < len(names):
        return names[index]
    return f"{_GENERIC.get(kind, str(kind))}{index + 1}号"


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeRings:
    """Parking junctions (ordinary streets) by distance from the centre."""

    downtown: NDArray[np.int64]
    urban: NDArray[np.int64]
    outer: NDArray[np.int64]
    entries: NDArray[np.int64]


def node_rings(city: City) -> NodeRings:
    net = city.network
    x, y = net.plane.to_xy(net.node_lon, net.node_lat)
    r = np.hypot(x, y)
    access = ROAD_KINDS.index(RoadKind.ACCESS)
    on_street = net.node_signal.copy()
    expressway = ROAD_KINDS.index(RoadKind.EXPRESSWAY)
    degree = np.bincount(np.concatenate((net.edge_from, net.edge_to)), minlength=net.nodes)
    fast_end = np.zeros(net.nodes, dtype=np.bool_)
    fast = net.edge_kind == expressway
    fast_end[net.edge_from[fast]] = True
    fast_end[net.edge_to[fast]] = True
    site = np.zeros(net.nodes, dtype=np.bool_)
    site[net.edge_to[net.edge_kind == access]] = True
    on_street &= ~site
    ring = city.params.ring_radius_m
    return NodeRings(
        downtown=np.flatnonzero(on_street & (r < 3_000.0)),
        urban=np.flatnonzero(on_street & (r >= 2_000.0) & (r < ring - 500.0)),
        outer=np.flatnonzero(on_street & (r >= ring + 500.0)),
        entries=np.flatnonzero(fast_end & (degree == 1)),
    )


def build_places(city: City, vehicles: int, rng: np.random.Generator) -> list[Place]:
    """Destinations, stations, fuel stations, shops, residences, forbidden places (not offices or depots)."""
    rings = node_rings(city)
    net = city.network
    counts = {
        PlaceKind.HOSPITAL: 4 + vehicles // 500,
        PlaceKind.STATION: 3,
        PlaceKind.HOTEL: 6 + vehicles // 300,
        PlaceKind.VENUE: 4 + vehicles // 500,
        PlaceKind.GOVERNMENT: 6,
        PlaceKind.FUEL_STATION: 8 + vehicles // 200,
        PlaceKind.REPAIR_SHOP: 3 + vehicles // 400,
        PlaceKind.RESIDENCE: 10 + vehicles // 100,
    }
    where = {
        PlaceKind.HOSPITAL: rings.urban,
        PlaceKind.STATION: rings.urban,
        PlaceKind.HOTEL: np.concatenate((rings.downtown, rings.urban)),
        PlaceKind.VENUE: rings.downtown,
        PlaceKind.GOVERNMENT: rings.urban,
        PlaceKind.FUEL_STATION: np.concatenate((rings.urban, rings.outer)),
        PlaceKind.REPAIR_SHOP: np.concatenate((rings.urban, rings.outer)),
        PlaceKind.RESIDENCE: np.concatenate((rings.urban, rings.outer)),
    }
    places: list[Place] = []
    seen: Counter[PlaceKind] = Counter()

    def add(
        kind: PlaceKind, node: int, radius_m: float, polygon: tuple[NDArray[np.float64], ...] | None = None
    ) -> None:
        index = seen[kind]
        seen[kind] += 1
        places.append(
            Place(
                place_id=len(places) + 1,
                code=f"{kind.value[:3].upper()}{index + 1:04d}",
                kind=kind,
                name=place_name(kind, index),
                lon=float(net.node_lon[node]),
                lat=float(net.node_lat[node]),
                node=node,
                radius_m=radius_m,
                polygon_lon=None if polygon is None else polygon[0],
                polygon_lat=None if polygon is None else polygon[1],
            )
        )

    for kind, count in counts.items():
        for node in rng.choice(where[kind], size=count, replace=count > len(where[kind])):
            add(kind, int(node), 150.0)
    for node in rings.entries:
        add(PlaceKind.CITY_ENTRY, int(node), 300.0)
    for site in city.forbidden:
        add(PlaceKind(site.kind), site.node, 0.0, (site.polygon_lon, site.polygon_lat))
    return places
