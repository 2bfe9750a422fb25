"""A deterministic synthetic city: roads with a speed class, tunnels, blind areas, forbidden sites.

Drawn in a local plane around a real centre (Changzhou by default) and stored in WGS-84 lon/lat:
a grid of arterials across the whole map, a dense grid of local streets downtown, a ring road,
a riverside road and a canal road that curve, and four expressways from the ring to the map's edge
(where other cities' roads come in). Where two roads cross there is a junction; junctions of
ordinary streets have traffic lights. Forbidden sites (scenic spots, golf clubs, entertainment
venues) are polygons inside blocks, reached only by their own access road, so no through route ever
enters one. Blind areas are circles without mobile coverage in the outskirts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from itertools import pairwise

import numpy as np
import shapely
from numpy.typing import NDArray

from simulators.plane import Plane, cumulative_m

log = logging.getLogger(__name__)


class RoadKind(StrEnum):
    EXPRESSWAY = "expressway"
    RING = "ring"
    ARTERIAL = "arterial"
    RIVERSIDE = "riverside"
    LOCAL = "local"
    ACCESS = "access"


ROAD_KINDS: tuple[RoadKind, ...] = tuple(RoadKind)
SPEED_LIMIT_KMH: dict[RoadKind, float] = {
    RoadKind.EXPRESSWAY: 100.0,
    RoadKind.RING: 80.0,
    RoadKind.ARTERIAL: 60.0,
    RoadKind.RIVERSIDE: 50.0,
    RoadKind.LOCAL: 40.0,
    RoadKind.ACCESS: 20.0,
}
_SIGNALLED = frozenset({RoadKind.ARTERIAL, RoadKind.RIVERSIDE, RoadKind.LOCAL})
FORBIDDEN_SITE_KINDS: tuple[str, ...] = ("scenic_spot", "golf_club", "entertainment")
_SITE_RADIUS_M = {"scenic_spot": 350.0, "golf_club": 600.0, "entertainment": 120.0}


@dataclass(frozen=True, slots=True, kw_only=True)
class CityParams:
    name: str = "常州"
    lon: float = 119.97
    lat: float = 31.81
    plate_prefix: str = "苏D"
    half_width_m: float = 14_000.0
    arterial_spacing_m: float = 2_000.0
    local_spacing_m: float = 500.0
    downtown_half_width_m: float = 5_000.0
    ring_radius_m: float = 9_000.0
    tunnels: int = 3
    blind_areas: int = 3
    forbidden_sites: int = 12
    seed: int = 20_260_101


@dataclass(frozen=True, slots=True, kw_only=True)
class Road:
    road_id: int
    kind: RoadKind
    name: str
    x_m: NDArray[np.float64]
    y_m: NDArray[np.float64]


@dataclass(frozen=True, slots=True, kw_only=True)
class ForbiddenSite:
    kind: str
    node: int
    polygon_lon: NDArray[np.float64]  # closed ring, first == last
    polygon_lat: NDArray[np.float64]


@dataclass(frozen=True, slots=True, kw_only=True)
class BlindArea:
    lon: float
    lat: float
    radius_m: float


@dataclass(frozen=True, slots=True, kw_only=True)
class RoadNetwork:
    """Nodes and directed-both-ways edges; each edge's polyline runs from ``edge_from`` to ``edge_to``."""

    plane: Plane
    node_lon: NDArray[np.float64]
    node_lat: NDArray[np.float64]
    node_signal: NDArray[np.bool_]  # a junction of ordinary streets, with traffic lights
    edge_from: NDArray[np.int64]
    edge_to: NDArray[np.int64]
    edge_road: NDArray[np.int64]
    edge_kind: NDArray[np.int8]  # index into ROAD_KINDS
    edge_speed_kmh: NDArray[np.float64]
    edge_length_m: NDArray[np.float64]
    edge_tunnel: NDArray[np.bool_]
    vertex_start: NDArray[np.int64]  # edge e's vertices are vertex_lon[vertex_start[e]:vertex_start[e + 1]]
    vertex_lon: NDArray[np.float64]
    vertex_lat: NDArray[np.float64]
    roads: tuple[Road, ...]

    @property
    def nodes(self) -> int:
        return len(self.node_lon)

    @property
    def edges(self) -> int:
        return len(self.edge_from)


