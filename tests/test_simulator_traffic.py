"""Load mode: every car drives at once, every fix is valid and sent once, the newest is stamped now."""

from __future__ import annotations

import time

import numpy as np

from simulators.output import messages
from simulators.traffic import simulate_traffic, traffic_world


def test_load_mode_streams_every_car_with_faultless_fixes() -> None:
    now = time.time()
    run = simulate_traffic(traffic_world(25, 3), minutes=3, end_s=now)
    fixes, d = run.fixes, run.deliveries
    assert int(fixes.t_ms.max()) == round(now * 1000)
    assert int(fixes.t_ms.min()) >= round(now * 1000) - 3 * 60_000
    assert fixes.valid.all() and not fixes.jump.any()
    assert np.array_equal(np.bincount(d.rows, minlength=len(fixes)), np.ones(len(fixes), dtype=np.int64))
    assert not d.batch.any()
    per_car = np.bincount(fixes.vehicle, minlength=25)
    assert per_car.min() >= 10
    assert (fixes.trip >= 0).mean() > 0.8
    keys = fixes.vehicle * 10**13 + fixes.t_ms
    assert len(np.unique(keys)) == len(keys)
    sent = list(messages(run))
    assert len(sent) == len(d) and all(topic.startswith("fleet/") for _, topic, _ in sent)
    assert [ms for ms, _, _ in sent] == sorted(ms for ms, _, _ in sent)
