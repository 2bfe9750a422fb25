"""``fleetwatch bench tracks`` on a tiny fleet: every figure is there, and the engine and movingpandas
find comparable trips on the sample (the throughput comparison is like for like). No timing asserted."""

from __future__ import annotations

import uuid

from fleetwatch.bench.tracks import measure_tracks
from store.db import with_dbname


def test_bench_tracks_reports_comparable_work(base_url: str) -> None:
    url = with_dbname(base_url, f"fleetwatch_bt_{uuid.uuid4().hex[:12]}")

    report = measure_tracks(url, fixes=50_000, seed=3, sample_vehicles=4, keep_database=False)

    for key in (
        "fixes",
        "engine_fixes_per_s",
        "movingpandas_fixes_per_s",
        "ratio",
        "recompute_fixes_per_s",
        "read_ceiling_fixes_per_s",
        "recompute_ratio",
    ):
        assert report[key] > 0, key
    assert report["fixes"] >= 50_000
    assert report["db_fixes"] == report["fixes"]
    assert report["sample_vehicles"] == 4
    engine, theirs = report["sample_engine_trips"], report["sample_movingpandas_trips"]
    assert engine >= 8
    assert 0.5 <= theirs / engine <= 2.0
    assert 0.8 <= report["sample_movingpandas_km"] / report["sample_engine_km"] <= 1.25
    # the recompute from the database finds the trips the engine found in memory
    assert report["recompute_trips"] == report["engine_trips"] == report["stored"]["trips"]
