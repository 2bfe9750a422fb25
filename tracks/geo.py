"""Geodesy on numpy arrays. lon, lat in degrees (WGS-84), distances in metres.

The pyproj and shapely calls of the engine live here, so their ``Any`` stays in this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray
from pyproj import CRS, Geod, Transformer

from tracks.ranges import ramp

EARTH_RADIUS_M = 6_371_008.8  # mean radius (IUGG)
WGS84_A_M = 6_378_137.0
WGS84_F = 1 / 298.257223563
WGS84_E2 = WGS84_F * (2 - WGS84_F)
# Legs shorter than this are measured on the local tangent plane of the ellipsoid (relative error
# below 2e-7 against the geodesic); longer ones by pyproj's geodesic.
LONG_LEG_M = 10_000.0

Index = slice | NDArray[np.intp]


def haversine_m(lon1: ArrayLike, lat1: ArrayLike, lon2: ArrayLike, lat2: ArrayLike) -> NDArray[np.float64]:
    """Great-circle distance between points, element-wise."""
    lon1r, lat1r, lon2r, lat2r = (
        np.radians(np.asarray(a, dtype=np.float64)) for a in (lon1, lat1, lon2, lat2)
    )
    a = np.sin((lat2r - lat1r) / 2) ** 2 + np.cos(lat1r) * np.cos(lat2r) * np.sin((lon2r - lon1r) / 2) ** 2
    return np.asarray(2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0))), dtype=np.float64)


@lru_cache(maxsize=1)
def _geod() -> Any:
    return Geod(ellps="WGS84")


def geodesic_m(lon1: ArrayLike, lat1: ArrayLike, lon2: ArrayLike, lat2: ArrayLike) -> NDArray[np.float64]:
    """Ellipsoidal (WGS-84) geodesic distance, element-wise (pyproj, Karney's algorithm)."""
    arrays = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (lon1, lat1, lon2, lat2)))
    if arrays[0].size == 0:
        return np.zeros(arrays[0].shape, np.float64)
    _, _, distance = _geod().inv(*(np.ascontiguousarray(a).ravel() for a in arrays))
    return np.asarray(distance, dtype=np.float64).reshape(arrays[0].shape)


@dataclass(frozen=True, slots=True, kw_only=True)
class Metric:
    """Per point: position in radians and the ellipsoid's metres per radian east and north there.

    Precomputed once per track so that distances between many pairs of its points cost a few
    multiplications each (``pair_m``).
    """

    lon: NDArray[np.float64]
    lat: NDArray[np.float64]
    lam: NDArray[np.float64]
    phi: NDArray[np.float64]
    east: NDArray[np.float64]  # N(phi) cos(phi): prime-vertical radius on the parallel
    north: NDArray[np.float64]  # M(phi): meridional radius of curvature


_TABLE_STEP_DEG = 0.01  # radii tabulated every 0.01° of latitude: interpolation error below 1e-8


@lru_cache(maxsize=1)
def _radii_table() -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    lat = np.linspace(-90.0, 90.0, round(180 / _TABLE_STEP_DEG) + 1)
    phi = np.radians(lat)
    sin_phi = np.sin(phi)
    w = 1.0 - WGS84_E2 * sin_phi * sin_phi
    n = WGS84_A_M / np.sqrt(w)
    return lat, n * np.cos(phi), n * (1 - WGS84_E2) / w


def metric(lon: ArrayLike, lat: ArrayLike) -> Metric:
    """The ``Metric`` of points; the radii come from a table (np.interp is 3x cheaper than sin/cos)."""
    lon_a, lat_a = np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
    table_lat, table_east, table_north = _radii_table()
    return Metric(
        lon=lon_a,
        lat=lat_a,
        lam=np.radians(lon_a),
        phi=np.radians(lat_a),
        east=np.interp(lat_a, table_lat, table_east),
        north=np.interp(lat_a, table_lat, table_north),
    )


