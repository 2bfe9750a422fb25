"""Throughput of the track engine on a synthetic fleet (``fleetwatch bench tracks`` can call this).

    .venv/bin/python -m tracks.bench --fixes 5000000 --seed 7

prints one JSON object: fixes, vehicles, trips, CPU seconds per step, and ``engine_fixes_per_s`` —
the fixes per second through clean + split + measure + conform, the issue's figure — besides the
rate through every step.
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

ENGINE_STEPS = ("clean", "split", "measure", "conform", "join")  # the four, and joining blocks


def engine_throughput(n_fixes: int, seed: int) -> dict[str, float | int]:
    """Run the engine over a synthetic fleet-day of about ``n_fixes`` fixes, in one call on one core.

    The run is repeated once: ``engine_fixes_per_s`` is the second, steady-state run (a worker's
    every batch after its first), ``cold_engine_fixes_per_s`` the first. Times are CPU seconds of
    this process (the machine is shared; wall-clock seconds are reported too).
    """
    sample = synthetic_fleet(20, seed)
    vehicles = max(1, math.ceil(n_fixes / (len(sample.track) / 20)))
    fleet = synthetic_fleet(vehicles, seed)
    context = Context(orders=orders_table(fleet.orders), places=fleet.depots)
    fixes = len(fleet.track)
    report: dict[str, float | int] = {"fixes": fixes, "vehicles": vehicles}
    for run in ("cold", "warm"):
        seconds = dict.fromkeys(STEPS, 0.0)
        last = time.process_time()

        def lap(step: str, seconds: dict[str, float] = seconds) -> None:
            nonlocal last
            now = time.process_time()
            seconds[step] += now - last
            last = now

        wall = time.perf_counter()
        last = time.process_time()
        result = run_fleet(fleet.track, context, Params(), on_step=lap)
        wall = time.perf_counter() - wall
        engine_s = sum(seconds[s] for s in ENGINE_STEPS)
        if run == "cold":
            report["cold_engine_fixes_per_s"] = round(fixes / engine_s)
            continue
        report |= {
            "trips": len(result.trips),
            "conformed_trips": len(result.conformance),
            "kept_fixes": len(result.kept),
        }
        report |= {f"{step}_cpu_s": round(seconds[step], 3) for step in STEPS}
        report["engine_cpu_s"] = round(engine_s, 3)
        report["all_steps_wall_s"] = round(wall, 3)
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
