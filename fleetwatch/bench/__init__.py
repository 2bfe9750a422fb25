"""Benchmarks, each measured against a baseline run in the same run; --json prints one JSON object last."""

from __future__ import annotations

import argparse


def run_bench(args: argparse.Namespace) -> int:
    if args.which == "ingest":
        from fleetwatch.bench.ingest import bench_ingest

        return bench_ingest(args)
    if args.which == "nearest":
        from fleetwatch.bench.nearest import bench_nearest

        return bench_nearest(args)
    if args.which == "accuracy":
        from fleetwatch.bench.accuracy import bench_accuracy

        return bench_accuracy(args)
    if args.which == "tracks":
        from fleetwatch.bench.tracks import bench_tracks

        return bench_tracks(args)
    if args.which == "live":
        from fleetwatch.bench.live import bench_live

        return bench_live(args)
    if args.which == "import":
        from fleetwatch.bench.importing import bench_import

        return bench_import(args)
    raise SystemExit(f"unknown benchmark {args.which!r}")
