"""A local east/north plane in metres around the city centre, and the WGS-84 lon/lat it stands for.

The city is drawn in the plane (straight streets, circles, sines); everything the simulator reports or
measures is in lon/lat on WGS-84, with distances by haversine (tracks.geo), so the track engine and the
truth measure the same way. The plane is an equirectangular projection on the mean sphere: exact enough
to draw a city, never used to measure a truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from tracks.geo import EARTH_RADIUS_M, haversine_m

Floats = NDArray[np.float64]
_M_PER_DEG_LAT = EARTH_RADIUS_M * np.pi / 180.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Plane:
    """East/north metres around (lon0, lat0)."""

    lon0: float
    lat0: float

    @property
    def m_per_deg_lon(self) -> float:
        return float(_M_PER_DEG_LAT * np.cos(np.radians(self.lat0)))

    def to_lonlat(self, x_m: ArrayLike, y_m: ArrayLike) -> tuple[Floats, Floats]:
        x, y = np.asarray(x_m, dtype=np.float64), np.asarray(y_m, dtype=np.float64)
        return self.lon0 + x / self.m_per_deg_lon, self.lat0 + y / _M_PER_DEG_LAT

    def to_xy(self, lon: ArrayLike, lat: ArrayLike) -> tuple[Floats, Floats]:
        lo, la = np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
        return (lo - self.lon0) * self.m_per_deg_lon, (la - self.lat0) * _M_PER_DEG_LAT


def offset_lonlat(
    lon: ArrayLike, lat: ArrayLike, east_m: ArrayLike, north_m: ArrayLike
) -> tuple[Floats, Floats]:
    """Move points by metres east and north (local scale at each point's latitude)."""
    lo, la = np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
    dlat = np.asarray(north_m, dtype=np.float64) / _M_PER_DEG_LAT
    dlon = np.asarray(east_m, dtype=np.float64) / (_M_PER_DEG_LAT * np.cos(np.radians(la)))
    return lo + dlon, la + dlat


def bearing_deg(lon1: ArrayLike, lat1: ArrayLike, lon2: ArrayLike, lat2: ArrayLike) -> Floats:
    """Initial bearing from point 1 to point 2, degrees clockwise from north in [0, 360)."""
    p1, p2 = np.radians(np.asarray(lat1, dtype=np.float64)), np.radians(np.asarray(lat2, dtype=np.float64))
    dl = np.radians(np.asarray(lon2, dtype=np.float64) - np.asarray(lon1, dtype=np.float64))
    y = np.sin(dl) * np.cos(p2)
    x = np.cos(p1) * np.sin(p2) - np.sin(p1) * np.cos(p2) * np.cos(dl)
    return np.asarray(np.degrees(np.arctan2(y, x)) % 360.0, dtype=np.float64)


def cumulative_m(lon: Floats, lat: Floats) -> Floats:
    """Distance along a polyline from its first vertex to each vertex (haversine)."""
    steps = haversine_m(lon[:-1], lat[:-1], lon[1:], lat[1:])
    return np.concatenate(([0.0], np.cumsum(steps)))


def path_length_m(lon: Floats, lat: Floats) -> float:
    """Length of a polyline in metres: the sum of its haversine steps."""
    return float(haversine_m(lon[:-1], lat[:-1], lon[1:], lat[1:]).sum()) if len(lon) > 1 else 0.0
