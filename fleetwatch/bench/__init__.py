"""Benchmarks: each measures against a baseline run in the same run; ``--json`` prints one JSON object last."""

from __future__ import annotations

import argparse


def bench_ingest(args: argparse.Namespace) -> int:
    from fleetwatch.bench.ingest import bench_ingest as run

    return run(args)
