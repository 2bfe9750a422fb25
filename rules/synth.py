"""Small hand-made scenes for the rules' tests: a car's day written as parks and drives in metres, run
through the real track engine, with orders, records and an agency configuration in the same metres.

``itinerary(Park("08:00"), Drive([(0, 0), (3000, 0)]), Park("09:00"))`` is a car parked at the local
origin (its depot) until 08:00, driving 3 km east at 36 km/h and parking there until 09:00; times are
China Standard Time on ``DAY`` (a Monday; "24:30" is half past midnight the next day). Positions are
metres east/north of ``tracks.synth.ORIGIN``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

import numpy as np
from numpy.typing import NDArray

from rules.config import ForbiddenZones, RuleConfig, SpeedLimits, Vehicles, polylines
from rules.facts import Facts, FuelRecords, MaintenanceRecords, Reports, RuleInputs, derive_facts
from tracks.match import DispatchOrder, orders_table
from tracks.params import Params
from tracks.pipeline import Context, run_fleet
from tracks.places import StopKind, places
from tracks.synth import DAY, at_us, metres_to_lonlat
from tracks.track import IGNITION_OFF, IGNITION_ON, make_track

Point = tuple[float, float]
DEPOT: Point = (0.0, 0.0)


def seconds(clock: str) -> int:
    parts = [int(p) for p in clock.split(":")]
    hours, minutes, secs = [*parts, 0][:3]
    return hours * 3600 + minutes * 60 + secs


def clock(t_s: float) -> str:
    t = round(t_s)
    return f"{t // 3600:02d}:{t % 3600 // 60:02d}:{t % 60:02d}"


@dataclass(frozen=True, slots=True)
class Park:
    """Stand where the car is until ``until``, reporting every ``every_s`` with the ignition off."""

    until: str
    every_s: float = 60.0


@dataclass(frozen=True, slots=True)
class Drive:
    """Drive along ``path`` (the first point is where the car is) at a constant speed.

    ``silent``: (from, to) seconds after departure during which the terminal reports nothing;
    ``no_fix``: … during which it reports without a valid position (a tunnel: quarantined by ingest);
    ``odometer_factor``: how much faster than the road the odometer runs.
    """

    path: Sequence[Point]
    speed_kmh: float = 36.0
    every_s: float = 10.0
    silent: tuple[float, float] | None = None
    no_fix: tuple[float, float] | None = None
    odometer_factor: float = 1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Day:
    """A car's fixes as columns in local metres and seconds after midnight, and when it reported at all."""

    t_s: NDArray[np.float64]
    x_m: NDArray[np.float64]
    y_m: NDArray[np.float64]
    speed_kmh: NDArray[np.float64]
    ignition: NDArray[np.int8]
    odometer_km: NDArray[np.float64]
    reports_s: NDArray[np.float64]


def itinerary(
    *steps: Park | Drive, start: str = "00:00", at: Point = DEPOT, odometer_km: float = 10_000.0
) -> Day:
    t, here, odometer = float(seconds(start)), np.array(at, dtype=np.float64), odometer_km
    cols: dict[str, list[float]] = {k: [] for k in ("t", "x", "y", "v", "acc", "odo", "rep")}

    def report(
        ts: float, xy: NDArray[np.float64], v: float, acc: int, odo: float, *, fix: bool = True
    ) -> None:
        cols["rep"].append(ts)
        if fix:
            for key, value in zip(("t", "x", "y", "v", "acc", "odo"), (ts, *xy, v, acc, odo), strict=True):
                cols[key].append(float(value))

    for step in steps:
        if isinstance(step, Park):
            end = float(seconds(step.until))
            for ts in np.arange(t, end, step.every_s):
                report(float(ts), here, 0.0, IGNITION_OFF, odometer)
            t = end
            continue
        path = np.asarray(step.path, dtype=np.float64)
        legs = np.hypot(*np.diff(path, axis=0).T)
        along = np.concatenate(([0.0], np.cumsum(legs)))
        mps = step.speed_kmh / 3.6
        duration = along[-1] / mps
        for ts in np.arange(0.0, duration, step.every_s):
            s = ts * mps
            xy = np.array([np.interp(s, along, path[:, 0]), np.interp(s, along, path[:, 1])])
            quiet = step.silent is not None and step.silent[0] <= ts <= step.silent[1]
            blind = step.no_fix is not None and step.no_fix[0] <= ts <= step.no_fix[1]
            if not quiet:
                moving = ts > 0.0
                odo = odometer + s * step.odometer_factor / 1000.0
                report(t + ts, xy, step.speed_kmh if moving else 0.0, IGNITION_ON, odo, fix=not blind)
        odometer += along[-1] * step.odometer_factor / 1000.0
        t += duration
        here = path[-1]
        report(t, here, 0.0, IGNITION_ON, odometer)
        t += 1.0
    return Day(
        t_s=np.array(cols["t"]),
        x_m=np.array(cols["x"]),
        y_m=np.array(cols["y"]),
        speed_kmh=np.array(cols["v"]),
        ignition=np.array(cols["acc"], dtype=np.int8),
        odometer_km=np.round(np.array(cols["odo"]), 1),
        reports_s=np.array(cols["rep"]),
    )


