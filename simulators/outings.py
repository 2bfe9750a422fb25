"""What a car is planned to do: outings from a start place through visits, each leg a true trip.

An outing (出车) leaves a place (usually the depot), drives a leg to each visit in turn, parks there for
the visit's dwell, and ends at its last visit (usually the depot again). ``planned`` is what the order
approved; ``visits`` is what the driver does, which differs only when a violation was injected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from simulators.routing import Route, Router


class OutingKind(StrEnum):
    ORDER = "order"  # executes a dispatch order
    MAINTENANCE = "maintenance"  # to the repair shop under a maintenance order
    PRIVATE = "private"  # no order at all
    OVERNIGHT = "overnight"  # taken home for the night, no order


@dataclass(frozen=True, slots=True, kw_only=True)
class Visit:
    place_id: int
    node: int
    dwell_s: float = 0.0  # parked here before the next leg (ignored at the last visit)
    leave_at_s: float | None = None  # leave no earlier than this epoch second (e.g. next morning)
    via_node: int | None = None  # drive through this junction on the way here (a detour)


@dataclass(frozen=True, slots=True, kw_only=True)
class LegFault:
    """Faults injected into one leg; the truth says whether they became violations."""

    overspeed: bool = False
    silent: bool = False
    odometer_factor: float = 1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Outing:
    outing_id: int
    vehicle: int  # index into fleet.vehicles
    kind: OutingKind
    order_id: int | None
    depart_s: float  # planned departure (epoch s) if the driver complies
    start: Visit
    visits: tuple[Visit, ...]
    planned: tuple[Visit, ...]  # as approved; == visits unless a violation changed the route
    main_leg: int = 0  # the leg to the order's destination (index into visits)
    early_s: float = 0.0  # left this long before the compliant time
    late_s: float = 0.0  # stayed this much longer than approved (added to the main visit's dwell)
    faults: tuple[LegFault, ...] = ()
    intents: tuple[str, ...] = field(default=())  # violation kinds injected, for logs

    def leg_faults(self) -> tuple[LegFault, ...]:
        return self.faults if self.faults else tuple(LegFault() for _ in self.visits)


def leg_routes(router: Router, start: Visit, visits: tuple[Visit, ...]) -> list[Route]:
    """The route of each leg: previous visit → (detour junction →) this visit."""
    routes = []
    here = start.node
    for visit in visits:
        stops = [here, visit.node] if visit.via_node is None else [here, visit.via_node, visit.node]
        routes.append(router.via(stops))
        here = visit.node
    return routes


def estimate_s(router: Router, start: Visit, visits: tuple[Visit, ...]) -> float:
    """A generous planning estimate of an outing's duration (drive at 70 % of free flow, dwell included)."""
    total, here = 0.0, start.node
    for visit in visits:
        total += router.travel_time_s(here, visit.node) / 0.7 + 120.0
        here = visit.node
    return total + sum(v.dwell_s for v in visits[:-1])


def merge_same_node(visits: list[Visit], start_node: int) -> tuple[Visit, ...]:
    """Drop a visit on the junction the car is already at (its dwell is added to the stay there)."""
    merged: list[Visit] = []
    here = start_node
    for visit in visits:
        if visit.node == here and visit.via_node is None:
            if merged:
                last = merged[-1]
                merged[-1] = Visit(
                    place_id=last.place_id,
                    node=last.node,
                    dwell_s=last.dwell_s + visit.dwell_s,
                    leave_at_s=visit.leave_at_s or last.leave_at_s,
                    via_node=last.via_node,
                )
            continue
        merged.append(visit)
        here = visit.node
    return tuple(merged)
