"""``fleetwatch bench tracks``: the track engine against movingpandas, and the batch recompute from
TimescaleDB against reading the same fixes out — each pair measured in the same run on the same fixes.

1. The engine (``tracks.bench.engine_throughput``): a synthetic fleet-day from ``tracks.synth`` of
   about ``--fixes`` fixes (a China weekday of a city motor pool: parked overnight, 3-8 drives, a fix
   every 10 s while moving and every 1-5 min parked, with jumps, tunnels, ACC flicker). The whole fleet
   goes through ``run_fleet`` in one call on one core, twice; ``engine_fixes_per_s`` is the better run,
   counted in CPU seconds of this process through clean + split + measure + conform (and joining the
   blocks); ``all_steps_fixes_per_s`` adds match and usage.
2. movingpandas on a seeded random sample of 40 whole vehicles of the same fleet (it runs some hundred
   times slower: the whole day would take a quarter of an hour): from a GeoDataFrame of the sample's
   points (built before the clock starts), ``TrajectoryCollection`` → ``ObservationGapSplitter`` (gap =
   ``max_gap_s``) → ``StopSplitter`` (diameter = ``stop_radius_m``, duration = ``min_stop_s``, min length
   = ``min_trip_distance_m``) → ``get_length()`` per trip (geodesic for EPSG:4326), in CPU seconds.
   ``movingpandas_fixes_per_s`` = sample fixes / those seconds; ``ratio`` = engine / movingpandas. The
   engine's trips on the same sample are counted too, so the two do comparable work.
3. The same fixes in a fresh database (``fleetwatch_bench_tracks``): the fleet's vehicles, depots and
   approved orders with their routes, and the fixes binary-COPYed into ``position`` in time order, in
   100k-row transactions (vehicles interleaved, as ingest stores them), then VACUUM ANALYZE. Then, in
   wall-clock seconds (the server works in its own process), best of two runs each:
   ``read_ceiling_fixes_per_s`` — ``tracks.worker.read_track`` of ``copy_fixes_of_window`` over the
   window the recompute reads, nothing else; ``recompute_fixes_per_s`` — ``tracks.worker.recompute``
   over the fleet's day (read, engine, trips + order links + conformance + usage stored). The database
   is left for inspection; the next run drops it.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import warnings
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import orjson
import psycopg
from tqdm import tqdm

from simulators.load import register_load_fleet
from store.copy import binary_copy_payload
from store.db import create_database, drop_database, with_dbname
from store.epoch import utc
from store.fixsql import fix_query
from store.migrate import migrate
from store.settings import StoreSettings
from tracks.bench import engine_throughput
from tracks.match import orders_table
from tracks.params import Params
from tracks.pipeline import Context, run_fleet
from tracks.synth import Fleet, at_us, synthetic_fleet
from tracks.track import IGNITION_UNKNOWN, Track
from tracks.worker import MARGIN_S, read_track, recompute

log = logging.getLogger(__name__)

BENCH_DB = "fleetwatch_bench_tracks"
ISSUE_FIXES = 5_000_000
SAMPLE_VEHICLES = 40  # ~50k fixes: ~10 s of movingpandas on this machine
LOAD_BATCH_ROWS = 100_000
RUNS = 2


@dataclass(frozen=True, slots=True, kw_only=True)
class Split:
    """Trips found on a sample of vehicles, their total length, and the CPU seconds it took."""

    trips: int
    distance_m: float
    cpu_s: float
    wall_s: float


def measure_tracks(
    url: str, *, fixes: int, seed: int, sample_vehicles: int = SAMPLE_VEHICLES, keep_database: bool = True
) -> dict[str, Any]:
    """Every figure of the benchmark; ``url`` names the database to (re)create for the recompute."""
    params = Params()
    engine = engine_throughput(fixes, seed)
    fleet = synthetic_fleet(int(engine["vehicles"]), seed)  # the same fleet: same size, same seed
    if len(fleet.track) != engine["fixes"]:
        raise RuntimeError(
            f"regenerated fleet has {len(fleet.track)} fixes, the engine ran {engine['fixes']}"
        )
    best_engine = max(int(engine["engine_fixes_per_s"]), int(engine["cold_engine_fixes_per_s"]))
    log.info("engine: %d fixes, best of two runs %d fixes/s (CPU)", engine["fixes"], best_engine)

    sample = _sample(fleet.track, sample_vehicles, seed)
    context = Context(orders=orders_table(fleet.orders), places=fleet.depots)
    ours = _engine_split(sample, context, params)
    theirs = _movingpandas_split(sample, params)
    mp_rate = len(sample) / theirs.cpu_s
    log.info(
        "movingpandas: %d fixes of %d vehicles in %.1f s CPU", len(sample), sample_vehicles, theirs.cpu_s
    )

    try:
        db = _recompute_vs_read(url, fleet, params)
    finally:
        if not keep_database:
            drop_database(url)
    return {
        "fixes": engine["fixes"],
        "vehicles": engine["vehicles"],
        "engine_fixes_per_s": best_engine,
        "all_steps_fixes_per_s": engine["all_steps_fixes_per_s"],
        "engine_trips": engine["trips"],
        "movingpandas_fixes_per_s": round(mp_rate),
        "ratio": round(best_engine / mp_rate, 1),
        "sample_vehicles": len(np.unique(sample.vehicle_id)),
        "sample_fixes": len(sample),
        "sample_engine_trips": ours.trips,
        "sample_movingpandas_trips": theirs.trips,
        "sample_engine_km": round(ours.distance_m / 1000, 1),
        "sample_movingpandas_km": round(theirs.distance_m / 1000, 1),
        "sample_engine_cpu_s": round(ours.cpu_s, 3),
        "movingpandas_cpu_s": round(theirs.cpu_s, 2),
        "movingpandas_wall_s": round(theirs.wall_s, 2),
        **db,
        "timing": "engine, movingpandas: CPU s of this process (engine: best of 2 runs);"
        " database: wall s, best of 2 runs",
    }


def _sample(track: Track, vehicles: int, seed: int) -> Track:
    """All fixes of ``vehicles`` vehicles drawn at random (seeded) from the track."""
    ids = np.unique(track.vehicle_id)
    chosen = np.sort(np.random.default_rng(seed).choice(ids, min(vehicles, len(ids)), replace=False))
    return track.take(np.flatnonzero(np.isin(track.vehicle_id, chosen)))


def _engine_split(sample: Track, context: Context, params: Params) -> Split:
    cpu, wall = time.process_time(), time.perf_counter()
    trips = run_fleet(sample, context, params).trips
    return Split(
        trips=len(trips),
        distance_m=float(np.sum(trips.distance_m)),
        cpu_s=time.process_time() - cpu,
        wall_s=time.perf_counter() - wall,
    )


def _movingpandas_split(sample: Track, params: Params) -> Split:
    """Gap split, stop split and length per trip, the nearest movingpandas has to the engine's split."""
    with warnings.catch_warnings():  # movingpandas warns at import that an optional smoother is missing
        warnings.simplefilter("ignore", UserWarning)
        import geopandas as gpd  # type: ignore[import-untyped]
        import movingpandas as mpd  # type: ignore[import-untyped]
        import pandas as pd  # type: ignore[import-untyped]

    points = gpd.GeoDataFrame(
        {"vehicle_id": sample.vehicle_id, "t": pd.to_datetime(sample.t_us, unit="us")},
        geometry=gpd.points_from_xy(sample.lon, sample.lat),
        crs="EPSG:4326",
    )
    cpu, wall = time.process_time(), time.perf_counter()
    with warnings.catch_warnings():  # movingpandas 0.23 still calls pandas APIs that pandas 3 deprecates
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        collection = mpd.TrajectoryCollection(points, traj_id_col="vehicle_id", t="t")
        collection = mpd.ObservationGapSplitter(collection).split(
            gap=timedelta(seconds=params.trip.max_gap_s)
        )
        collection = mpd.StopSplitter(collection).split(
            max_diameter=params.trip.stop_radius_m,
            min_duration=timedelta(seconds=params.trip.min_stop_s),
            min_length=params.trip.min_trip_distance_m,
        )
        lengths = [float(trajectory.get_length()) for trajectory in collection.trajectories]
    return Split(
        trips=len(lengths),
        distance_m=sum(lengths),
        cpu_s=time.process_time() - cpu,
        wall_s=time.perf_counter() - wall,
    )


