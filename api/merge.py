"""Merge suggestions (合并派车): approved requests that one car could serve together. Pure numpy.

Two requests are compatible when their windows overlap, they start at most ``max_start_gap_s`` apart,
and their origins and their destinations are each within ``max_origin_m`` / ``max_destination_m``.
Groups are grown greedily in order of start time: a request joins the first open group all of whose
members it is compatible with, while the group's passengers fit in ``max_passengers`` seats.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from tracks.geo import haversine_m


@dataclass(frozen=True, slots=True, kw_only=True)
class MergeParams:
    max_origin_m: float = 1_000.0
    max_destination_m: float = 1_000.0
    max_start_gap_s: float = 1_800.0
    max_passengers: int = 7


@dataclass(frozen=True, slots=True, kw_only=True)
class Requests:
    """Approved requests as columns, sorted by start time."""

    passengers: NDArray[np.int64]
    start_s: NDArray[np.float64]
    end_s: NDArray[np.float64]
    origin_lon: NDArray[np.float64]
    origin_lat: NDArray[np.float64]
    destination_lon: NDArray[np.float64]
    destination_lat: NDArray[np.float64]

    def __post_init__(self) -> None:
        n = len(self.passengers)
        for name in ("start_s", "end_s", "origin_lon", "origin_lat", "destination_lon", "destination_lat"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"column {name} has {len(getattr(self, name))} values, expected {n}")
        if n and np.any(np.diff(self.start_s) < 0):
            raise ValueError("requests must be sorted by start time")


def compatible(requests: Requests, params: MergeParams) -> NDArray[np.bool_]:
    """n × n: which pairs of requests one car could serve together (the diagonal is False)."""
    r = requests
    n = len(r.passengers)
    i, j = np.triu_indices(n, k=1)
    ok = (
        (np.abs(r.start_s[i] - r.start_s[j]) <= params.max_start_gap_s)
        & (r.start_s[i] < r.end_s[j])
        & (r.start_s[j] < r.end_s[i])
        & (r.passengers[i] + r.passengers[j] <= params.max_passengers)
    )
    i, j = i[ok], j[ok]
    near = (
        haversine_m(r.origin_lon[i], r.origin_lat[i], r.origin_lon[j], r.origin_lat[j]) <= params.max_origin_m
    ) & (
        haversine_m(r.destination_lon[i], r.destination_lat[i], r.destination_lon[j], r.destination_lat[j])
        <= params.max_destination_m
    )
    matrix = np.zeros((n, n), dtype=np.bool_)
    matrix[i[near], j[near]] = True
    return matrix | matrix.T


def merge_groups(requests: Requests, params: MergeParams) -> list[tuple[int, ...]]:
    """Groups (indices into ``requests``) of two or more requests one car could serve."""
    matrix = compatible(requests, params)
    groups: list[list[int]] = []
    seats: list[int] = []
    for k in np.flatnonzero(matrix.any(axis=1)).tolist():
        need = int(requests.passengers[k])
        for g, members in enumerate(groups):
            if seats[g] + need <= params.max_passengers and bool(matrix[k, members].all()):
                members.append(k)
                seats[g] += need
                break
        else:
            groups.append([k])
            seats.append(need)
    return [tuple(members) for members in groups if len(members) > 1]
