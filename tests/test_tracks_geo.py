"""Geodesy: distances against pyproj's geodesic, projection round trips, the grid join, GCJ-02."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from tracks.geo import (
    Frame,
    distance_m,
    gcj02_to_wgs84,
    geodesic_m,
    haversine_m,
    leg_m,
    metric,
    pairs_within,
    plane_m,
    project,
    simplify_lines,
    unproject,
    wgs84_to_gcj02,
)

china_lon = st.floats(75.0, 134.0)
china_lat = st.floats(18.0, 53.0)


@settings(max_examples=50, deadline=None)
@given(china_lon, china_lat, st.floats(0, 360), st.floats(1.0, 10_000.0))
def test_plane_distance_matches_the_geodesic_up_to_10_km(
    lon: float, lat: float, azimuth: float, d_m: float
) -> None:
    from pyproj import Geod

    lon2, lat2, _ = Geod(ellps="WGS84").fwd(lon, lat, azimuth, d_m)
    assert plane_m(lon, lat, lon2, lat2) == pytest.approx(d_m, rel=3e-7, abs=1e-6)
    assert distance_m(lon, lat, lon2, lat2) == pytest.approx(d_m, rel=3e-7, abs=1e-6)


def test_long_distances_use_the_geodesic() -> None:
    lon, lat = np.array([116.4, 121.47]), np.array([39.9, 31.23])  # Beijing, Shanghai
    exact = geodesic_m(lon[0], lat[0], lon[1], lat[1])
    assert distance_m(lon[0], lat[0], lon[1], lat[1]) == pytest.approx(exact, rel=1e-12)
    assert leg_m(metric(lon, lat))[0] == pytest.approx(exact, rel=1e-12)
    assert haversine_m(lon[0], lat[0], lon[1], lat[1]) == pytest.approx(exact, rel=5e-3)  # the sphere's error


@settings(max_examples=50, deadline=None)
@given(st.integers(75, 134), st.integers(18, 53), st.floats(-1.5, 1.5), st.floats(-1.5, 1.5))
def test_project_unproject_round_trip(lon0: int, lat0: int, dlon: float, dlat: float) -> None:
    frame = Frame(lon0, lat0)
    x, y = project(frame, [lon0 + dlon], [lat0 + dlat])
    lon, lat = unproject(frame, x, y)
    assert lon[0] == pytest.approx(lon0 + dlon, abs=1e-9)
    assert lat[0] == pytest.approx(lat0 + dlat, abs=1e-9)


def test_projected_distances_are_metres() -> None:
    frame = Frame(119, 32)
    lon, lat = np.array([118.6, 118.61]), np.array([32.3, 32.31])
    x, y = project(frame, lon, lat)
    assert np.hypot(x[1] - x[0], y[1] - y[0]) == pytest.approx(
        distance_m(lon[0], lat[0], lon[1], lat[1]), rel=2e-4
    )


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(0, 40), st.integers(0, 40), st.floats(1.0, 3_000.0))
def test_pairs_within_equals_brute_force(seed: int, na: int, nb: int, radius_m: float) -> None:
    rng = np.random.default_rng(seed)
    lon_a, lat_a = 118.8 + rng.uniform(-0.05, 0.05, na), 32.0 + rng.uniform(-0.05, 0.05, na)
    lon_b, lat_b = 118.8 + rng.uniform(-0.05, 0.05, nb), 32.0 + rng.uniform(-0.05, 0.05, nb)
    i, j, d = pairs_within(lon_a, lat_a, lon_b, lat_b, radius_m)
    every = plane_m(lon_a[:, None], lat_a[:, None], lon_b[None, :], lat_b[None, :])
    expected = np.argwhere(every <= radius_m)
    assert [tuple(p) for p in expected] == list(zip(i.tolist(), j.tolist(), strict=True))
    assert np.allclose(d, every[i, j])


def test_simplify_keeps_every_vertex_within_tolerance() -> None:
    rng = np.random.default_rng(2)
    x = np.concatenate((np.linspace(0, 5_000, 200), np.linspace(0, 3_000, 50)))
    y = np.concatenate((rng.normal(0, 0.3, 200), rng.normal(0, 20, 50)))
    owner = np.repeat([0, 1], [200, 50])
    sx, sy, sowner = simplify_lines(x, y, owner, 1.0)
    assert len(sx) < len(x) and set(sowner.tolist()) == {0, 1}
    for k in (0, 1):
        line = shapely.linestrings(sx[sowner == k], sy[sowner == k])
        assert np.max(shapely.distance(shapely.points(x[owner == k], y[owner == k]), line)) <= 1.0 + 1e-9


def test_gcj02_matches_a_published_vector_and_inverts() -> None:
    lon, lat = wgs84_to_gcj02(116.39089, 39.90734)  # Tiananmen; value from geoChina's tests
    assert (float(lon), float(lat)) == pytest.approx((116.39713094, 39.90874107), abs=1e-8)
    back_lon, back_lat = gcj02_to_wgs84(lon, lat)
    assert (float(back_lon), float(back_lat)) == pytest.approx((116.39089, 39.90734), abs=1e-9)


@settings(max_examples=50, deadline=None)
@given(china_lon, china_lat)
def test_gcj02_inverse_round_trip(lon: float, lat: float) -> None:
    gcj_lon, gcj_lat = wgs84_to_gcj02(lon, lat)
    assert 1 < distance_m(lon, lat, gcj_lon, gcj_lat) < 1_000  # shifted, often by hundreds of metres
    wgs_lon, wgs_lat = gcj02_to_wgs84(gcj_lon, gcj_lat)
    assert distance_m(lon, lat, wgs_lon, wgs_lat) < 1e-3


def test_gcj02_leaves_points_outside_china_alone() -> None:
    lon, lat = wgs84_to_gcj02(2.35, 48.85)
    assert (float(lon), float(lat)) == (2.35, 48.85)
