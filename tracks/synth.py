"""Tracks made up for tests and benchmarks: tiny hand-written ones in metres, and whole fleets.

``local_track(("08:00", 0, 0), ("08:05", 600, 0))`` is a car 600 m east of a local origin five minutes
later; times are China Standard Time on ``DAY`` ("24:05" is five past midnight the next day).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tracks.columns import freeze_columns
from tracks.geo import leg_m, metric
from tracks.match import DispatchOrder
from tracks.places import Places, StopKind, places
from tracks.track import IGNITION_UNKNOWN, Track, make_track

ORIGIN = (118.7969, 32.0603)  # lon, lat: Nanjing, Xinjiekou
DAY = date(2026, 3, 2)  # a Monday
CST = timezone(timedelta(hours=8))

Row = tuple[str, float, float] | tuple[str, float, float, float | None, int | None, float | None]


def at_us(clock: str, day: date = DAY) -> int:
    """Epoch µs of a China Standard Time reading "HH:MM[:SS]" on ``day``; hours may pass 24."""
    parts = [int(p) for p in clock.split(":")]
    hours, minutes, seconds = [*parts, 0][:3]
    local = datetime(day.year, day.month, day.day, tzinfo=CST) + timedelta(
        hours=hours, minutes=minutes, seconds=seconds
    )
    return int(local.timestamp()) * 1_000_000


def metres_to_lonlat(
    x_m: NDArray[np.float64], y_m: NDArray[np.float64], origin: tuple[float, float] = ORIGIN
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Points x m east and y m north of ``origin``, on a plate carrée scaled at the origin: east-west
    lengths are off by ~tan(lat) * y / 6371 km (1e-4 at 1 km north) — fine for made-up tracks."""
    m = metric([origin[0]], [origin[1]])
    lon = origin[0] + np.degrees(np.asarray(x_m, dtype=np.float64) / m.east[0])
    lat = origin[1] + np.degrees(np.asarray(y_m, dtype=np.float64) / m.north[0])
    return lon, lat


def local_track(
    *rows: Row, vehicle_id: int = 1, day: date = DAY, origin: tuple[float, float] = ORIGIN
) -> Track:
    """A track from rows ``(clock, x_m, y_m)`` or ``(clock, x_m, y_m, speed_kmh, ignition, odometer_km)``.

    ``None`` means not reported; ignition is 0/1. Rows may come in any order (they are sorted).
    """
    t = np.array([at_us(r[0], day) for r in rows], dtype=np.int64)
    x = np.array([r[1] for r in rows], dtype=np.float64)
    y = np.array([r[2] for r in rows], dtype=np.float64)
    lon, lat = metres_to_lonlat(x, y, origin)
    return make_track(
        vehicle_id=np.full(len(rows), vehicle_id, np.int64),
        t_us=t,
        lon=lon,
        lat=lat,
        speed_kmh=[_optional(r, 3, np.nan) for r in rows],
        ignition=[_optional(r, 4, IGNITION_UNKNOWN) for r in rows],
        odometer_km=[_optional(r, 5, np.nan) for r in rows],
    )


def _optional(row: Sequence[object], k: int, missing: float) -> float:
    value = row[k] if len(row) > k else None
    return missing if value is None else float(value)  # type: ignore[arg-type]


