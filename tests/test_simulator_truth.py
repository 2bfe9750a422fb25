"""The simulator's truth matches its geometry, its output is reproducible, its terminals behave."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from datetime import date
from itertools import islice
from pathlib import Path

import numpy as np
import pytest
import shapely

from ingest.decode import Message, decode
from rules.calendar import china_calendar, local_midnight_s
from simulators.output import messages
from simulators.plane import path_length_m
from simulators.run import SimParams, SimRun, simulate
from simulators.violations import CLEAN
from simulators.world import build_world
from tracks.geo import haversine_m


@pytest.fixture(scope="module")
def run() -> SimRun:
    return simulate(build_world(30, 11), SimParams(start=date(2026, 12, 3), days=2))


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    """Two processes with different string-hash seeds write the same bytes (no set or hash order leaks)."""
    for name, hash_seed in (("a", "1"), ("b", "3")):
        subprocess.run(
            [
                sys.executable,
                "-m",
                "fleetwatch.cli",
                "simulate",
                "--vehicles",
                "12",
                "--days",
                "2",
                "--seed",
                "3",
                "--start",
                "2026-12-04",
                "--violation-scale",
                "10",
                "--out",
                str(tmp_path / name),
            ],
            check=True,
            capture_output=True,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            timeout=120,
        )
    a, b = digest(tmp_path / "a"), digest(tmp_path / "b")
    assert set(a) >= {"messages.jsonl", "trips.jsonl", "alerts.jsonl", "orders.jsonl", "vehicles.jsonl"}
    assert (tmp_path / "a" / "alerts.jsonl").stat().st_size > 0
    assert a == b


def test_another_seed_gives_other_messages() -> None:
    params = SimParams(start=date(2026, 12, 4), days=1)
    first = list(islice(messages(simulate(build_world(12, 3), params)), 200))
    other = list(islice(messages(simulate(build_world(12, 4), params)), 200))
    assert first != other


def test_trip_length_is_the_length_of_its_path(run: SimRun) -> None:
    assert run.truth.trips
    for trip in run.truth.trips:
        assert trip.path_length_m == pytest.approx(path_length_m(trip.path_lon, trip.path_lat), rel=1e-9)
        start, end = run.world.place(trip.from_place_id), run.world.place(trip.to_place_id)
        assert (trip.path_lon[0], trip.path_lat[0]) == (start.lon, start.lat)
        assert (trip.path_lon[-1], trip.path_lat[-1]) == (end.lon, end.lat)
        assert trip.end_s > trip.start_s


def test_true_positions_lie_on_the_trip_path_and_sample_its_length(run: SimRun) -> None:
    fixes, plane = run.fixes, run.world.city.network.plane
    for trip in run.truth.trips[:60]:
        rows = np.flatnonzero(fixes.trip == trip.trip_id - 1)
        path = shapely.LineString(np.column_stack(plane.to_xy(trip.path_lon, trip.path_lat)))
        x, y = plane.to_xy(fixes.true_lon[rows], fixes.true_lat[rows])
        assert float(np.max(shapely.distance(shapely.points(x, y), path))) < 0.05
        sampled = path_length_m(fixes.true_lon[rows], fixes.true_lat[rows])
        # 10 s samples cut corners, never add length; the ends are within one sample of the path's ends
        assert sampled <= trip.path_length_m + 0.01
        assert sampled >= trip.path_length_m - 2 * 30.0 * 10 - 200.0


def test_odometer_advances_by_the_path_length(run: SimRun) -> None:
    fixes = run.fixes
    padded = {a.trip_id for a in run.truth.alerts if a.kind == "mileage_padding"}
    checked = 0
    for trip in run.truth.trips:
        if trip.trip_id in padded:
            continue
        car = fixes.vehicle == trip.vehicle
        t_ms = fixes.t_ms
        before = np.flatnonzero(car & (t_ms <= trip.start_s * 1000))
        after = np.flatnonzero(car & (t_ms >= trip.end_s * 1000 + 120_000))
        if len(before) == 0 or len(after) == 0:
            continue
        driven_km = fixes.odometer_km[after[0]] - fixes.odometer_km[before[-1]]
        assert driven_km * 1000 == pytest.approx(trip.path_length_m, abs=101.0)
        checked += 1
    assert checked > len(run.truth.trips) // 2


def test_compliant_driving_stays_under_the_limit() -> None:
    clean = simulate(build_world(20, 5), SimParams(start=date(2026, 12, 1), days=1, rates=CLEAN))
    moving = clean.fixes.trip >= 0
    assert moving.any()
    assert np.all(clean.fixes.true_speed_kmh[moving] <= clean.fixes.limit_kmh[moving] * 0.97 + 1e-9)
    assert clean.fixes.true_speed_kmh[moving].max() > 30.0


def test_terminals_report_every_10_s_moving_and_60_to_300_s_parked(run: SimRun) -> None:
    fixes = run.fixes
    same = fixes.vehicle[1:] == fixes.vehicle[:-1]
    gap_s = np.diff(fixes.t_ms)[same] / 1000
    assert np.all(gap_s > 0), "fixes of a car are in time order with distinct times"
    moving = (fixes.trip[1:] >= 0) & (fixes.trip[:-1] == fixes.trip[1:])
    silent = {
        a.trip_id - 1 for a in run.truth.alerts if a.kind == "silent_terminal" and a.trip_id is not None
    }
    steady = moving[same] & ~np.isin(fixes.trip[1:][same], list(silent))
    assert np.all(gap_s[steady] == 10.0)
    silenced = np.isin(fixes.trip[1:][same], list(silent)) | np.isin(fixes.trip[:-1][same], list(silent))
    assert gap_s[~silenced].max() <= 300.0
    parked = (fixes.trip[1:] < 0) & (fixes.trip[:-1] < 0)
    intervals = set(np.unique(gap_s[parked[same]]).tolist())
    assert intervals <= {60.0, 120.0, 180.0, 300.0}, intervals


def test_every_fix_is_delivered_and_back_fill_arrives_late(run: SimRun) -> None:
    d = run.deliveries
    counts = np.bincount(
        np.concatenate([d.rows[s : s + c] for s, c in zip(d.row_start, d.row_count, strict=True)]),
        minlength=len(run.fixes),
    )
    assert np.all(counts >= 1)
    assert np.any(counts == 2), "some messages are sent twice"
    assert d.batch.any() and run.fixes.buffered.any()
    assert np.all(np.diff(d.sent_ms) >= 0)
    batch_rows = np.concatenate(
        [d.rows[s : s + c] for s, c, b in zip(d.row_start, d.row_count, d.batch, strict=True) if b]
    )
    first_sent = {
        int(r): int(ms)
        for r, ms in zip(batch_rows, np.repeat(d.sent_ms[d.batch], d.row_count[d.batch]), strict=True)
    }
    late_s = [(first_sent[r] - run.fixes.t_ms[r]) / 1000 for r in first_sent]
    assert min(late_s) >= 3.0


def test_parked_cars_drift_and_noise_is_a_few_metres(run: SimRun) -> None:
    fixes = run.fixes
    ok = fixes.valid & ~fixes.jump
    err = haversine_m(fixes.lon[ok], fixes.lat[ok], fixes.true_lon[ok], fixes.true_lat[ok])
    moving = fixes.trip[ok] >= 0
    assert 3.0 < float(np.median(err[moving])) < 10.0
    assert float(np.percentile(err[~moving], 90)) > 10.0  # drift while parked
    jumps = haversine_m(
        fixes.lon[fixes.jump], fixes.lat[fixes.jump], fixes.true_lon[fixes.jump], fixes.true_lat[fixes.jump]
    )
    assert np.all(jumps > 150.0)


def test_calendar_reads_holidays_and_make_up_days_as_data() -> None:
    calendar = china_calendar()
    assert not calendar.is_working_day(date(2026, 10, 1))  # National Day, a Thursday
    assert calendar.is_working_day(date(2026, 10, 10))  # make-up Saturday
    assert calendar.is_working_day(date(2026, 2, 14))  # make-up Saturday before Spring Festival
    assert not calendar.is_working_day(date(2026, 12, 5))  # an ordinary Saturday
    assert calendar.is_working_day(date(2026, 12, 4))
    noon = float(local_midnight_s(date(2026, 10, 10)) + 12 * 3600)
    night = float(local_midnight_s(date(2026, 12, 4)) + 21 * 3600)
    holiday_noon = float(local_midnight_s(date(2026, 10, 2)) + 12 * 3600)
    off = calendar.off_hours(np.array([noon, night, holiday_noon]))
    assert off.tolist() == [False, True, True]


def test_no_outing_on_a_rest_day_without_violations() -> None:
    clean = simulate(build_world(25, 2), SimParams(start=date(2026, 12, 5), days=2, rates=CLEAN))  # Sat, Sun
    assert clean.truth.trips == ()
    assert clean.truth.alerts == ()


def test_payloads_decode_with_ingest_without_a_reject(run: SimRun) -> None:
    sent = [Message(topic=t, payload=p, received_at_us=ms * 1000) for ms, t, p in messages(run)]
    decoded = decode(sent, {v.terminal_id: v for v in run.world.fleet.vehicles})
    assert decoded.rejected == []
    assert len(decoded.fixes) == int(run.deliveries.row_count.sum())
    assert not decoded.fixes.reason.any()
    d = run.deliveries
    carried = np.concatenate([d.rows[s : s + c] for s, c in zip(d.row_start, d.row_count, strict=True)])
    assert np.array_equal(np.sort(decoded.fixes.t_us // 1000), np.sort(run.fixes.t_ms[carried]))
