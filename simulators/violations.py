"""Violations: the kinds, how often they are injected, and the thresholds that define them.

Injection changes the plan (an extra outing, a detour junction, a longer stay, a leg fault); whether a
violation really happened is then decided from the generated truth with ``ViolationParams`` (see
simulators.truth), so a label is never claimed that the geometry and times do not bear out.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np
import shapely

from rules.alert import AlertKind
from simulators.outings import LegFault, Outing, Visit
from simulators.places import DESTINATION_KINDS, FORBIDDEN_KINDS
from simulators.world import World
from tracks.geo import haversine_m

LABELLED: frozenset[AlertKind] = frozenset(
    {
        AlertKind.NO_ORDER,  # 无单出车: a trip that executes no order
        AlertKind.OUTSIDE_WINDOW,  # a trip before/after its order's approved window
        AlertKind.OFF_HOURS,  # driving outside working hours or on a rest day (calendar as data)
        AlertKind.DETOUR,  # off the approved route
        AlertKind.WRONG_DESTINATION,  # the passengers' stop is not the approved destination
        AlertKind.OVERNIGHT_AWAY,  # not at the depot at night
        AlertKind.FORBIDDEN_PLACE,  # parked inside a forbidden polygon
        AlertKind.OVERSPEED,  # sustained speed over the road's limit
        AlertKind.SILENT_TERMINAL,  # no reports at all while the car moved
        AlertKind.MILEAGE_PADDING,  # odometer advanced more than the car drove
        AlertKind.FUEL_CARD_ELSEWHERE,  # 异常加油: card used where the car was not
        AlertKind.FUEL_OVER_TANK,  # 异常加油: more litres than the tank holds
        AlertKind.MAINTENANCE_ELSEWHERE,  # 异常维保: repaired while the car was elsewhere
        AlertKind.DOCUMENT_EXPIRING,  # insurance or annual inspection expires within the lead
        AlertKind.VEHICLE_UNFIT,  # a trip while the insurance or annual inspection had lapsed
    }
)
"""The alert kinds (``rules.alert.AlertKind``, the one list) the simulator injects and labels."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ViolationParams:
    """The definitions the expected alerts follow (what the rules should implement)."""

    window_grace_s: float = 900.0  # a trip may start/end this much outside its order's window
    corridor_m: float = 200.0  # off-route when farther than this from the approved route …
    min_off_route_m: float = 500.0  # … along at least this much of the path
    destination_radius_m: float = 300.0  # the passengers' stop is "at" the destination within this
    night_check_local_s: int = 3 * 3600  # where the car is at 03:00 local decides "overnight away"
    forbidden_min_dwell_s: float = 300.0  # parked inside a forbidden polygon at least this long
    overspeed_ratio: float = 1.2  # speed above limit × ratio …
    overspeed_min_s: float = 60.0  # … for at least this long
    silent_min_s: float = 120.0  # no report for at least this long …
    silent_min_m: float = 500.0  # … while the car drove at least this far
    padding_ratio: float = 0.15  # odometer − true distance above this share of the distance …
    padding_min_m: float = 500.0  # … and above this many metres
    record_radius_m: float = 500.0  # a fuel/maintenance record is "where the car was" within this
    document_lead_days: int = 30  # a document is due for renewal this many days before it expires


@dataclass(frozen=True, slots=True, kw_only=True)
class ViolationRates:
    """Injection probabilities: per order (route/time faults) or per vehicle and day (extra outings)."""

    no_order: float = 0.01  # per vehicle and working day: a private outing
    off_hours: float = 0.005  # per vehicle and day: an evening or rest-day order
    overnight_away: float = 0.004  # per vehicle and working day
    outside_window: float = 0.03  # per order
    detour: float = 0.03
    wrong_destination: float = 0.015
    forbidden_place: float = 0.01
    overspeed: float = 0.03
    silent_terminal: float = 0.01
    mileage_padding: float = 0.02
    fuel_card_elsewhere: float = 0.002  # per vehicle and day
    fuel_over_tank: float = 0.03  # per refuelling
    maintenance_elsewhere: float = 0.1  # per maintenance record
    document_expiring: float = 0.02  # per vehicle: a document expires within the run (+ the lead)
    vehicle_unfit: float = 0.01  # per vehicle: a document lapsed before the run

    def scaled(self, factor: float) -> ViolationRates:
        return replace(self, **{f.name: min(1.0, getattr(self, f.name) * factor) for f in fields(self)})


CLEAN = ViolationRates().scaled(0.0)


def _with_fault(outing: Outing, leg: int, kind: str, fault: LegFault) -> Outing:
    faults = list(outing.leg_faults())
    faults[leg] = fault
    return replace(outing, faults=tuple(faults), intents=(*outing.intents, kind))