# --- the database side ---------------------------------------------------------------------------


def _recompute_vs_read(url: str, fleet: Fleet, params: Params) -> dict[str, Any]:
    create_database(url, drop_existing=True)
    migrate(url)
    with psycopg.connect(url, autocommit=True) as conn:
        vehicle_of = _register(conn, fleet)
        loaded = _load_fixes(conn, fleet.track, vehicle_of)
        conn.execute("VACUUM ANALYZE position")
        from_us, to_us = at_us("00:00"), at_us("24:00")  # the synthetic fleet's day, China time
        margin_us = int((params.trip.context_s + MARGIN_S) * 1e6)  # what recompute reads either side
        window = {"from": utc(from_us - margin_us), "to": utc(to_us + margin_us)}
        read_s, recompute_s, read_cpu_s, recompute_cpu_s = [], [], [], []
        read, recomputed, trips = 0, 0, 0
        for run in range(RUNS):
            started, cpu = time.perf_counter(), time.process_time()
            read = len(read_track(conn, fix_query("copy_fixes_of_window"), window))
            read_s.append(time.perf_counter() - started)
            read_cpu_s.append(time.process_time() - cpu)
            started, cpu = time.perf_counter(), time.process_time()
            recomputed, trips = recompute(conn, from_us, to_us, params)
            recompute_s.append(time.perf_counter() - started)
            recompute_cpu_s.append(time.process_time() - cpu)
            log.info("run %d: read %.2f s, recompute %.2f s (wall)", run + 1, read_s[-1], recompute_s[-1])
        stored = conn.execute(
            "SELECT (SELECT count(*) FROM trip), (SELECT count(*) FROM trip_order),"
            " (SELECT count(*) FROM trip_conformance)"
        ).fetchone()
    if read != loaded or recomputed != loaded:
        raise RuntimeError(f"loaded {loaded} fixes, read back {read}, recompute read {recomputed}")
    read_rate, recompute_rate = loaded / min(read_s), loaded / min(recompute_s)
    return {
        "db_fixes": loaded,
        "recompute_fixes_per_s": round(recompute_rate),
        "read_ceiling_fixes_per_s": round(read_rate),
        "recompute_ratio": round(recompute_rate / read_rate, 3),
        "recompute_s": [round(s, 2) for s in recompute_s],
        "read_ceiling_s": [round(s, 2) for s in read_s],
        "recompute_client_cpu_s": [round(s, 2) for s in recompute_cpu_s],
        "read_ceiling_client_cpu_s": [round(s, 2) for s in read_cpu_s],
        "recompute_trips": trips,
        "stored": dict(zip(("trips", "order_links", "conformance"), stored or (), strict=False)),
    }


