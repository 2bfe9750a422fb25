"""The rules' shapely and scipy calls (typed ``Any`` there), kept in one place: point in polygon,
distance of points to lines, and the speed limit of the road under a point.

Everything is measured on a local transverse Mercator plane (``tracks.geo.project``) in metres.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from rules.config import Polylines, SpeedLimits
from tracks.geo import Frame, frame_for, project
from tracks.ranges import expand, ramp


def frame_of(*lon_lat: tuple[NDArray[np.float64], NDArray[np.float64]]) -> Frame:
    lon = np.concatenate([p[0] for p in lon_lat] + [np.zeros(0)])
    lat = np.concatenate([p[1] for p in lon_lat] + [np.zeros(0)])
    return frame_for(lon, lat)


def zone_of_points(rings: Polylines, lon: NDArray[np.float64], lat: NDArray[np.float64]) -> NDArray[np.int64]:
    """Per point: the first ring (as a polygon) containing it, -1 if none. Boundary points are out."""
    zone = np.full(len(lon), -1, np.int64)
    if len(rings) == 0 or len(lon) == 0:
        return zone
    frame = frame_of((rings.lon, rings.lat))
    rx, ry = project(frame, rings.lon, rings.lat)
    for k in range(len(rings)):  # one pass per zone: a handful per agency
        a, b = int(rings.offset[k]), int(rings.offset[k + 1])
        if b - a < 3:
            continue
        x0, x1, y0, y1 = rx[a:b].min(), rx[a:b].max(), ry[a:b].min(), ry[a:b].max()
        lon0, lat0 = np.min(rings.lon[a:b]), np.min(rings.lat[a:b])
        lon1, lat1 = np.max(rings.lon[a:b]), np.max(rings.lat[a:b])
        pad = 1e-3  # degrees: the box in lon/lat only narrows the candidates
        near = np.flatnonzero(
            (zone < 0) & (lon >= lon0 - pad) & (lon <= lon1 + pad) & (lat >= lat0 - pad) & (lat <= lat1 + pad)
        )
        if len(near) == 0:
            continue
        px, py = project(frame, lon[near], lat[near])
        boxed = (px >= x0) & (px <= x1) & (py >= y0) & (py <= y1)
        polygon = shapely.Polygon(np.column_stack((rx[a:b], ry[a:b])))
        shapely.prepare(polygon)
        inside = np.zeros(len(near), np.bool_)
        inside[boxed] = np.asarray(shapely.contains_xy(polygon, px[boxed], py[boxed]), dtype=np.bool_)
        zone[near[inside]] = k
    return zone


def distance_to_lines(
    lines: Polylines, line: NDArray[np.int64], lon: NDArray[np.float64], lat: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Distance (m) of each point to its line ``line[i]`` (NaN where that line has under 2 vertices)."""
    d = np.full(len(lon), np.nan)
    if len(lon) == 0:
        return d
    used = np.unique(line)
    count = lines.offset[used + 1] - lines.offset[used]
    usable = used[count >= 2]
    if len(usable) == 0:
        return d
    vertex = expand(lines.offset[usable], lines.offset[usable + 1] - lines.offset[usable])
    frame = frame_of((lines.lon[vertex], lines.lat[vertex]))
    x, y = project(frame, lines.lon[vertex], lines.lat[vertex])
    owner = np.repeat(np.arange(len(usable)), lines.offset[usable + 1] - lines.offset[usable])
    geometries = np.asarray(shapely.linestrings(x, y, indices=owner), dtype=object)
    shapely.prepare(geometries)
    at = np.searchsorted(usable, line)
    ok = np.flatnonzero((at < len(usable)) & (usable[np.minimum(at, len(usable) - 1)] == line))
    px, py = project(frame, lon[ok], lat[ok])
    d[ok] = np.asarray(shapely.distance(shapely.points(px, py), geometries[at[ok]]), dtype=np.float64)
    return d


@dataclass(frozen=True, slots=True)
class RoadIndex:
    """Roads sampled every ``step_m`` on a plane, in a k-d tree, with each sample's limit."""

    frame: Frame
    tree: Any
    limit_kmh: NDArray[np.float64]
    reach_m: float
    default_kmh: float


def road_index(speed: SpeedLimits, *, step_m: float = 10.0) -> RoadIndex | None:
    default = np.nan if speed.default_limit_kmh is None else float(speed.default_limit_kmh)
    roads = speed.roads
    if len(roads) == 0 or len(roads.lon) == 0:
        return None
    frame = frame_of((roads.lon, roads.lat))
    rx, ry = project(frame, roads.lon, roads.lat)
    owner = np.repeat(np.arange(len(roads)), np.diff(roads.offset))
    seg = np.flatnonzero(owner[1:] == owner[:-1])
    dx, dy = rx[seg + 1] - rx[seg], ry[seg + 1] - ry[seg]
    pieces = np.maximum(np.ceil(np.hypot(dx, dy) / step_m), 1).astype(np.int64)
    piece_seg = np.repeat(np.arange(len(seg)), pieces)
    f = ramp(pieces) / np.repeat(pieces, pieces)
    sx = np.concatenate((rx[seg][piece_seg] + f * dx[piece_seg], rx))
    sy = np.concatenate((ry[seg][piece_seg] + f * dy[piece_seg], ry))
    limit = np.concatenate((speed.limit_kmh[owner[seg]][piece_seg], speed.limit_kmh[owner]))
    return RoadIndex(
        frame=frame,
        tree=cKDTree(np.column_stack((sx, sy))),
        limit_kmh=np.asarray(limit, dtype=np.float64),
        reach_m=speed.snap_m + step_m / 2,
        default_kmh=default,
    )


def road_limit_kmh(
    index: RoadIndex, lon: NDArray[np.float64], lat: NDArray[np.float64], *, neighbours: int = 1
) -> NDArray[np.float64]:
    """The limit at each point: the highest among the ``neighbours`` nearest road samples within reach
    (1: the nearest road's; ~24 covers every road through a junction), else the default."""
    if len(lon) == 0:
        return np.zeros(0, np.float64)
    px, py = project(index.frame, lon, lat)
    k = min(neighbours, len(index.limit_kmh))
    distance, sample = index.tree.query(np.column_stack((px, py)), k=k, distance_upper_bound=index.reach_m)
    distance = np.asarray(distance, dtype=np.float64).reshape(len(lon), k)
    sample = np.asarray(sample, dtype=np.int64).reshape(len(lon), k)
    found = np.isfinite(distance)
    limits = np.where(
        found, np.append(index.limit_kmh, 0.0)[np.minimum(sample, len(index.limit_kmh))], -np.inf
    )
    best = limits.max(axis=1)
    return np.asarray(np.where(np.isfinite(best), best, index.default_kmh), dtype=np.float64)
