"""The demo simulates days that end on the last working day before today, so it always has orders to show."""

from __future__ import annotations

from datetime import date

from fleetwatch.demo import demo_start
from simulators.calendar import china_calendar


def test_demo_window_on_a_monday_ends_on_friday() -> None:
    # 2026-12-07 is a Monday: yesterday and the day before are a weekend without orders
    assert demo_start(date(2026, 12, 7), 2, china_calendar()) == date(2026, 12, 3)
    assert demo_start(date(2026, 12, 7), 1, china_calendar()) == date(2026, 12, 4)


def test_demo_window_midweek_ends_yesterday() -> None:
    assert demo_start(date(2026, 12, 9), 2, china_calendar()) == date(2026, 12, 7)


def test_demo_window_skips_a_holiday_week() -> None:
    # National Day 2025: 1-8 October off; 28 September (Sunday) and 11 October (Saturday) are make-up workdays
    calendar = china_calendar()
    assert not calendar.is_working_day(date(2025, 10, 8))
    assert demo_start(date(2025, 10, 9), 1, calendar) == date(2025, 9, 30)
