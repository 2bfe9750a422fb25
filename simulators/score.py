"""How well the rules find the simulator's injected violations: recall and precision per alert kind.

In-process: a ``SimRun``'s fixes go through the track engine (``tracks.run_fleet`` with the run's
orders and depots) and the rules (``simulators.rule_inputs``); what they raise is compared with the run's
expected alerts (``simulators.truth``).

Matching: a raised alert and an expected alert match when they are of the same kind and vehicle and
their time spans overlap once widened by ``tolerance_s`` (default 60 s: the engine's trip edges lie
within seconds of the true departure and arrival; the figures are the same with 0 s on the seeded
week, and a wider tolerance would let an alert match an unrelated one nearby). Recall of a kind is the
share of its expected alerts matched by at least one raised alert; precision the share of its raised
alerts that match at least one expected alert. Overall figures pool every kind the simulator labels.

Kinds the simulator does not label (order never executed, not back at the depot, mileage above the
approved route, fuel consumption) have no recall or precision; their count is reported, and how many
of them coincide (same vehicle, overlapping time) with an expected alert of a kind that explains them
(``explained``: a detour makes an order's mileage exceed its route).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
from numpy.typing import NDArray

from rules.alert import Alert, AlertKind
from rules.catalogue import RULES, Rule
from simulators.rule_inputs import alerts_of, vehicle_ids
from simulators.run import SimParams, SimRun, simulate
from simulators.truth import ExpectedAlert
from simulators.violations import CLEAN, LABELLED
from simulators.world import build_world

S = 1_000_000
EXPLAINED_BY: dict[AlertKind, tuple[str, ...]] = {
    AlertKind.MILEAGE_EXCESS: ("detour", "wrong_destination", "forbidden_place"),
    AlertKind.NOT_RETURNED: ("overnight_away", "outside_window", "wrong_destination"),
    AlertKind.ORDER_NOT_EXECUTED: (),
    AlertKind.FUEL_CONSUMPTION: ("fuel_card_elsewhere", "fuel_over_tank", "silent_terminal"),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Spans:
    """Alerts as columns for matching: kind, vehicle, span (µs)."""

    kind: NDArray[np.str_]
    vehicle_id: NDArray[np.int64]
    start_us: NDArray[np.int64]
    end_us: NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.vehicle_id)


def raised_spans(alerts: tuple[Alert, ...]) -> Spans:
    return Spans(
        kind=np.array([a.kind.value for a in alerts], dtype=np.str_),
        vehicle_id=np.array([a.vehicle_id for a in alerts], dtype=np.int64),
        start_us=np.array([a.start_us for a in alerts], dtype=np.int64),
        end_us=np.array([a.end_us for a in alerts], dtype=np.int64),
    )


def expected_spans(run: SimRun) -> Spans:
    ids = vehicle_ids(run.world)
    alerts: tuple[ExpectedAlert, ...] = run.truth.alerts
    return Spans(
        kind=np.array([a.kind.value for a in alerts], dtype=np.str_),
        vehicle_id=np.array([ids[a.vehicle] for a in alerts], dtype=np.int64),
        start_us=np.array([round(a.start_s * S) for a in alerts], dtype=np.int64),
        end_us=np.array([round(a.end_s * S) for a in alerts], dtype=np.int64),
    )


def match(
    expected: Spans, raised: Spans, tolerance_s: float, explains: dict[str, tuple[str, ...]] | None = None
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """(per expected alert: matched by a raised one, per raised alert: matches an expected one).

    With ``explains`` (raised kind → expected kinds), kinds are compared through it instead of equality.
    """
    hit_e, hit_r = np.zeros(len(expected), np.bool_), np.zeros(len(raised), np.bool_)
    tol = int(tolerance_s * S)
    for i in range(len(raised)):  # alerts number in the hundreds: a pass per raised alert is cheap
        kinds = explains.get(str(raised.kind[i]), ()) if explains is not None else (str(raised.kind[i]),)
        same = (
            np.isin(expected.kind, kinds)
            & (expected.vehicle_id == raised.vehicle_id[i])
            & (expected.start_us - tol <= raised.end_us[i])
            & (expected.end_us + tol >= raised.start_us[i])
        )
        if same.any():
            hit_r[i] = True
            hit_e |= same
    return hit_e, hit_r


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


def score_alerts(run: SimRun, alerts: tuple[Alert, ...], *, tolerance_s: float = 60.0) -> dict[str, object]:
    """Recall and precision of ``alerts`` against the run's expected alerts (see the module docstring)."""
    return score_spans(run, raised_spans(alerts), tolerance_s=tolerance_s)


def score_spans(run: SimRun, raised: Spans, *, tolerance_s: float = 60.0) -> dict[str, object]:
    """``score_alerts`` for alerts given as spans (e.g. read back from the database; vehicle ids as the
    world numbers them)."""
    expected = expected_spans(run)
    hit_e, hit_r = match(expected, raised, tolerance_s)
    per_kind: dict[str, dict[str, object]] = {}
    for kind in AlertKind:
        k = kind.value
        e, r = expected.kind == k, raised.kind == k
        entry: dict[str, object] = {"expected": int(e.sum()), "raised": int(r.sum())}
        if k in LABELLED:
            entry |= {
                "recall": _ratio(int(hit_e[e].sum()), int(e.sum())),
                "precision": _ratio(int(hit_r[r].sum()), int(r.sum())),
            }
        else:
            explains = {k: EXPLAINED_BY.get(kind, ())}
            _, explained = match(expected, raised, tolerance_s, explains)
            entry |= {
                "recall": None,
                "precision": None,
                "labelled": False,
                "explained": int(explained[r].sum()),
            }
        per_kind[k] = entry
    labelled_e = np.isin(expected.kind, sorted(k.value for k in LABELLED))
    labelled_r = np.isin(raised.kind, sorted(k.value for k in LABELLED))
    return {
        "alert_recall": _ratio(int(hit_e[labelled_e].sum()), int(labelled_e.sum())),
        "alert_precision": _ratio(int(hit_r[labelled_r].sum()), int(labelled_r.sum())),
        "alerts_expected": int(labelled_e.sum()),
        "alerts_raised": len(raised),
        "tolerance_s": tolerance_s,
        "per_kind": per_kind,
    }


def score_run(
    run: SimRun, *, tolerance_s: float = 60.0, rules: tuple[Rule, ...] = RULES
) -> dict[str, object]:
    """fixes → engine → rules on ``run``, scored against its truth; also ``rule_failures``."""
    found = alerts_of(run, rules=rules)
    scored = score_alerts(run, found.evaluation.alerts, tolerance_s=tolerance_s)
    scored["rule_failures"] = len(found.evaluation.failures)
    return scored


def clean_run(vehicles: int = 200, days: int = 7, seed: int = 7, start: date | None = None) -> SimRun:
    """A fleet-week with no violation injected (``SimParams(rates=CLEAN)``)."""
    params = (
        SimParams(days=days, rates=CLEAN) if start is None else SimParams(start=start, days=days, rates=CLEAN)
    )
    return simulate(build_world(vehicles, seed), params)


def clean_week_alerts(run: SimRun | None = None, *, rules: tuple[Rule, ...] = RULES) -> dict[str, int]:
    """Alerts raised per kind on a clean run (default: 200 vehicles, 7 days, seed 7); ``total`` sums them."""
    found = alerts_of(run or clean_run(), rules=rules)
    counts: dict[str, int] = {}
    for alert in found.evaluation.alerts:
        counts[alert.kind.value] = counts.get(alert.kind.value, 0) + 1
    return {"total": sum(counts.values()), **dict(sorted(counts.items()))}