def inject_order_faults(
    outing: Outing, world: World, rates: ViolationRates, rng: np.random.Generator
) -> Outing:
    """Route and time violations for one order outing, each drawn independently."""
    main = outing.main_leg
    if rng.random() < rates.detour:
        outing = _detour(outing, main, world, rng)
    if rng.random() < rates.wrong_destination:
        outing = _wrong_destination(outing, main, world, rng)
    if rng.random() < rates.forbidden_place:
        outing = _forbidden_stop(outing, main, world, rng)
    if rng.random() < rates.outside_window:
        if rng.random() < 0.5 or main + 1 >= len(outing.visits):  # no stay to lengthen at the end
            outing = replace(
                outing, early_s=float(rng.uniform(3_600, 7_200)), intents=(*outing.intents, "early")
            )
        else:
            late = float(rng.uniform(3_600, 9_000))
            visits = list(outing.visits)
            visits[main] = replace(visits[main], dwell_s=visits[main].dwell_s + late)
            outing = replace(outing, visits=tuple(visits), late_s=late, intents=(*outing.intents, "late"))
    # at most one leg fault on the main leg, so each stays visible in the fixes
    draw = rng.random(3)
    if draw[0] < rates.overspeed:
        outing = _with_fault(outing, main, AlertKind.OVERSPEED, LegFault(overspeed=True))
    elif draw[1] < rates.silent_terminal:
        outing = _with_fault(outing, main, AlertKind.SILENT_TERMINAL, LegFault(silent=True))
    elif draw[2] < rates.mileage_padding:
        padded = LegFault(odometer_factor=float(rng.uniform(1.3, 1.6)))
        outing = _with_fault(outing, main, AlertKind.MILEAGE_PADDING, padded)
    return outing


def _detour(outing: Outing, leg: int, world: World, rng: np.random.Generator) -> Outing:
    """Drive the main leg through a junction 1–3 km off its approved route."""
    start = outing.start if leg == 0 else outing.visits[leg - 1]
    target = outing.visits[leg]
    route = world.router.route(start.node, target.node)
    net = world.city.network
    x, y = net.plane.to_xy(route.lon, route.lat)
    line = shapely.LineString(np.column_stack((x, y)))
    nx, ny = net.plane.to_xy(net.node_lon, net.node_lat)
    mid = line.interpolate(0.5, normalized=True)
    near = np.hypot(nx - mid.x, ny - mid.y)
    candidates = np.flatnonzero(net.node_signal & (near > 1_200.0) & (near < 3_000.0))
    if len(candidates) == 0:
        return outing
    candidates = rng.permutation(candidates)[:40]
    off = shapely.distance(shapely.points(nx[candidates], ny[candidates]), line)
    good = candidates[off > 1_000.0]
    if len(good) == 0:
        return outing
    visits = list(outing.visits)
    visits[leg] = replace(target, via_node=int(good[0]))
    return replace(outing, visits=tuple(visits), intents=(*outing.intents, AlertKind.DETOUR))


def _wrong_destination(outing: Outing, leg: int, world: World, rng: np.random.Generator) -> Outing:
    approved = world.place(outing.visits[leg].place_id)
    others = [p for kind in DESTINATION_KINDS for p in world.by_kind.get(kind, ())]
    gap_m = haversine_m([p.lon for p in others], [p.lat for p in others], approved.lon, approved.lat)
    far = np.flatnonzero(gap_m > 2_000.0)
    if len(far) == 0:
        return outing
    wrong = others[int(far[rng.integers(len(far))])]
    visits = list(outing.visits)
    visits[leg] = replace(visits[leg], place_id=wrong.place_id, node=wrong.node, via_node=None)
    previous = outing.start if leg == 0 else outing.visits[leg - 1]
    if wrong.node == previous.node or (leg + 1 < len(visits) and visits[leg + 1].node == wrong.node):
        return outing  # the car would not move
    return replace(outing, visits=tuple(visits), intents=(*outing.intents, AlertKind.WRONG_DESTINATION))


def _forbidden_stop(outing: Outing, leg: int, world: World, rng: np.random.Generator) -> Outing:
    """After the main visit, stop 30–120 min at a forbidden place before going on."""
    forbidden = [p for kind in FORBIDDEN_KINDS for p in world.by_kind.get(kind, ())]
    if not forbidden or leg + 1 >= len(outing.visits):
        return outing
    place = forbidden[int(rng.integers(len(forbidden)))]
    stop = Visit(place_id=place.place_id, node=place.node, dwell_s=float(rng.uniform(1_800, 7_200)))
    visits = list(outing.visits)
    visits.insert(leg + 1, stop)
    faults = list(outing.leg_faults())
    faults.insert(leg + 1, LegFault())
    return replace(
        outing,
        visits=tuple(visits),
        faults=tuple(faults),
        intents=(*outing.intents, AlertKind.FORBIDDEN_PLACE),
    )
