"""Which days to simulate when a run has to be recent (ingest refuses fixes older than 30 days).

A run that starts "yesterday" simulates a Sunday when it is started on a Monday: no orders, no trips,
and a demo or a test that shows nothing. These functions choose recent days by the work calendar
instead, so what a run shows does not depend on the weekday it is started on.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from rules.calendar import china_calendar

CST = timedelta(hours=8)
SEARCH_DAYS = 25  # a run must stay well inside ingest's 30-day past-time window


def china_today() -> date:
    return (datetime.now(UTC) + CST).date()


def recent_working_days(days: int, *, back_min: int = 1, today: date | None = None) -> date:
    """The first of the latest ``days`` consecutive working days that end at least ``back_min`` days ago.

    Falls back to ``today - back_min - days + 1`` when no such stretch lies within SEARCH_DAYS (it always does
    outside the Spring Festival week with a long run).
    """
    if days < 1 or back_min < 0:
        raise ValueError(f"days must be >= 1 and back_min >= 0 (got {days}, {back_min})")
    calendar = china_calendar()
    last = (today or china_today()) - timedelta(days=back_min)
    for shift in range(SEARCH_DAYS):
        start = last - timedelta(days=shift + days - 1)
        if all(calendar.is_working_day(start + timedelta(days=i)) for i in range(days)):
            return start
    return last - timedelta(days=days - 1)


def recent_monday(days: int, *, back_min: int = 1, today: date | None = None) -> date:
    """The latest Monday from which ``days`` days end at least ``back_min`` days ago (weeks look alike)."""
    last = (today or china_today()) - timedelta(days=back_min)
    start = last - timedelta(days=days - 1)
    return start - timedelta(days=start.weekday())
