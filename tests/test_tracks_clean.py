"""The cleaner marks, never drops: invalid positions, duplicate times, jumps, parked drift."""

from __future__ import annotations

import numpy as np

from tracks.clean import CODE, KEPT, Reason, clean_track
from tracks.params import CleanParams
from tracks.synth import Row, local_track, synthetic_fleet
from tracks.track import empty_track, make_track

P = CleanParams()


def reasons(*rows: Row) -> list[str]:
    names = {code: reason.value for reason, code in CODE.items()} | {KEPT: "kept"}
    return [names[int(code)] for code in clean_track(local_track(*rows), P).reason]


def test_empty_and_single_fix() -> None:
    assert len(clean_track(empty_track(), P).reason) == 0
    assert reasons(("08:00", 0, 0)) == ["kept"]


def test_invalid_positions_are_marked() -> None:
    track = make_track(
        vehicle_id=[1, 1, 1, 1, 1],
        t_us=[0, 1, 2, 3, 4],
        lon=[118.8, np.nan, 0.0, 200.0, 118.8],
        lat=[32.0, 32.0, 0.0, 32.0, 32.0],
    )
    assert [int(r) for r in clean_track(track, P).reason] == [KEPT] + [CODE[Reason.INVALID_POSITION]] * 3 + [
        KEPT
    ]


def test_duplicate_timestamps_keep_one_fix_whatever_the_arrival_order() -> None:
    rows: list[Row] = [("08:00", 0, 0), ("08:01", 10, 0), ("08:01", 12, 0), ("08:02", 20, 0)]
    first = clean_track(local_track(*rows), P).reason
    second = clean_track(local_track(*reversed(rows)), P).reason
    assert list(first) == list(second)
    assert sorted(int(r) for r in first) == [KEPT, KEPT, KEPT, CODE[Reason.DUPLICATE_TIME]]


def test_gps_jump_while_parked_is_marked() -> None:
    rows: list[Row] = [(f"08:{k:02d}", 0, 0) for k in range(10)]
    rows[5] = ("08:05", 500, 200)
    assert reasons(*rows)[5] == "jump"
    assert reasons(*rows).count("kept") == 9


def test_gps_jump_while_driving_is_marked() -> None:
    rows: list[Row] = [(f"08:00:{10 * k:02d}", 139.0 * k, 0, 50.0, 1, None) for k in range(6)]
    rows[3] = ("08:00:30", 139.0 * 3, 500, 50.0, 1, None)  # 500 m sideways for one fix
    assert reasons(*rows) == ["kept", "kept", "kept", "jump", "kept", "kept"]


def test_teleport_is_an_impossible_speed() -> None:
    rows: list[Row] = [
        ("08:00:00", 0, 0),
        ("08:00:10", 100, 0),
        ("08:00:20", 5_000, 3_000),
        ("08:00:30", 300, 0),
    ]
    assert reasons(*rows)[2] == "impossible_speed"


def test_u_turn_the_reported_speed_explains_is_kept() -> None:
    # 30 s reporting at 40 km/h: out 333 m, back 333 m; the terminal's speed says it drove that far
    rows: list[Row] = [
        ("08:00:00", 0, 0, 40.0, 1, None),
        ("08:00:30", 333, 0, 40.0, 1, None),
        ("08:01:00", 5, 0, 40.0, 1, None),
        ("08:01:30", -330, 0, 40.0, 1, None),
    ]
    assert reasons(*rows) == ["kept"] * 4


def test_parked_drift_is_marked_but_the_halt_stays_visible() -> None:
    rng = np.random.default_rng(1)
    rows: list[Row] = [
        (f"08:{k // 6:02d}:{10 * (k % 6):02d}", float(x), float(y), 0.0, 0, None)
        for k, (x, y) in enumerate(rng.uniform(-20, 20, (60, 2)))
    ]
    marked = reasons(*rows)
    assert marked[0] == "kept" and marked[-1] == "kept"  # the arrival and the departure fix
    assert marked.count("drift") > 40
    assert marked.count("kept") >= 10  # one a minute: the split still sees the car standing


def test_moving_fixes_are_not_drift() -> None:
    rows: list[Row] = [(f"08:00:{10 * k:02d}", 139.0 * k, 0, 50.0, 1, None) for k in range(6)]
    assert set(reasons(*rows)) == {"kept"}


def test_every_fix_gets_a_reason() -> None:
    track = synthetic_fleet(5, seed=9).track
    cleaned = clean_track(track, P)
    assert len(cleaned.reason) == len(track)
    counts = cleaned.counts()
    assert sum(counts.values()) + len(cleaned.kept_rows) == len(track)
    assert counts[Reason.JUMP] + counts[Reason.IMPOSSIBLE_SPEED] > 0
