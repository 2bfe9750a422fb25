"""How well trips kept to approved routes: corridor share, deviation, off-route distance, detour, arrival.

Trip fixes and routes are projected onto a local transverse Mercator plane (pyproj) centred on the
whole degree nearest the route, so a route always lands on the same plane. Each route is simplified
(Douglas-Peucker, ``simplify_m``: distances are within that of the exact ones) and the distance of
every fix to it is taken in numpy, vectorized over all fixes of all (trip, route) pairs at once and
pruned by the bounding boxes of blocks of segments (exact; 3-4x faster than shapely's ``distance``,
which the tests compare against).

Per (trip, route) pair:
- ``inside_share``: the share of the trip's distance inside the corridor (a leg counts half when one
  end is outside);
- ``off_route_m``: the rest of the distance; ``max_deviation_m``: the largest fix-to-route distance;
- ``approved_m``: the route's geodesic length; ``detour_ratio``: trip distance / approved length;
- ``arrived``: the trip ended within ``arrival_radius_m`` of the destination (``arrival_distance_m``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from tracks.columns import ColumnError, Rows, freeze_columns, spec
from tracks.geo import Frame, distance_m, leg_m, metric, project, simplify_lines
from tracks.measure import Trips
from tracks.params import ConformParams
from tracks.ranges import expand, ramp, reduce_ranges
from tracks.split import geometry
from tracks.track import Track

_CHUNK = 1 << 16  # fixes per block of the segment loop: keeps the work arrays in cache


@dataclass(frozen=True, slots=True, kw_only=True)
class Routes:
    """Polylines in WGS-84; route k's vertices are ``lon/lat[offset[k]:offset[k + 1]]``."""

    offset: NDArray[np.int64]
    lon: NDArray[np.float64]
    lat: NDArray[np.float64]

    def __post_init__(self) -> None:
        freeze_columns(self, same_length=False)
        if len(self.lon) != len(self.lat):
            raise ColumnError("Routes.lon and Routes.lat differ in length")
        if len(self.offset) == 0 or self.offset[0] != 0 or self.offset[-1] != len(self.lon):
            raise ColumnError("Routes.offset must run from 0 to the number of vertices")
        if np.any(np.diff(self.offset) < 0):
            raise ColumnError("Routes.offset must not decrease")

    def __len__(self) -> int:
        return len(self.offset) - 1

    @property
    def vertex_count(self) -> NDArray[np.int64]:
        return np.diff(self.offset)


