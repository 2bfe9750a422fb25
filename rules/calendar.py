"""The working calendar as data: holiday dates, make-up working days (调休) and working hours.

A day is a working day when it is a listed make-up workday, or a weekday that is not a listed holiday;
nothing else is inferred from weekdays. Local time is a fixed offset from UTC (China Standard Time,
UTC+8, has no daylight saving).

The State Council's notices known to the project are a data file, ``rules/data/cn_holidays_2025_2026.csv``
(day, kind, name), read by ``china_calendar()``; the rules and the simulator use this one calendar. For a
year without a notice the calendar says so (``covers``) and falls back to weekdays: it never invents holidays.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from functools import cache
from importlib import resources

import numpy as np
from numpy.typing import NDArray

from tracks.ranges import expand

DAY_US = 86_400 * 1_000_000
EPOCH = date(1970, 1, 1)
CST_OFFSET_S = 8 * 3600  # China Standard Time = UTC+8
CHINA_NOTICES_FILE = "cn_holidays_2025_2026.csv"  # in rules/data


class DayKind(StrEnum):
    HOLIDAY = "holiday"  # a rest day that would otherwise be a working day, or part of a holiday run
    WORKDAY = "workday"  # a weekend day worked to make up for a holiday (调休上班)


@dataclass(frozen=True, slots=True, kw_only=True)
class CalendarDay:
    """One listed day, as the ``calendar_day`` table and the simulator's calendar.jsonl hold it."""

    day: date
    kind: DayKind
    name: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkHours:
    """Official use is expected on working days between these local times (seconds after midnight)."""

    start_s: int = 7 * 3600
    end_s: int = 20 * 3600


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkCalendar:
    holidays: frozenset[date] = frozenset()  # rest days that would otherwise be working days
    workdays: frozenset[date] = frozenset()  # weekend days worked to make up for a holiday
    hours: WorkHours = field(default_factory=WorkHours)
    utc_offset_s: int = CST_OFFSET_S
    names: Mapping[date, str] = field(default_factory=dict, hash=False)  # what a listed day is (春节 …)
    years: frozenset[int] = frozenset()  # years whose notice is listed in full

    def __post_init__(self) -> None:
        both = self.holidays & self.workdays
        if both:
            raise ValueError(f"days listed both as holiday and as make-up workday: {sorted(both)}")

    def covers(self, day: date) -> bool:
        """Whether the notice for ``day``'s year is known (else only weekends are rest days)."""
        return day.year in self.years

    def is_working_day(self, day: date) -> bool:
        if day in self.workdays:
            return True
        return day.weekday() < 5 and day not in self.holidays

    def days(self) -> list[CalendarDay]:
        """Every listed day in date order."""
        listed = [(d, DayKind.HOLIDAY) for d in self.holidays] + [(d, DayKind.WORKDAY) for d in self.workdays]
        return [CalendarDay(day=d, kind=k, name=self.names.get(d, "")) for d, k in sorted(listed)]

    def off_hours(self, t_s: NDArray[np.float64]) -> NDArray[np.bool_]:
        """Per UTC epoch second: outside working hours or on a rest day."""
        local_s = np.asarray(t_s, np.float64) + self.utc_offset_s
        day = np.floor(local_s / 86_400).astype(np.int64)
        second_of_day = local_s - day * 86_400
        in_hours = (second_of_day >= self.hours.start_s) & (second_of_day < self.hours.end_s)
        return np.asarray(~(self.working_days(day) & in_hours), dtype=np.bool_)

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
    days: Iterable[tuple[date, str]] | Iterable[tuple[date, str, str]],
    hours: WorkHours | None = None,
    utc_offset_s: int = CST_OFFSET_S,
    *,
    years: Iterable[int] = (),
) -> WorkCalendar:
    """A calendar from (date, kind[, name]) rows as the ``calendar_day`` table holds them: kind "holiday"
    or "workday" (a make-up working day)."""
    holidays, workdays, names = set(), set(), {}
    for row in days:
        day, kind = row[0], row[1]
        if kind == DayKind.HOLIDAY:
            holidays.add(day)
        elif kind == DayKind.WORKDAY:
            workdays.add(day)
        else:
            raise ValueError(f"unknown calendar day kind {kind!r} on {day}")
        if len(row) > 2:
            names[day] = row[2]
    return WorkCalendar(
        holidays=frozenset(holidays),
        workdays=frozenset(workdays),
        hours=hours or WorkHours(),
        utc_offset_s=utc_offset_s,
        names=names,
        years=frozenset(years),
    )


def china_calendar(extra: Iterable[CalendarDay] = ()) -> WorkCalendar:
    """The State Council notices known to the project (``rules/data``), plus any further days (e.g. a new
    year's notice); covers every year with a listed day."""
    days = [*_china_notices(), *((d.day, d.kind, d.name) for d in extra)]
    return calendar_from_days(days, years={d.year for d, _, _ in days})


@cache
def _china_notices() -> tuple[tuple[date, DayKind, str], ...]:
    text = resources.files("rules").joinpath("data", CHINA_NOTICES_FILE).read_text(encoding="utf-8")
    rows = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
    return tuple((date.fromisoformat(r["day"]), DayKind(r["kind"]), r["name"]) for r in rows)


def local_midnight_s(day: date) -> int:
    """UTC epoch seconds of 00:00 China Standard Time on ``day``."""
    return (day - EPOCH).days * 86_400 - CST_OFFSET_S


def day_number(day: date) -> int:
    return (day - EPOCH).days


def local_date(day_number: int) -> date:
    return EPOCH + timedelta(days=day_number)
