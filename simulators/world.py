"""A simulated world: the city, its places, the fleet, the router and the working calendar."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from rules.calendar import WorkCalendar, china_calendar
from simulators.city import City, CityParams, build_city
from simulators.fleet import Depot, Fleet, Vehicle, build_fleet
from simulators.places import Place, PlaceKind, build_places
from simulators.routing import Router

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class World:
    seed: int
    city: City
    places: tuple[Place, ...]
    fleet: Fleet
    router: Router
    calendar: WorkCalendar
    by_kind: Mapping[PlaceKind, tuple[Place, ...]] = field(default_factory=dict)

    def place(self, place_id: int) -> Place:
        return self.places[place_id - 1]

    def depot_of(self, vehicle: Vehicle) -> Depot:
        return self.fleet.depots[vehicle.depot_id - 1]


def build_world(
    vehicles: int,
    seed: int,
    *,
    city: CityParams | None = None,
    calendar: WorkCalendar | None = None,
    terminal_prefix: str | None = None,
) -> World:
    """Everything but the days: the same (vehicles, seed, city) give the same world.

    Terminal ids are 12 digits like a JT/T 808 terminal's phone number: ``01`` + two digits of the seed
    + the vehicle number, unless ``terminal_prefix`` is given.
    """
    rng = np.random.default_rng([seed, 1])
    built_city = build_city(city or CityParams())
    places = build_places(built_city, vehicles, rng)
    prefix = terminal_prefix if terminal_prefix is not None else f"01{seed % 100:02d}"
    fleet = build_fleet(built_city, places, vehicles, rng, terminal_prefix=prefix)
    by_kind = {kind: tuple(p for p in places if p.kind is kind) for kind in PlaceKind}
    log.info(
        "world: %d agencies, %d pools, %d depots, %d vehicles, %d places (%d forbidden)",
        len(fleet.agencies),
        len(fleet.pools),
        len(fleet.depots),
        len(fleet.vehicles),
        len(places),
        sum(p.forbidden for p in places),
    )
    return World(
        seed=seed,
        city=built_city,
        places=tuple(places),
        fleet=fleet,
        router=Router(built_city.network),
        calendar=calendar or china_calendar(),
        by_kind=by_kind,
    )
