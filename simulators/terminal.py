"""Terminals: when a car reports, what it reports, and when the report reaches the broker.

Like a JT/T 808 terminal: a fix every ``moving_interval_s`` with the ignition on, every 60–300 s (per
terminal) with it off, one at each ignition change; GPS noise, a rare jump of hundreds of metres, drift
while parked; no fix in a tunnel (the terminal repeats its last position with ``valid`` false);
odometer in 0.1 km. Delivery: live fixes one per message a second or two late, sometimes late enough to
arrive after the next one, sometimes twice; fixes taken without coverage (blind areas, tunnels, network
outages) are kept and uploaded as late ``{"fixes": [...]}`` batches once coverage is back
(0x0704 blind-area back-fill). A silent terminal (unplugged) records nothing at all.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from simulators.city import BlindArea
from simulators.drive import Legs, locate
from simulators.plane import offset_lonlat
from simulators.schedule import Timeline
from tracks.geo import haversine_m

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]
Bools = NDArray[np.bool_]


@dataclass(frozen=True, slots=True, kw_only=True)
class TerminalParams:
    moving_interval_s: int = 10
    noise_m: float = 5.0
    jump_probability: float = 0.0005  # per fix
    jump_m: tuple[float, float] = (200.0, 800.0)
    drift_m: tuple[float, float] = (5.0, 50.0)  # amplitude of a parked car's wander
    outage_probability: float = 0.05  # per car and day: the mobile network is lost for a while
    outage_s: tuple[float, float] = (120.0, 1_200.0)
    duplicate_probability: float = 0.002  # per message
    reorder_probability: float = 0.003  # per live message: delayed past the next fixes
    latency_s: tuple[float, float] = (0.3, 3.0)
    backfill_delay_s: tuple[float, float] = (3.0, 30.0)
    batch_max_fixes: int = 100


@dataclass(frozen=True, slots=True, kw_only=True)
class Fixes:
    """Every fix a terminal took, in (vehicle, time) order: what it reported and what was true."""

    vehicle: Ints  # index into fleet.vehicles
    t_ms: Ints
    lon: Floats
    lat: Floats
    speed_kmh: Floats
    heading_deg: Floats
    altitude_m: Floats
    satellites: Ints
    hdop: Floats
    valid: Bools
    ignition: Bools
    odometer_km: Floats
    seq: Ints
    true_lon: Floats
    true_lat: Floats
    true_speed_kmh: Floats
    limit_kmh: Floats  # of the road under the car, NaN when parked
    trip: Ints  # index of the leg (true trip) the car is on, -1 when parked
    jump: Bools
    buffered: Bools  # uploaded late in a back-fill batch

    def __len__(self) -> int:
        return len(self.t_ms)


@dataclass(frozen=True, slots=True, kw_only=True)
class Deliveries:
    """MQTT messages in send order; message m carries fixes rows[row_start[m]:row_start[m] + row_count[m]]."""

    sent_ms: Ints
    vehicle: Ints
    row_start: Ints
    row_count: Ints
    batch: Bools  # a {"fixes": [...]} message
    rows: Ints

    def __len__(self) -> int:
        return len(self.sent_ms)


def _series(start: Floats, end: Floats, step: Floats) -> tuple[Ints, Floats]:
    """Times start, start + step, … < end (at least one per span) and the span of each."""
    count = np.maximum(np.ceil((end - start) / step), 1).astype(np.int64)
    span = np.repeat(np.arange(len(start)), count)
    first = np.concatenate(([0], np.cumsum(count)[:-1]))
    return span, start[span] + (np.arange(int(count.sum())) - first[span]) * step[span]


def take_fixes(
    timeline: Timeline,
    legs: Legs,
    *,
    parked_interval_s: Floats,  # per vehicle index (whole fleet)
    odometer_start_km: Floats,
    odometer_factor: Floats,  # per leg
    silent: tuple[Floats, Floats],  # per leg: silent from … to (epoch s), NaN if not
    blind_areas: tuple[BlindArea, ...],
    sim_start_s: float,
    params: TerminalParams,
    rng: np.random.Generator,
) -> tuple[Fixes, Bools]:
    """The fixes of a batch of cars, and which of them happened without coverage."""
    tl = timeline
    # ignition on: every moving_interval_s from ignition on to off
    step_on = np.full(len(tl.on_s), float(params.moving_interval_s))
    leg_of, t_on = _series(np.ceil(tl.on_s), tl.off_s, step_on)
    # parked: an ignition-off report, then every parked interval; the first span of the run gets a phase
    interval = parked_interval_s[tl.park_vehicle]
    first_span = tl.park_start_s <= sim_start_s
    phase = np.where(first_span, rng.uniform(0, 1, len(interval)) * interval, 0.0)
    park_of, t_park = _series(np.ceil(tl.park_start_s + phase), tl.park_end_s, interval)
    t_park_ok = t_park < tl.park_end_s[park_of]
    park_of, t_park = park_of[t_park_ok], t_park[t_park_ok]

    vehicle = np.concatenate((tl.leg_vehicle[leg_of], tl.park_vehicle[park_of]))
    t_s = np.concatenate((t_on, t_park))
    trip = np.concatenate((leg_of, np.full(len(t_park), -1)))
    park = np.concatenate((np.full(len(t_on), -1), park_of))
    order = np.lexsort((trip, t_s, vehicle))
    vehicle, t_s, trip, park = vehicle[order], t_s[order], trip[order], park[order]
    unique = np.ones(len(t_s), dtype=np.bool_)
    unique[1:] = (vehicle[1:] != vehicle[:-1]) | (t_s[1:] != t_s[:-1])
    # a silent terminal takes no fix at all
    silent_from, silent_to = np.append(silent[0], np.nan), np.append(silent[1], np.nan)
    moving = trip >= 0
    hush = moving & (t_s >= silent_from[trip]) & (t_s <= silent_to[trip])  # trip -1: the NaN pad
    keep = unique & ~hush
    vehicle, t_s, trip, park, moving = vehicle[keep], t_s[keep], trip[keep], park[keep], moving[keep]
    n = len(t_s)

    # the truth
    mv = np.flatnonzero(moving)
    parked = np.flatnonzero(~moving)

    def spread(values: NDArray[Any], fill: float) -> Floats:
        out = np.full(n, fill)
        out[mv] = values
        return out

    true_lon, true_lat = spread(np.zeros(len(mv)), 0.0), spread(np.zeros(len(mv)), 0.0)
    true_speed, limit, along_m = spread(np.zeros(len(mv)), 0.0), np.full(n, np.nan), np.zeros(n)
    heading, tunnel = np.full(n, np.nan), np.zeros(n, dtype=np.bool_)
    if len(mv):
        at = locate(legs, trip[mv], t_s[mv] - tl.depart_s[trip[mv]])
        true_lon, true_lat = spread(at.lon, 0.0), spread(at.lat, 0.0)
        true_speed, limit, along_m = (
            spread(at.speed_mps * 3.6, 0.0),
            spread(at.limit_kmh, np.nan),
            spread(at.s_m, 0.0),
        )
        heading = spread(at.heading_deg, np.nan)
        tunnel[mv] = at.tunnel
    true_lon[parked], true_lat[parked] = tl.park_lon[park[parked]], tl.park_lat[park[parked]]
    ignition = moving.copy()  # moving fixes are taken between ignition on and off

    # odometer: distance driven by the car before this leg, plus how far along the leg it is
    leg_km = legs.length_m * odometer_factor / 1000.0
    through = np.cumsum(leg_km)
    car_first = np.searchsorted(tl.leg_vehicle, tl.leg_vehicle, side="left")
    before_leg = through - leg_km - (through[car_first] - leg_km[car_first])
    key_legs = tl.leg_vehicle * 1e10 + tl.off_s
    done = np.searchsorted(key_legs, vehicle * 1e10 + t_s, side="right") - 1  # last leg ended by now
    own = (done >= 0) & (np.append(tl.leg_vehicle, -1)[done] == vehicle)
    done_km = np.where(own, np.append(before_leg + leg_km, 0.0)[done], 0.0)
    before = np.append(before_leg, 0.0)[trip]
    driven_km = np.where(moving, before + along_m * np.append(odometer_factor, 1.0)[trip] / 1000.0, done_km)
    odometer = np.round(odometer_start_km[vehicle] + driven_km, 1)

    # what the terminal reports
    angle = rng.uniform(0, 2 * np.pi, n)
    east, north = rng.normal(0, params.noise_m, n), rng.normal(0, params.noise_m, n)
    amplitude = rng.uniform(*params.drift_m, len(tl.park_vehicle) + 1)[np.where(moving, -1, park)]
    period = rng.uniform(1_200.0, 3_600.0, len(tl.park_vehicle) + 1)[np.where(moving, -1, park)]
    wander = np.where(moving, 0.0, amplitude)
    east += wander * np.sin(2 * np.pi * t_s / period)
    north += wander * np.cos(2 * np.pi * t_s / period + 1.0)
    jump = rng.random(n) < params.jump_probability
    jump[1:] &= ~jump[:-1]  # a jump is one fix
    jump_m = rng.uniform(*params.jump_m, n)
    east += np.where(jump, jump_m * np.sin(angle), 0.0)
    north += np.where(jump, jump_m * np.cos(angle), 0.0)
    lon, lat = offset_lonlat(true_lon, true_lat, east, north)
    # in a tunnel: no fix; the terminal repeats its last good position
    good_index = np.where(tunnel, -1, np.arange(n))
    seq_first = np.searchsorted(vehicle, vehicle, side="left")
    good_index = np.maximum.accumulate(good_index)
    stale = good_index < seq_first  # never another car's position
    good_index = np.maximum(good_index, 0)
    lon = np.where(tunnel & ~stale, lon[good_index], lon)
    lat = np.where(tunnel & ~stale, lat[good_index], lat)
    heading_index = np.maximum.accumulate(np.where(moving, np.arange(n), -1))
    heading_index = np.where(heading_index >= seq_first, heading_index, -1)  # never another car's heading
    heading = np.where(
        moving, heading, np.where(heading_index >= 0, heading[np.maximum(heading_index, 0)], 0.0)
    )

    speed_kmh = np.where(moving, np.maximum(true_speed + rng.normal(0, 0.5, n), 0.0), 0.0)
    satellites = np.where(tunnel, 0, rng.integers(8, 21, n))
    hdop = np.where(tunnel, 99.9, np.round(rng.uniform(0.6, 2.0, n), 1))
    fixes = Fixes(
        vehicle=vehicle,
        t_ms=np.round(t_s * 1000).astype(np.int64),
        lon=np.round(lon, 6),
        lat=np.round(lat, 6),
        speed_kmh=np.round(speed_kmh, 1).astype(np.float64),
        heading_deg=(np.round(heading) % 360).astype(np.float64),
        altitude_m=np.round(6.0 + 3.0 * np.sin(true_lon * 300.0) + rng.normal(0, 2.0, n)),
        satellites=satellites.astype(np.int64),
        hdop=hdop,
        valid=~tunnel,
        ignition=ignition,
        odometer_km=odometer,
        seq=np.arange(n) - seq_first,
        true_lon=true_lon,
        true_lat=true_lat,
        true_speed_kmh=true_speed,
        limit_kmh=limit,
        trip=trip,
        jump=jump,
        buffered=np.zeros(n, dtype=np.bool_),
    )
    no_coverage = tunnel.copy()
    for area in blind_areas:
        no_coverage |= haversine_m(true_lon, true_lat, area.lon, area.lat) < area.radius_m
    # network outages: per car and day, a random stretch without mobile data
    cars = np.unique(vehicle)
    day0 = np.floor(t_s.min() / 86_400) if n else 0.0
    days = int(np.ceil((t_s.max() - day0 * 86_400) / 86_400)) + 1 if n else 0
    hit = rng.random((len(cars), days)) < params.outage_probability
    starts = day0 * 86_400 + np.arange(days) * 86_400 + rng.uniform(0, 86_400, (len(cars), days))
    lengths = rng.uniform(*params.outage_s, (len(cars), days))
    car_row = np.searchsorted(cars, vehicle)
    day_col = np.clip(((t_s - day0 * 86_400) // 86_400).astype(np.int64), 0, max(days - 1, 0))
    for shift in (0, -1):  # an outage may begin the day before
        col = np.clip(day_col + shift, 0, max(days - 1, 0))
        s0 = starts[car_row, col]
        no_coverage |= hit[car_row, col] & (t_s >= s0) & (t_s < s0 + lengths[car_row, col])
    return fixes, no_coverage


def deliver(
    fixes: Fixes, no_coverage: Bools, params: TerminalParams, rng: np.random.Generator, descending: Bools
) -> tuple[Fixes, Deliveries]:
    """Messages for the fixes: live ones one by one, back-fill batches after each coverage gap."""
    n = len(fixes)
    t_s = fixes.t_ms / 1000.0
    v = fixes.vehicle
    new_car = np.ones(n, dtype=np.bool_)
    new_car[1:] = v[1:] != v[:-1]
    run_start = no_coverage & (new_car | ~np.roll(no_coverage, 1))
    run_id = np.cumsum(run_start) - 1
    run_id = np.where(no_coverage, run_id, -1)
    n_runs = int(run_start.sum())
    # a run is released when the next covered fix of the same car is taken
    run_last = np.zeros(n_runs, dtype=np.int64)
    rows_in_run = np.flatnonzero(no_coverage)
    run_last[run_id[rows_in_run]] = rows_in_run  # the last write per run wins: its last row
    after = np.minimum(run_last + 1, n - 1)
    same_car = (run_last + 1 < n) & (v[after] == v[run_last])
    release = np.where(same_car, t_s[after], t_s[run_last] + 60.0)
    # chunks of at most batch_max_fixes
    first_of_run = np.flatnonzero(run_start)
    run_first = first_of_run[np.maximum(run_id, 0)] if n_runs else np.zeros(n, dtype=np.int64)
    pos = np.arange(n) - np.where(no_coverage, run_first, 0)
    chunk = pos // params.batch_max_fixes
    batch_key = run_id * 100_000 + chunk
    batch_rows = np.flatnonzero(no_coverage)
    keys, batch_of_row = np.unique(batch_key[batch_rows], return_inverse=True)
    n_batches = len(keys)
    batch_run = keys // 100_000
    batch_sent = release[batch_run] + rng.uniform(*params.backfill_delay_s, n_batches)
    batch_car = v[run_last[batch_run]] if n_batches else np.zeros(0, dtype=np.int64)
    # rows of each batch, oldest or newest first depending on the terminal's firmware
    order_in = np.where(descending[v[batch_rows]], -t_s[batch_rows], t_s[batch_rows])
    arranged = batch_rows[np.lexsort((order_in, batch_of_row))]
    batch_count = np.bincount(batch_of_row, minlength=n_batches)

    live_rows = np.flatnonzero(~no_coverage)
    live_sent = t_s[live_rows] + rng.uniform(*params.latency_s, len(live_rows))
    late = rng.random(len(live_rows)) < params.reorder_probability
    live_sent += np.where(late, rng.uniform(12.0, 40.0, len(live_rows)), 0.0)

    rows = np.concatenate((live_rows, arranged))
    count = np.concatenate((np.ones(len(live_rows), dtype=np.int64), batch_count))
    start = np.concatenate(([0], np.cumsum(count)[:-1]))
    sent = np.concatenate((live_sent, batch_sent))
    car = np.concatenate((v[live_rows], batch_car))
    batch = np.concatenate((np.zeros(len(live_rows), dtype=np.bool_), np.ones(n_batches, dtype=np.bool_)))
    # a few messages are sent twice
    twice = np.flatnonzero(rng.random(len(sent)) < params.duplicate_probability)
    sent = np.concatenate((sent, sent[twice] + rng.uniform(1.0, 30.0, len(twice))))
    start, count = np.concatenate((start, start[twice])), np.concatenate((count, count[twice]))
    car, batch = np.concatenate((car, car[twice])), np.concatenate((batch, batch[twice]))
    sent_ms = np.round(sent * 1000).astype(np.int64)
    order = np.lexsort((start, car, sent_ms))
    buffered = fixes.buffered.copy()
    buffered[batch_rows] = True
    return (
        replace(fixes, buffered=buffered),
        Deliveries(
            sent_ms=sent_ms[order],
            vehicle=car[order],
            row_start=start[order],
            row_count=count[order],
            batch=batch[order],
            rows=rows,
        ),
    )
