"""Measure trips, stops and gaps from the split: mileage, times, speeds, odometer agreement.

Mileage (``distance_m``) is the geodesic length of the trip: from where the car stood before it (the
mean of the stop's last ``stand_fixes`` fixes, not its last fix alone, which drifts) through the
trip's own fixes to where it next stood (likewise); a leg between two fixes reporting a standing car
(below ``standing_speed_kmh``: at a light, in a jam) counts nothing. A leg with no data for longer
than ``bridge_gap_s`` during which the car moved is *bridged*: its straight line is counted in
``distance_m`` (a lower bound of the road driven), and also reported on its own as ``bridged_m`` with
the number of such legs in ``bridged_legs``, so a reader can see how much of a figure is estimated.

``speed_distance_m`` integrates the terminal's reported (Doppler) speed instead, where it is reported:
free of position noise, which lengthens a GNSS path by about noise² / step per step (0.3-1 % at 5 m
noise and 10 s reports in city traffic).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from tracks.columns import Rows, freeze_columns, spec
from tracks.geo import distance_m
from tracks.params import MeasureParams, TripParams
from tracks.places import STOP_KIND_CODE, Places, StopKind, classify_stops
from tracks.ranges import reduce_ranges
from tracks.split import Geometry, Segments, geometry, trip_bounds
from tracks.track import Track, continues


@dataclass(frozen=True, slots=True, kw_only=True)
class Trips:
    """One row per trip, in segment order. Row numbers refer to the measured (cleaned) track."""

    vehicle_id: NDArray[np.int64]
    segment: NDArray[np.int64] = spec(index=Rows.SEGMENT)
    first_row: NDArray[np.int64] = spec(index=Rows.KEPT)  # the trip's own rows: [first_row, end_row)
    end_row: NDArray[np.int64] = spec(index=Rows.KEPT)
    from_row: NDArray[np.int64] = spec(index=Rows.KEPT)  # mileage: from the departure row to the arrival row
    to_row: NDArray[np.int64] = spec(index=Rows.KEPT)
    start_us: NDArray[np.int64]
    end_us: NDArray[np.int64]
    duration_s: NDArray[np.float64]
    moving_s: NDArray[np.float64]
    distance_m: NDArray[np.float64]  # geodesic, from where the car stood to where it next stood
    bridged_m: NDArray[np.float64]  # the part of distance_m that is straight lines across silences
    bridged_legs: NDArray[np.int32]
    speed_distance_m: NDArray[np.float64]  # the reported speed integrated; NaN unless speed is reported
    max_speed_kmh: NDArray[np.float64]  # reported where the terminal reports speed, else implied
    odometer_m: NDArray[np.float64]  # NaN where the terminal reports no usable odometer
    odometer_confidence: NDArray[np.float64]  # 0..1, see ``odometer_confidence``
    start_lon: NDArray[np.float64]
    start_lat: NDArray[np.float64]
    end_lon: NDArray[np.float64]
    end_lat: NDArray[np.float64]

    def __post_init__(self) -> None:
        freeze_columns(self)

    def __len__(self) -> int:
        return len(self.segment)


@dataclass(frozen=True, slots=True, kw_only=True)
class Stops:
    """One row per stop. A stop lasts from the end of the trip before it to the start of the next."""

    vehicle_id: NDArray[np.int64]
    segment: NDArray[np.int64] = spec(index=Rows.SEGMENT)
    first_row: NDArray[np.int64] = spec(index=Rows.KEPT)
    end_row: NDArray[np.int64] = spec(index=Rows.KEPT)
    start_us: NDArray[np.int64]
    end_us: NDArray[np.int64]
    duration_s: NDArray[np.float64]
    lon: NDArray[np.float64]  # mean position
    lat: NDArray[np.float64]
    path_m: NDArray[np.float64]  # what the position wandered while standing (never mileage)
    kind: NDArray[np.uint8]  # STOP_KIND_CODE

    def __post_init__(self) -> None:
        freeze_columns(self)

    def __len__(self) -> int:
        return len(self.segment)


@dataclass(frozen=True, slots=True, kw_only=True)
class Gaps:
    """Silences longer than ``max_gap_s``: no trip spans one, and their legs count in no mileage."""

    vehicle_id: NDArray[np.int64]
    after_row: NDArray[np.int64] = spec(index=Rows.KEPT)  # the first row after the silence
    from_us: NDArray[np.int64]
    to_us: NDArray[np.int64]
    displacement_m: NDArray[np.float64]
    relocated: NDArray[np.bool_]  # moved at least stop_radius_m while silent

    def __post_init__(self) -> None:
        freeze_columns(self)

    def __len__(self) -> int:
        return len(self.after_row)


@dataclass(frozen=True, slots=True, kw_only=True)
class Standing:
    """Positions to average where a car stood: the kept fixes and the drift the cleaner set aside
    (a standing car's wander is exactly what its mean position is for). ``at[k]`` is where kept row
    k sits among them."""

    lon: NDArray[np.float64]
    lat: NDArray[np.float64]
    at: NDArray[np.int64]

    def __post_init__(self) -> None:
        freeze_columns(self, same_length=False)


def measure_trips(
    track: Track,
    segments: Segments,
    params: MeasureParams,
    trip_params: TripParams,
    geo: Geometry | None = None,
    *,
    standing: Standing | None = None,
) -> Trips:
    """Per trip figures; ``standing`` (default: the kept fixes) gives the stops' positions."""
    geo = geo if geo is not None else geometry(track)
    standing = standing or Standing(lon=track.lon, lat=track.lat, at=np.arange(len(track), dtype=np.int64))
    trips = np.flatnonzero(segments.is_trip)
    first, end = segments.start[trips], segments.end[trips]
    bounds = trip_bounds(track, first, end, trip_params, geo)
    from_row, to_row = bounds.from_row, bounds.to_row
    t = track.t_us
    own_from, own_to = first + 1, end  # the legs between the trip's own rows

    dt_s = np.zeros(len(track), np.float64)
    dt_s[1:] = np.diff(t) / 1e6
    dt_s[~continues(track.vehicle_id)] = 0.0
    bridged = (dt_s > params.bridge_gap_s) & (geo.leg_m > params.bridge_min_m)
    # a leg between two fixes where the terminal says the car stood (at a light, in a jam) is noise
    with np.errstate(invalid="ignore"):
        standstill = np.zeros(len(track), np.bool_)
        standstill[1:] = (track.speed_kmh[1:] < params.standing_speed_kmh) & (
            track.speed_kmh[:-1] < params.standing_speed_kmh
        )
    standstill &= dt_s <= params.bridge_gap_s
    leg_m = np.where(standstill, 0.0, geo.leg_m)

    # the car left from where it stood — the mean of the stop's last few fixes, not its last fix alone,
    # which drifts — and arrived where it next stood (the mean of the next stop's first few fixes)
    departs, arrives = from_row < first, to_row >= end
    k = params.stand_fixes
    before, after = np.maximum(trips - 1, 0), np.minimum(trips + 1, len(segments) - 1)
    at = np.append(standing.at, len(standing.lon))  # (one past the last)
    leave, arrive = at[first], at[end]
    stand_from = np.maximum(at[segments.start[before]], leave - k)
    stand_to = np.minimum(at[segments.end[after]], arrive + k)
    start_lon = np.where(departs, _mean(standing.lon, stand_from, leave), track.lon[first])
    start_lat = np.where(departs, _mean(standing.lat, stand_from, leave), track.lat[first])
    end_lon = np.where(arrives, _mean(standing.lon, arrive, stand_to), track.lon[end - 1])
    end_lat = np.where(arrives, _mean(standing.lat, arrive, stand_to), track.lat[end - 1])
    departure_m = np.where(departs, distance_m(start_lon, start_lat, track.lon[first], track.lat[first]), 0.0)
    arrival_m = np.where(arrives, distance_m(track.lon[end - 1], track.lat[end - 1], end_lon, end_lat), 0.0)
    edge_bridged = np.where(departs & bridged[first], departure_m, 0.0) + np.where(
        arrives & bridged[np.minimum(end, len(track) - 1)], arrival_m, 0.0
    )
    own_m = reduce_ranges(np.add, leg_m, own_from, own_to, empty=0.0)
    distance = departure_m + own_m + arrival_m
    bridged_m = (
        reduce_ranges(np.add, np.where(bridged, geo.leg_m, 0.0), own_from, own_to, empty=0.0) + edge_bridged
    )
    bridged_legs = reduce_ranges(np.add, bridged, from_row + 1, to_row + 1, empty=0.0).astype(np.int32)

    with np.errstate(invalid="ignore", divide="ignore"):
        implied_kmh = np.where(dt_s > 0, geo.leg_m / dt_s * 3.6, np.nan)
        reported_kmh = np.full(len(track), np.nan)
        reported_kmh[1:] = 0.5 * (track.speed_kmh[1:] + track.speed_kmh[:-1])
        leg_kmh = np.where(np.isnan(reported_kmh), implied_kmh, reported_kmh)
        # the Doppler speed integrated over time: free of position noise and corner cutting
        by_speed = np.where(bridged | np.isnan(reported_kmh), leg_m, reported_kmh / 3.6 * dt_s)
    moving_s = reduce_ranges(
        np.add, np.where(leg_kmh >= params.moving_speed_kmh, dt_s, 0.0), from_row + 1, to_row + 1, empty=0.0
    )
    speed_m = departure_m + reduce_ranges(np.add, by_speed, own_from, own_to, empty=0.0) + arrival_m
    reported_share = reduce_ranges(np.add, ~np.isnan(track.speed_kmh), first, end) / (end - first)

    duration_s = (bounds.end_us - bounds.start_us) / 1e6
    max_reported = reduce_ranges(np.fmax, track.speed_kmh, first, end)
    max_implied = reduce_ranges(np.fmax, implied_kmh, from_row + 1, to_row + 1)
    confidence, odometer_m = odometer_confidence(
        track, from_row=from_row, to_row=to_row, gnss_m=distance, bridged_m=bridged_m, params=params
    )
    return Trips(
        vehicle_id=segments.vehicle_id[trips],
        segment=trips,
        first_row=first,
        end_row=end,
        from_row=from_row,
        to_row=to_row,
        start_us=bounds.start_us,
        end_us=bounds.end_us,
        duration_s=duration_s,
        moving_s=np.minimum(moving_s, duration_s),
        distance_m=distance,
        bridged_m=bridged_m,
        bridged_legs=bridged_legs,
        speed_distance_m=np.where(reported_share >= 0.9, speed_m, np.nan),
        max_speed_kmh=np.where(np.isnan(max_reported), max_implied, max_reported),
        odometer_m=odometer_m,
        odometer_confidence=confidence,
        start_lon=start_lon,
        start_lat=start_lat,
        end_lon=end_lon,
        end_lat=end_lat,
    )


def _mean(
    values: NDArray[np.float64], start: NDArray[np.int64], end: NDArray[np.int64]
) -> NDArray[np.float64]:
    with np.errstate(invalid="ignore", divide="ignore"):
        return reduce_ranges(np.add, values, start, end) / (end - start)


def stop_positions(track: Track, segments: Segments) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per segment: the mean position of its rows (where a stop's car stood); NaN for trips."""
    stops = np.flatnonzero(~segments.is_trip)
    first, end = segments.start[stops], segments.end[stops]
    lon, lat = np.full(len(segments), np.nan), np.full(len(segments), np.nan)
    lon[stops] = reduce_ranges(np.add, track.lon, first, end) / (end - first)
    lat[stops] = reduce_ranges(np.add, track.lat, first, end) / (end - first)
    return lon, lat


def odometer_confidence(
    track: Track,
    *,
    from_row: NDArray[np.int64],
    to_row: NDArray[np.int64],
    gnss_m: NDArray[np.float64],
    bridged_m: NDArray[np.float64],
    params: MeasureParams,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(confidence 0..1, odometer distance m) per trip from the terminal's odometer readings.

    Readings that are not positive are faults (zero odometers are common) and ignored. The confidence
    is the product of: coverage (the share of the trip's time between its first and last reading),
    monotony (0 if the reading ever goes back: a reset or a swapped terminal) and agreement with the
    GNSS mileage, which may exceed the straight-line bridges by up to half their length; the
    odometer's own resolution is allowed for.
    """
    n = len(track)
    odometer = track.odometer_km
    with np.errstate(invalid="ignore"):
        valid = odometer > 0
    rows = np.arange(n)
    valid_rows = np.flatnonzero(valid)
    first_valid = reduce_ranges(np.fmin, np.where(valid, rows, np.nan), from_row, to_row + 1)
    last_valid = reduce_ranges(np.fmax, np.where(valid, rows, np.nan), from_row, to_row + 1)
    has = ~np.isnan(first_valid) & (first_valid < last_valid)
    a = np.where(has, first_valid, 0).astype(np.intp)
    b = np.where(has, last_valid, 0).astype(np.intp)
    odometer_m = np.where(has, (odometer[b] - odometer[a]) * 1000.0, np.nan)

    backwards = np.zeros(n, np.int64)
    if len(valid_rows) > 1:
        same_vehicle = track.vehicle_id[valid_rows[1:]] == track.vehicle_id[valid_rows[:-1]]
        backwards[valid_rows[1:]] = same_vehicle & (odometer[valid_rows[1:]] < odometer[valid_rows[:-1]])
    went_back = np.cumsum(backwards)
    monotone = went_back[b] - went_back[a] == 0

    t = track.t_us
    span_s = (t[to_row] - t[from_row]) / 1e6
    with np.errstate(invalid="ignore", divide="ignore"):
        coverage = np.clip(np.where(span_s > 0, (t[b] - t[a]) / 1e6 / span_s, 0.0), 0.0, 1.0)
        high_m = gnss_m + 0.5 * bridged_m
        off_m = np.maximum(np.maximum(gnss_m - odometer_m, odometer_m - high_m), 0.0)
        off_m = np.maximum(off_m - params.odometer_resolution_km * 1000.0, 0.0)
        agreement = np.clip(1.0 - off_m / np.maximum(gnss_m, 1.0) / params.odometer_tolerance, 0.0, 1.0)
    confidence = np.where(has & monotone, coverage * agreement, 0.0)
    return confidence, np.where(has & monotone, odometer_m, np.nan)


def measure_stops(
    track: Track,
    segments: Segments,
    trips: Trips,
    known: Places | None = None,
    geo: Geometry | None = None,
) -> Stops:
    geo = geo if geo is not None else geometry(track)
    stops = np.flatnonzero(~segments.is_trip)
    first, end = segments.start[stops], segments.end[stops]
    t = track.t_us
    lon, lat = (c[stops] for c in stop_positions(track, segments))

    # a stop runs from the end of the trip that arrived at it to the start of the trip that left it
    trip_end = np.full(len(segments) + 1, -1, np.int64)
    trip_start = np.full(len(segments) + 1, -1, np.int64)
    trip_to = np.full(len(segments) + 1, -1, np.int64)
    trip_from = np.full(len(segments) + 1, -1, np.int64)
    trip_end[trips.segment], trip_start[trips.segment] = trips.end_us, trips.start_us
    trip_to[trips.segment], trip_from[trips.segment] = trips.to_row, trips.from_row
    before, after = stops - 1, stops + 1
    arrived = trip_to[before] == first  # index -1 reads the spare last slot: -1
    leaves = trip_from[after] == end - 1
    start_us = np.where(arrived, trip_end[before], t[first])
    end_us = np.where(leaves, trip_start[after], t[end - 1])
    return Stops(
        vehicle_id=segments.vehicle_id[stops],
        segment=stops,
        first_row=first,
        end_row=end,
        start_us=start_us,
        end_us=end_us,
        duration_s=(end_us - start_us) / 1e6,
        lon=lon,
        lat=lat,
        path_m=reduce_ranges(np.add, geo.leg_m, first + 1, end, empty=0.0),
        kind=(
            classify_stops(segments.vehicle_id[stops], lon, lat, known)
            if known is not None
            else np.full(len(stops), STOP_KIND_CODE[StopKind.OTHER], np.uint8)
        ),
    )


def find_gaps(track: Track, trip_params: TripParams, geo: Geometry | None = None) -> Gaps:
    geo = geo if geo is not None else geometry(track)
    t = track.t_us
    dt_us = np.zeros(len(track), np.int64)
    dt_us[1:] = np.diff(t)
    after = np.flatnonzero(continues(track.vehicle_id) & (dt_us > trip_params.max_gap_s * 1e6))
    displacement_m = geo.leg_m[after]
    return Gaps(
        vehicle_id=track.vehicle_id[after],
        after_row=after,
        from_us=t[after - 1],
        to_us=t[after],
        displacement_m=displacement_m,
        relocated=displacement_m >= trip_params.stop_radius_m,
    )
