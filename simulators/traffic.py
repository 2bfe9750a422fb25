"""Load mode: every car of a world driving the city at once, the last fix stamped now.

For the ingest benchmark with realistic tracks on real roads: each car drives an endless chain of legs
between random places (a minute or two at each), and its terminal reports every 10 s. Terminals are
faultless here (no jumps, duplicates, reordering or outages, no tunnels), so every fix is valid and sent
once: fixes stored must equal fixes sent. Times are shifted so the newest fix is at ``end_s``. The
truth holds the trips only (no orders, records or alerts).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import date

import numpy as np

from simulators.city import CityParams
from simulators.outings import Outing, OutingKind, Visit
from simulators.places import DESTINATION_KINDS
from simulators.plan import Plan, PlanParams
from simulators.run import SimParams, SimRun, join_batches, run_batch
from simulators.terminal import TerminalParams
from simulators.truth import Truth
from simulators.violations import CLEAN
from simulators.world import World, build_world

log = logging.getLogger(__name__)

FIRST_DAY = date(2026, 12, 1)  # any day: load mode reads no calendar
FAULTLESS = TerminalParams(
    jump_probability=0.0, duplicate_probability=0.0, reorder_probability=0.0, outage_probability=0.0
)


def traffic_world(vehicles: int, seed: int) -> World:
    """A world for load mode: the usual city without tunnels (no invalid fixes)."""
    return build_world(vehicles, seed, city=CityParams(tunnels=0, blind_areas=0))


def simulate_traffic(world: World, *, minutes: float, end_s: float, batch_vehicles: int = 250) -> SimRun:
    """``minutes`` of every car driving, fixes every 10 s, ending at ``end_s`` (epoch s)."""
    rng = np.random.default_rng([world.seed, 7])
    places = [p for kind in DESTINATION_KINDS for p in world.by_kind.get(kind, ())]
    span_s = minutes * 60.0
    start_s = 0.0  # simulated on its own clock, then shifted to end at end_s
    legs = int(span_s / 480.0) + 2  # legs take 5–20 min: enough to stay busy through the window
    outings: list[Outing] = []
    for v, car in enumerate(world.fleet.vehicles):
        depot = world.depot_of(car)
        here = depot.node
        visits: list[Visit] = []
        for place in rng.choice(len(places), size=legs * 2):
            target = places[int(place)]
            if target.node != here and len(visits) < legs:
                visits.append(
                    Visit(place_id=target.place_id, node=target.node, dwell_s=float(rng.uniform(60, 120)))
                )
                here = target.node
        start = Visit(place_id=depot.place_id, node=depot.node)
        outings.append(
            Outing(
                outing_id=v + 1,
                vehicle=v,
                kind=OutingKind.PRIVATE,
                order_id=None,
                depart_s=start_s + float(rng.uniform(0, 60)),
                start=start,
                visits=tuple(visits),
                planned=tuple(visits),
            )
        )
    plan = Plan(
        params=PlanParams(start=FIRST_DAY, days=1, rates=CLEAN),
        requests=(),
        order_vehicle={},
        outings=tuple(outings),
        fuel_start_l=np.array([c.tank_l for c in world.fleet.vehicles]),
    )
    params = SimParams(
        start=FIRST_DAY, days=1, rates=CLEAN, terminal=FAULTLESS, batch_vehicles=batch_vehicles
    )
    horizon_s = start_s + span_s + 3_600.0
    parts = []
    car_of_outing = np.array([o.vehicle for o in outings], dtype=np.int64)
    n = len(world.fleet.vehicles)
    for b, v0 in enumerate(range(0, n, batch_vehicles)):
        v1 = min(n, v0 + batch_vehicles)
        lo, hi = np.searchsorted(car_of_outing, [v0, v1])
        parts.append(
            run_batch(
                world,
                plan,
                plan.outings[lo:hi],
                vehicles=np.arange(v0, v1),
                batch=b,
                params=params,
                start_s=start_s,
                end_s=horizon_s,
                with_truth=False,
            )
        )
    run = join_batches(world, params, plan, parts, start_s=start_s, end_s=horizon_s)
    return _window(run, start_s + 60.0 + 120.0, start_s + 60.0 + 120.0 + span_s, end_s)


def _window(run: SimRun, from_s: float, to_s: float, end_s: float) -> SimRun:
    """Keep the fixes taken in [from_s, to_s], each sent once, and shift them to end at ``end_s``."""
    fixes, d = run.fixes, run.deliveries
    keep_fix = (fixes.t_ms >= from_s * 1000) & (fixes.t_ms <= to_s * 1000)
    new_index = np.cumsum(keep_fix) - 1
    message_ok = np.array(
        [bool(keep_fix[d.rows[s : s + c]].all()) for s, c in zip(d.row_start, d.row_count, strict=True)],
        dtype=np.bool_,
    )
    shift_ms = round(end_s * 1000) - int(fixes.t_ms[keep_fix].max())
    kept = {f: getattr(fixes, f)[keep_fix] for f in fixes.__dataclass_fields__}
    kept["t_ms"] = kept["t_ms"] + shift_ms
    counts = d.row_count[message_ok]
    rows = (
        np.concatenate(
            [new_index[d.rows[s : s + c]] for s, c in zip(d.row_start[message_ok], counts, strict=True)]
        )
        if counts.size
        else d.rows[:0]
    )
    deliveries = replace(
        d,
        sent_ms=d.sent_ms[message_ok] + shift_ms,
        vehicle=d.vehicle[message_ok],
        row_start=np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64),
        row_count=counts,
        batch=d.batch[message_ok],
        rows=rows,
    )
    shift_s = shift_ms / 1000.0
    trips = tuple(replace(t, start_s=t.start_s + shift_s, end_s=t.end_s + shift_s) for t in run.truth.trips)
    log.info(
        "load mode: %d cars, %d fixes in %d messages over %.0f min, newest at %s",
        len(run.world.fleet.vehicles),
        int(keep_fix.sum()),
        len(deliveries.sent_ms),
        (to_s - from_s) / 60,
        end_s,
    )
    return replace(
        run,
        fixes=type(fixes)(**kept),
        deliveries=deliveries,
        start_s=from_s + shift_s,
        end_s=to_s + shift_s,
        truth=Truth(trips=trips, alerts=(), orders=(), fuel=(), maintenance=()),
    )