def pair_m(m: Metric, i: Index, j: Index) -> NDArray[np.float64]:
    """Distance between points ``i`` and ``j`` (index arrays or slices of equal length).

    The local tangent plane with the radii averaged over the two ends: within 2e-7 of the geodesic up
    to ``LONG_LEG_M`` and 2e-5 at 100 km (haversine on the mean sphere is off by up to 0.5 %).
    """
    dx = m.lam[j] - m.lam[i]
    dx *= m.east[i] + m.east[j]
    dy = m.phi[j] - m.phi[i]
    dy *= m.north[i] + m.north[j]
    dx *= dx
    dy *= dy
    dx += dy
    np.sqrt(dx, out=dx)
    dx *= 0.5
    return dx


def leg_m(m: Metric) -> NDArray[np.float64]:
    """Length of each leg between consecutive points (n - 1 values); long legs by the geodesic."""
    if len(m.lam) < 2:
        return np.zeros(0, np.float64)
    legs = pair_m(m, slice(0, -1), slice(1, None))
    long_legs = np.flatnonzero(legs > LONG_LEG_M)
    if len(long_legs):
        legs[long_legs] = geodesic_m(
            m.lon[long_legs], m.lat[long_legs], m.lon[long_legs + 1], m.lat[long_legs + 1]
        )
    return legs


def plane_m(lon1: ArrayLike, lat1: ArrayLike, lon2: ArrayLike, lat2: ArrayLike) -> NDArray[np.float64]:
    """Tangent-plane distance, element-wise: within 2e-7 of the geodesic below ``LONG_LEG_M``, 2e-5 at
    100 km, worse beyond. For comparing with thresholds; use ``distance_m`` for reported figures."""
    lon_a, lat_a, lon_b, lat_b = np.broadcast_arrays(
        *(np.asarray(v, dtype=np.float64) for v in (lon1, lat1, lon2, lat2))
    )
    k = lon_a.size
    m = metric(np.concatenate((lon_a.ravel(), lon_b.ravel())), np.concatenate((lat_a.ravel(), lat_b.ravel())))
    return pair_m(m, slice(0, k), slice(k, 2 * k)).reshape(lon_a.shape)


def distance_m(lon1: ArrayLike, lat1: ArrayLike, lon2: ArrayLike, lat2: ArrayLike) -> NDArray[np.float64]:
    """Ellipsoidal distance, element-wise: tangent plane when short, geodesic when long."""
    lon_a, lat_a, lon_b, lat_b = np.broadcast_arrays(
        *(np.asarray(v, dtype=np.float64) for v in (lon1, lat1, lon2, lat2))
    )
    distance = plane_m(lon_a, lat_a, lon_b, lat_b).ravel()
    long_pairs = np.flatnonzero(distance > LONG_LEG_M)
    if len(long_pairs):
        distance[long_pairs] = geodesic_m(
            lon_a.ravel()[long_pairs],
            lat_a.ravel()[long_pairs],
            lon_b.ravel()[long_pairs],
            lat_b.ravel()[long_pairs],
        )
    return distance.reshape(lon_a.shape)


# --- a local metric plane (pyproj) -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Frame:
    """A transverse Mercator plane (scale 1) centred on whole degrees; metres east/north of the centre.

    Centres are whole degrees so that the same places always land on the same plane, whatever batch of
    data they came with: within 1 degree of the centre the scale error is below 1.5e-4.
    """

    lon0: int
    lat0: int


def frame_for(lon: ArrayLike, lat: ArrayLike) -> Frame:
    """The frame for a set of points: centred on the whole degree nearest their middle."""
    lon_a, lat_a = np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
    if lon_a.size == 0:
        return Frame(0, 0)
    middle_lon = 0.5 * (float(np.min(lon_a)) + float(np.max(lon_a)))
    middle_lat = 0.5 * (float(np.min(lat_a)) + float(np.max(lat_a)))
    return Frame(round(middle_lon), round(middle_lat))


