"""Known places — depots and approved destinations — and the class of each stop."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from numpy.typing import ArrayLike, NDArray

from tracks.columns import freeze_columns
from tracks.geo import pairs_within

ANY_VEHICLE = -1


class StopKind(StrEnum):
    OTHER = "other"
    DEPOT = "depot"
    DESTINATION = "destination"  # an approved destination (of a dispatch order, or listed)


STOP_KIND_CODE: dict[StopKind, int] = {kind: code for code, kind in enumerate(StopKind)}


@dataclass(frozen=True, slots=True, kw_only=True)
class Places:
    """Known places, each a circle; a place may hold for one vehicle only (an order's destination)."""

    lon: NDArray[np.float64]
    lat: NDArray[np.float64]
    radius_m: NDArray[np.float64]
    kind: NDArray[np.uint8]  # STOP_KIND_CODE
    vehicle_id: NDArray[np.int64]  # ANY_VEHICLE, or the one vehicle it holds for

    def __post_init__(self) -> None:
        freeze_columns(self)

    def __len__(self) -> int:
        return len(self.lon)


def places(
    kind: StopKind, lon: ArrayLike, lat: ArrayLike, radius_m: ArrayLike, vehicle_id: ArrayLike = ANY_VEHICLE
) -> Places:
    lon_a = np.atleast_1d(np.asarray(lon, dtype=np.float64))
    return Places(
        lon=lon_a,
        lat=np.atleast_1d(np.asarray(lat, dtype=np.float64)),
        radius_m=np.broadcast_to(np.asarray(radius_m, dtype=np.float64), lon_a.shape),
        kind=np.full(len(lon_a), STOP_KIND_CODE[kind], np.uint8),
        vehicle_id=np.broadcast_to(np.asarray(vehicle_id, dtype=np.int64), lon_a.shape),
    )


def join_places(*parts: Places) -> Places:
    return Places(
        lon=np.concatenate([p.lon for p in parts] + [np.zeros(0)]),
        lat=np.concatenate([p.lat for p in parts] + [np.zeros(0)]),
        radius_m=np.concatenate([p.radius_m for p in parts] + [np.zeros(0)]),
        kind=np.concatenate([p.kind for p in parts] + [np.zeros(0, np.uint8)]),
        vehicle_id=np.concatenate([p.vehicle_id for p in parts] + [np.zeros(0, np.int64)]),
    )


def take_places(known: Places, keep: NDArray[np.bool_]) -> Places:
    return Places(
        lon=known.lon[keep],
        lat=known.lat[keep],
        radius_m=known.radius_m[keep],
        kind=known.kind[keep],
        vehicle_id=known.vehicle_id[keep],
    )


def places_of(known: Places, first_vehicle: int, last_vehicle: int) -> Places:
    """The places that hold for any of the vehicles ``first_vehicle .. last_vehicle``."""
    vehicle = known.vehicle_id
    keep = (vehicle == ANY_VEHICLE) | ((vehicle >= first_vehicle) & (vehicle <= last_vehicle))
    return Places(
        lon=known.lon[keep],
        lat=known.lat[keep],
        radius_m=known.radius_m[keep],
        kind=known.kind[keep],
        vehicle_id=vehicle[keep],
    )


def classify_stops(
    vehicle_id: NDArray[np.int64], lon: NDArray[np.float64], lat: NDArray[np.float64], known: Places
) -> NDArray[np.uint8]:
    """``STOP_KIND_CODE`` per stop: a depot if within one, else an approved destination (of any
    vehicle for a shared place, of this vehicle for its own), else other."""
    kind = np.full(len(lon), STOP_KIND_CODE[StopKind.OTHER], np.uint8)
    if len(known) == 0 or len(lon) == 0:
        return kind
    stop, place, d = pairs_within(lon, lat, known.lon, known.lat, float(np.max(known.radius_m)))
    holds = (d <= known.radius_m[place]) & (
        (known.vehicle_id[place] == ANY_VEHICLE) | (known.vehicle_id[place] == vehicle_id[stop])
    )
    for which in (StopKind.DESTINATION, StopKind.DEPOT):  # the later wins
        kind[stop[holds & (known.kind[place] == STOP_KIND_CODE[which])]] = STOP_KIND_CODE[which]
    return kind
