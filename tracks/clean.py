"""Mark the fixes the engine must not use, with a reason each; raw fixes are never dropped.

Traccar drops filtered positions; we keep every fix and return a reason code per fix (0 = kept), so a
settlement dispute can still see what the terminal sent and why the engine set it aside. The checks,
in order (``CleanParams`` has the thresholds and why):

- invalid positions (not finite, out of range, (0, 0));
- duplicate fix times of a vehicle (the first in (time, lon, lat) order stays);
- jumps: a fix far from both neighbours that no car could reach and leave (impossible speed), or a
  sharp out-and-back the terminal's own speeds and ACC events do not explain; three passes, each
  re-judging the neighbours of what the last removed;
- parked drift: fixes of a halt (standing by ACC off or Doppler speed) that wander within
  ``drift_radius_m`` of the fix before; the first and last fix of a halt, ACC changes and one fix per
  ``drift_keep_s`` stay, so the split still sees the halt and its length.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray

from tracks.columns import freeze_columns
from tracks.geo import Metric, metric, pair_m
from tracks.params import CleanParams
from tracks.track import IGNITION_OFF, IGNITION_UNKNOWN, Track, look_back

KEPT = 0
_JUMP_PASSES = 3  # a jump hides its neighbour's jump; three passes uncover runs of up to three


class Reason(StrEnum):
    INVALID_POSITION = "invalid_position"  # not finite, outside ±180/±90, or (0, 0)
    DUPLICATE_TIME = "duplicate_time"  # same vehicle and fix time as the previous fix
    IMPOSSIBLE_SPEED = "impossible_speed"  # unreachable from both neighbours at any car's speed
    JUMP = "jump"  # a sharp out-and-back the terminal's own speed cannot explain
    DRIFT = "drift"  # a standing car's position wandering


CODE: dict[Reason, int] = {reason: code for code, reason in enumerate(Reason, start=1)}
REASON_OF_CODE: dict[int, Reason] = {code: reason for reason, code in CODE.items()}


@dataclass(frozen=True, slots=True, kw_only=True)
class Cleaned:
    """Per fix of the cleaned track: 0 if the engine uses it, else the ``CODE`` of its reason."""

    reason: NDArray[np.uint8]

    def __post_init__(self) -> None:
        freeze_columns(self)

    @property
    def kept_rows(self) -> NDArray[np.intp]:
        return np.flatnonzero(self.reason == KEPT)

    def counts(self) -> dict[Reason, int]:
        per_code = np.bincount(self.reason, minlength=len(CODE) + 1)
        return {reason: int(per_code[code]) for reason, code in CODE.items()}


def clean_track(track: Track, params: CleanParams, m: Metric | None = None) -> Cleaned:
    """Reason per fix; the first failing check wins, in the order of ``Reason``.

    ``m``: the track's ``metric``, when the caller has it already.
    """
    reason = np.zeros(len(track), np.uint8)
    lon, lat = track.lon, track.lat
    with np.errstate(invalid="ignore"):
        invalid = ~((np.abs(lon) <= 180.0) & (np.abs(lat) <= 90.0))  # NaN fails too
        invalid |= (np.abs(lon) < 1e-7) & (np.abs(lat) < 1e-7)
    reason[invalid] = CODE[Reason.INVALID_POSITION]
    rows = np.flatnonzero(~invalid)

    vehicle, t_us = track.vehicle_id[rows], track.t_us[rows]
    duplicate = np.zeros(len(rows), np.bool_)
    duplicate[1:] = (vehicle[1:] == vehicle[:-1]) & (t_us[1:] == t_us[:-1])
    reason[rows[duplicate]] = CODE[Reason.DUPLICATE_TIME]
    rows = rows[~duplicate]
    if len(rows) < 2:
        return Cleaned(reason=reason)

    m = m if m is not None else metric(lon, lat)
    steps = np.zeros(len(track), np.float64)  # per row: distance from the row before it
    steps[1:] = pair_m(m, slice(0, -1), slice(1, None))
    rows = _mark_jumps(track, m, steps=steps, rows=rows, reason=reason, params=params)

    drift = _drift(track, m, steps=steps, rows=rows, params=params)
    reason[rows[drift]] = CODE[Reason.DRIFT]
    return Cleaned(reason=reason)


def _drift(
    track: Track, m: Metric, *, steps: NDArray[np.float64], rows: NDArray[np.intp], params: CleanParams
) -> NDArray[np.bool_]:
    """Per row of ``rows``: a standing car's position wandering (see ``CleanParams``)."""
    stationary = track.ignition[rows] == IGNITION_OFF
    with np.errstate(invalid="ignore"):
        stationary |= track.speed_kmh[rows] < params.drift_speed_kmh
    vehicle, t_us = track.vehicle_id[rows], track.t_us[rows]
    same = vehicle[1:] == vehicle[:-1]
    # ... and still by its positions: within twice the drift radius of where it was drift_keep_s ago
    # (a terminal whose speed is stuck at 0 while the car drives has no halt)
    evidence = np.flatnonzero(stationary)
    earlier = rows[look_back(vehicle, t_us, params.drift_keep_s, evidence)]
    stationary[evidence] = pair_m(m, earlier, rows[evidence]) < 2 * params.drift_radius_m
    # a halt: consecutive standing fixes; its first and last fix stay, one per drift_keep_s, and any
    # fix where the ACC state changes
    inside = np.zeros(len(rows), np.bool_)
    inside[1:] = stationary[1:] & stationary[:-1] & same
    not_last = np.zeros(len(rows), np.bool_)
    not_last[:-1] = inside[1:]
    halt_start = np.maximum.accumulate(np.where(~inside, np.arange(len(rows)), 0))
    bucket = (t_us - t_us[halt_start]) // max(round(params.drift_keep_s * 1e6), 1)
    same_bucket = np.zeros(len(rows), np.bool_)
    same_bucket[1:] = bucket[1:] == bucket[:-1]
    ignition = track.ignition[rows]
    switched = np.zeros(len(rows), np.bool_)  # an ACC change is an event, never drift
    switched[1:] = ignition[1:] != ignition[:-1]
    drift = inside & not_last & same_bucket & ~switched
    candidates = np.flatnonzero(drift)
    drift[candidates] = _between(m, steps, rows, candidates - 1) < params.drift_radius_m
    return drift


