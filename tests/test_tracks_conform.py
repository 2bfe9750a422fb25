"""Conformance to an approved route: corridor share, deviation, off-route distance, detour, arrival."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from tracks.conform import Conformance, conform_trips, route_length_m, routes_from
from tracks.geo import Frame, project
from tracks.params import ConformParams, Params
from tracks.pipeline import Context, run_vehicle
from tracks.synth import Row, local_track, metres_to_lonlat
from tracks.track import make_track

P = Params()


def clock(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def journey(path_xy: Sequence[tuple[float, float]]) -> list[Row]:
    """Parked at the first vertex, along the polyline at 10 m/s reporting every 10 s, parked at the end."""
    xy = np.array(path_xy, dtype=np.float64)
    lengths = np.hypot(*np.diff(xy, axis=0).T)
    along = np.arange(100.0, lengths.sum(), 100.0)
    cumulative = np.concatenate(([0.0], np.cumsum(lengths)))
    x, y = np.interp(along, cumulative, xy[:, 0]), np.interp(along, cumulative, xy[:, 1])
    start = 8 * 3600
    rows: list[Row] = [(clock(start - 60 * k), xy[0, 0], xy[0, 1]) for k in range(30, -1, -1)]
    rows += [
        (clock(start + 10 * (k + 1)), float(a), float(b)) for k, (a, b) in enumerate(zip(x, y, strict=True))
    ]
    end = start + 10 * (len(x) + 1)
    rows += [(clock(end + 60 * k), xy[-1, 0], xy[-1, 1]) for k in range(31)]
    return rows


def conform(path_xy: Sequence[tuple[float, float]], route_xy: Sequence[tuple[float, float]]) -> Conformance:
    result = run_vehicle(local_track(*journey(path_xy)), Context(), P)
    assert len(result.trips) == 1
    route = np.array(route_xy, dtype=np.float64)
    lon, lat = metres_to_lonlat(route[:, 0], route[:, 1])
    return conform_trips(
        result.kept,
        result.trips,
        trip=np.zeros(1, np.int64),
        routes=routes_from([lon], [lat]),
        route=np.zeros(1, np.int64),
        destination_lon=lon[-1:],
        destination_lat=lat[-1:],
        params=P.conform,
    )


def test_a_trip_along_the_route_conforms() -> None:
    c = conform([(0, 0), (6_000, 0)], [(0, 0), (3_000, 0), (6_000, 0)])
    assert c.inside_share[0] == 1.0
    assert c.off_route_m[0] == 0.0
    assert c.max_deviation_m[0] < 1.0
    assert c.approved_m[0] == pytest.approx(6_000, rel=1e-6)
    assert c.detour_ratio[0] == pytest.approx(1.0, rel=1e-6)
    assert c.arrived[0] and c.arrival_distance_m[0] < 1.0


def test_a_detour_is_measured() -> None:
    # 2 km along the route, 1 km north, 2 km east, back south, 2 km to the end: 8 km for a 6 km route
    path = [(0, 0), (2_000, 0), (2_000, 1_000), (4_000, 1_000), (4_000, 0), (6_000, 0)]
    c = conform(path, [(0, 0), (6_000, 0)])
    assert c.max_deviation_m[0] == pytest.approx(1_000, abs=2)
    assert c.off_route_m[0] == pytest.approx(700 + 2_000 + 700, abs=110)  # outside the 300 m corridor
    assert c.inside_share[0] == pytest.approx(1 - c.off_route_m[0] / 8_000, abs=1e-3)
    assert c.detour_ratio[0] == pytest.approx(8_000 / 6_000, rel=1e-3)
    assert c.arrived[0]


def test_not_arriving_is_reported() -> None:
    c = conform([(0, 0), (4_000, 0)], [(0, 0), (6_000, 0)])
    assert not c.arrived[0]
    assert c.arrival_distance_m[0] == pytest.approx(2_000, abs=1)


def test_a_route_of_one_vertex_gives_no_figures() -> None:
    result = run_vehicle(local_track(*journey([(0, 0), (6_000, 0)])), Context(), P)
    lon, lat = metres_to_lonlat(np.array([6_000.0]), np.zeros(1))
    c = conform_trips(
        result.kept,
        result.trips,
        trip=np.zeros(1, np.int64),
        routes=routes_from([lon], [lat]),
        route=np.zeros(1, np.int64),
        destination_lon=lon,
        destination_lat=lat,
        params=P.conform,
    )
    assert np.isnan(c.inside_share[0]) and np.isnan(c.max_deviation_m[0]) and c.arrived[0]


def test_route_lengths_do_not_leak_between_routes() -> None:
    a_lon, a_lat = metres_to_lonlat(np.array([0.0, 1_000.0]), np.zeros(2))
    b_lon, b_lat = metres_to_lonlat(np.array([5_000.0, 5_000.0, 7_000.0]), np.array([0.0, 1_000.0, 1_000.0]))
    routes = routes_from([a_lon, [], b_lon], [a_lat, [], b_lat])
    assert route_length_m(routes) == pytest.approx([1_000, 0, 3_000], rel=2e-4)  # (synthetic plane)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 100_000), st.integers(2, 60), st.integers(1, 300), st.booleans())
def test_fix_to_route_distances_match_shapely(seed: int, vertices: int, fixes: int, misguided: bool) -> None:
    """Exact whatever the search is told about the fixes' progress (it only prunes with it)."""
    rng = np.random.default_rng(seed)
    route_xy = np.cumsum(rng.uniform(-800, 800, (vertices, 2)), axis=0)
    fix_xy = route_xy[rng.integers(0, vertices, fixes)] + rng.normal(0, 400, (fixes, 2))
    route_lon, route_lat = metres_to_lonlat(route_xy[:, 0], route_xy[:, 1])
    lon, lat = metres_to_lonlat(fix_xy[:, 0], fix_xy[:, 1])
    track = make_track(
        vehicle_id=np.ones(fixes, np.int64), t_us=np.arange(fixes) * 10_000_000, lon=lon, lat=lat
    )
    from tracks.conform import _distance_to_route  # the core, on a plain set of fixes

    progress = rng.uniform(0, 1, fixes) if misguided else np.linspace(0, 1, fixes, endpoint=False)
    routes = routes_from([route_lon], [route_lat])
    d = _distance_to_route(
        track,
        np.arange(fixes),
        pair_route=np.zeros(1, np.int64),
        pair_rows=np.array([fixes]),
        routes=routes,
        simplify_m=0.0,
        progress=progress,
    )
    frame = Frame(
        round(float(np.mean([route_lon.min(), route_lon.max()]))),
        round(float(np.mean([route_lat.min(), route_lat.max()]))),
    )
    rx, ry = project(frame, route_lon, route_lat)
    px, py = project(frame, lon, lat)
    exact = shapely.distance(shapely.points(px, py), shapely.linestrings(rx, ry))
    assert np.allclose(d, exact, atol=0.05)


def test_corridor_is_a_parameter() -> None:
    assert ConformParams().corridor_m == 300.0
