"""The working calendar as data: holiday dates, make-up working days (调休) and working hours.

A day is a working day when it is a listed make-up workday, or a weekday that is not a listed holiday;
nothing else is inferred from weekdays. Local time is a fixed offset from UTC (China Standard Time,
UTC+8, has no daylight saving).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
from numpy.typing import NDArray

from tracks.ranges import expand

DAY_US = 86_400 * 1_000_000
EPOCH = date(1970, 1, 1)


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkHours:
    """Official use is expected on working days between these local times (seconds after midnight)."""

    start_s: int = 7 * 3600  # simulators.calendar.WorkingHours: 07:00
    end_s: int = 20 * 3600  # … to 20:00


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkCalendar:
    holidays: frozenset[date] = frozenset()  # rest days that would otherwise be working days
    workdays: frozenset[date] = frozenset()  # weekend days worked to make up for a holiday
    hours: WorkHours = field(default_factory=WorkHours)
    utc_offset_s: int = 8 * 3600

    def __post_init__(self) -> None:
        both = self.holidays & self.workdays
        if both:
            raise ValueError(f"days listed both as holiday and as make-up workday: {sorted(both)}")

    def is_working_day(self, day: date) -> bool:
        if day in self.workdays:
            return True
        return day.weekday() < 5 and day not in self.holidays

    def local_day(self, t_us: NDArray[np.int64]) -> NDArray[np.int64]:
        """Local day of each instant, as days since 1970-01-01."""
        return np.asarray((t_us + self.utc_offset_s * 1_000_000) // DAY_US, dtype=np.int64)

    def midnight_us(self, day: NDArray[np.int64]) -> NDArray[np.int64]:
        """Epoch µs of local midnight starting each day (days since 1970-01-01)."""
        return np.asarray(day * DAY_US - self.utc_offset_s * 1_000_000, dtype=np.int64)

    def working_days(self, day: NDArray[np.int64]) -> NDArray[np.bool_]:
        """Per day (days since 1970-01-01): a working day."""
        weekday = (day + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
        working = weekday < 5

        def listed(days: frozenset[date]) -> NDArray[np.bool_]:
            numbers = np.array(sorted((d - EPOCH).days for d in days), dtype=np.int64)
            return np.isin(day, numbers)

        return np.asarray((working & ~listed(self.holidays)) | listed(self.workdays), dtype=np.bool_)

    def off_hours_spans(
        self, start_us: NDArray[np.int64], end_us: NDArray[np.int64]
    ) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
        """The parts of each interval outside working hours or on a rest day.

        Returns (interval index, from µs, to µs), ordered by interval then time; touching parts (an
        evening followed by the next morning, or by a rest day) are one span.
        """
        start_us, end_us = np.asarray(start_us, np.int64), np.asarray(end_us, np.int64)
        first = self.local_day(start_us)
        last = self.local_day(np.maximum(end_us - 1, start_us))
        count = last - first + 1
        which = np.repeat(np.arange(len(start_us), dtype=np.int64), count)
        day = expand(first, count)
        midnight = self.midnight_us(day)
        working = self.working_days(day)
        h0, h1 = self.hours.start_s * 1_000_000, self.hours.end_s * 1_000_000
        # up to two rest pieces per day: before the hours and after them (one whole-day piece on rest days)
        a = np.concatenate((midnight, np.where(working, midnight + h1, midnight + DAY_US)))
        b = np.concatenate((np.where(working, midnight + h0, midnight + DAY_US), midnight + DAY_US))
        w = np.concatenate((which, which))
        lo, hi = np.maximum(a, start_us[w]), np.minimum(b, end_us[w])
        keep = hi > lo
        w, lo, hi = w[keep], lo[keep], hi[keep]
        order = np.lexsort((lo, w))
        w, lo, hi = w[order], lo[order], hi[order]
        if len(w) == 0:
            return w, lo, hi
        new = np.ones(len(w), np.bool_)
        new[1:] = (w[1:] != w[:-1]) | (lo[1:] != hi[:-1])
        heads = np.flatnonzero(new)
        return w[heads], lo[heads], np.maximum.reduceat(hi, heads)


def calendar_from_days(
    days: Iterable[tuple[date, str]], hours: WorkHours | None = None, utc_offset_s: int = 8 * 3600
) -> WorkCalendar:
    """A calendar from (date, kind) rows as the ``calendar_day`` table holds them: kind "holiday" or
    "workday" (a make-up working day)."""
    holidays, workdays = set(), set()
    for day, kind in days:
        if kind == "holiday":
            holidays.add(day)
        elif kind == "workday":
            workdays.add(day)
        else:
            raise ValueError(f"unknown calendar day kind {kind!r} on {day}")
    return WorkCalendar(
        holidays=frozenset(holidays),
        workdays=frozenset(workdays),
        hours=hours or WorkHours(),
        utc_offset_s=utc_offset_s,
    )


def china_calendar() -> WorkCalendar:
    """The State Council notices known to the project (one list of dates: ``simulators.calendar``)."""
    from simulators.calendar import CHINA_NOTICES

    return calendar_from_days((d.day, d.kind.value) for year in CHINA_NOTICES.values() for d in year)


def day_number(day: date) -> int:
    return (day - EPOCH).days


def local_date(day_number: int) -> date:
    return EPOCH + timedelta(days=day_number)
