"""Per-trip figures: mileage, times, speeds, odometer agreement and confidence."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracks.match import orders_table
from tracks.params import Params
from tracks.pipeline import Context, VehicleResult, run_fleet, run_vehicle
from tracks.synth import at_us, local_track, synthetic_fleet

P = Params()


def clock(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


Full = tuple[str, float, float, float | None, int | None, float | None]


def six_km(odometer: list[float | None] | None = None, speed_kmh: float = 36.0) -> list[Full]:
    """Parked 07:30-08:00 at 0 m, drive 6 km east at 36 km/h reporting every 10 s, parked again."""
    base = 8 * 3600
    rows: list[Full] = [(clock(base - 60 * k), 0, 0, 0.0, 0, 1_000.0) for k in range(30, -1, -1)]
    rows += [(clock(base + 10 * k), 100.0 * k, 0, speed_kmh, 1, 1_000.0 + 0.1 * k) for k in range(1, 60)]
    rows += [(clock(base + 600 + 60 * k), 6_000, 0, 0.0, 0, 1_006.0) for k in range(31)]
    if odometer is not None:
        rows = [(r[0], r[1], r[2], r[3], r[4], odometer[k]) for k, r in enumerate(rows)]
    return rows


def only_trip(result: VehicleResult) -> int:
    assert len(result.trips) == 1
    return 0


def test_trip_figures() -> None:
    result = run_vehicle(local_track(*six_km()), Context(), P)
    trips, k = result.trips, only_trip(result)
    assert trips.distance_m[k] == pytest.approx(6_000, rel=1e-6)
    assert trips.start_us[k] == at_us("08:00") and trips.end_us[k] == at_us("08:10")
    assert trips.duration_s[k] == 600 and trips.moving_s[k] == 600
    assert trips.max_speed_kmh[k] == 36.0
    assert trips.bridged_m[k] == 0 and trips.bridged_legs[k] == 0


def test_odometer_that_agrees_gets_high_confidence() -> None:
    result = run_vehicle(local_track(*six_km()), Context(), P)
    assert result.trips.odometer_m[0] == pytest.approx(6_000, abs=100)
    assert result.trips.odometer_confidence[0] > 0.9


def test_zero_odometer_is_ignored() -> None:
    rows = six_km()
    result = run_vehicle(local_track(*six_km([0.0] * len(rows))), Context(), P)
    assert np.isnan(result.trips.odometer_m[0]) and result.trips.odometer_confidence[0] == 0


def test_odometer_reset_has_no_confidence() -> None:
    rows = six_km()
    readings: list[float | None] = [r[5] for r in rows]
    middle = len(rows) // 2
    readings[middle:] = [5.0 + 0.1 * k for k in range(len(rows) - middle)]  # swapped terminal
    result = run_vehicle(local_track(*six_km(readings)), Context(), P)
    assert result.trips.odometer_confidence[0] == 0


def test_odometer_that_disagrees_loses_confidence() -> None:
    rows = six_km()
    readings: list[float | None] = [None if r[5] is None else 1_000 + 2 * (r[5] - 1_000) for r in rows]
    result = run_vehicle(local_track(*six_km(readings)), Context(), P)
    assert result.trips.odometer_m[0] == pytest.approx(12_000, abs=200)
    assert result.trips.odometer_confidence[0] == 0


def test_max_speed_is_implied_when_not_reported() -> None:
    rows = [(r[0], r[1], r[2], None, r[4], None) for r in six_km()]
    result = run_vehicle(local_track(*rows), Context(), P)
    assert result.trips.max_speed_kmh[0] == pytest.approx(36.0, rel=1e-6)


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 100_000))
def test_synthetic_mileage_is_within_a_percent(seed: int) -> None:
    """On the synthetic fleet every drive is found and its mileage is close to the truth."""
    fleet = synthetic_fleet(5, seed)
    result = run_fleet(fleet.track, Context(orders=orders_table(fleet.orders)), P)
    assert len(result.trips) == len(fleet.truth.start_us)
    error = result.trips.distance_m / fleet.truth.distance_m - 1
    assert np.median(np.abs(error)) < 0.01
    # a silence (tunnel) just before arriving leaves the arrival time uncertain; the rest are tight
    off_s = (
        np.abs(
            np.concatenate(
                (result.trips.start_us - fleet.truth.start_us, result.trips.end_us - fleet.truth.end_us)
            )
        )
        / 1e6
    )
    assert np.mean(off_s <= 60) >= 0.95 and np.all(off_s <= 360)