def order(
    order_id: int,
    window: tuple[str, str],
    origin: Point,
    destination: Point,
    *,
    vehicle: int = 1,
    route: Sequence[Point] | None = None,
    day: date = DAY,
) -> DispatchOrder:
    """An approved order; its route defaults to depot → origin → destination → depot (straight lines)."""
    points = np.asarray(route if route is not None else [DEPOT, origin, destination, DEPOT], dtype=np.float64)
    lon, lat = metres_to_lonlat(points[:, 0], points[:, 1])
    (o_lon, d_lon), (o_lat, d_lat) = metres_to_lonlat(
        np.array([origin[0], destination[0]]), np.array([origin[1], destination[1]])
    )
    return DispatchOrder(
        order_id=order_id,
        vehicle_id=vehicle,
        window_start_us=at_us(window[0], day),
        window_end_us=at_us(window[1], day),
        origin_lon=float(o_lon),
        origin_lat=float(o_lat),
        destination_lon=float(d_lon),
        destination_lat=float(d_lat),
        route_lon=lon,
        route_lat=lat,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Fill:
    record_id: int
    at: str
    where: Point
    litres: float
    vehicle: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Repair:
    record_id: int
    start: str
    end: str
    where: Point
    vehicle: int = 1


def square(centre: Point, half_m: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """A closed square ring in lon/lat around a point in metres."""
    x = centre[0] + half_m * np.array([-1.0, 1.0, 1.0, -1.0, -1.0])
    y = centre[1] + half_m * np.array([-1.0, -1.0, 1.0, 1.0, -1.0])
    return metres_to_lonlat(x, y)


def line(points: Sequence[Point]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    xy = np.asarray(points, dtype=np.float64)
    return metres_to_lonlat(xy[:, 0], xy[:, 1])


@dataclass(frozen=True, slots=True, kw_only=True)
class Agency:
    """What the scene's configuration holds, in metres: depots at ``DEPOT`` for vehicles 1..n."""

    vehicles: int = 1
    tank_l: float = 55.0
    fuel_norm_l_per_100km: float = 9.0
    forbidden: Sequence[tuple[int, Point, float]] = ()  # (place id, centre, half side m)
    roads: Sequence[tuple[Sequence[Point], float]] = ()  # (polyline, limit km/h)
    default_limit_kmh: float | None = 120.0


def agency_config(agency: Agency, base: RuleConfig | None = None) -> RuleConfig:
    from dataclasses import replace

    n = agency.vehicles
    depot_lon, depot_lat = metres_to_lonlat(np.zeros(n), np.zeros(n))
    rings = [square(centre, half) for _, centre, half in agency.forbidden]
    road_lines = [line(points) for points, _ in agency.roads]
    return replace(
        base or RuleConfig(),
        vehicles=Vehicles(
            vehicle_id=np.arange(1, n + 1, dtype=np.int64),
            depot_lon=depot_lon,
            depot_lat=depot_lat,
            depot_radius_m=np.full(n, 150.0),
            tank_l=np.full(n, agency.tank_l),
            fuel_norm_l_per_100km=np.full(n, agency.fuel_norm_l_per_100km),
        ),
        forbidden=ForbiddenZones(
            zone_id=np.array([z for z, _, _ in agency.forbidden], dtype=np.int64),
            rings=polylines([r[0] for r in rings], [r[1] for r in rings]),
        ),
        speed=SpeedLimits(
            roads=polylines([r[0] for r in road_lines], [r[1] for r in road_lines]),
            limit_kmh=np.array([limit for _, limit in agency.roads], dtype=np.float64),
            default_limit_kmh=agency.default_limit_kmh,
        ),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Scene:
    days: Mapping[int, Day]  # vehicle id → its day
    orders: Sequence[DispatchOrder] = ()
    fills: Sequence[Fill] = ()
    repairs: Sequence[Repair] = ()
    agency: Agency = field(default_factory=Agency)
    window: tuple[str, str] = ("00:00", "48:00")
    day: date = DAY


def scene_inputs(scene: Scene, params: Params | None = None) -> RuleInputs:
    """The scene's fixes through ``tracks.run_fleet`` (with its orders and the depot), as rule inputs."""
    vehicles = sorted(scene.days)
    day0 = at_us("00:00", scene.day)

    def column(name: str) -> NDArray[np.float64]:
        return np.concatenate([getattr(scene.days[v], name) for v in vehicles] + [np.zeros(0)])

    t_us = np.round(column("t_s") * 1e6).astype(np.int64) + day0
    lon, lat = metres_to_lonlat(column("x_m"), column("y_m"))
    track = make_track(
        vehicle_id=np.concatenate(
            [np.full(len(scene.days[v].t_s), v, np.int64) for v in vehicles] + [np.zeros(0, np.int64)]
        ),
        t_us=t_us,
        lon=lon,
        lat=lat,
        speed_kmh=column("speed_kmh"),
        ignition=column("ignition").astype(np.int8),
        odometer_km=column("odometer_km"),
    )
    report_v = np.concatenate(
        [np.full(len(scene.days[v].reports_s), v, np.int64) for v in vehicles] + [np.zeros(0, np.int64)]
    )
    report_t = np.round(column("reports_s") * 1e6).astype(np.int64) + day0
    by = np.lexsort((report_t, report_v))
    orders = orders_table(list(scene.orders))
    depot_lon, depot_lat = metres_to_lonlat(np.zeros(1), np.zeros(1))
    context = Context(orders=orders, places=places(StopKind.DEPOT, depot_lon, depot_lat, 150.0))
    result = run_fleet(track, context, params or Params())

    def at(points: Sequence[Point]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        xy = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        return metres_to_lonlat(xy[:, 0], xy[:, 1])

    fill_lon, fill_lat = at([f.where for f in scene.fills])
    repair_lon, repair_lat = at([r.where for r in scene.repairs])
    return RuleInputs(
        result=result,
        orders=orders,
        start_us=at_us(scene.window[0], scene.day),
        end_us=at_us(scene.window[1], scene.day),
        fuel=FuelRecords(
            record_id=np.array([f.record_id for f in scene.fills], dtype=np.int64),
            vehicle_id=np.array([f.vehicle for f in scene.fills], dtype=np.int64),
            t_us=np.array([at_us(f.at, scene.day) for f in scene.fills], dtype=np.int64),
            lon=fill_lon,
            lat=fill_lat,
            litres=np.array([f.litres for f in scene.fills], dtype=np.float64),
            place_id=np.full(len(scene.fills), -1, np.int64),
        ),
        maintenance=MaintenanceRecords(
            record_id=np.array([r.record_id for r in scene.repairs], dtype=np.int64),
            vehicle_id=np.array([r.vehicle for r in scene.repairs], dtype=np.int64),
            start_us=np.array([at_us(r.start, scene.day) for r in scene.repairs], dtype=np.int64),
            end_us=np.array([at_us(r.end, scene.day) for r in scene.repairs], dtype=np.int64),
            lon=repair_lon,
            lat=repair_lat,
            place_id=np.full(len(scene.repairs), -1, np.int64),
        ),
        reports=Reports(vehicle_id=report_v[by], t_us=report_t[by]),
    )


def scene_facts(scene: Scene, base: RuleConfig | None = None) -> tuple[Facts, RuleConfig]:
    config = agency_config(scene.agency, base)
    return derive_facts(scene_inputs(scene), config), config
