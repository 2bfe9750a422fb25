"""``Track``: one or many vehicles' fixes as equal-length read-only columns, sorted by (vehicle, time).

A track holding several vehicles is the concatenation of their tracks in ``vehicle_id`` order; every step
of the engine treats a change of vehicle like the end of the data, so one call processes a whole fleet.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from tracks.columns import ColumnError, column, freeze_columns

IGNITION_UNKNOWN, IGNITION_OFF, IGNITION_ON = -1, 0, 1


class UnsortedTrackError(ColumnError):
    """A Track's rows are not sorted by (vehicle_id, t_us); build it with ``make_track`` to sort."""

    def __init__(self, row: int) -> None:
        super().__init__(f"track rows are not sorted by (vehicle_id, t_us) at row {row}")
        self.row = row


@dataclass(frozen=True, slots=True, kw_only=True)
class Track:
    """Fixes as columns. ``t_us``: Unix epoch microseconds (UTC). ``lon``/``lat``: WGS-84 degrees.

    ``speed_kmh`` and ``odometer_km`` are NaN where not reported; ``ignition`` is -1 (not reported),
    0 (ACC off) or 1 (ACC on). Rows are sorted by ``(vehicle_id, t_us)``; equal times are allowed (the
    cleaner marks them).

    ``extra`` holds further per-fix columns by name (read-only, same length): the fix columns the
    engine reads that are not one of the above (store.fixcolumns, ``engine=True``). The engine's
    steps do not look at them; they travel with the rows (``take``) for whoever does.
    """

    vehicle_id: NDArray[np.int64]
    t_us: NDArray[np.int64]
    lon: NDArray[np.float64]
    lat: NDArray[np.float64]
    speed_kmh: NDArray[np.float64]
    ignition: NDArray[np.int8]
    odometer_km: NDArray[np.float64]
    extra: Mapping[str, NDArray[Any]] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        n = freeze_columns(self)
        frozen = {name: column(values, np.asarray(values).dtype) for name, values in self.extra.items()}
        for name, values in frozen.items():
            if len(values) != n:
                raise ColumnError(f"Track.extra[{name!r}] has {len(values)} rows, expected {n}")
        object.__setattr__(self, "extra", MappingProxyType(frozen))
        vehicle_step, time_step = np.diff(self.vehicle_id), np.diff(self.t_us)
        bad = np.flatnonzero((vehicle_step < 0) | ((vehicle_step == 0) & (time_step < 0)))
        if len(bad):
            raise UnsortedTrackError(int(bad[0]) + 1)

    def __len__(self) -> int:
        return len(self.t_us)

    def take(self, rows: NDArray[np.intp] | slice) -> Track:
        """The rows ``rows`` (ascending indices, or a slice: then views, no copy) as a new track."""
        return Track(
            vehicle_id=self.vehicle_id[rows],
            t_us=self.t_us[rows],
            lon=self.lon[rows],
            lat=self.lat[rows],
            speed_kmh=self.speed_kmh[rows],
            ignition=self.ignition[rows],
            odometer_km=self.odometer_km[rows],
            extra={name: values[rows] for name, values in self.extra.items()},
        )


