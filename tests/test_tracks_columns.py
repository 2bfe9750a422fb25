"""Result columns say which rows they number (``spec(index=Rows.…)``); joining vehicle blocks and cutting
one vehicle out derive the offsets from that, so a new index column is declared in one place."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from tracks.columns import ColumnError, Rows, freeze_columns, index_columns, spec, stack, take
from tracks.match import orders_table
from tracks.measure import Trips
from tracks.params import Params
from tracks.pipeline import Context, VehicleResult, run_fleet
from tracks.split import geometry
from tracks.synth import FleetShape, synthetic_fleet

NASTY = FleetShape(jump_chance=0.5, tunnel_chance=0.3, flicker_chance=0.3, drives_per_day=(4, 10))


@dataclass(frozen=True, slots=True, kw_only=True)
class Probe:
    """A throw-away table: one index column of kept rows, one of trips, one plain."""

    kept_row: NDArray[np.int64] = spec(index=Rows.KEPT)
    trip: NDArray[np.int64] = spec(index=Rows.TRIP)
    plain: NDArray[np.int64]

    def __post_init__(self) -> None:
        freeze_columns(self)


def probe(kept_row: list[int], trip: list[int], plain: list[int]) -> Probe:
    return Probe(kept_row=np.array(kept_row), trip=np.array(trip), plain=np.array(plain))


def test_stack_offsets_index_columns_and_leaves_plain_ones() -> None:
    a, b = probe([0, 4], [0, 1], [7, 8]), probe([1, 2], [0, 0], [9, 10])
    joined = stack([a, b], {Rows.KEPT: [0, 5], Rows.TRIP: [0, 2]})
    assert joined.kept_row.tolist() == [0, 4, 6, 7]
    assert joined.trip.tolist() == [0, 1, 2, 2]
    assert joined.plain.tolist() == [7, 8, 9, 10]
    assert index_columns(Probe) == {"kept_row": Rows.KEPT, "trip": Rows.TRIP}


def test_take_rebases_index_columns_and_leaves_plain_ones() -> None:
    whole = probe([0, 4, 6, 7], [0, 1, 2, 2], [7, 8, 9, 10])
    part = take(whole, slice(2, 4), {Rows.KEPT: -5, Rows.TRIP: -2})
    assert (part.kept_row.tolist(), part.trip.tolist(), part.plain.tolist()) == ([1, 2], [0, 0], [9, 10])


def test_an_index_column_without_an_offset_is_refused() -> None:
    a = probe([0], [0], [1])
    with pytest.raises(ColumnError, match=r"Probe\.trip holds trip rows"):
        stack([a, a], {Rows.KEPT: [0, 1]})
    with pytest.raises(ColumnError, match=r"Probe\.trip holds trip rows"):
        take(a, slice(None), {Rows.KEPT: 0})


def test_a_new_index_column_on_trips_is_offset_when_blocks_are_joined() -> None:
    """A field added to a real result table (by subclassing Trips here) needs nothing but its spec."""

    @dataclass(frozen=True, slots=True, kw_only=True)
    class TripsWithProbe(Trips):
        probe_row: NDArray[np.int64] = spec(index=Rows.KEPT)
        probe_plain: NDArray[np.int64]

    fleet = synthetic_fleet(2, seed=5)
    trips = run_fleet(fleet.track, Context(), Params()).trips
    columns: dict[str, Any] = {f.name: getattr(trips, f.name) for f in dataclasses.fields(Trips)}
    one = TripsWithProbe(**columns, probe_row=trips.from_row, probe_plain=trips.from_row)
    joined = stack([one, one], {Rows.KEPT: [0, 1000], Rows.SEGMENT: [0, 50]})
    n = len(trips)
    assert np.array_equal(joined.probe_row[n:], trips.from_row + 1000)
    assert np.array_equal(joined.probe_plain[n:], trips.from_row)
    assert np.array_equal(joined.to_row[n:], trips.to_row + 1000)
    assert np.array_equal(joined.segment[n:], trips.segment + 50)


def _same(a: object, b: object, where: str) -> None:
    if dataclasses.is_dataclass(a):
        for f in dataclasses.fields(a):
            _same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
        return
    x, y = np.asarray(a), np.asarray(b)
    assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), where


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    vehicles=st.integers(1, 6),
    block_rows=st.integers(1, 3_000),
)
def test_joined_blocks_are_the_whole_fleet(seed: int, vehicles: int, block_rows: int) -> None:
    fleet = synthetic_fleet(vehicles, seed=seed, shape=NASTY)
    context = Context(orders=orders_table(fleet.orders), places=fleet.depots)
    whole: VehicleResult = run_fleet(fleet.track, context, Params(), block_rows=10**9)
    blocks = run_fleet(fleet.track, context, Params(), block_rows=block_rows)
    for f in dataclasses.fields(VehicleResult):
        if f.name != "track":
            _same(getattr(whole, f.name), getattr(blocks, f.name), f.name)
    # the legs the rules reuse are the legs of the kept fixes, measured once
    assert np.array_equal(blocks.leg_m, geometry(blocks.kept).leg_m)
