"""Fastest paths on the road network (free-flow travel time) and the polylines they follow."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from simulators.city import RoadNetwork
from simulators.plane import cumulative_m


class NoRouteError(Exception):
    """Two junctions are not connected by the road network."""

    def __init__(self, start: int, end: int) -> None:
        super().__init__(f"no road from junction {start} to junction {end}")
        self.start, self.end = start, end


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    """A path through junctions ``nodes``; vertex i is at (lon[i], lat[i]), cum_m[i] metres along."""

    nodes: NDArray[np.int64]
    node_vertex: NDArray[np.int64]  # the vertex index of each junction in ``nodes``
    lon: NDArray[np.float64]
    lat: NDArray[np.float64]
    cum_m: NDArray[np.float64]
    segment_edge: NDArray[np.int64]  # the road piece each segment (vertex i → i + 1) lies on

    @property
    def length_m(self) -> float:
        return float(self.cum_m[-1])

    @property
    def start(self) -> int:
        return int(self.nodes[0])

    @property
    def end(self) -> int:
        return int(self.nodes[-1])


def join_routes(parts: Sequence[Route]) -> Route:
    """One route following ``parts`` in turn (each part starts where the previous one ended)."""
    if len(parts) == 1:
        return parts[0]
    for a, b in pairwise(parts):
        if a.end != b.start:
            raise ValueError(f"route parts do not meet: {a.end} → {b.start}")
    offsets = np.cumsum([0] + [len(p.lon) - 1 for p in parts[:-1]])
    lon = np.concatenate([parts[0].lon[:1]] + [p.lon[1:] for p in parts])
    lat = np.concatenate([parts[0].lat[:1]] + [p.lat[1:] for p in parts])
    nodes = np.concatenate([parts[0].nodes[:1]] + [p.nodes[1:] for p in parts])
    node_vertex = np.concatenate(
        [parts[0].node_vertex[:1]] + [p.node_vertex[1:] + o for p, o in zip(parts, offsets, strict=True)]
    )
    return Route(
        nodes=nodes,
        node_vertex=node_vertex,
        lon=lon,
        lat=lat,
        cum_m=cumulative_m(lon, lat),
        segment_edge=np.concatenate([p.segment_edge for p in parts]),
    )


class Router:
    """Dijkstra from each start junction once (scipy), paths rebuilt from predecessors and cached."""

    def __init__(self, network: RoadNetwork) -> None:
        self.network = network
        time_s = network.edge_length_m / (network.edge_speed_kmh / 3.6)
        u = np.concatenate((network.edge_from, network.edge_to))
        v = np.concatenate((network.edge_to, network.edge_from))
        w = np.concatenate((time_s, time_s))
        edge = np.concatenate((np.arange(network.edges), np.arange(network.edges)))
        order = np.lexsort((w, v, u))  # the fastest piece first for each (u, v)
        u, v, w, edge = u[order], v[order], w[order], edge[order]
        first = np.concatenate(([True], (u[1:] != u[:-1]) | (v[1:] != v[:-1])))
        u, v, w, edge = u[first], v[first], w[first], edge[first]
        n = network.nodes
        self._graph = csr_matrix((w, (u, v)), shape=(n, n))
        self._edge_of = {(int(a), int(b)): int(e) for a, b, e in zip(u, v, edge, strict=True)}
        self._predecessors: dict[int, NDArray[np.int32]] = {}
        self._time_s: dict[int, NDArray[np.float64]] = {}
        self._routes: dict[tuple[int, int], Route] = {}

    def _search(self, start: int) -> None:
        if start not in self._predecessors:
            times, predecessors = dijkstra(
                self._graph, directed=True, indices=[start], return_predecessors=True
            )
            self._time_s[start] = np.asarray(times[0], dtype=np.float64)
            self._predecessors[start] = np.asarray(predecessors[0], dtype=np.int32)

    def travel_time_s(self, start: int, end: int) -> float:
        """Free-flow travel time at the speed limits."""
        self._search(start)
        return float(self._time_s[start][end])

    def route(self, start: int, end: int) -> Route:
        key = (start, end)
        cached = self._routes.get(key)
        if cached is None:
            cached = self._routes[key] = self._build(start, end)
        return cached

    def via(self, stops: Sequence[int]) -> Route:
        """The route through junctions ``stops`` in turn."""
        return join_routes([self.route(a, b) for a, b in pairwise(stops)])

    def _build(self, start: int, end: int) -> Route:
        if start == end:
            raise ValueError(f"a route needs two different junctions, got {start} twice")
        self._search(start)
        predecessors = self._predecessors[start]
        path = [end]
        while path[-1] != start:
            previous = int(predecessors[path[-1]])
            if previous < 0:
                raise NoRouteError(start, end)
            path.append(previous)
        path.reverse()
        net = self.network
        lons: list[NDArray[np.float64]] = []
        lats: list[NDArray[np.float64]] = []
        edges: list[NDArray[np.int64]] = []
        node_vertex = [0]
        for a, b in pairwise(path):
            e = self._edge_of[(a, b)]
            lo, hi = net.vertex_start[e], net.vertex_start[e + 1]
            step = 1 if net.edge_from[e] == a else -1
            lon, lat = net.vertex_lon[lo:hi][::step], net.vertex_lat[lo:hi][::step]
            skip = 1 if lons else 0
            lons.append(lon[skip:])
            lats.append(lat[skip:])
            edges.append(np.full(len(lon) - 1, e, dtype=np.int64))
            node_vertex.append(node_vertex[-1] + len(lon) - 1)
        lon_all, lat_all = np.concatenate(lons), np.concatenate(lats)
        return Route(
            nodes=np.array(path, dtype=np.int64),
            node_vertex=np.array(node_vertex, dtype=np.int64),
            lon=lon_all,
            lat=lat_all,
            cum_m=cumulative_m(lon_all, lat_all),
            segment_edge=np.concatenate(edges),
        )