def make_track(
    *,
    vehicle_id: ArrayLike,
    t_us: ArrayLike,
    lon: ArrayLike,
    lat: ArrayLike,
    speed_kmh: ArrayLike | None = None,
    ignition: ArrayLike | None = None,
    odometer_km: ArrayLike | None = None,
    extra: Mapping[str, ArrayLike] | None = None,
) -> Track:
    """A Track from columns in any order (late blind-area back-fill arrives out of order).

    Rows are sorted by vehicle, time, then position, so equal timestamps come out in the same order
    whatever order they arrived in. Missing optional columns are "not reported".
    """
    t = np.asarray(t_us, dtype=np.int64)
    n = len(t)
    vehicle = np.broadcast_to(np.asarray(vehicle_id, dtype=np.int64), (n,))
    x, y = np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
    speed = np.full(n, np.nan) if speed_kmh is None else np.asarray(speed_kmh, dtype=np.float64)
    acc = np.full(n, IGNITION_UNKNOWN, np.int8) if ignition is None else np.asarray(ignition, dtype=np.int8)
    odometer = np.full(n, np.nan) if odometer_km is None else np.asarray(odometer_km, dtype=np.float64)
    others = {name: np.asarray(values) for name, values in (extra or {}).items()}
    vehicle_step, time_step = np.diff(vehicle), np.diff(t)
    if np.all((vehicle_step > 0) | ((vehicle_step == 0) & (time_step > 0))):
        return Track(
            vehicle_id=vehicle,
            t_us=t,
            lon=x,
            lat=y,
            speed_kmh=speed,
            ignition=acc,
            odometer_km=odometer,
            extra=others,
        )
    # two stable argsorts beat one four-key lexsort by ~2.5× on interleaved rows (a fleet read by time)
    order = np.argsort(t, kind="stable")
    order = order[np.argsort(vehicle[order], kind="stable")]
    sorted_v, sorted_t = vehicle[order], t[order]
    if np.any((sorted_v[1:] == sorted_v[:-1]) & (sorted_t[1:] == sorted_t[:-1])):
        order = np.lexsort((y, x, t, vehicle))  # equal (vehicle, time): the position decides, as documented
    return Track(
        vehicle_id=vehicle[order],
        t_us=t[order],
        lon=x[order],
        lat=y[order],
        speed_kmh=speed[order],
        ignition=acc[order],
        odometer_km=odometer[order],
        extra={name: values[order] for name, values in others.items()},
    )


def empty_track() -> Track:
    return make_track(vehicle_id=np.zeros(0, np.int64), t_us=[], lon=[], lat=[])


def vehicle_starts(vehicle_id: NDArray[np.int64]) -> NDArray[np.intp]:
    """Row where each vehicle's rows start, followed by the number of rows."""
    if len(vehicle_id) == 0:
        return np.zeros(1, np.intp)
    breaks = np.flatnonzero(vehicle_id[1:] != vehicle_id[:-1]) + 1
    return np.concatenate(([0], breaks, [len(vehicle_id)])).astype(np.intp)


_MAX_KEY = 1 << 62


def look_back(
    vehicle_id: NDArray[np.int64],
    t_us: NDArray[np.int64],
    window_s: float,
    rows: NDArray[np.intp] | None = None,
) -> NDArray[np.intp]:
    """Per row (of ``rows``, default all), the last row of the same vehicle at least ``window_s``
    older (its own vehicle's first row when there is none)."""
    starts = vehicle_starts(vehicle_id)
    if len(t_us) == 0:
        return np.zeros(0, np.intp)
    counts = np.diff(starts)
    window_us = round(window_s * 1e6)
    # one ascending key over all vehicles: each vehicle's times, shifted past the previous vehicle's
    t0 = t_us[starts[:-1]]
    span = t_us[starts[1:] - 1] - t0
    offset = np.concatenate(([0], np.cumsum(span + window_us + 1)[:-1]))
    if int(offset[-1]) + int(span[-1]) > _MAX_KEY:
        raise OverflowError("track spans too long a time for one pass; split it by vehicle")
    key = t_us - np.repeat(t0 - offset, counts)
    asked = key if rows is None else key[rows]
    lo = np.searchsorted(key, asked - window_us, side="right").astype(np.intp) - 1
    first = np.repeat(starts[:-1], counts)
    return np.maximum(lo, first if rows is None else first[rows])


def continues(vehicle_id: NDArray[np.int64]) -> NDArray[np.bool_]:
    """Per row: the previous row belongs to the same vehicle (False for each vehicle's first row)."""
    same = np.zeros(len(vehicle_id), dtype=np.bool_)
    same[1:] = vehicle_id[1:] == vehicle_id[:-1]
    return same
