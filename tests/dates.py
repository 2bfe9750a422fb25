"""Dates for tests that need recent data (the live path) without depending on the weekday they run."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from rules.calendar import china_calendar


def recent_working_day() -> date:
    """A working day at least two days ago: a weekend or holiday has (almost) no orders to drive."""
    calendar = china_calendar()
    day = (datetime.now(UTC) + timedelta(hours=8)).date() - timedelta(days=2)
    while not calendar.is_working_day(day):
        day -= timedelta(days=1)
    return day
