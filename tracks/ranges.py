"""Row ranges ``[start, end)`` over columns: sums and extremes per range, membership, ramps.

Sums are taken over each range's own values (``reduceat``), never as differences of a running total,
so a trip's figures are bit-for-bit the same whatever else was processed with it.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray


def reduce_ranges(
    ufunc: np.ufunc, values: ArrayLike, start: ArrayLike, end: ArrayLike, empty: float = np.nan
) -> NDArray[np.float64]:
    """``ufunc.reduce(values[start[k]:end[k]])`` for each k; ``empty`` for an empty range."""
    start_a, end_a = np.asarray(start, dtype=np.intp), np.asarray(end, dtype=np.intp)
    if len(start_a) == 0:
        return np.zeros(0, np.float64)
    padded = np.append(np.asarray(values, dtype=np.float64), 0.0)
    bounds = np.empty(2 * len(start_a), np.intp)
    bounds[0::2], bounds[1::2] = start_a, end_a
    np.clip(bounds, 0, len(padded) - 1, out=bounds)
    reduced = ufunc.reduceat(padded, bounds)[0::2]
    return np.asarray(np.where(end_a > start_a, reduced, empty), dtype=np.float64)


def in_ranges(n: int, start: ArrayLike, end: ArrayLike) -> NDArray[np.bool_]:
    """Rows ``0..n-1`` inside any of the ranges."""
    depth = np.bincount(np.asarray(start, dtype=np.intp), minlength=n + 1) - np.bincount(
        np.asarray(end, dtype=np.intp), minlength=n + 1
    )
    return np.asarray(np.cumsum(depth)[:n] > 0, dtype=np.bool_)


def ramp(count: ArrayLike) -> NDArray[np.int64]:
    """0, 1, …, count[0]-1, 0, 1, …, count[1]-1, …"""
    count_a = np.asarray(count, dtype=np.int64)
    total = int(np.sum(count_a))
    return np.asarray(np.arange(total) - np.repeat(np.cumsum(count_a) - count_a, count_a), dtype=np.int64)


def expand(start: ArrayLike, count: ArrayLike) -> NDArray[np.int64]:
    """The rows of all ranges ``[start[k], start[k] + count[k])``, one after the other."""
    count_a = np.asarray(count, dtype=np.int64)
    return np.asarray(np.repeat(np.asarray(start, dtype=np.int64), count_a) + ramp(count_a), dtype=np.int64)