@dataclass(frozen=True, slots=True, kw_only=True)
class City:
    params: CityParams
    network: RoadNetwork
    forbidden: tuple[ForbiddenSite, ...]
    blind_areas: tuple[BlindArea, ...]


def _line(
    x: NDArray[np.float64] | list[float], y: NDArray[np.float64] | list[float]
) -> tuple[NDArray[np.float64], ...]:
    return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)


def draw_roads(params: CityParams) -> list[Road]:
    """The city's roads as polylines in the plane, before junctions are found."""
    half, art, loc, down = (
        params.half_width_m,
        params.arterial_spacing_m,
        params.local_spacing_m,
        params.downtown_half_width_m,
    )
    drawn: list[tuple[RoadKind, str, tuple[NDArray[np.float64], ...]]] = []
    n = int(half // art)
    for k in range(-n, n + 1):
        drawn.append((RoadKind.ARTERIAL, f"纵{k + n + 1}路", _line([k * art, k * art], [-half, half])))
        drawn.append((RoadKind.ARTERIAL, f"横{k + n + 1}路", _line([-half, half], [k * art, k * art])))
    m = int(down // loc)
    for k in range(-m, m + 1):
        offset = k * loc
        if abs(offset / art - round(offset / art)) < 1e-9:
            continue  # an arterial runs here
        drawn.append((RoadKind.LOCAL, f"纵{k + m + 1}街", _line([offset, offset], [-down, down])))
        drawn.append((RoadKind.LOCAL, f"横{k + m + 1}街", _line([-down, down], [offset, offset])))
    theta = np.linspace(0.0, 2 * np.pi, 721)
    ring_x, ring_y = params.ring_radius_m * np.cos(theta), params.ring_radius_m * np.sin(theta)
    ring_x[-1], ring_y[-1] = ring_x[0], ring_y[0]
    drawn.append((RoadKind.RING, "环城高架", (ring_x, ring_y)))
    xs = np.arange(-half, half + 1.0, 50.0)
    drawn.append((RoadKind.RIVERSIDE, "滨河路", (xs, 0.22 * half + 600.0 * np.sin(2 * np.pi * xs / 7_000.0))))
    drawn.append(
        (RoadKind.RIVERSIDE, "运河路", (-0.25 * half + 450.0 * np.sin(2 * np.pi * xs / 6_000.0), xs))
    )
    for number, angle_deg in enumerate((20.0, 110.0, 200.0, 290.0), start=1):
        a = np.radians(angle_deg)
        reach = min(half / max(abs(np.cos(a)), 1e-9), half / max(abs(np.sin(a)), 1e-9))
        r = np.array([params.ring_radius_m, reach + 1_500.0])  # past the edge road, to the boundary
        drawn.append((RoadKind.EXPRESSWAY, f"G{number}高速", (r * np.cos(a), r * np.sin(a))))
    return [
        Road(road_id=i, kind=kind, name=name, x_m=xy[0], y_m=xy[1])
        for i, (kind, name, xy) in enumerate(drawn)
    ]


def _junctions(roads: list[Road]) -> tuple[list[NDArray[np.float64]], NDArray[np.int64]]:
    """Split roads where they cross: the pieces (N×2 coordinate arrays) and the road of each piece."""
    lines = [shapely.LineString(np.column_stack((r.x_m, r.y_m))) for r in roads]
    noded = shapely.node(shapely.MultiLineString(lines))
    pieces = list(shapely.get_parts(noded))
    middles = shapely.line_interpolate_point(pieces, 0.5, normalized=True)
    nearest = shapely.STRtree(lines).query_nearest(middles, all_matches=False)
    road_of = np.empty(len(pieces), dtype=np.int64)
    road_of[nearest[0]] = nearest[1]
    return [np.asarray(shapely.get_coordinates(p), dtype=np.float64) for p in pieces], road_of


def _site_polygon(
    rng: np.random.Generator, cx: float, cy: float, radius_m: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    angles = np.sort(rng.uniform(0, 2 * np.pi, 11))
    radii = radius_m * rng.uniform(0.75, 1.0, 11)
    x, y = cx + radii * np.cos(angles), cy + radii * np.sin(angles)
    return np.append(x, x[0]), np.append(y, y[0])


def build_city(params: CityParams = CityParams()) -> City:
    """The road network, forbidden sites and blind areas; the same params give the same city."""
    rng = np.random.default_rng(params.seed)
    plane = Plane(lon0=params.lon, lat0=params.lat)
    roads = draw_roads(params)
    pieces, piece_road = _junctions(roads)
    road_lines = shapely.MultiLineString([np.column_stack((r.x_m, r.y_m)) for r in roads])

    ends = np.array([[p[0], p[-1]] for p in pieces]).reshape(-1, 2)
    keys = np.round(ends, 2)
    node_xy, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    edge_from, edge_to = inverse[0::2].astype(np.int64), inverse[1::2].astype(np.int64)
    keep = edge_from != edge_to
    pieces = [p for p, k in zip(pieces, keep, strict=True) if k]
    piece_road, edge_from, edge_to = piece_road[keep], edge_from[keep], edge_to[keep]
    # snap each piece's ends to its node so consecutive edges share vertices exactly
    for p, a, b in zip(pieces, edge_from, edge_to, strict=True):
        p[0], p[-1] = node_xy[a], node_xy[b]

    # forbidden sites: block interiors far enough from every road, each with an access road to a node
    node_tree = shapely.STRtree(np.asarray(shapely.points(node_xy), dtype=object))
    centres = _block_centres(params)
    rng.shuffle(centres)
    sites: list[tuple[str, int, NDArray[np.float64], NDArray[np.float64]]] = []
    used: list[tuple[float, float]] = []
    for cx, cy in centres:
        if len(sites) >= params.forbidden_sites:
            break
        kind = FORBIDDEN_SITE_KINDS[len(sites) % len(FORBIDDEN_SITE_KINDS)]
        centre = shapely.Point(cx, cy)
        clearance = float(shapely.distance(centre, road_lines))
        radius = min(_SITE_RADIUS_M[kind], clearance - 100.0)
        if radius < 60.0 or any(np.hypot(cx - ux, cy - uy) < 1_500.0 for ux, uy in used):
            continue
        node = int(node_tree.query_nearest(centre)[0])
        spur = shapely.LineString([(cx, cy), tuple(node_xy[node])])
        inner = shapely.get_coordinates(shapely.line_interpolate_point(spur, spur.length - 15.0))[0]
        if float(shapely.distance(shapely.LineString([(cx, cy), tuple(inner)]), road_lines)) < 10.0:
            continue  # the access road would cross another road
        px, py = _site_polygon(rng, cx, cy, radius)
        site_node = len(node_xy) + len(sites)
        sites.append((kind, site_node, px, py))
        pieces.append(np.array([node_xy[node], [cx, cy]]))
        piece_road = np.append(piece_road, len(roads))
        access_x, access_y = _line([node_xy[node][0], cx], [node_xy[node][1], cy])
        roads.append(
            Road(road_id=len(roads), kind=RoadKind.ACCESS, name=f"{kind}进场路", x_m=access_x, y_m=access_y)
        )
        edge_from, edge_to = np.append(edge_from, node), np.append(edge_to, site_node)
        used.append((cx, cy))
    if len(sites) < params.forbidden_sites:
        log.warning(
            "placed %d of %d forbidden sites (not enough clear blocks)", len(sites), params.forbidden_sites
        )
    all_nodes = np.vstack([node_xy, np.array(used, dtype=np.float64).reshape(-1, 2)])

    kind_code = np.array([ROAD_KINDS.index(roads[r].kind) for r in piece_road], dtype=np.int8)
    speed = np.array([SPEED_LIMIT_KMH[roads[r].kind] for r in piece_road])
    sizes = np.array([len(p) for p in pieces], dtype=np.int64)
    vertex_start = np.concatenate(([0], np.cumsum(sizes)))
    xy = np.vstack(pieces)
    vlon, vlat = plane.to_lonlat(xy[:, 0], xy[:, 1])
    lengths = np.array([cumulative_m(vlon[a:b], vlat[a:b])[-1] for a, b in pairwise(vertex_start)])
    nlon, nlat = plane.to_lonlat(all_nodes[:, 0], all_nodes[:, 1])

    degree = np.bincount(np.concatenate((edge_from, edge_to)), minlength=len(all_nodes))
    ordinary = np.isin(kind_code, [ROAD_KINDS.index(k) for k in _SIGNALLED])
    touches_fast = np.zeros(len(all_nodes), dtype=np.bool_)
    touches_fast[edge_from[~ordinary]] = True
    touches_fast[edge_to[~ordinary]] = True
    signal = (degree >= 3) & ~touches_fast

    tunnel = np.zeros(len(pieces), dtype=np.bool_)
    candidates = np.flatnonzero(
        np.isin(kind_code, [ROAD_KINDS.index(RoadKind.ARTERIAL), ROAD_KINDS.index(RoadKind.RING)])
        & (lengths > 400.0)
        & (lengths < 1_600.0)
    )
    tunnel[rng.choice(candidates, size=min(params.tunnels, len(candidates)), replace=False)] = True

    network = RoadNetwork(
        plane=plane,
        node_lon=nlon,
        node_lat=nlat,
        node_signal=signal,
        edge_from=edge_from,
        edge_to=edge_to,
        edge_road=piece_road,
        edge_kind=kind_code,
        edge_speed_kmh=speed,
        edge_length_m=lengths,
        edge_tunnel=tunnel,
        vertex_start=vertex_start,
        vertex_lon=vlon,
        vertex_lat=vlat,
        roads=tuple(roads),
    )
    forbidden = tuple(
        ForbiddenSite(kind=kind, node=node, polygon_lon=plon, polygon_lat=plat)
        for kind, node, px, py in sites
        for plon, plat in [plane.to_lonlat(px, py)]
    )
    blind = []
    for _ in range(params.blind_areas):
        angle, distance = rng.uniform(0, 2 * np.pi), rng.uniform(0.55, 0.85) * params.half_width_m
        lon, lat = plane.to_lonlat(distance * np.cos(angle), distance * np.sin(angle))
        blind.append(BlindArea(lon=float(lon), lat=float(lat), radius_m=float(rng.uniform(700.0, 1_300.0))))
    log.info(
        "city %s: %d junctions, %d road pieces (%.0f km), %d tunnels, %d forbidden sites, %d blind areas",
        params.name,
        network.nodes,
        network.edges,
        lengths.sum() / 1000,
        tunnel.sum(),
        len(forbidden),
        len(blind),
    )
    return City(params=params, network=network, forbidden=forbidden, blind_areas=tuple(blind))


def _block_centres(params: CityParams) -> NDArray[np.float64]:
    """Centres of downtown blocks and of the arterial blocks outside downtown."""
    loc, art = params.local_spacing_m, params.arterial_spacing_m
    m = int(params.downtown_half_width_m // loc)
    inner = [((i + 0.5) * loc, (j + 0.5) * loc) for i in range(-m, m) for j in range(-m, m)]
    n = int(params.half_width_m // art)
    outer = [
        ((i + 0.5) * art, (j + 0.5) * art)
        for i in range(-n, n)
        for j in range(-n, n)
        if max(abs((i + 0.5) * art), abs((j + 0.5) * art)) > params.downtown_half_width_m
    ]
    return np.array(inner + outer, dtype=np.float64)
