"""The engine's order of steps as a whole: many vehicles in one pass, additivity, windows, time shifts."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracks.geo import distance_m
from tracks.match import orders_table
from tracks.params import Params
from tracks.pipeline import CONTEXT_ROWS, Context, VehicleResult, final_trips, run_fleet, run_vehicle
from tracks.ranges import reduce_ranges
from tracks.split import geometry
from tracks.synth import FleetShape, synthetic_fleet
from tracks.track import Track, make_track, vehicle_starts

P = Params()
# faults more often than in real life, so that windows and shifts meet them
NASTY = FleetShape(jump_chance=0.5, tunnel_chance=0.3, flicker_chance=0.3, drives_per_day=(4, 10))


def shifted(track: Track, shift_us: int) -> Track:
    return make_track(
        vehicle_id=track.vehicle_id,
        t_us=track.t_us + shift_us,
        lon=track.lon,
        lat=track.lat,
        speed_kmh=track.speed_kmh,
        ignition=track.ignition,
        odometer_km=track.odometer_km,
    )


def trip_rows(result: VehicleResult) -> list[tuple[int, int, int, float]]:
    t = result.trips
    return [
        (int(v), int(a), int(b), float(d))
        for v, a, b, d in zip(t.vehicle_id, t.start_us, t.end_us, t.distance_m, strict=True)
    ]


def test_fleet_in_one_pass_equals_vehicle_by_vehicle() -> None:
    fleet = synthetic_fleet(6, seed=3, shape=NASTY)
    context = Context(orders=orders_table(fleet.orders), places=fleet.depots)
    together = run_fleet(fleet.track, context, P)
    in_blocks = run_fleet(fleet.track, context, P, block_rows=500)  # one or two vehicles a block
    assert trip_rows(in_blocks) == trip_rows(together)
    for name in ("kept_rows", "cleaned", "segments", "trips", "stops", "gaps", "conformance", "usage"):
        a, b = getattr(together, name), getattr(in_blocks, name)
        for column in a.__dataclass_fields__ if hasattr(a, "__dataclass_fields__") else [None]:
            x, y = (a, b) if column is None else (getattr(a, column), getattr(b, column))
            assert np.array_equal(x, y, equal_nan=np.asarray(x).dtype.kind == "f"), (name, column)
    starts = vehicle_starts(fleet.track.vehicle_id)
    one_by_one: list[tuple[int, int, int, float]] = []
    for a, b in itertools.pairwise(starts):
        one_by_one += trip_rows(run_vehicle(fleet.track.take(np.arange(a, b)), context, P))
    assert trip_rows(together) == one_by_one
    assert len(together.conformance) > 0


def test_run_vehicle_refuses_several_vehicles() -> None:
    with pytest.raises(ValueError, match="several vehicles"):
        run_vehicle(synthetic_fleet(2, seed=1).track, Context(), P)


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 100_000))
def test_legs_add_up_to_the_whole_path(seed: int) -> None:
    """Every leg lies inside one segment, joins a trip to a stop, or crosses a silence above max_gap_s
    between segments; so the legs of the partition add up to the whole path."""
    result = run_fleet(synthetic_fleet(3, seed, shape=NASTY).track, Context(), P)
    kept, segments = result.kept, result.segments
    legs = geometry(kept).leg_m
    inside = reduce_ranges(np.add, legs, segments.start + 1, segments.end, empty=0.0)
    boundary = np.zeros(len(kept), np.bool_)
    boundary[segments.start[1:]] = True
    same = np.zeros(len(kept), np.bool_)
    same[1:] = kept.vehicle_id[1:] == kept.vehicle_id[:-1]
    gap = np.zeros(len(kept), np.bool_)
    gap[1:] = np.diff(kept.t_us) > P.trip.max_gap_s * 1e6
    joining = legs[boundary & same & ~gap].sum()
    silent = legs[boundary & same & gap].sum()
    assert inside.sum() + joining + silent == pytest.approx(legs.sum(), rel=1e-9)
    assert np.all(result.stops.path_m >= 0)


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 100_000))
def test_trip_distance_is_the_sum_of_its_legs(seed: int) -> None:
    """From where the car stood, through the trip's own fixes, to where it next stood; legs between two
    fixes that report a standing car count nothing. Never negative."""
    result = run_fleet(synthetic_fleet(3, seed, shape=NASTY).track, Context(), P)
    kept, trips = result.kept, result.trips
    legs = geometry(kept).leg_m
    slow = kept.speed_kmh < P.measure.standing_speed_kmh  # (NaN: not reported, not slow)
    standstill = np.zeros(len(kept), np.bool_)
    standstill[1:] = slow[1:] & slow[:-1] & (np.diff(kept.t_us) <= P.measure.bridge_gap_s * 1e6)
    legs[standstill] = 0.0
    own = reduce_ranges(np.add, legs, trips.first_row + 1, trips.end_row, empty=0.0)
    first, last = trips.first_row, trips.end_row - 1
    out = distance_m(trips.start_lon, trips.start_lat, kept.lon[first], kept.lat[first])
    back = distance_m(kept.lon[last], kept.lat[last], trips.end_lon, trips.end_lat)
    assert np.all(trips.distance_m >= 0) and np.all(trips.bridged_m >= 0)
    assert np.allclose(trips.distance_m, out + own + back, rtol=1e-12, atol=1e-9)
    assert np.all(trips.bridged_m <= trips.distance_m + 1e-9)


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 100_000), st.integers(-3 * 365 * 86_400, 3 * 365 * 86_400))
def test_trips_are_invariant_under_a_time_shift(seed: int, shift_s: int) -> None:
    track = synthetic_fleet(2, seed, shape=NASTY).track
    a = run_fleet(track, Context(), P)
    b = run_fleet(shifted(track, shift_s * 1_000_000), Context(), P)
    assert np.array_equal(a.trips.start_us + shift_s * 1_000_000, b.trips.start_us)
    assert np.array_equal(a.trips.end_us + shift_s * 1_000_000, b.trips.end_us)
    assert np.allclose(a.trips.distance_m, b.trips.distance_m, rtol=1e-12)
    assert np.array_equal(a.cleaned.reason, b.cleaned.reason)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 100_000), st.floats(0.0, 0.6), st.floats(0.1, 1.0))
def test_windowed_recompute_gives_the_same_final_trips(seed: int, begin: float, length: float) -> None:
    """The windowing rule of tracks.pipeline: a window's final trips are the whole history's trips,
    and every trip well inside the window is among them."""
    track = synthetic_fleet(2, seed, shape=NASTY).track
    whole = run_fleet(track, Context(), P)
    t0, t1 = int(track.t_us.min()), int(track.t_us.max())
    w0 = t0 + int(begin * (t1 - t0))
    w1 = w0 + int(length * (t1 - t0))
    window = track.take(np.flatnonzero((track.t_us >= w0) & (track.t_us <= w1)))
    part = run_fleet(window, Context(), P)

    final = np.flatnonzero(final_trips(part, P))
    known = {row[:3]: row[3] for row in trip_rows(whole)}
    for k in final:
        key = (int(part.trips.vehicle_id[k]), int(part.trips.start_us[k]), int(part.trips.end_us[k]))
        assert key in known, "a final trip of the window is not a trip of the whole history"
        assert part.trips.distance_m[k] == pytest.approx(known[key], rel=1e-9)

    # every trip of the whole history that lies well inside the window is final there
    margin_us = (P.trip.context_s + 600) * 1e6
    found = {
        (int(v), int(a), int(b))
        for v, a, b in zip(
            part.trips.vehicle_id[final], part.trips.start_us[final], part.trips.end_us[final], strict=True
        )
    }
    kept, trips = whole.kept, whole.trips
    for j in range(len(trips)):
        first, last = kept.t_us[trips.from_row[j]], kept.t_us[trips.to_row[j]]
        vehicle = kept.vehicle_id[trips.from_row[j]]
        inside = (kept.vehicle_id == vehicle) & (kept.t_us >= w0) & (kept.t_us <= w1)
        rows_before = np.sum(inside & (kept.t_us < first))
        rows_after = np.sum(inside & (kept.t_us > last))
        if (
            first - w0 >= margin_us
            and w1 - last >= margin_us
            and min(rows_before, rows_after) >= 2 * CONTEXT_ROWS
        ):
            assert (int(vehicle), int(trips.start_us[j]), int(trips.end_us[j])) in found
