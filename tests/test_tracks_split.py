"""Trips and stops on tiny hand-written tracks, and the split's properties on random ones."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracks.params import Params, TripParams
from tracks.pipeline import Context, VehicleResult, run_vehicle
from tracks.split import geometry, split_track
from tracks.synth import Row, at_us, local_track, synthetic_fleet
from tracks.track import Track, empty_track, make_track

P = Params()


def run(track: Track, params: Params = P) -> VehicleResult:
    return run_vehicle(track, Context(), params)


def clock(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def parked(
    start: str, minutes: int, x: float, y: float = 0.0, every_s: int = 60, **extra: float | None
) -> list[Row]:
    t0 = at_us(start) // 1_000_000 - at_us("00:00") // 1_000_000
    speed, ignition = extra.get("speed_kmh"), extra.get("ignition")
    return [
        (clock(t0 + k), x, y, speed, None if ignition is None else int(ignition), None)
        for k in range(0, minutes * 60 + 1, every_s)
    ]


def drive(
    start: str,
    x0: float,
    x1: float,
    *,
    speed_kmh: float = 36.0,
    every_s: int = 10,
    reported_kmh: float | None = -1.0,
    ignition: int | None = None,
) -> list[Row]:
    """Fixes every ``every_s`` between x0 and x1 (m east, both ends left to the stops) at ``speed_kmh``;
    the terminal reports ``reported_kmh`` (default: the speed; None: nothing)."""
    t0 = at_us(start) // 1_000_000 - at_us("00:00") // 1_000_000
    step = speed_kmh / 3.6 * every_s * np.sign(x1 - x0)
    n = int(abs(x1 - x0) / abs(step))
    reported = speed_kmh if reported_kmh == -1.0 else reported_kmh
    return [(clock(t0 + every_s * k), x0 + step * k, 0.0, reported, ignition, None) for k in range(1, n)]


def trip_spans(result: VehicleResult) -> list[tuple[int, int]]:
    t = result.trips
    return [(int(a), int(b)) for a, b in zip(t.start_us, t.end_us, strict=True)]


# --- edge cases ----------------------------------------------------------------------------------


def test_empty_track_has_no_segments() -> None:
    result = run(empty_track())
    assert len(result.segments) == 0
    assert len(result.trips) == 0


def test_one_fix_is_one_stop() -> None:
    result = run(local_track(("08:00", 0, 0)))
    assert len(result.trips) == 0
    assert list(result.segments.is_trip) == [False]


def test_split_one_drive_between_two_stops() -> None:
    track = local_track(*parked("07:30", 30, 0), *drive("08:00", 0, 6_000), *parked("08:10", 30, 6_000))
    result = run(track)
    assert list(result.segments.is_trip) == [False, True, False]
    (trip,) = range(len(result.trips))
    assert result.trips.distance_m[trip] == pytest.approx(6_000, rel=1e-6)
    assert result.trips.start_us[trip] == at_us("08:00")  # the last parked fix
    assert result.trips.end_us[trip] == at_us("08:10")  # the first fix standing at the destination


def test_parked_drift_makes_no_trip_and_no_mileage() -> None:
    rng = np.random.default_rng(4)
    wander = rng.uniform(-25, 25, (300, 2))  # a parked receiver wandering 5-50 m, for five hours
    track = local_track(*((clock(8 * 3600 + 60 * k), float(x), float(y)) for k, (x, y) in enumerate(wander)))
    result = run(track)
    assert len(result.trips) == 0
    assert result.usage.distance_km.sum() == 0


def test_ignition_flicker_while_parked_makes_no_trip() -> None:
    rows = [(clock(8 * 3600 + 30 * k), 3.0 * (k % 3), 0.0, 0.0, k % 2, None) for k in range(100)]
    assert len(run(local_track(*rows)).trips) == 0


def test_ignition_off_flicker_while_driving_does_not_split() -> None:
    rows = [*parked("07:30", 30, 0, ignition=0, speed_kmh=0), *drive("08:00", 0, 6_000, ignition=1)]
    k = len(rows) - 30
    rows[k] = (rows[k][0], rows[k][1], rows[k][2], 36.0, 0, None)  # one ACC-off report at speed
    rows += parked("08:10", 30, 6_000, ignition=0, speed_kmh=0)
    assert len(run(local_track(*rows)).trips) == 1


def test_ignition_off_ends_a_trip_without_waiting_for_the_dwell() -> None:
    rows = [*parked("07:30", 30, 0, ignition=0, speed_kmh=0), *drive("08:00", 0, 3_000, ignition=1)]
    rows += parked("08:05", 2, 3_000, every_s=20, ignition=0, speed_kmh=0)  # a 2-minute halt, ACC off
    rows += drive("08:07", 3_000, 6_000, ignition=1) + parked("08:12", 30, 6_000, ignition=0, speed_kmh=0)
    assert len(run(local_track(*rows)).trips) == 2


def test_jam_with_acc_on_does_not_split_but_long_idling_does() -> None:
    def with_halt(minutes: int) -> Track:
        rows = [*parked("07:30", 30, 0, ignition=0, speed_kmh=0), *drive("08:00", 0, 3_000, ignition=1)]
        rows += parked("08:05", minutes, 3_000, every_s=10, ignition=1, speed_kmh=0)
        start = clock(8 * 3600 + 5 * 60 + minutes * 60)
        end = clock(8 * 3600 + 10 * 60 + minutes * 60)
        rows += drive(start, 3_000, 6_000, ignition=1) + parked(end, 30, 6_000, ignition=0, speed_kmh=0)
        return local_track(*rows)

    assert len(run(with_halt(5)).trips) == 1  # standing in a jam, engine running
    assert len(run(with_halt(15)).trips) == 2  # waiting at a destination with the engine running


def test_short_stop_without_ignition_follows_the_dwell_rule() -> None:
    def with_halt(minutes: int) -> Track:
        rows = [*parked("07:30", 30, 0), *drive("08:00", 0, 3_000, reported_kmh=None)]
        rows += parked("08:05", minutes, 3_000, every_s=10)
        start, end = clock(8 * 3600 + 5 * 60 + minutes * 60), clock(8 * 3600 + 10 * 60 + minutes * 60)
        return local_track(*rows, *drive(start, 3_000, 6_000, reported_kmh=None), *parked(end, 30, 6_000))

    assert len(run(with_halt(2)).trips) == 1  # under min_stop_s: a traffic light
    assert len(run(with_halt(6)).trips) == 2


def test_short_hop_is_not_a_trip() -> None:
    track = local_track(*parked("07:30", 30, 0), *drive("08:00", 0, 300), *parked("08:01", 30, 300))
    assert len(run(track).trips) == 0


def test_trip_crossing_midnight_is_one_trip() -> None:
    track = local_track(*parked("23:30", 20, 0), *drive("23:50", 0, 18_000), *parked("24:20", 20, 18_000))
    result = run(track)
    assert len(result.trips) == 1
    usage = result.usage
    assert list(usage.trips) == [1, 0]  # counted on the day it started
    assert usage.hours_in_use == pytest.approx([10 / 60, 20 / 60])
    assert usage.distance_km == pytest.approx([6.0, 12.0], rel=1e-3)


def test_late_upload_out_of_order_gives_the_same_trips() -> None:
    rows = [*parked("07:30", 30, 0), *drive("08:00", 0, 6_000), *parked("08:10", 30, 6_000)]
    shuffled = [rows[k] for k in np.random.default_rng(1).permutation(len(rows))]
    assert trip_spans(run(local_track(*shuffled))) == trip_spans(run(local_track(*rows)))


def test_gap_above_max_gap_splits_a_drive() -> None:
    rows = [*parked("07:30", 30, 0), *drive("08:00", 0, 3_000)]
    rows += drive("09:30", 40_000, 46_000) + parked("09:40", 30, 46_000)  # 80 minutes of silence
    result = run(local_track(*rows))
    assert len(result.trips) == 2
    assert result.trips.end_us[0] < at_us("08:06") < at_us("09:30") <= result.trips.start_us[1]
    assert list(result.gaps.relocated) == [True]


def test_relocation_while_silent_is_reported_and_not_mileage() -> None:
    rows = [*parked("07:00", 60, 0), *parked("10:00", 60, 25_000)]  # unplugged for two hours, moved 25 km
    result = run(local_track(*rows))
    assert len(result.trips) == 0
    assert len(result.gaps) == 1 and result.gaps.relocated[0]
    assert result.gaps.displacement_m[0] == pytest.approx(25_000, rel=1e-6)
    assert len(result.stops) == 2


def test_tunnel_is_bridged_and_flagged() -> None:
    rows = [*parked("07:30", 30, 0), *drive("08:00", 0, 6_000)]
    rows = [r for r in rows if not (at_us("08:03") < at_us(r[0]) < at_us("08:06"))]  # 3 minutes underground
    result = run(local_track(*rows, *parked("08:10", 30, 6_000)))
    assert len(result.trips) == 1
    assert result.trips.bridged_legs[0] == 1
    assert result.trips.bridged_m[0] == pytest.approx(1_800, abs=20)
    assert result.trips.distance_m[0] == pytest.approx(6_000, rel=1e-6)


def test_gps_jump_while_parked_makes_no_trip() -> None:
    rows = parked("08:00", 60, 0)
    rows[20] = (rows[20][0], 600.0, 300.0)
    result = run(local_track(*rows))
    assert len(result.trips) == 0


def test_stops_are_classified_against_depots_and_order_destinations() -> None:
    from tracks.places import STOP_KIND_CODE, StopKind, join_places, places
    from tracks.synth import metres_to_lonlat

    track = local_track(*parked("07:30", 30, 0), *drive("08:00", 0, 6_000), *parked("08:10", 30, 6_000))
    (depot_lon, far_lon), (depot_lat, far_lat) = metres_to_lonlat(np.array([50.0, 6_100]), np.zeros(2))
    known = join_places(
        places(StopKind.DEPOT, depot_lon, depot_lat, 150),
        places(StopKind.DESTINATION, far_lon, far_lat, 300, vehicle_id=2),  # another car's destination
    )
    result = run_vehicle(track, Context(places=known), P)
    assert list(result.stops.kind) == [STOP_KIND_CODE[StopKind.DEPOT], STOP_KIND_CODE[StopKind.OTHER]]
    mine = join_places(known, places(StopKind.DESTINATION, far_lon, far_lat, 300, vehicle_id=1))
    result = run_vehicle(track, Context(places=mine), P)
    assert result.stops.kind[1] == STOP_KIND_CODE[StopKind.DESTINATION]


# --- properties ----------------------------------------------------------------------------------


@st.composite
def random_walks(draw: st.DrawFn) -> Track:
    """Short random tracks of one or two vehicles: standing, creeping, driving, jumping, gaps."""
    vehicles = draw(st.integers(1, 2))
    parts = []
    for vehicle in range(vehicles):
        n = draw(st.integers(0, 60))
        steps = draw(st.lists(st.sampled_from([1, 10, 10, 30, 60, 300, 900, 5_000]), min_size=n, max_size=n))
        moves = draw(st.lists(st.floats(-400, 400), min_size=2 * n, max_size=2 * n))
        ignition = draw(st.lists(st.sampled_from([-1, -1, 0, 1]), min_size=n, max_size=n))
        t = at_us("06:00") + np.cumsum(np.array(steps, dtype=np.int64)) * 1_000_000
        xy = np.cumsum(np.array(moves).reshape(n, 2), axis=0) if n else np.zeros((0, 2))
        parts.append((vehicle + 1, t, xy, np.array(ignition, dtype=np.int8)))
    from tracks.synth import metres_to_lonlat

    lon, lat = metres_to_lonlat(
        np.concatenate([p[2][:, 0] for p in parts]), np.concatenate([p[2][:, 1] for p in parts])
    )
    return make_track(
        vehicle_id=np.concatenate([np.full(len(p[1]), p[0]) for p in parts]),
        t_us=np.concatenate([p[1] for p in parts]),
        lon=lon,
        lat=lat,
        ignition=np.concatenate([p[3] for p in parts]),
    )


@settings(max_examples=60, deadline=None)
@given(random_walks())
def test_split_is_a_partition_and_no_trip_spans_a_gap(track: Track) -> None:
    params = TripParams()
    segments = split_track(track, params)
    n = len(track)
    if n == 0:
        assert len(segments) == 0
        return
    assert segments.start[0] == 0 and segments.end[-1] == n
    assert np.all(segments.start[1:] == segments.end[:-1])
    assert np.all(segments.end > segments.start)
    assert np.all(track.vehicle_id[segments.start] == track.vehicle_id[segments.end - 1])
    result = run(track) if len(np.unique(track.vehicle_id)) == 1 else None
    if result is not None:
        trips = result.trips
        for a, b in zip(trips.from_row, trips.to_row, strict=True):
            assert np.all(np.diff(result.kept.t_us[a : b + 1]) <= params.max_gap_s * 1e6)
        assert np.all(trips.distance_m >= 0) and np.all(trips.bridged_m >= 0)
        assert np.all(trips.bridged_m <= trips.distance_m + 1e-6)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(-400 * 86_400, 400 * 86_400))
def test_split_is_invariant_under_a_time_shift(seed: int, shift_s: int) -> None:
    track = synthetic_fleet(2, seed).track
    shifted = make_track(
        vehicle_id=track.vehicle_id,
        t_us=track.t_us + shift_s * 1_000_000,
        lon=track.lon,
        lat=track.lat,
        speed_kmh=track.speed_kmh,
        ignition=track.ignition,
        odometer_km=track.odometer_km,
    )
    a, b = split_track(track, TripParams()), split_track(shifted, TripParams())
    assert np.array_equal(a.start, b.start) and np.array_equal(a.is_trip, b.is_trip)


def test_geometry_legs_do_not_cross_vehicles() -> None:
    track = make_track(
        vehicle_id=[1, 1, 2, 2], t_us=[0, 10, 0, 10], lon=[118, 118.01, 119, 119.01], lat=[32] * 4
    )
    legs = geometry(track).leg_m
    assert legs[0] == 0 and legs[2] == 0 and legs[1] > 900 and legs[3] > 900
