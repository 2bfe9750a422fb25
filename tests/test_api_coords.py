"""GCJ-02 → WGS-84 at the API's edge: the engine's exact iterative inverse against PRCoords' vectors."""

from __future__ import annotations

import numpy as np
import prcoords  # type: ignore[import-untyped]
import pytest

from api.orders import line_length_m, to_wgs84
from api.schemas import Datum
from tracks.geo import gcj02_to_wgs84, wgs84_to_gcj02

# (lon, lat) in WGS-84 across China: Beijing, Shanghai, Changzhou, Urumqi, Harbin, Sanya, Lhasa
PLACES = [
    (116.391, 39.907),
    (121.4737, 31.2304),
    (119.97, 31.81),
    (87.6168, 43.8256),
    (126.535, 45.8038),
    (109.5119, 18.2528),
    (91.1409, 29.6456),
]


@pytest.mark.parametrize(("lon", "lat"), PLACES)
def test_forward_matches_prcoords(lon: float, lat: float) -> None:
    expected = prcoords.wgs_gcj((lat, lon))
    gcj_lon, gcj_lat = wgs84_to_gcj02(lon, lat)
    assert (float(gcj_lon), float(gcj_lat)) == pytest.approx((expected.lon, expected.lat), abs=1e-12)


@pytest.mark.parametrize(("lon", "lat"), PLACES)
def test_inverse_round_trips_below_1e_6_degrees(lon: float, lat: float) -> None:
    gcj = prcoords.wgs_gcj((lat, lon))
    back_lon, back_lat = gcj02_to_wgs84(gcj.lon, gcj.lat)
    assert abs(float(back_lon) - lon) < 1e-6 and abs(float(back_lat) - lat) < 1e-6
    # better than PRCoords' exact (bored) inverse, which stops at 1e-5 of its own measure
    bored = prcoords.gcj_wgs_bored((gcj.lat, gcj.lon))
    assert abs(bored.lon - lon) < 1e-5 and abs(bored.lat - lat) < 1e-5
    # the one-step inverse is metres off: the iteration is needed
    rough = prcoords.gcj_wgs((gcj.lat, gcj.lon))
    assert max(abs(rough.lon - lon), abs(rough.lat - lat)) > 1e-6


def test_random_points_round_trip_through_the_api_conversion() -> None:
    rng = np.random.default_rng(11)
    lon = rng.uniform(75, 134, 2_000)
    lat = rng.uniform(18, 53, 2_000)
    gcj_lon, gcj_lat = wgs84_to_gcj02(lon, lat)
    back_lon, back_lat = to_wgs84(Datum.GCJ02, gcj_lon.tolist(), gcj_lat.tolist())
    assert np.abs(np.array(back_lon) - lon).max() < 1e-6
    assert np.abs(np.array(back_lat) - lat).max() < 1e-6
    assert to_wgs84(Datum.WGS84, [1.0], [2.0]) == ([1.0], [2.0])


def test_outside_china_the_datums_coincide() -> None:
    assert to_wgs84(Datum.GCJ02, [2.35], [48.85]) == ([2.35], [48.85])


def test_line_length_is_finite_even_at_a_pole() -> None:
    assert line_length_m([0.0, 1.0], [0.0, 0.0]) == pytest.approx(111_319.5, rel=1e-5)
    assert np.isfinite(line_length_m([0.0, 180.0, -180.0], [90.0, 90.0, -90.0]))
