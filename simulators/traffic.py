"""Load mode: every car of a world driving the city at once, the last fix stamped now.

For the ingest benchmark with realistic tracks on real roads: each car drives an endless chain of legs
between random places (a minute or two at each), and its terminal reports every 10 s. Terminals are
faultless here (no jumps, duplicates, reordering or outages, no tunnels), so every fix is valid and sent
once: fixes stored must equal fixes sent. Times are shifted so the newest fix is at ``end_s``. The
truth holds the trips only (no orders, records or alerts).
"""

from __future__ import annotations

import logging
from dataclasses import fields, replace
from datetime import UTC, date, datetime

import numpy as np

from simulators.city import CityParams
from simulators.outings import Outing, OutingKind, Visit
from simulators.places import DESTINATION_KINDS
from simulators.plan import Plan, PlanParams
from simulators.run import BatchPart, SimParams, SimRun, join_batches, run_batch
from simulators.terminal import Deliveries, Fixes, TerminalParams
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
    horizon_s = start_s + span_s + 600.0
    from_s, to_s = start_s + 180.0, start_s + 180.0 + span_s  # every car has left by then
    parts = []
    car_of_outing = np.array([o.vehicle for o in outings], dtype=np.int64)
    n = len(world.fleet.vehicles)
    for b, v0 in enumerate(range(0, n, batch_vehicles)):
        v1 = min(n, v0 + batch_vehicles)
        lo, hi = np.searchsorted(car_of_outing, [v0, v1])
        part = run_batch(
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
        parts.append(_keep_window(part, from_s, to_s))
    run = join_batches(world, params, plan, parts, start_s=from_s, end_s=to_s)
    return _shift(run, end_s)


def _keep_window(part: BatchPart, from_s: float, to_s: float) -> BatchPart:
    """Only the fixes taken in [from_s, to_s], and the messages all of whose fixes are kept."""
    fixes, d = part.fixes, part.deliveries
    keep = (fixes.t_ms >= from_s * 1000) & (fixes.t_ms <= to_s * 1000)
    new_index = np.cumsum(keep) - 1
    dropped = np.concatenate(([0], np.cumsum(~keep[d.rows])))
    ok = dropped[d.row_start + d.row_count] - dropped[d.row_start] == 0
    count = d.row_count[ok]
    start = np.concatenate(([0], np.cumsum(count)[:-1])).astype(np.int64)
    offsets = np.repeat(d.row_start[ok] - start, count)
    rows = new_index[d.rows[np.arange(int(count.sum())) + offsets]]
    messages = Deliveries(
        sent_ms=d.sent_ms[ok],
        vehicle=d.vehicle[ok],
        row_start=start,
        row_count=count,
        batch=d.batch[ok],
        rows=rows,
    )
    kept = Fixes(**{f.name: getattr(fixes, f.name)[keep] for f in fields(Fixes)})
    return replace(part, fixes=kept, deliveries=messages)


def _shift(run: SimRun, end_s: float) -> SimRun:
    """The same run with every time moved so that the newest fix is at ``end_s``."""
    shift_ms = round(end_s * 1000) - int(run.fixes.t_ms.max())
    shift_s = shift_ms / 1000.0
    trips = tuple(replace(t, start_s=t.start_s + shift_s, end_s=t.end_s + shift_s) for t in run.truth.trips)
    log.info(
        "load mode: %d cars, %d fixes in %d messages over %.0f min, newest at %s",
        len(run.world.fleet.vehicles),
        len(run.fixes),
        len(run.deliveries),
        (run.end_s - run.start_s) / 60,
        datetime.fromtimestamp(end_s, UTC).isoformat(timespec="seconds"),
    )
    return replace(
        run,
        fixes=replace(run.fixes, t_ms=run.fixes.t_ms + shift_ms),
        deliveries=replace(run.deliveries, sent_ms=run.deliveries.sent_ms + shift_ms),
        start_s=run.start_s + shift_s,
        end_s=run.end_s + shift_s,
        truth=Truth(trips=trips, alerts=(), orders=(), fuel=(), maintenance=()),
    )
