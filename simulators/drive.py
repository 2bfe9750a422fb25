"""Driving: speed profiles along whole legs at once, and where each car is at any time. No loop per fix.

A leg's profile is built on a grid of points every ``grid_m`` metres along its route (plus every
junction where the car stops or turns). The wanted speed is a share of the road's limit with a slow
wave, smoothed so it never exceeds what it smooths; it is capped by what the car can reach from the
nearest stop (start, end, a red light: v = √(2·a·d)) and the nearest sharp turn (v = √(v_turn² + 2·a·d)).
Time between grid points is distance over the mean of the two speeds — exact under constant
acceleration. A red light adds a wait at its point. All legs of a batch are laid end to end on one
distance axis and one time axis, so every step is one numpy call over the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import minimum_filter1d, uniform_filter1d

from simulators.city import RoadNetwork
from simulators.plane import bearing_deg
from simulators.routing import Route

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]


@dataclass(frozen=True, slots=True, kw_only=True)
class DriveParams:
    grid_m: float = 10.0
    accel_mps2: tuple[float, float] = (1.2, 2.2)  # per leg (driver and car)
    cruise_ratio: tuple[float, float] = (0.82, 0.94)  # of the limit, per leg
    max_ratio: float = 0.97  # a compliant driver stays below this share of the limit
    wave_ratio: float = 0.04
    wave_m: float = 1_500.0
    turn_deg: float = 45.0
    turn_speed_kmh: float = 20.0
    red_light_probability: float = 0.35
    red_light_wait_s: tuple[float, float] = (5.0, 60.0)
    overspeed_ratio: tuple[float, float] = (1.32, 1.45)
    overspeed_min_run_m: float = 2_000.0  # a straight stretch of one road this long is needed to speed
    overspeed_margin_m: float = 300.0
    smooth_points: int = 9


@dataclass(frozen=True, slots=True, kw_only=True)
class Legs:
    """A batch of driven legs: routes and speed profiles laid end to end.

    Leg k's vertices are [vertex_start[k], vertex_start[k+1]); grid points [grid_start[k], grid_start[k+1]).
    ``*_axis_m`` are on the shared distance axis (leg k starts at dist_base[k]); ``grid_clock_s`` on the
    shared time axis (leg k departs at time_base[k]).
    """

    length_m: Floats
    duration_s: Floats
    dist_base: Floats
    time_base: Floats
    vertex_start: Ints
    grid_start: Ints
    overspeed_from_m: Floats  # NaN where the leg has no overspeed stretch
    overspeed_to_m: Floats
    lon: Floats
    lat: Floats
    vertex_axis_m: Floats
    vertex_limit_kmh: Floats  # of the segment starting at the vertex (the leg's last vertex repeats the last)
    vertex_tunnel: NDArray[np.bool_]
    vertex_heading_deg: Floats
    grid_axis_m: Floats
    grid_clock_s: Floats
    grid_v_mps: Floats
    grid_limit_kmh: Floats

    def __len__(self) -> int:
        return len(self.length_m)

    def path(self, k: int) -> tuple[Floats, Floats]:
        a, b = self.vertex_start[k], self.vertex_start[k + 1]
        return self.lon[a:b], self.lat[a:b]


@dataclass(frozen=True, slots=True, kw_only=True)
class Located:
    lon: Floats
    lat: Floats
    s_m: Floats  # metres along the leg
    speed_mps: Floats
    heading_deg: Floats
    limit_kmh: Floats
    tunnel: NDArray[np.bool_]


def _ranges(counts: Ints) -> tuple[Ints, Ints]:
    """For each of len(counts) groups, (group of each item, index of the item within its group)."""
    group = np.repeat(np.arange(len(counts)), counts)
    first = np.concatenate(([0], np.cumsum(counts)[:-1]))
    return group, np.arange(int(counts.sum())) - first[group]


def _overspeed_stretch(route: Route, network: RoadNetwork, params: DriveParams) -> tuple[float, float]:
    """The middle of the longest run of one fast road on the route, or NaNs if none is long enough."""
    edges = route.segment_edge
    road = network.edge_road[edges]
    fast = network.edge_speed_kmh[edges] >= 60.0
    change = np.flatnonzero((road[1:] != road[:-1]) | (fast[1:] != fast[:-1])) + 1
    bounds = np.concatenate(([0], change, [len(edges)]))
    best, best_m = (np.nan, np.nan), 0.0
    for a, b in pairwise(bounds):
        if fast[a]:
            start, end = route.cum_m[a], route.cum_m[b]
            if end - start >= params.overspeed_min_run_m and end - start > best_m:
                best, best_m = (
                    (start + params.overspeed_margin_m, end - params.overspeed_margin_m),
                    end - start,
                )
    return best


def drive_legs(
    routes: Sequence[Route],
    overspeed: NDArray[np.bool_],
    network: RoadNetwork,
    params: DriveParams,
    rng: np.random.Generator,
) -> Legs:
    """Speed profiles for ``routes`` (legs); flagged legs speed on a long stretch of one fast road, if any."""
    n = len(routes)
    if n == 0:
        return _no_legs()
    nv = np.array([len(r.lon) for r in routes], dtype=np.int64)
    vertex_start = np.concatenate(([0], np.cumsum(nv)))
    length = np.array([r.length_m for r in routes])
    dist_base = np.concatenate(([0.0], np.cumsum(length + 1.0)[:-1]))
    lon = np.concatenate([r.lon for r in routes])
    lat = np.concatenate([r.lat for r in routes])
    leg_of_vertex = np.repeat(np.arange(n), nv)
    vertex_axis_m = dist_base[leg_of_vertex] + np.concatenate([r.cum_m for r in routes])
    seg_edge = np.concatenate([np.append(r.segment_edge, r.segment_edge[-1]) for r in routes])
    limit_v = network.edge_speed_kmh[seg_edge]
    heading = np.zeros(len(lon))
    heading[:-1] = bearing_deg(lon[:-1], lat[:-1], lon[1:], lat[1:])
    last = vertex_start[1:] - 1
    heading[last] = heading[last - 1]

    # junctions inside each leg: red lights and sharp turns
    inner_vertex = np.concatenate([r.node_vertex[1:-1] + vertex_start[k] for k, r in enumerate(routes)])
    inner_node = np.concatenate([r.nodes[1:-1] for r in routes])
    turn_by = np.abs((heading[inner_vertex] - heading[inner_vertex - 1] + 180.0) % 360.0 - 180.0)
    red = network.node_signal[inner_node] & (rng.random(len(inner_node)) < params.red_light_probability)
    waits = rng.uniform(*params.red_light_wait_s, len(inner_node))
    sharp = (turn_by > params.turn_deg) & ~red

    os_from, os_to = np.full(n, np.nan), np.full(n, np.nan)
    for k in np.flatnonzero(overspeed):
        os_from[k], os_to[k] = _overspeed_stretch(routes[int(k)], network, params)
    has_os = ~np.isnan(os_from)
    leg_of_inner = leg_of_vertex[inner_vertex]
    s_inner = vertex_axis_m[inner_vertex] - dist_base[leg_of_inner]
    in_os = (
        has_os[leg_of_inner] & (s_inner > os_from[leg_of_inner] - 400) & (s_inner < os_to[leg_of_inner] + 400)
    )
    red &= ~in_os
    sharp &= ~in_os

    stop_axis_m = np.sort(np.concatenate((dist_base, dist_base + length, vertex_axis_m[inner_vertex[red]])))
    turn_axis_m = np.sort(vertex_axis_m[inner_vertex[sharp]])

    # grid points
    counts = (np.floor(length / params.grid_m) + 1).astype(np.int64)
    g_leg, g_i = _ranges(counts)
    axis = np.unique(
        np.concatenate((dist_base[g_leg] + g_i * params.grid_m, dist_base + length, stop_axis_m, turn_axis_m))
    )
    leg = np.searchsorted(dist_base, axis, side="right") - 1
    seg = np.clip(np.searchsorted(vertex_axis_m, axis, side="right") - 1, 0, len(vertex_axis_m) - 1)
    limit_kmh = limit_v[seg]
    limit = limit_kmh / 3.6

    accel = rng.uniform(*params.accel_mps2, n)[leg]
    cruise = rng.uniform(*params.cruise_ratio, n)
    phase = rng.uniform(0, 2 * np.pi, n)
    ratio = np.minimum(
        cruise[leg] * (1 + params.wave_ratio * np.sin(2 * np.pi * axis / params.wave_m + phase[leg])),
        params.max_ratio,
    )
    s_leg = axis - dist_base[leg]
    speeding = has_os[leg] & (s_leg >= os_from[leg]) & (s_leg <= os_to[leg])
    ratio = np.where(speeding, rng.uniform(*params.overspeed_ratio, n)[leg], ratio)
    w = params.smooth_points
    target = uniform_filter1d(minimum_filter1d(limit * ratio, w, mode="nearest"), w, mode="nearest")
    target = np.where(speeding, limit * ratio, np.minimum(target, limit * ratio))

    def nearest_gap(points: Floats) -> Floats:
        if len(points) == 0:
            return np.full(len(axis), np.inf)
        before = points[np.clip(np.searchsorted(points, axis, side="right") - 1, 0, len(points) - 1)]
        after = points[np.clip(np.searchsorted(points, axis, side="left"), 0, len(points) - 1)]
        return np.minimum(
            np.where(before <= axis, axis - before, np.inf), np.where(after >= axis, after - axis, np.inf)
        )

    v_turn = params.turn_speed_kmh / 3.6
    v = np.minimum.reduce(
        [
            target,
            np.sqrt(2 * accel * nearest_gap(stop_axis_m)),
            np.sqrt(v_turn**2 + 2 * accel * nearest_gap(turn_axis_m)),
        ]
    )

    # time: distance over mean speed, restarted at each leg; red lights hold the car at their point
    dt = np.zeros(len(axis))
    same = leg[1:] == leg[:-1]
    mean_v = np.maximum((v[1:] + v[:-1]) / 2, 0.05)
    dt[1:] = np.where(same, np.diff(axis) / mean_v, 0.0)
    first_point = np.concatenate(([0], np.flatnonzero(~same) + 1))
    wait = np.zeros(len(axis))
    red_points = np.searchsorted(axis, vertex_axis_m[inner_vertex[red]])
    wait[red_points] = waits[red]
    run = np.cumsum(dt)
    run -= run[first_point][leg]
    waited = np.cumsum(wait)
    waited -= waited[first_point][leg]
    copies = 1 + (wait > 0)
    idx = np.repeat(np.arange(len(axis)), copies)
    second = np.zeros(len(idx), dtype=np.bool_)
    second[np.cumsum(copies) - 1] = copies == 2
    t = run[idx] + waited[idx] - np.where(second, 0.0, wait[idx])
    grid_leg = leg[idx]
    grid_start = np.searchsorted(grid_leg, np.arange(n + 1))
    duration = t[grid_start[1:] - 1]
    time_base = np.concatenate(([0.0], np.cumsum(duration + 1.0)[:-1]))
    return Legs(
        length_m=length,
        duration_s=duration,
        dist_base=dist_base,
        time_base=time_base,
        vertex_start=vertex_start,
        grid_start=grid_start,
        overspeed_from_m=os_from,
        overspeed_to_m=os_to,
        lon=lon,
        lat=lat,
        vertex_axis_m=vertex_axis_m,
        vertex_limit_kmh=limit_v,
        vertex_tunnel=network.edge_tunnel[seg_edge],
        vertex_heading_deg=heading,
        grid_axis_m=axis[idx],
        grid_clock_s=time_base[grid_leg] + t,
        grid_v_mps=v[idx],
        grid_limit_kmh=limit_kmh[idx],
    )


def locate(legs: Legs, leg: Ints, t_s: Floats) -> Located:
    """Where the car driving leg ``leg[i]`` is ``t_s[i]`` seconds after its departure (clamped to the leg)."""
    t = np.clip(t_s, 0.0, legs.duration_s[leg])
    clock = legs.time_base[leg] + t
    axis = np.interp(clock, legs.grid_clock_s, legs.grid_axis_m)
    speed = np.interp(clock, legs.grid_clock_s, legs.grid_v_mps)
    lo, hi = legs.vertex_start[leg], legs.vertex_start[leg + 1] - 2
    vi = np.clip(np.searchsorted(legs.vertex_axis_m, axis, side="right") - 1, lo, hi)
    span = legs.vertex_axis_m[vi + 1] - legs.vertex_axis_m[vi]
    frac = np.clip((axis - legs.vertex_axis_m[vi]) / np.where(span > 0, span, 1.0), 0.0, 1.0)
    return Located(
        lon=legs.lon[vi] + frac * (legs.lon[vi + 1] - legs.lon[vi]),
        lat=legs.lat[vi] + frac * (legs.lat[vi + 1] - legs.lat[vi]),
        s_m=axis - legs.dist_base[leg],
        speed_mps=speed,
        heading_deg=legs.vertex_heading_deg[vi],
        limit_kmh=legs.vertex_limit_kmh[vi],
        tunnel=legs.vertex_tunnel[vi],
    )


def speed_runs_over(legs: Legs, k: int, ratio: float) -> list[tuple[float, float]]:
    """Time spans (s after departure) of leg k during which the speed exceeds ``ratio`` × the limit."""
    a, b = legs.grid_start[k], legs.grid_start[k + 1]
    over = legs.grid_v_mps[a:b] * 3.6 > ratio * legs.grid_limit_kmh[a:b]
    if not over.any():
        return []
    edges = np.diff(np.concatenate(([0], over.astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    t = legs.grid_clock_s[a:b] - legs.time_base[k]
    return [(float(t[s]), float(t[e])) for s, e in zip(starts, ends, strict=True)]


def time_at(legs: Legs, k: int, s_m: Floats) -> Floats:
    """Seconds after departure when leg k first reaches each distance along it."""
    g0, g1 = legs.grid_start[k], legs.grid_start[k + 1]
    axis, clock = legs.grid_axis_m[g0:g1] - legs.dist_base[k], legs.grid_clock_s[g0:g1] - legs.time_base[k]
    first = np.searchsorted(axis, s_m, side="left").clip(0, len(axis) - 1)
    prev = np.maximum(first - 1, 0)
    span = axis[first] - axis[prev]
    frac = np.where(span > 0, (s_m - axis[prev]) / np.where(span > 0, span, 1.0), 0.0)
    return np.asarray(clock[prev] + frac * (clock[first] - clock[prev]), dtype=np.float64)


def _no_legs() -> Legs:
    f, i, b = np.zeros(0), np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.bool_)
    return Legs(
        length_m=f,
        duration_s=f,
        dist_base=f,
        time_base=f,
        vertex_start=i,
        grid_start=i,
        overspeed_from_m=f,
        overspeed_to_m=f,
        lon=f,
        lat=f,
        vertex_axis_m=f,
        vertex_limit_kmh=f,
        vertex_tunnel=b,
        vertex_heading_deg=f,
        grid_axis_m=f,
        grid_clock_s=f,
        grid_v_mps=f,
        grid_limit_kmh=f,
    )
