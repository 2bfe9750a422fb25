"""Throughput of the track engine on a synthetic fleet (``fleetwatch bench tracks`` can call this).

    .venv/bin/python -m tracks.bench --fixes 5000000 --seed 7

prints one JSON object: fixes, vehicles, trips, seconds per step, and ``engine_fixes_per_s`` — the
fixes per second through clean + split + measure + conform, the issue's figure — besides the rate
through every step.
"""

from __future__ import annotations

import argparse
import math
import time

import orjson

from tracks.match import orders_table
from tracks.params import Params
from tracks.pipeline import STEPS, Context, run_fleet
from tracks.synth import synthetic_fleet

ENGINE_STEPS = ("clean", "split", "measure", "conform")


def engine_throughput(n_fixes: int, seed: int) -> dict[str, float | int]:
    """Run the engine once over a synthetic fleet-day of about ``n_fixes`` fixes, one pass, one core."""
    sample = synthetic_fleet(20, seed)
    vehicles = max(1, math.ceil(n_fixes / (len(sample.track) / 20)))
    fleet = synthetic_fleet(vehicles, seed)
    context = Context(orders=orders_table(fleet.orders), places=fleet.depots)
    run_fleet(sample.track, Context(orders=orders_table(sample.orders)), Params())  # warm-up

    seconds: dict[str, float] = {}
    last = time.perf_counter()

    def lap(step: str) -> None:
        nonlocal last
        now = time.perf_counter()
        seconds[step] = now - last
        last = now

    last = time.perf_counter()
    result = run_fleet(fleet.track, context, Params(), on_step=lap)
    fixes = len(fleet.track)
    engine_s = sum(seconds[s] for s in ENGINE_STEPS)
    report: dict[str, float | int] = {
        "fixes": fixes,
        "vehicles": vehicles,
        "trips": len(result.trips),
        "conformed_trips": len(result.conformance),
        "kept_fixes": len(result.kept),
    }
    report |= {f"{step}_s": round(seconds[step], 4) for step in STEPS}
    report["engine_s"] = round(engine_s, 4)
    report["engine_fixes_per_s"] = round(fixes / engine_s)
    report["all_steps_fixes_per_s"] = round(fixes / sum(seconds.values()))
    return report


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--fixes", type=int, default=5_000_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(orjson.dumps(engine_throughput(args.fixes, args.seed)).decode())


if __name__ == "__main__":
    main()
