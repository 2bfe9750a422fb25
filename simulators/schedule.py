"""Put the driven legs on the clock: each car's day as ignition-on spans (legs) and parked spans.

Outings of a car run in planned order; an outing leaves at its planned time (earlier if the driver
left early), never before the car is back from the previous one. A leg's ignition is on a little
before it moves and a little after it stops. Between legs the car is parked, ignition off.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from simulators.drive import Legs, locate
from simulators.outings import Outing

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]

MIN_TURNAROUND_S = 600.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeline:
    """Legs (one per outing visit, in the order of ``Legs``) and parked spans, times in epoch s."""

    leg_vehicle: Ints
    leg_outing: Ints  # index into the outings given
    leg_visit: Ints  # index of the visit this leg drives to
    depart_s: Floats  # starts moving
    arrive_s: Floats  # stops at the visit
    on_s: Floats  # ignition on
    off_s: Floats  # ignition off
    outing_start_s: Floats  # per outing: first departure
    outing_end_s: Floats  # per outing: last arrival
    outing_compliant_start_s: Floats  # the departure the order approved (before any early start)
    park_vehicle: Ints
    park_start_s: Floats
    park_end_s: Floats
    park_place_id: Ints
    park_lon: Floats
    park_lat: Floats


def schedule(
    outings: Sequence[Outing],
    duration_s: Floats,
    *,
    vehicles: Ints,
    home: tuple[Ints, Floats, Floats],  # per vehicle in ``vehicles``: depot place id, lon, lat
    place_lonlat: tuple[Floats, Floats],  # per place id (index = id - 1)
    start_s: float,
    end_s: float,
    rng: np.random.Generator,
) -> Timeline:
    """Times for every leg in order; outings must be sorted by (vehicle, planned departure)."""
    n_legs = len(duration_s)
    leg_vehicle = np.zeros(n_legs, dtype=np.int64)
    leg_outing = np.zeros(n_legs, dtype=np.int64)
    leg_visit = np.zeros(n_legs, dtype=np.int64)
    depart = np.zeros(n_legs)
    idle_on = rng.uniform(30.0, 120.0, n_legs)
    idle_off = rng.uniform(10.0, 60.0, n_legs)
    o_start, o_end, o_compliant = (np.zeros(len(outings)) for _ in range(3))
    k = 0
    last_vehicle, free_at = -1, -np.inf
    for j, outing in enumerate(outings):
        if outing.vehicle != last_vehicle:
            last_vehicle, free_at = outing.vehicle, -np.inf
        compliant = max(outing.depart_s, free_at + MIN_TURNAROUND_S + idle_on[k])
        t = max(compliant - outing.early_s, free_at + MIN_TURNAROUND_S + idle_on[k])
        o_compliant[j], o_start[j] = compliant, t
        for i, visit in enumerate(outing.visits):
            leg_vehicle[k], leg_outing[k], leg_visit[k], depart[k] = outing.vehicle, j, i, t
            arrive = t + duration_s[k]
            if i + 1 < len(outing.visits):
                t = arrive + max(visit.dwell_s, idle_off[k] + idle_on[k + 1] + 60.0)
                if visit.leave_at_s is not None:
                    t = max(t, visit.leave_at_s)
            k += 1
        o_end[j] = arrive
        free_at = arrive + idle_off[k - 1]
    if k != n_legs:
        raise ValueError(f"outings have {k} legs but {n_legs} durations were given")
    arrive_s = depart + duration_s
    on_s, off_s = depart - idle_on, arrive_s + idle_off

    # parked spans: before each leg (since the previous leg, or the start) and after each car's last leg
    place_lon, place_lat = place_lonlat
    first_of_car = np.ones(n_legs, dtype=np.bool_)
    first_of_car[1:] = leg_vehicle[1:] != leg_vehicle[:-1]
    arrived_place = np.array(
        [outings[int(o)].visits[int(v)].place_id for o, v in zip(leg_outing, leg_visit, strict=True)],
        dtype=np.int64,
    )
    home_place, _, _ = home
    car_index = {int(v): i for i, v in enumerate(vehicles)}
    before_place = np.empty(n_legs, dtype=np.int64)
    before_place[1:] = arrived_place[:-1]
    if n_legs:
        before_place[first_of_car] = [home_place[car_index[int(v)]] for v in leg_vehicle[first_of_car]]
    before_start = np.empty(n_legs)
    before_start[1:] = off_s[:-1]
    before_start[first_of_car] = start_s
    last_of_car = np.ones(n_legs, dtype=np.bool_)
    last_of_car[:-1] = leg_vehicle[1:] != leg_vehicle[:-1]
    idle = np.setdiff1d(vehicles, leg_vehicle)
    idle_home = np.array([home_place[car_index[int(v)]] for v in idle], dtype=np.int64)
    park_vehicle = np.concatenate((leg_vehicle, leg_vehicle[last_of_car], idle))
    park_start = np.concatenate((before_start, off_s[last_of_car], np.full(len(idle), start_s)))
    park_end = np.concatenate((on_s, np.maximum(off_s[last_of_car], end_s), np.full(len(idle), end_s)))
    park_place = np.concatenate((before_place, arrived_place[last_of_car], idle_home))
    order = np.lexsort((park_start, park_vehicle))
    keep = order[park_end[order] > park_start[order]]
    return Timeline(
        leg_vehicle=leg_vehicle,
        leg_outing=leg_outing,
        leg_visit=leg_visit,
        depart_s=depart,
        arrive_s=arrive_s,
        on_s=on_s,
        off_s=off_s,
        outing_start_s=o_start,
        outing_end_s=o_end,
        outing_compliant_start_s=o_compliant,
        park_vehicle=park_vehicle[keep],
        park_start_s=park_start[keep],
        park_end_s=park_end[keep],
        park_place_id=park_place[keep],
        park_lon=place_lon[park_place[keep] - 1],
        park_lat=place_lat[park_place[keep] - 1],
    )


def true_position(
    timeline: Timeline, legs: Legs, vehicle: Ints, t_s: Floats
) -> tuple[Floats, Floats, NDArray[np.bool_]]:
    """Where each car really is at each time (lon, lat) and whether it is on a leg then."""
    tl = timeline
    q = vehicle * 1e10 + t_s
    on = np.searchsorted(tl.leg_vehicle * 1e10 + tl.on_s, q, side="right") - 1
    k = np.maximum(on, 0)
    driving = (
        (on >= 0) & (tl.leg_vehicle[k] == vehicle) & (t_s <= tl.off_s[k])
        if len(tl.on_s)
        else np.zeros(len(t_s), dtype=np.bool_)
    )
    p = np.maximum(np.searchsorted(tl.park_vehicle * 1e10 + tl.park_start_s, q, side="right") - 1, 0)
    lon, lat = tl.park_lon[p].copy(), tl.park_lat[p].copy()
    if driving.any():
        at = locate(legs, k[driving], t_s[driving] - tl.depart_s[k[driving]])
        lon[driving], lat[driving] = at.lon, at.lat
    return lon, lat, driving