def _register(conn: psycopg.Connection[Any], fleet: Fleet) -> np.ndarray[Any, np.dtype[np.int32]]:
    """Vehicles, depots and approved orders of the fleet; the database vehicle id of each fleet vehicle."""
    vehicles = int(np.max(fleet.track.vehicle_id))
    registered = register_load_fleet(conn, vehicles, prefix="T")
    vehicle_of = np.zeros(vehicles + 1, np.int32)
    vehicle_of[1:] = registered.vehicle_ids
    row = conn.execute(
        "SELECT pool_id, agency_id FROM vehicle WHERE vehicle_id = %s", (registered.vehicle_ids[0],)
    ).fetchone()
    if row is None:
        raise RuntimeError("registered vehicles are missing")
    pool_id, agency_id = row
    depots = fleet.depots
    with conn.transaction():
        with (
            conn.cursor() as cur,
            cur.copy("COPY depot (pool_id, name, lon, lat, radius_m) FROM STDIN") as copy,
        ):
            for k in range(len(depots)):
                copy.write_row((pool_id, f"depot {k + 1}", float(depots.lon[k]), float(depots.lat[k]), 150.0))
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY dispatch_order (dispatch_order_id, code, agency_id, passengers, purpose, origin_lon,"
                " origin_lat, destination_lon, destination_lat, requested_at, window_start_at, window_end_at,"
                " route, status, vehicle_id, pool_id) FROM STDIN"
            ) as copy,
        ):
            for order in fleet.orders:
                route = None
                if len(order.route_lon) >= 2:
                    coordinates = np.stack((order.route_lon, order.route_lat), axis=1).tolist()
                    route = orjson.dumps({"type": "LineString", "coordinates": coordinates}).decode()
                copy.write_row(
                    (
                        order.order_id,
                        f"B{order.order_id:08d}",
                        agency_id,
                        1,
                        "bench",
                        order.origin_lon,
                        order.origin_lat,
                        order.destination_lon,
                        order.destination_lat,
                        utc(order.window_start_us - 86_400_000_000),
                        utc(order.window_start_us),
                        utc(order.window_end_us),
                        route,
                        "approved",
                        int(vehicle_of[order.vehicle_id]),
                        pool_id,
                    )
                )
    return vehicle_of