@lru_cache(maxsize=64)
def _transformer(frame: Frame) -> Any:
    plane = CRS.from_proj4(
        f"+proj=tmerc +lon_0={frame.lon0} +lat_0={frame.lat0} +k=1 +ellps=WGS84 +units=m +no_defs"
    )
    return Transformer.from_crs(CRS.from_epsg(4326), plane, always_xy=True)


def project(frame: Frame, lon: ArrayLike, lat: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """WGS-84 lon/lat → metres (x east, y north) on ``frame``."""
    lon_a = np.ascontiguousarray(lon, dtype=np.float64)
    lat_a = np.ascontiguousarray(lat, dtype=np.float64)
    if lon_a.size == 0:
        return np.zeros(0), np.zeros(0)
    x, y = _transformer(frame).transform(lon_a, lat_a)
    return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)


def unproject(frame: Frame, x: ArrayLike, y: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Metres on ``frame`` → WGS-84 lon/lat."""
    x_a, y_a = np.ascontiguousarray(x, dtype=np.float64), np.ascontiguousarray(y, dtype=np.float64)
    if x_a.size == 0:
        return np.zeros(0), np.zeros(0)
    lon, lat = _transformer(frame).transform(x_a, y_a, direction="INVERSE")
    return np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)


def simplify_lines(
    x: NDArray[np.float64], y: NDArray[np.float64], owner: NDArray[np.int64], tolerance_m: float
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]]:
    """Douglas-Peucker simplification of polylines in metres, all at once.

    ``owner`` numbers the polyline of each vertex (0, 1, … in order, each at least two vertices).
    Every dropped vertex lies within ``tolerance_m`` of the simplified line. Returned unchanged when
    the tolerance is 0 or a polyline would collapse (all its vertices in one place).
    """
    if len(x) == 0 or tolerance_m <= 0:
        return x, y, owner
    lines = shapely.linestrings(x, y, indices=owner)
    simplified = shapely.simplify(lines, tolerance_m, preserve_topology=False)
    coords, index = shapely.get_coordinates(simplified, return_index=True)
    if np.any(np.bincount(index, minlength=int(owner[-1]) + 1) < 2):
        return x, y, owner
    return (
        np.ascontiguousarray(coords[:, 0]),
        np.ascontiguousarray(coords[:, 1]),
        np.asarray(index, dtype=np.int64),
    )


def pairs_within(
    lon_a: NDArray[np.float64],
    lat_a: NDArray[np.float64],
    lon_b: NDArray[np.float64],
    lat_b: NDArray[np.float64],
    radius_m: float,
) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.float64]]:
    """Every pair (i, j) with point a_i within ``radius_m`` of point b_j, and its distance.

    A grid hash join: points fall into cells at least ``radius_m`` wide, and only the 3 x 3 cells
    around each a_i are compared, so the cost grows with the number of close pairs, not |a| x |b|.
    Meant for radii up to ``LONG_LEG_M``.
    """
    empty = np.zeros(0, np.intp)
    if len(lon_a) == 0 or len(lon_b) == 0 or radius_m < 0:
        return empty, empty, np.zeros(0)
    top = min(float(max(np.max(np.abs(lat_a)), np.max(np.abs(lat_b)))) + 1.0, 89.9)
    # metres per degree, under-estimated everywhere in the data, so a cell is at least the radius wide
    per_lon, per_lat = 111_320.0 * np.cos(np.radians(top)), 110_000.0
    cell = max(radius_m, 1.0)
    ax, ay = (
        np.floor(lon_a * per_lon / cell).astype(np.int64),
        np.floor(lat_a * per_lat / cell).astype(np.int64),
    )
    bx, by = (
        np.floor(lon_b * per_lon / cell).astype(np.int64),
        np.floor(lat_b * per_lat / cell).astype(np.int64),
    )
    x0, y0 = min(ax.min(), bx.min()) - 1, min(ay.min(), by.min()) - 1
    height = max(ay.max(), by.max()) - y0 + 2
    b_key = (bx - x0) * height + (by - y0)
    by_key = np.argsort(b_key, kind="stable")
    sorted_key = b_key[by_key]
    found_a, found_b = [], []
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            key = (ax + dx - x0) * height + (ay + dy - y0)
            lo = np.searchsorted(sorted_key, key, side="left")
            count = np.searchsorted(sorted_key, key, side="right") - lo
            found_a.append(np.repeat(np.arange(len(key)), count))
            found_b.append(by_key[np.repeat(lo, count) + ramp(count)])
    i, j = np.concatenate(found_a), np.concatenate(found_b)
    m = metric(np.concatenate((lon_a[i], lon_b[j])), np.concatenate((lat_a[i], lat_b[j])))
    d = pair_m(m, slice(0, len(i)), slice(len(i), 2 * len(i)))
    close = d <= radius_m
    order = np.lexsort((j[close], i[close]))
    return i[close][order].astype(np.intp), j[close][order].astype(np.intp), d[close][order]


# --- GCJ-02, the datum of Chinese map services (Amap, Tencent) --------------------------------
# Store and compute in WGS-84; convert at the edges (an approved route drawn on Amap arrives in
# GCJ-02). The forward transform is the published obfuscation (Krasovsky ellipsoid constants); the
# inverse has no closed form and is found by fixed-point iteration to below 1e-9 degrees.

_GCJ_A = 6_378_245.0
_GCJ_EE = 0.00669342162296594323


def in_china(lon: NDArray[np.float64], lat: NDArray[np.float64]) -> NDArray[np.bool_]:
    """The rough box where GCJ-02 applies; outside it the datums coincide."""
    return np.asarray(
        (lat >= 0.8293) & (lat <= 55.8271) & (lon >= 72.004) & (lon <= 137.8347), dtype=np.bool_
    )


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    lon_a, lat_a = np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
    x, y = lon_a - 105.0, lat_a - 35.0
    pi = np.pi
    wave = (20.0 * np.sin(6.0 * x * pi) + 20.0 * np.sin(2.0 * x * pi)) * 2.0 / 3.0
    north_m = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x)) + wave
    north_m += (20.0 * np.sin(y * pi) + 40.0 * np.sin(y / 3.0 * pi)) * 2.0 / 3.0
    north_m += (160.0 * np.sin(y / 12.0 * pi) + 320.0 * np.sin(y * pi / 30.0)) * 2.0 / 3.0
    east_m = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x)) + wave
    east_m += (20.0 * np.sin(x * pi) + 40.0 * np.sin(x / 3.0 * pi)) * 2.0 / 3.0
    east_m += (150.0 * np.sin(x / 12.0 * pi) + 300.0 * np.sin(x / 30.0 * pi)) * 2.0 / 3.0
    phi = np.radians(lat_a)
    w = 1.0 - _GCJ_EE * np.sin(phi) ** 2
    north_per_deg = np.radians(_GCJ_A * (1.0 - _GCJ_EE) / (w * np.sqrt(w)))
    east_per_deg = np.radians(_GCJ_A / np.sqrt(w) * np.cos(phi))
    inside = in_china(lon_a, lat_a)
    return (
        np.where(inside, lon_a + east_m / east_per_deg, lon_a),
        np.where(inside, lat_a + north_m / north_per_deg, lat_a),
    )


def gcj02_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Inverse of ``wgs84_to_gcj02`` by fixed-point iteration (converges below 1e-9° in a few steps)."""
    target_lon, target_lat = np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
    wgs_lon, wgs_lat = target_lon.copy(), target_lat.copy()
    for _ in range(30):
        gcj_lon, gcj_lat = wgs84_to_gcj02(wgs_lon, wgs_lat)
        miss_lon, miss_lat = gcj_lon - target_lon, gcj_lat - target_lat
        wgs_lon, wgs_lat = wgs_lon - miss_lon, wgs_lat - miss_lat
        if wgs_lon.size == 0 or max(float(np.max(np.abs(miss_lon))), float(np.max(np.abs(miss_lat)))) < 1e-10:
            break
    return wgs_lon, wgs_lat
