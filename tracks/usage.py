"""Usage per vehicle and per agency per local day, week or month: trips, km, hours in use, idle days.

Days are local (``utc_offset_s``, China Standard Time by default); weeks start on Monday. A trip
that crosses midnight counts its hours and (in proportion to time) its kilometres on each day it
touches, and counts as one trip on the day it started. A day with no time in a trip is idle.
Holidays and make-up working days are calendar data; count idle *working* days by passing only the
working days of the calendar to ``roll_up``'s caller, not by weekday arithmetic here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray

from tracks.columns import freeze_columns
from tracks.measure import Trips
from tracks.params import UsageParams
from tracks.ranges import expand

DAY_US = 86_400 * 1_000_000


class Period(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


@dataclass(frozen=True, slots=True, kw_only=True)
class Usage:
    """One row per (key, period); ``key`` is a vehicle or an agency id."""

    key: NDArray[np.int64]
    first_day: NDArray[np.int64]  # the period's first local day, as days since 1970-01-01
    days: NDArray[np.int64]  # days of the period inside the range asked for
    trips: NDArray[np.int64]
    distance_km: NDArray[np.float64]
    hours_in_use: NDArray[np.float64]
    idle_days: NDArray[np.int64]  # for an agency: vehicle-days

    def __post_init__(self) -> None:
        freeze_columns(self)

    def __len__(self) -> int:
        return len(self.key)


def local_day(t_us: NDArray[np.int64] | int, params: UsageParams) -> NDArray[np.int64]:
    """Local calendar day (days since 1970-01-01) of each instant."""
    return np.asarray(
        np.floor_divide(np.asarray(t_us) + params.utc_offset_s * 1_000_000, DAY_US), dtype=np.int64
    )


def daily_usage(
    trips: Trips, vehicles: NDArray[np.int64], first_day: int, last_day: int, params: UsageParams
) -> Usage:
    """One row per vehicle in ``vehicles`` (sorted, unique) per day in ``[first_day, last_day]``."""
    days = last_day - first_day + 1
    if days <= 0 or len(vehicles) == 0:
        empty_i, empty_f = np.zeros(0, np.int64), np.zeros(0, np.float64)
        return Usage(
            key=empty_i, first_day=empty_i, days=empty_i, trips=empty_i,
            distance_km=empty_f, hours_in_use=empty_f, idle_days=empty_i,
        )  # fmt: skip
    offset_us = params.utc_offset_s * 1_000_000
    start, end = trips.start_us, trips.end_us
    d0, d1 = local_day(start, params), local_day(np.maximum(end - 1, start), params)
    touched = d1 - d0 + 1
    trip = np.repeat(np.arange(len(trips)), touched)
    day = expand(d0, touched)
    day_start_us = day * DAY_US - offset_us
    overlap_us = np.minimum(end[trip], day_start_us + DAY_US) - np.maximum(start[trip], day_start_us)
    duration_us = (end - start)[trip]
    share = np.where(duration_us > 0, overlap_us / np.maximum(duration_us, 1), 1.0)

    vehicle_index = np.searchsorted(vehicles, trips.vehicle_id[trip])
    known = (vehicle_index < len(vehicles)) & (
        vehicles[np.minimum(vehicle_index, len(vehicles) - 1)] == trips.vehicle_id[trip]
    )
    inside = known & (day >= first_day) & (day <= last_day)
    cell = vehicle_index[inside] * days + (day[inside] - first_day)
    cells = len(vehicles) * days
    starts_here = (day == d0[trip])[inside]
    hours = np.asarray(
        np.bincount(cell, weights=overlap_us[inside] / 3.6e9, minlength=cells), dtype=np.float64
    )
    return Usage(
        key=np.repeat(vehicles, days),
        first_day=np.tile(np.arange(first_day, last_day + 1, dtype=np.int64), len(vehicles)),
        days=np.ones(cells, np.int64),
        trips=np.bincount(cell, weights=starts_here, minlength=cells).astype(np.int64),
        distance_km=np.asarray(
            np.bincount(cell, weights=(trips.distance_m[trip] * share)[inside] / 1000.0, minlength=cells),
            dtype=np.float64,
        ),
        hours_in_use=hours,
        idle_days=(hours <= 0).astype(np.int64),
    )


def period_start(day: NDArray[np.int64], period: Period) -> NDArray[np.int64]:
    """First day of the local day / ISO week (Monday) / month containing each day."""
    if period is Period.DAY:
        return day
    if period is Period.WEEK:
        return day - (day + 3) % 7  # 1970-01-01 was a Thursday
    months = day.astype("datetime64[D]").astype("datetime64[M]")
    return np.asarray(months.astype("datetime64[D]").astype(np.int64), dtype=np.int64)


def roll_up(
    daily: Usage,
    period: Period,
    member: NDArray[np.int64] | None = None,
    group: NDArray[np.int64] | None = None,
) -> Usage:
    """Sum daily usage per period, and per group when given (``member[k]`` belongs to ``group[k]``,
    e.g. vehicle → agency; keys with no group are left out)."""
    key = daily.key
    keep = np.ones(len(key), np.bool_)
    if member is not None and group is not None:
        if len(member) == 0:
            keep[:] = False
        else:
            by_member = np.argsort(member, kind="stable")
            sorted_member = member[by_member]
            at = np.minimum(np.searchsorted(sorted_member, key), len(member) - 1)
            keep = sorted_member[at] == key
            key = group[by_member][at]
    first = period_start(daily.first_day, period)
    pairs = np.stack((key[keep], first[keep]), axis=1)
    unique, inverse = np.unique(pairs, axis=0, return_inverse=True)
    inverse = inverse.ravel()

    def total(values: NDArray[np.generic]) -> NDArray[np.float64]:
        summed = np.bincount(
            inverse, weights=np.asarray(values, dtype=np.float64)[keep], minlength=len(unique)
        )
        return np.asarray(summed, dtype=np.float64)

    return Usage(
        key=unique[:, 0] if len(unique) else np.zeros(0, np.int64),
        first_day=unique[:, 1] if len(unique) else np.zeros(0, np.int64),
        days=total(daily.days).astype(np.int64),
        trips=total(daily.trips).astype(np.int64),
        distance_km=total(daily.distance_km),
        hours_in_use=total(daily.hours_in_use),
        idle_days=total(daily.idle_days).astype(np.int64),
    )