def routes_from(lons: Sequence[ArrayLike], lats: Sequence[ArrayLike]) -> Routes:
    lon_parts = [np.asarray(x, dtype=np.float64).ravel() for x in lons]
    lat_parts = [np.asarray(y, dtype=np.float64).ravel() for y in lats]
    counts = [len(x) for x in lon_parts]
    return Routes(
        offset=np.concatenate(([0], np.cumsum(counts, dtype=np.int64))),
        lon=np.concatenate([*lon_parts, np.zeros(0)]),
        lat=np.concatenate([*lat_parts, np.zeros(0)]),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Conformance:
    """One row per (trip, route) pair asked for; NaN figures where the route has under two vertices."""

    trip: NDArray[np.int64] = spec(index=Rows.TRIP)
    route: NDArray[np.int64] = spec(index=Rows.ORDER)  # the order whose route it is
    inside_share: NDArray[np.float64]
    max_deviation_m: NDArray[np.float64]
    off_route_m: NDArray[np.float64]
    approved_m: NDArray[np.float64]
    detour_ratio: NDArray[np.float64]
    arrived: NDArray[np.bool_]
    arrival_distance_m: NDArray[np.float64]

    def __post_init__(self) -> None:
        freeze_columns(self)

    def __len__(self) -> int:
        return len(self.trip)


def route_length_m(routes: Routes, which: NDArray[np.int64] | None = None) -> NDArray[np.float64]:
    """Geodesic length of each route (of routes ``which`` when given)."""
    which = np.arange(len(routes), dtype=np.int64) if which is None else which
    count = routes.vertex_count[which]
    vertex = expand(routes.offset[which], count)
    legs = np.zeros(len(vertex), np.float64)
    legs[1:] = leg_m(metric(routes.lon[vertex], routes.lat[vertex]))
    first = np.cumsum(count) - count
    return reduce_ranges(np.add, legs, first + 1, first + count, empty=0.0)


def conform_trips(
    track: Track,
    trips: Trips,
    *,
    trip: NDArray[np.int64],
    routes: Routes,
    route: NDArray[np.int64],
    destination_lon: NDArray[np.float64],
    destination_lat: NDArray[np.float64],
    params: ConformParams,
    leg_m: NDArray[np.float64] | None = None,
) -> Conformance:
    """Conformance of ``trips[trip[k]]`` to ``routes[route[k]]`` for each k."""
    legs_m = leg_m if leg_m is not None else geometry(track).leg_m  # per row, from the row before
    pairs = len(trip)
    arrival_m = distance_m(trips.end_lon[trip], trips.end_lat[trip], destination_lon, destination_lat)
    used, which = np.unique(route, return_inverse=True)
    approved_m = route_length_m(routes, used)[which.ravel()]
    share = np.full(pairs, np.nan)
    deviation = np.full(pairs, np.nan)
    off_route = np.full(pairs, np.nan)

    usable = np.flatnonzero(routes.vertex_count[route] >= 2)
    if len(usable):
        first, last = trips.from_row[trip[usable]], trips.to_row[trip[usable]]
        count = last - first + 1
        rows = expand(first, count)
        progress = ramp(count) / np.repeat(count, count)
        d = _distance_to_route(
            track,
            rows,
            pair_route=route[usable],
            pair_rows=count,
            routes=routes,
            simplify_m=params.simplify_m,
            progress=progress,
        )
        inside = (d <= params.corridor_m).astype(np.float64)
        starts = np.concatenate(([0], np.cumsum(count)[:-1]))
        leg = legs_m[rows].copy()
        leg[starts] = 0.0  # the leg into a trip's first fix is not the trip's
        weight = np.empty_like(inside)
        weight[1:] = 0.5 * (inside[1:] + inside[:-1])
        weight[starts] = inside[starts]
        total = np.add.reduceat(leg, starts)
        within = np.add.reduceat(leg * weight, starts)
        with np.errstate(invalid="ignore", divide="ignore"):
            share[usable] = np.where(total > 0, within / total, inside[starts])
        off_route[usable] = total - within
        deviation[usable] = np.maximum.reduceat(d, starts)

    with np.errstate(invalid="ignore", divide="ignore"):
        detour = np.where(approved_m > 0, trips.distance_m[trip] / approved_m, np.nan)
    return Conformance(
        trip=trip,
        route=route,
        inside_share=share,
        max_deviation_m=deviation,
        off_route_m=off_route,
        approved_m=np.where(routes.vertex_count[route] >= 2, approved_m, np.nan),
        detour_ratio=detour,
        arrived=arrival_m <= params.arrival_radius_m,
        arrival_distance_m=arrival_m,
    )


def _distance_to_route(
    track: Track,
    rows: NDArray[np.int64],
    *,
    pair_route: NDArray[np.int64],
    pair_rows: NDArray[np.int64],
    routes: Routes,
    simplify_m: float,
    progress: NDArray[np.float64] | None = None,
) -> NDArray[np.float64]:
    """Distance (m) of each fix ``rows[i]`` to its pair's route; one pass per plane.

    Pair k holds the next ``pair_rows[k]`` entries of ``rows`` and route ``pair_route[k]``.
    ``progress`` (0..1 per fix: how far through its trip) only speeds the search up.
    """
    d = np.empty(len(rows), np.float64)
    progress = progress if progress is not None else np.zeros(len(rows))
    used = np.unique(pair_route)
    lon0, lat0 = _frame_centres(routes, used)
    plane = lon0 * 1000 + lat0
    for key in np.unique(plane):
        frame = Frame(int(lon0[plane == key][0]), int(lat0[plane == key][0]))
        in_frame = used[plane == key]
        count = routes.vertex_count[in_frame]
        owner = np.repeat(np.arange(len(in_frame), dtype=np.int64), count)
        x, y = project(frame, *(c[expand(routes.offset[in_frame], count)] for c in (routes.lon, routes.lat)))
        x, y, owner = simplify_lines(x, y, owner, simplify_m)
        lines = _polylines(x, y, owner, len(in_frame))
        pair_line = np.searchsorted(in_frame, pair_route)
        on_plane = in_frame[np.minimum(pair_line, len(in_frame) - 1)] == pair_route
        mine = np.flatnonzero(np.repeat(on_plane, pair_rows))
        line = np.repeat(pair_line[on_plane], pair_rows[on_plane])
        px, py = project(frame, track.lon[rows[mine]], track.lat[rows[mine]])
        d[mine] = _point_distance(
            (px - lines.x0[line]).astype(np.float32),
            (py - lines.y0[line]).astype(np.float32),
            line=line,
            progress=progress[mine],
            lines=lines,
        )
    return d


_BLOCK = 8  # consecutive segments per pruning block


@dataclass(frozen=True, slots=True, kw_only=True)
class _Polylines:
    """Segments of polylines on a plane, in float32 metres relative to each polyline's first vertex,
    with the bounding box of every block of ``_BLOCK`` consecutive segments."""

    x0: NDArray[np.float64]  # per polyline: its first vertex
    y0: NDArray[np.float64]
    first: NDArray[np.int64]  # per polyline: its first segment and block, and how many segments
    count: NDArray[np.int64]
    first_block: NDArray[np.int64]
    ax: NDArray[np.float32]  # per segment: start, direction, 1 / length²
    ay: NDArray[np.float32]
    dx: NDArray[np.float32]
    dy: NDArray[np.float32]
    inv: NDArray[np.float32]
    xmin: NDArray[np.float32]  # per block
    xmax: NDArray[np.float32]
    ymin: NDArray[np.float32]
    ymax: NDArray[np.float32]


def _polylines(
    x: NDArray[np.float64], y: NDArray[np.float64], owner: NDArray[np.int64], lines: int
) -> _Polylines:
    head = np.searchsorted(owner, np.arange(lines))
    x0, y0 = x[head], y[head]
    seg = np.flatnonzero(owner[1:] == owner[:-1])  # segment j runs from vertex j to j + 1
    seg_owner = owner[seg]
    ax, ay = x[seg] - x0[seg_owner], y[seg] - y0[seg_owner]
    dx, dy = x[seg + 1] - x[seg], y[seg + 1] - y[seg]
    length2 = dx * dx + dy * dy
    inv = np.divide(1.0, length2, out=np.zeros_like(length2), where=length2 > 0)
    first = np.searchsorted(seg_owner, np.arange(lines))
    count = np.bincount(seg_owner, minlength=lines)
    blocks = -(-count // _BLOCK)
    first_block = np.concatenate(([0], np.cumsum(blocks)[:-1]))
    block_start = np.repeat(first, blocks) + ramp(blocks) * _BLOCK  # first segment of each block
    bx0, bx1 = np.minimum(ax, ax + dx), np.maximum(ax, ax + dx)
    by0, by1 = np.minimum(ay, ay + dy), np.maximum(ay, ay + dy)
    f32 = np.float32
    return _Polylines(
        x0=x0,
        y0=y0,
        first=first.astype(np.int64),
        count=count.astype(np.int64),
        first_block=first_block.astype(np.int64),
        ax=ax.astype(f32),
        ay=ay.astype(f32),
        dx=dx.astype(f32),
        dy=dy.astype(f32),
        inv=inv.astype(f32),
        xmin=np.minimum.reduceat(bx0, block_start).astype(f32) if len(block_start) else np.zeros(0, f32),
        xmax=np.maximum.reduceat(bx1, block_start).astype(f32) if len(block_start) else np.zeros(0, f32),
        ymin=np.minimum.reduceat(by0, block_start).astype(f32) if len(block_start) else np.zeros(0, f32),
        ymax=np.maximum.reduceat(by1, block_start).astype(f32) if len(block_start) else np.zeros(0, f32),
    )


def _frame_centres(routes: Routes, used: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Whole-degree centre of each route's bounding box (the plane it is measured on)."""
    bounds = np.empty(2 * len(used), np.int64)
    bounds[0::2], bounds[1::2] = routes.offset[used], np.minimum(routes.offset[used + 1], len(routes.lon) - 1)

    def middle(values: NDArray[np.float64]) -> NDArray[np.int64]:
        low = np.minimum.reduceat(values, bounds)[0::2]
        high = np.maximum.reduceat(values, bounds)[0::2]
        return np.asarray(np.round(0.5 * (low + high)), dtype=np.int64)

    return middle(routes.lon), middle(routes.lat)


def _point_distance(
    px: NDArray[np.float32],
    py: NDArray[np.float32],
    *,
    line: NDArray[np.int64],
    progress: NDArray[np.float64],
    lines: _Polylines,
) -> NDArray[np.float64]:
    """Exact distance of each point to its polyline, pruned by blocks of segments.

    Each point first takes the block where its progress through the trip suggests it is, which
    gives an upper bound; then every other block is skipped for the points whose distance to the
    block's bounding box is no smaller. Vectorized over chunks of points, looping over block ranks.
    """
    out = np.empty(len(px), np.float64)
    blocks = -(-lines.count // _BLOCK)
    order = np.argsort(-blocks[line], kind="stable")
    for lo in range(0, len(px), _CHUNK):
        sel = order[lo : lo + _CHUNK]
        x, y, which = px[sel], py[sel], line[sel]
        s0, last = lines.first[which], lines.first[which] + lines.count[which] - 1
        nb, b0 = blocks[which], lines.first_block[which]
        guess = np.minimum((progress[sel] * lines.count[which]).astype(np.int64) // _BLOCK, nb - 1)
        best = _block_distance2(x, y, s0 + guess * _BLOCK, last, lines)
        for b in range(int(nb.max(initial=0))):
            rows = np.flatnonzero((b < nb) & (b != guess))
            block = b0[rows] + b
            ex = np.maximum(np.maximum(lines.xmin[block] - x[rows], x[rows] - lines.xmax[block]), 0)
            ey = np.maximum(np.maximum(lines.ymin[block] - y[rows], y[rows] - lines.ymax[block]), 0)
            rows = rows[ex * ex + ey * ey < best[rows]]
            if len(rows):
                found = _block_distance2(x[rows], y[rows], s0[rows] + b * _BLOCK, last[rows], lines)
                best[rows] = np.minimum(best[rows], found)
        out[sel] = np.sqrt(best.astype(np.float64))
    return out


def _block_distance2(
    x: NDArray[np.float32],
    y: NDArray[np.float32],
    start: NDArray[np.int64],
    last: NDArray[np.int64],
    lines: _Polylines,
) -> NDArray[np.float32]:
    """Squared distance of each point to segments ``start .. start + _BLOCK - 1`` (not past ``last``)."""
    best = np.full(len(x), np.inf, np.float32)
    wx, wy, u, tmp = (np.empty(len(x), np.float32) for _ in range(4))
    for k in range(_BLOCK):
        j = np.minimum(start + k, last)
        sdx, sdy = lines.dx[j], lines.dy[j]
        np.subtract(x, lines.ax[j], out=wx)
        np.subtract(y, lines.ay[j], out=wy)
        np.multiply(wx, sdx, out=u)
        np.multiply(wy, sdy, out=tmp)
        u += tmp
        u *= lines.inv[j]
        np.clip(u, 0.0, 1.0, out=u)
        np.multiply(u, sdx, out=tmp)
        wx -= tmp
        np.multiply(u, sdy, out=tmp)
        wy -= tmp
        np.multiply(wx, wx, out=wx)
        np.multiply(wy, wy, out=wy)
        wx += wy
        np.minimum(best, wx, out=best)
    return best
