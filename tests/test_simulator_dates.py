"""Recent runs are chosen by the work calendar, not by the weekday a run is started on."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from rules.calendar import china_calendar
from simulators.dates import recent_monday, recent_working_days


@pytest.mark.parametrize(
    ("today", "days", "back_min", "expected"),
    [
        (date(2026, 12, 7), 1, 1, date(2026, 12, 4)),  # a Monday: yesterday is a Sunday → Friday
        (date(2026, 12, 7), 1, 2, date(2026, 12, 4)),
        (date(2026, 12, 9), 1, 2, date(2026, 12, 7)),  # a Wednesday: two days back is Monday
        (date(2026, 12, 9), 2, 1, date(2026, 12, 7)),  # Monday and Tuesday
        (date(2026, 12, 8), 2, 1, date(2026, 12, 3)),  # Thursday and Friday, not across the weekend
        (date(2026, 2, 24), 1, 1, date(2026, 2, 14)),  # Spring Festival 2026: the make-up Saturday before it
        (date(2026, 10, 9), 2, 1, date(2026, 9, 29)),  # National Day 2026: Sept 28 and Oct 10 worked
    ],
)
def test_recent_working_days_are_working_days(today: date, days: int, back_min: int, expected: date) -> None:
    start = recent_working_days(days, back_min=back_min, today=today)
    assert start == expected
    calendar = china_calendar()
    assert all(calendar.is_working_day(start + timedelta(days=i)) for i in range(days))
    assert start + timedelta(days=days - 1) <= today - timedelta(days=back_min)


def test_every_day_of_two_years_finds_a_recent_working_stretch() -> None:
    calendar = china_calendar()
    day = date(2025, 1, 20)
    while day < date(2026, 12, 31):
        for days in (1, 2):
            start = recent_working_days(days, back_min=1, today=day)
            assert all(calendar.is_working_day(start + timedelta(days=i)) for i in range(days)), (day, days)
            assert (day - start).days <= 20, (day, days, start)
        monday = recent_monday(7, back_min=2, today=day)
        assert monday.weekday() == 0
        assert monday + timedelta(days=6) <= day - timedelta(days=2) < monday + timedelta(days=13)
        day += timedelta(days=1)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="days must be"):
        recent_working_days(0)