# --- a synthetic fleet -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Truth:
    """The drives the synthetic fleet really made (one row per drive)."""

    vehicle_id: NDArray[np.int64]
    start_us: NDArray[np.int64]
    end_us: NDArray[np.int64]
    distance_m: NDArray[np.float64]

    def __post_init__(self) -> None:
        freeze_columns(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class Fleet:
    track: Track
    orders: tuple[DispatchOrder, ...]
    depots: Places
    truth: Truth


@dataclass(frozen=True, slots=True, kw_only=True)
class FleetShape:
    """How the synthetic fleet behaves; defaults resemble a city motor pool's weekday."""

    city_m: float = 30_000.0  # side of the square the places lie in
    drives_per_day: tuple[int, int] = (3, 8)
    min_drive_m: float = 1_500.0
    speed_kmh: tuple[float, float] = (20.0, 60.0)
    moving_report_s: float = 10.0
    parked_report_s: tuple[float, float] = (60.0, 300.0)
    drift_m: float = 20.0  # spread of a parked receiver's positions
    noise_m: float = 3.0  # GNSS noise while driving
    share_with_ignition: float = 0.7
    share_with_speed: float = 0.9
    share_with_odometer: float = 0.5
    jump_chance: float = 0.1  # per drive: one fix 300-800 m off
    tunnel_chance: float = 0.05  # per drive: 2-6 min without fixes
    flicker_chance: float = 0.05  # per drive: one ACC-off fix while driving
    red_light_chance: float = 0.5  # per drive: a 30-90 s standstill
    order_chance: float = 0.9  # per drive: it has a dispatch order
    route_chance: float = 0.8  # per order: it has an approved route


Part = dict[str, NDArray[Any]]


def synthetic_fleet(vehicles: int, seed: int, shape: FleetShape | None = None, day: date = DAY) -> Fleet:
    """A day of ``vehicles`` cars: parked at a depot overnight, then drives between places and home."""
    shape = shape or FleetShape()
    rng = np.random.default_rng(seed)
    day_start, day_end = at_us("00:00", day), at_us("24:00", day) - 1_000_000
    depots = rng.uniform(-0.5, 0.5, (max(1, vehicles // 50), 2)) * shape.city_m
    parts: list[Part] = []
    orders: list[DispatchOrder] = []
    truth: list[tuple[int, int, int, float]] = []
    for vehicle in range(1, vehicles + 1):
        sensors = rng.uniform(size=3)
        car = _Car(
            vehicle=vehicle,
            ignition=bool(sensors[0] < shape.share_with_ignition),
            speed=bool(sensors[1] < shape.share_with_speed or sensors[0] < shape.share_with_ignition),
            odometer=bool(sensors[2] < shape.share_with_odometer),
        )
        home = depots[vehicle % len(depots)]
        here = home
        t_us = day_start + int(rng.uniform(0, 300)) * 1_000_000
        odometer_km = float(rng.uniform(1_000, 90_000))
        drives = int(rng.integers(shape.drives_per_day[0], shape.drives_per_day[1] + 1))
        leave_us = day_start + np.sort(rng.uniform(6.5 * 3600, 20 * 3600, drives) * 1e6).astype(np.int64)
        for k in range(drives + 1):
            halt_us = int(rng.uniform(5, 30) * 60e6)  # a stop lasts at least a few minutes
            until_us = day_end if k == drives else max(int(leave_us[k]), t_us + halt_us)
            if until_us > t_us:
                parts.append(
                    _parked(rng, shape, car, xy=here, t0_us=t_us, t1_us=until_us, odometer_km=odometer_km)
                )
                t_us = until_us
            if k == drives or t_us >= day_end - 3_600_000_000:
                break
            target = home if k == drives - 1 else rng.uniform(-0.5, 0.5, 2) * shape.city_m
            while np.hypot(*(target - here)) < shape.min_drive_m:  # a short hop is not a trip
                target = rng.uniform(-0.5, 0.5, 2) * shape.city_m
            path = _road(rng, here, target)
            part, end_us = _drive(rng, shape, car, path=path, t0_us=t_us, odometer_km=odometer_km)
            parts.append(part)
            lon, lat = metres_to_lonlat(path[:, 0], path[:, 1])
            length_m = float(np.sum(leg_m(metric(lon, lat))))
            truth.append((vehicle, t_us, end_us, length_m))
            if rng.uniform() < shape.order_chance:
                orders.append(
                    _order(
                        rng,
                        shape,
                        order_id=len(orders) + 1,
                        vehicle=vehicle,
                        window=(t_us, end_us),
                        path=path,
                    )
                )
            odometer_km += length_m / 1000.0
            t_us, here = end_us, target
    return _assemble(parts, orders, depots, truth)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Car:
    vehicle: int
    ignition: bool
    speed: bool
    odometer: bool


def _part(
    car: _Car,
    *,
    t_us: NDArray[np.int64],
    xy: NDArray[np.float64],
    speed: NDArray[np.float64],
    ignition: NDArray[np.int8],
    odometer_km: NDArray[np.float64],
) -> Part:
    n = len(t_us)
    return {
        "vehicle_id": np.full(n, car.vehicle, np.int64),
        "t_us": t_us,
        "x": xy[:, 0],
        "y": xy[:, 1],
        "speed_kmh": speed if car.speed else np.full(n, np.nan),
        "ignition": ignition if car.ignition else np.full(n, IGNITION_UNKNOWN, np.int8),
        "odometer_km": np.floor(odometer_km * 10) / 10 if car.odometer else np.full(n, np.nan),
    }


def _parked(
    rng: np.random.Generator,
    shape: FleetShape,
    car: _Car,
    *,
    xy: NDArray[np.float64],
    t0_us: int,
    t1_us: int,
    odometer_km: float,
) -> Part:
    step_us = int(rng.uniform(*shape.parked_report_s) * 1e6)
    t = np.arange(t0_us, t1_us, step_us, dtype=np.int64)
    drift = rng.normal(0.0, shape.drift_m / 2, (len(t), 2))
    zeros = np.zeros(len(t))
    return _part(
        car,
        t_us=t,
        xy=xy + drift,
        speed=zeros,
        ignition=zeros.astype(np.int8),
        odometer_km=zeros + odometer_km,
    )


def _road(rng: np.random.Generator, a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    """A road-like polyline from a to b: vertices every ~400 m, wandering sideways like a street grid."""
    length = float(np.hypot(*(b - a)))
    n = max(2, int(length / 400) + 1)
    s = np.linspace(0.0, 1.0, n)
    sideways = np.cumsum(rng.normal(0.0, 120.0, n))
    sideways -= s * sideways[-1] + (1 - s) * sideways[0]  # pinned at both ends
    direction = (b - a) / max(length, 1.0)
    normal = np.array([-direction[1], direction[0]])
    return np.asarray(a + np.outer(s, b - a) + np.outer(sideways, normal), dtype=np.float64)


def _drive(
    rng: np.random.Generator,
    shape: FleetShape,
    car: _Car,
    *,
    path: NDArray[np.float64],
    t0_us: int,
    odometer_km: float,
) -> tuple[Part, int]:
    cumulative = np.concatenate(([0.0], np.cumsum(np.hypot(*np.diff(path, axis=0).T))))
    length = float(cumulative[-1])
    speed_ms = rng.uniform(*shape.speed_kmh) / 3.6
    moving_s = length / speed_ms
    wait_s = rng.uniform(30, 90) if rng.uniform() < shape.red_light_chance else 0.0
    light_at = rng.uniform(0.2, 0.8) * moving_s
    total_s = moving_s + wait_s
    clock = np.arange(0.0, total_s, shape.moving_report_s)
    s = np.interp(
        clock,
        [0.0, light_at, light_at + wait_s, total_s],
        [0.0, light_at * speed_ms, light_at * speed_ms, length],
    )
    xy = np.stack((np.interp(s, cumulative, path[:, 0]), np.interp(s, cumulative, path[:, 1])), axis=1)
    xy[1:] += rng.normal(0.0, shape.noise_m, (len(clock) - 1, 2))
    standing = (clock == 0) | ((clock > light_at) & (clock < light_at + wait_s))
    speed = np.where(standing, 0.0, speed_ms * 3.6 + rng.normal(0.0, 2.0, len(clock)))
    ignition = np.ones(len(clock), np.int8)
    keep = np.ones(len(clock), np.bool_)
    if len(clock) > 4 and rng.uniform() < shape.jump_chance:
        k = int(rng.integers(2, len(clock) - 2))
        angle = rng.uniform(0, 2 * np.pi)
        xy[k] += rng.uniform(300, 800) * np.array([np.cos(angle), np.sin(angle)])
    if len(clock) > 4 and rng.uniform() < shape.flicker_chance:
        ignition[int(rng.integers(2, len(clock) - 2))] = 0
    if rng.uniform() < shape.tunnel_chance:
        begin = rng.uniform(0.1, 0.7) * total_s
        keep &= (clock < begin) | (clock > begin + rng.uniform(120, 360))
    t = t0_us + np.round(clock * 1e6).astype(np.int64)
    part = _part(
        car,
        t_us=t[keep],
        xy=xy[keep],
        speed=speed[keep],
        ignition=ignition[keep],
        odometer_km=odometer_km + s[keep] / 1000.0,
    )
    return part, t0_us + round(total_s * 1e6)


def _order(
    rng: np.random.Generator,
    shape: FleetShape,
    *,
    order_id: int,
    vehicle: int,
    window: tuple[int, int],
    path: NDArray[np.float64],
) -> DispatchOrder:
    lon, lat = metres_to_lonlat(path[:, 0], path[:, 1])
    ends = path[[0, -1]] + rng.normal(0.0, 50.0, (2, 2))
    end_lon, end_lat = metres_to_lonlat(ends[:, 0], ends[:, 1])
    routed = rng.uniform() < shape.route_chance
    early, late = rng.uniform(0, 900e6, 2).astype(np.int64)
    return DispatchOrder(
        order_id=order_id,
        vehicle_id=vehicle,
        window_start_us=window[0] - int(early),
        window_end_us=window[1] + int(late),
        origin_lon=float(end_lon[0]),
        origin_lat=float(end_lat[0]),
        destination_lon=float(end_lon[1]),
        destination_lat=float(end_lat[1]),
        route_lon=lon if routed else np.zeros(0),
        route_lat=lat if routed else np.zeros(0),
    )


def _assemble(
    parts: list[Part],
    orders: list[DispatchOrder],
    depots: NDArray[np.float64],
    truth: list[tuple[int, int, int, float]],
) -> Fleet:
    def cat(name: str) -> NDArray[Any]:
        return np.concatenate([p[name] for p in parts])

    lon, lat = metres_to_lonlat(cat("x"), cat("y"))
    track = make_track(
        vehicle_id=cat("vehicle_id"),
        t_us=cat("t_us"),
        lon=lon,
        lat=lat,
        speed_kmh=cat("speed_kmh"),
        ignition=cat("ignition"),
        odometer_km=cat("odometer_km"),
    )
    depot_lon, depot_lat = metres_to_lonlat(depots[:, 0], depots[:, 1])
    rows = np.array(truth, dtype=np.float64).reshape(-1, 4)
    return Fleet(
        track=track,
        orders=tuple(orders),
        depots=places(StopKind.DEPOT, depot_lon, depot_lat, 150.0),
        truth=Truth(
            vehicle_id=rows[:, 0].astype(np.int64),
            start_us=np.array([r[1] for r in truth], dtype=np.int64),
            end_us=np.array([r[2] for r in truth], dtype=np.int64),
            distance_m=rows[:, 3],
        ),
    )
