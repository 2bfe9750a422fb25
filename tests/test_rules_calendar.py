"""The working calendar as data: holidays and make-up workdays from the State Council's notices, never
weekday arithmetic alone; off-hours spans of intervals, touching parts merged."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from rules.calendar import (
    CalendarDay,
    DayKind,
    WorkCalendar,
    WorkHours,
    calendar_from_days,
    china_calendar,
)
from tracks.synth import at_us


def spans(calendar: WorkCalendar, start: str, end: str, day: date) -> list[tuple[int, int]]:
    _, lo, hi = calendar.off_hours_spans(np.array([at_us(start, day)]), np.array([at_us(end, day)]))
    return list(zip(lo.tolist(), hi.tolist(), strict=True))


def test_the_notices_give_holidays_and_make_up_workdays() -> None:
    calendar = china_calendar()
    assert not calendar.is_working_day(date(2026, 5, 1))  # 劳动节, a Friday
    assert calendar.is_working_day(date(2026, 5, 9))  # 调休上班, a Saturday
    assert not calendar.is_working_day(date(2025, 10, 8))  # 国庆节、中秋节
    assert calendar.is_working_day(date(2025, 9, 28))  # a Sunday worked
    assert calendar.is_working_day(date(2026, 3, 2)) and not calendar.is_working_day(date(2026, 3, 7))
    days = np.array([(d - date(1970, 1, 1)).days for d in (date(2026, 5, 1), date(2026, 5, 9))])
    assert calendar.working_days(days).tolist() == [False, True]


def test_the_notices_are_a_data_file_with_named_days_and_the_years_they_cover() -> None:
    calendar = china_calendar()
    listed = calendar.days()
    assert len(listed) == 72 and listed == sorted(listed, key=lambda d: d.day)
    assert {d.day.year for d in listed} == {2025, 2026}
    assert calendar.covers(date(2026, 12, 31)) and not calendar.covers(date(2027, 1, 1))
    assert all(d.name for d in listed)
    assert next(d for d in listed if d.day == date(2026, 5, 9)).name == "劳动节调休上班"
    # the simulator writes these rows to calendar.jsonl and calendar_day; read back, the same calendar
    again = calendar_from_days((d.day, d.kind.value, d.name) for d in listed)
    assert again.holidays == calendar.holidays and again.workdays == calendar.workdays


def test_a_new_notice_adds_its_year() -> None:
    new_year = CalendarDay(day=date(2027, 1, 1), kind=DayKind.HOLIDAY, name="元旦")
    calendar = china_calendar(extra=[new_year])
    assert calendar.covers(date(2027, 6, 1)) and not calendar.is_working_day(date(2027, 1, 1))


def test_off_hours_per_instant_follows_the_calendar() -> None:
    calendar = china_calendar()
    noon_make_up = at_us("12:00", date(2026, 5, 9)) / 1e6  # a Saturday worked
    evening = at_us("20:30", date(2026, 3, 2)) / 1e6
    holiday_noon = at_us("12:00", date(2026, 5, 1)) / 1e6
    assert calendar.off_hours(np.array([noon_make_up, evening, holiday_noon])).tolist() == [False, True, True]


def test_an_evening_and_the_next_morning_are_one_span() -> None:
    calendar = china_calendar()
    monday = date(2026, 3, 2)
    assert spans(calendar, "19:00", "32:00", monday) == [(at_us("20:00", monday), at_us("31:00", monday))]
    assert spans(calendar, "09:00", "18:00", monday) == []


def test_a_rest_day_is_off_hours_all_day_and_a_make_up_workday_only_outside_hours() -> None:
    calendar = china_calendar()
    saturday, make_up = date(2026, 3, 7), date(2026, 5, 9)
    assert spans(calendar, "10:00", "11:00", saturday) == [
        (at_us("10:00", saturday), at_us("11:00", saturday))
    ]
    assert spans(calendar, "10:00", "11:00", make_up) == []
    assert spans(calendar, "06:00", "08:00", make_up) == [(at_us("06:00", make_up), at_us("07:00", make_up))]


def test_spans_of_many_intervals_at_once_name_their_interval() -> None:
    calendar = calendar_from_days([], hours=WorkHours(start_s=8 * 3600, end_s=18 * 3600))
    monday = date(2026, 3, 2)
    starts = np.array([at_us(t, monday) for t in ("07:00", "12:00", "17:30")])
    ends = np.array([at_us(t, monday) for t in ("09:00", "13:00", "19:00")])
    which, lo, hi = calendar.off_hours_spans(starts, ends)
    assert which.tolist() == [0, 2]
    assert (hi - lo).tolist() == [3_600_000_000, 3_600_000_000]


def test_calendar_rows_must_be_holiday_or_workday_and_not_both() -> None:
    with pytest.raises(ValueError, match="unknown calendar day kind"):
        calendar_from_days([(date(2026, 1, 1), "party")])
    with pytest.raises(ValueError, match="both"):
        WorkCalendar(holidays=frozenset({date(2026, 1, 1)}), workdays=frozenset({date(2026, 1, 1)}))