def _between(
    m: Metric, steps: NDArray[np.float64], rows: NDArray[np.intp], k: NDArray[np.intp]
) -> NDArray[np.float64]:
    """Distance from ``rows[k]`` to ``rows[k + 1]``, reusing ``steps`` where the rows are adjacent."""
    a, b = rows[k], rows[k + 1]
    distance = steps[b]
    apart = np.flatnonzero(b != a + 1)
    distance[apart] = pair_m(m, a[apart], b[apart])
    return distance


def _mark_jumps(
    track: Track,
    m: Metric,
    *,
    steps: NDArray[np.float64],
    rows: NDArray[np.intp],
    reason: NDArray[np.uint8],
    params: CleanParams,
) -> NDArray[np.intp]:
    """Mark jumps among ``rows`` (in place in ``reason``); return the rows that survive.

    The first pass judges every fix far from a neighbour; later passes re-judge only the fixes whose
    neighbour was just removed.
    """
    n = len(rows)
    t_us, vehicle = track.t_us[rows], track.vehicle_id[rows]
    legs = _between(m, steps, rows, np.arange(n - 1))
    dt_us = np.diff(t_us)
    near = (vehicle[1:] == vehicle[:-1]) & (dt_us <= params.max_jump_window_s * 1e6)
    far = near & (legs >= params.min_jump_m)
    false = np.zeros(1, np.bool_)
    near_in, near_out = np.concatenate((false, near)), np.concatenate((near, false))
    far_in, far_out = np.concatenate((false, far)), np.concatenate((far, false))
    alive = np.arange(n, dtype=np.intp)  # positions in ``rows`` still in the sequence
    centre = np.flatnonzero((far_in & (far_out | ~near_out)) | (far_out & ~near_in))
    for _ in range(_JUMP_PASSES):
        if len(centre) == 0:
            break
        here = alive[centre]
        p = alive[np.maximum(centre - 1, 0)]
        q = alive[np.minimum(centre + 1, len(alive) - 1)]
        has_prev = (centre > 0) & (vehicle[p] == vehicle[here])
        has_next = (centre < len(alive) - 1) & (vehicle[q] == vehicle[here])
        impossible, jump = _judge(
            in_m=pair_m(m, rows[p], rows[here]),
            out_m=pair_m(m, rows[here], rows[q]),
            bypass_m=pair_m(m, rows[p], rows[q]),
            dt_in_us=t_us[here] - t_us[p],
            dt_out_us=t_us[q] - t_us[here],
            has_prev=has_prev,
            has_next=has_next,
            speed_kmh=track.speed_kmh[rows[here]],
            speed_in_kmh=track.speed_kmh[rows[p]],
            speed_out_kmh=track.speed_kmh[rows[q]],
            acc_event=_acc_event(track.ignition, rows[p], rows[here], rows[q]),
            params=params,
        )
        reason[rows[here[impossible]]] = CODE[Reason.IMPOSSIBLE_SPEED]
        reason[rows[here[jump]]] = CODE[Reason.JUMP]
        removed = centre[impossible | jump]
        if len(removed) == 0:
            break
        keep = np.ones(len(alive), np.bool_)
        keep[removed] = False
        alive = alive[keep]
        # in the shortened sequence, the survivors either side of each removed fix are re-judged
        before = np.cumsum(keep)[removed] - 1
        centre = np.unique(np.concatenate((before, before + 1)))
        centre = centre[(centre >= 0) & (centre < len(alive))]
    return rows[alive]