def _load_fixes(
    conn: psycopg.Connection[Any], track: Track, vehicle_of: np.ndarray[Any, np.dtype[np.int32]]
) -> int:
    """The track's fixes into ``position`` in time order (vehicles interleaved), a transaction a batch."""
    order = np.argsort(track.t_us, kind="stable")
    now_us = time.time_ns() // 1000
    with tqdm(total=len(order), desc="load position", unit="fix", disable=None, file=sys.stderr) as bar:
        for lo in range(0, len(order), LOAD_BATCH_ROWS):
            rows = order[lo : lo + LOAD_BATCH_ROWS]
            n = len(rows)
            vehicle = vehicle_of[track.vehicle_id[rows]]
            speed, ignition, odometer = track.speed_kmh[rows], track.ignition[rows], track.odometer_km[rows]
            payload = binary_copy_payload(
                [
                    ("vehicle_id", "int4", vehicle),
                    ("fix_at", "timestamptz", track.t_us[rows]),
                    ("received_at", "timestamptz", np.full(n, now_us, np.int64)),
                    ("terminal_no", "int4", vehicle),  # a fresh database numbers terminals like vehicles
                    ("lon", "float8", track.lon[rows]),
                    ("lat", "float8", track.lat[rows]),
                    ("speed_kmh", "float4", speed, np.isnan(speed)),
                    ("valid", "bool", np.ones(n, np.bool_)),
                    ("ignition", "bool", ignition == 1, ignition == IGNITION_UNKNOWN),
                    ("odometer_km", "float8", odometer, np.isnan(odometer)),
                ]
            )
            with (
                conn.transaction(),
                conn.cursor() as cur,
                cur.copy(
                    "COPY position (vehicle_id, fix_at, received_at, terminal_no, lon, lat, speed_kmh, valid,"
                    " ignition, odometer_km) FROM STDIN (FORMAT BINARY)"
                ) as copy,
            ):
                copy.write(payload)
            bar.update(n)
    return len(order)


# --- the command ----------------------------------------------------------------------------------


def bench_tracks(args: argparse.Namespace) -> int:
    fixes = args.fixes or ISSUE_FIXES
    if fixes < ISSUE_FIXES:
        log.warning(
            "the issue's figures are for a fleet-day of >= %d fixes (--fixes %d)", ISSUE_FIXES, ISSUE_FIXES
        )
    url = with_dbname(StoreSettings().database_url, BENCH_DB)
    report = measure_tracks(url, fixes=fixes, seed=args.seed)
    print(
        f"engine: {report['fixes']:,} fixes of {report['vehicles']:,} vehicles,"
        f" {report['engine_fixes_per_s']:,} fixes/s (clean+split+measure+conform, CPU, best of 2),"
        f" {report['all_steps_fixes_per_s']:,} fixes/s with match and usage\n"
        f"movingpandas: {report['movingpandas_fixes_per_s']:,} fixes/s on {report['sample_fixes']:,} fixes"
        f" of {report['sample_vehicles']} random vehicles ({report['sample_movingpandas_trips']} trips,"
        f" {report['sample_movingpandas_km']} km; the engine: {report['sample_engine_trips']} trips,"
        f" {report['sample_engine_km']} km); ratio {report['ratio']}\n"
        f"recompute from TimescaleDB: {report['recompute_fixes_per_s']:,} fixes/s,"
        f" read ceiling {report['read_ceiling_fixes_per_s']:,} fixes/s (wall, best of 2);"
        f" ratio {report['recompute_ratio']}",
        file=sys.stderr,
    )
    if args.json:
        print(json.dumps(report))
    return 0
