"""Usage per vehicle and agency per day, week and month; midnight; idle days."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from tracks.measure import Trips
from tracks.params import UsageParams
from tracks.synth import at_us
from tracks.usage import Period, daily_usage, local_day, period_start, roll_up

P = UsageParams()


def trips(*rows: tuple[int, int, int, float]) -> Trips:
    """Trips from (vehicle, start_us, end_us, distance_m); the other columns are irrelevant here."""
    n = len(rows)
    col = np.array(rows, dtype=np.float64).reshape(n, 4)
    zeros, ints = np.zeros(n), np.zeros(n, np.int64)
    return Trips(
        vehicle_id=col[:, 0].astype(np.int64),
        segment=ints, first_row=ints, end_row=ints, from_row=ints, to_row=ints,
        start_us=np.array([r[1] for r in rows], dtype=np.int64),
        end_us=np.array([r[2] for r in rows], dtype=np.int64),
        duration_s=zeros, moving_s=zeros, distance_m=col[:, 3], bridged_m=zeros,
        bridged_legs=np.zeros(n, np.int32), speed_distance_m=zeros, max_speed_kmh=zeros, odometer_m=zeros,
        odometer_confidence=zeros,
        start_lon=zeros, start_lat=zeros, end_lon=zeros, end_lat=zeros,
    )  # fmt: skip


MONDAY = local_day(at_us("12:00"), P)  # 2026-03-02


def test_local_days_are_china_standard_time() -> None:
    assert local_day(at_us("00:00"), P) == local_day(at_us("23:59"), P) == MONDAY
    assert local_day(at_us("24:00"), P) == MONDAY + 1
    assert np.asarray(MONDAY).astype("datetime64[D]") == np.datetime64("2026-03-02")


def test_daily_usage_counts_trips_km_hours_and_idle_days() -> None:
    t = trips(
        (1, at_us("08:00"), at_us("09:00"), 20_000.0),
        (1, at_us("14:00"), at_us("14:30"), 10_000.0),
        (2, at_us("32:00"), at_us("33:00"), 5_000.0),  # Tuesday
    )
    daily = daily_usage(t, np.array([1, 2, 3]), int(MONDAY), int(MONDAY) + 1, P)
    assert list(daily.key) == [1, 1, 2, 2, 3, 3]
    assert list(daily.trips) == [2, 0, 0, 1, 0, 0]
    assert daily.distance_km == pytest.approx([30, 0, 0, 5, 0, 0])
    assert daily.hours_in_use == pytest.approx([1.5, 0, 0, 1, 0, 0])
    assert list(daily.idle_days) == [0, 1, 1, 0, 1, 1]


def test_a_trip_across_midnight_is_shared_by_time() -> None:
    t = trips((1, at_us("23:30"), at_us("24:30"), 60_000.0))
    daily = daily_usage(t, np.array([1]), int(MONDAY), int(MONDAY) + 1, P)
    assert list(daily.trips) == [1, 0]
    assert daily.distance_km == pytest.approx([30, 30])
    assert daily.hours_in_use == pytest.approx([0.5, 0.5])
    assert list(daily.idle_days) == [0, 0]


def test_weeks_start_on_monday_and_months_on_the_first() -> None:
    days = np.array([MONDAY - 2, MONDAY, MONDAY + 6, MONDAY + 7], dtype=np.int64)
    weeks = period_start(days, Period.WEEK).astype("datetime64[D]")
    assert [str(d) for d in weeks] == ["2026-02-23", "2026-03-02", "2026-03-02", "2026-03-09"]
    months = period_start(days, Period.MONTH).astype("datetime64[D]")
    assert [str(d) for d in months] == ["2026-02-01", "2026-03-01", "2026-03-01", "2026-03-01"]


def test_roll_up_by_week_and_agency() -> None:
    t = trips((1, at_us("08:00"), at_us("09:00"), 20_000.0), (2, at_us("32:00"), at_us("33:00"), 5_000.0))
    daily = daily_usage(t, np.array([1, 2, 3]), int(MONDAY), int(MONDAY) + 6, P)
    weekly = roll_up(daily, Period.WEEK)
    assert list(weekly.key) == [1, 2, 3]
    assert list(weekly.days) == [7, 7, 7] and list(weekly.idle_days) == [6, 6, 7]
    agency = roll_up(daily, Period.MONTH, member=np.array([1, 2, 3]), group=np.array([10, 10, 20]))
    assert list(agency.key) == [10, 20]
    assert str(np.asarray(agency.first_day[0]).astype("datetime64[D]")) == str(date(2026, 3, 1))
    assert list(agency.trips) == [2, 0]
    assert agency.distance_km == pytest.approx([25, 0])
    assert list(agency.idle_days) == [12, 7]  # vehicle-days


def test_vehicles_without_an_agency_are_left_out() -> None:
    daily = daily_usage(trips(), np.array([1, 2]), int(MONDAY), int(MONDAY), P)
    agency = roll_up(daily, Period.DAY, member=np.array([2]), group=np.array([7]))
    assert list(agency.key) == [7]