def _acc_event(
    ignition: NDArray[np.int8], prev: NDArray[np.intp], here: NDArray[np.intp], nxt: NDArray[np.intp]
) -> NDArray[np.bool_]:
    """The fix reports an ACC change against a neighbour: an event where the car really was."""
    a, b, c = ignition[prev], ignition[here], ignition[nxt]
    known = b != IGNITION_UNKNOWN
    return np.asarray(
        known & (((a != IGNITION_UNKNOWN) & (a != b)) | ((c != IGNITION_UNKNOWN) & (c != b))), dtype=np.bool_
    )


def _judge(
    *,
    in_m: NDArray[np.float64],
    out_m: NDArray[np.float64],
    bypass_m: NDArray[np.float64],
    dt_in_us: NDArray[np.int64],
    dt_out_us: NDArray[np.int64],
    has_prev: NDArray[np.bool_],
    has_next: NDArray[np.bool_],
    speed_kmh: NDArray[np.float64],
    speed_in_kmh: NDArray[np.float64],
    speed_out_kmh: NDArray[np.float64],
    acc_event: NDArray[np.bool_],
    params: CleanParams,
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """(impossible speed, jump) per fix, from the legs to its neighbours and between them."""
    window_us = params.max_jump_window_s * 1e6
    has_prev = has_prev & (dt_in_us <= window_us)
    has_next = has_next & (dt_out_us <= window_us)
    dt_in_s = np.maximum(dt_in_us / 1e6, 1e-3)
    dt_out_s = np.maximum(dt_out_us / 1e6, 1e-3)
    far_in = has_prev & (in_m >= params.min_jump_m)
    far_out = has_next & (out_m >= params.min_jump_m)
    limit_ms = params.max_implied_speed_kmh / 3.6
    fast_in = far_in & (in_m > limit_ms * dt_in_s)
    fast_out = far_out & (out_m > limit_ms * dt_out_s)
    both = has_prev & has_next
    impossible = np.where(both, fast_in & fast_out, (fast_in & ~has_next) | (fast_out & ~has_prev))

    sharp = in_m + out_m >= 2 * bypass_m  # apex angle below ~60°: out and straight back
    # the terminal's own speeds (Doppler, independent of the position fix) could have carried the car
    # along each leg: then it is a real out-and-back (a stop at the end of a cul-de-sac), not a jump
    slack = params.jump_speed_slack / 3.6 / 2
    with np.errstate(invalid="ignore"):
        explained = ((speed_in_kmh + speed_kmh) * slack * dt_in_s >= in_m) & (
            (speed_kmh + speed_out_kmh) * slack * dt_out_s >= out_m
        )
    jump = both & far_in & far_out & sharp & ~explained & ~impossible & ~acc_event
    return impossible, jump
