"""The Chinese working-day calendar, as data: public holidays and make-up working days (调休).

Only exceptions are listed; any other day is a working day Monday to Friday and a rest day at the
weekend. The dates are the State Council's notices (国务院办公厅关于部分节假日安排的通知) for 2025 and
2026. For a year without a notice here the calendar says so (``covers``) and falls back to weekdays,
which the simulator logs: it never invents holidays.

Local time is China Standard Time, UTC+8 all year (no daylight saving).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray

CST_OFFSET_S = 8 * 3600  # China Standard Time = UTC+8


class DayKind(StrEnum):
    HOLIDAY = "holiday"  # a rest day that would otherwise be a working day, or part of a holiday run
    WORKDAY = "workday"  # a weekend day worked to make up for a holiday (调休上班)


@dataclass(frozen=True, slots=True, kw_only=True)
class CalendarDay:
    day: date
    kind: DayKind
    name: str


def _run(first: date, last: date, name: str) -> list[CalendarDay]:
    days = (last - first).days + 1
    return [CalendarDay(day=first + timedelta(d), kind=DayKind.HOLIDAY, name=name) for d in range(days)]


def _work(day: date, name: str) -> CalendarDay:
    return CalendarDay(day=day, kind=DayKind.WORKDAY, name=f"{name}调休上班")


D = date
CHINA_NOTICES: Mapping[int, tuple[CalendarDay, ...]] = {
    2025: (
        *_run(D(2025, 1, 1), D(2025, 1, 1), "元旦"),
        *_run(D(2025, 1, 28), D(2025, 2, 4), "春节"),
        _work(D(2025, 1, 26), "春节"),
        _work(D(2025, 2, 8), "春节"),
        *_run(D(2025, 4, 4), D(2025, 4, 6), "清明节"),
        *_run(D(2025, 5, 1), D(2025, 5, 5), "劳动节"),
        _work(D(2025, 4, 27), "劳动节"),
        *_run(D(2025, 5, 31), D(2025, 6, 2), "端午节"),
        *_run(D(2025, 10, 1), D(2025, 10, 8), "国庆节、中秋节"),
        _work(D(2025, 9, 28), "国庆节"),
        _work(D(2025, 10, 11), "国庆节"),
    ),
    2026: (
        *_run(D(2026, 1, 1), D(2026, 1, 3), "元旦"),
        _work(D(2026, 1, 4), "元旦"),
        *_run(D(2026, 2, 15), D(2026, 2, 23), "春节"),
        _work(D(2026, 2, 14), "春节"),
        _work(D(2026, 2, 28), "春节"),
        *_run(D(2026, 4, 4), D(2026, 4, 6), "清明节"),
        *_run(D(2026, 5, 1), D(2026, 5, 5), "劳动节"),
        _work(D(2026, 5, 9), "劳动节"),
        *_run(D(2026, 6, 19), D(2026, 6, 21), "端午节"),
        *_run(D(2026, 9, 25), D(2026, 9, 27), "中秋节"),
        *_run(D(2026, 10, 1), D(2026, 10, 7), "国庆节"),
        _work(D(2026, 9, 20), "国庆节"),
        _work(D(2026, 10, 10), "国庆节"),
    ),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkingHours:
    """Official use is expected on working days between these local times (seconds after midnight)."""

    start_s: int = 7 * 3600
    end_s: int = 20 * 3600


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkCalendar:
    exceptions: Mapping[date, CalendarDay]
    years: frozenset[int]
    hours: WorkingHours = field(default_factory=WorkingHours)

    def covers(self, day: date) -> bool:
        return day.year in self.years

    def is_working_day(self, day: date) -> bool:
        exception = self.exceptions.get(day)
        if exception is not None:
            return exception.kind is DayKind.WORKDAY
        return day.weekday() < 5

    def days(self, first: date, count: int) -> list[CalendarDay]:
        """The exceptions between ``first`` and ``first + count`` days, in date order."""
        return [
            self.exceptions[d] for d in (first + timedelta(i) for i in range(count)) if d in self.exceptions
        ]

    def working_day_mask(self, first: date, count: int) -> NDArray[np.bool_]:
        return np.array([self.is_working_day(first + timedelta(i)) for i in range(count)], dtype=np.bool_)

    def off_hours(self, t_s: NDArray[np.float64], first: date, count: int) -> NDArray[np.bool_]:
        """Per UTC epoch second: outside working hours or on a rest day (days outside the range: rest)."""
        local_s = t_s + CST_OFFSET_S
        local_day = np.floor(local_s / 86_400).astype(np.int64)
        second_of_day = local_s - local_day * 86_400
        index = local_day - (first - date(1970, 1, 1)).days
        working = self.working_day_mask(first, count)
        inside = (index >= 0) & (index < count)
        workday = np.zeros(len(t_s), dtype=np.bool_)
        workday[inside] = working[index[inside]]
        in_hours = (second_of_day >= self.hours.start_s) & (second_of_day < self.hours.end_s)
        return ~(workday & in_hours)


def china_calendar(extra: Iterable[CalendarDay] = ()) -> WorkCalendar:
    """The State Council calendar known here, plus any further days (e.g. a new year's notice)."""
    days = [d for year in sorted(CHINA_NOTICES) for d in CHINA_NOTICES[year]]
    days += list(extra)
    return WorkCalendar(exceptions={d.day: d for d in days}, years=frozenset(d.day.year for d in days))


def local_midnight_s(day: date) -> int:
    """UTC epoch seconds of 00:00 China Standard Time on ``day``."""
    return (day - date(1970, 1, 1)).days * 86_400 - CST_OFFSET_S
