"""Rule thresholds per agency as versioned data, and judging each alert by the version in force.

A threshold row (``rule_threshold``) sets one parameter of ``RuleConfig`` for an agency from a day on:
its name is ``<RuleConfig field>.<parameter>`` (``stay.forbidden_min_dwell_s``, ``overspeed.ratio``,
``documents.expiring_lead_days`` …). On local day D an agency's value of a parameter is that of its
row with the greatest ``effective_from`` <= D, else its parent agency's (and so on up the tree), else
the code default. A version of an agency's configuration starts on every such ``effective_from``; it
is named "<agency code>@<effective_from>" after the newest row in force (else "default"), and every
alert's evidence names the version it was judged by.

``evaluate_dated`` judges a batch once per distinct configuration (agency x version, usually one or
very few per batch) and keeps from each run the alerts of that agency's vehicles whose local start day
lies in the version's days.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date

import numpy as np

from rules.alert import Alert, AlertKind, RuleFailure
from rules.calendar import day_number
from rules.catalogue import RULES, Evaluation, Rule, evaluate
from rules.config import RuleConfig
from rules.facts import NO_DAY, RuleInputs


class ThresholdError(ValueError):
    """A threshold name that no rule parameter has, or a value of the wrong kind."""


def threshold_names(config: RuleConfig | None = None) -> dict[str, type]:
    """Every settable threshold name with the type of its value."""
    config = config or RuleConfig()
    names: dict[str, type] = {}
    for group in dataclasses.fields(config):
        params = getattr(config, group.name)
        if not dataclasses.is_dataclass(params) or isinstance(params, type):
            continue
        for param in dataclasses.fields(params):
            value = getattr(params, param.name)
            if isinstance(value, bool | int | float):
                names[f"{group.name}.{param.name}"] = type(value)
    return names


def apply_thresholds(config: RuleConfig, values: Mapping[str, float], version: str) -> RuleConfig:
    """``config`` with ``values`` set (names as in ``threshold_names``) and named ``version``."""
    known = threshold_names(config)
    changes: dict[str, dict[str, object]] = {}
    for name, value in sorted(values.items()):
        kind = known.get(name)
        if kind is None:
            raise ThresholdError(f"unknown threshold {name!r} (known: {', '.join(sorted(known))})")
        if kind is not float and float(value) != int(value):
            raise ThresholdError(f"threshold {name!r} takes a whole number, got {value}")
        group, param = name.split(".", 1)
        changes.setdefault(group, {})[param] = kind(value) if kind is not bool else bool(value)
    groups = {group: replace(getattr(config, group), **params) for group, params in changes.items()}
    return replace(config, version=version, **groups)


@dataclass(frozen=True, slots=True, kw_only=True)
class ThresholdRow:
    agency_id: int
    name: str
    value: float
    effective_from: date


@dataclass(frozen=True, slots=True, kw_only=True)
class Dated:
    """A configuration in force from local day ``from_day`` (days since 1970-01-01) to the next one's."""

    from_day: int
    config: RuleConfig
    # what makes two agencies' configurations the same (their version label, values and working hours):
    # agencies that share it are judged in one run
    signature: tuple[object, ...] = ()


def schedule_of(
    base: RuleConfig,
    rows: Sequence[ThresholdRow],
    lineage: Sequence[int],
    codes: Mapping[int, str],
) -> tuple[Dated, ...]:
    """The versions of one agency's configuration: ``lineage`` is the agency, then its parent, … up
    to the root; ``base`` carries its calendar and working hours. The first version starts at NO_DAY."""
    rank = {agency: i for i, agency in enumerate(lineage)}
    mine = sorted(
        (r for r in rows if r.agency_id in rank), key=lambda r: (r.effective_from, -rank[r.agency_id])
    )
    starts = sorted({r.effective_from for r in mine})
    hours = (base.calendar.hours.start_s, base.calendar.hours.end_s)
    versions = [Dated(from_day=NO_DAY, config=replace(base, version="default"), signature=("default", hours))]
    for start in starts:
        in_force: dict[str, ThresholdRow] = {}
        for r in mine:
            best = in_force.get(r.name)
            nearer = best is None or (rank[r.agency_id], -r.effective_from.toordinal()) < (
                rank[best.agency_id],
                -best.effective_from.toordinal(),
            )
            if r.effective_from <= start and nearer:
                in_force[r.name] = r
        newest = max(in_force.values(), key=lambda r: (r.effective_from, -rank[r.agency_id]))
        label = f"{codes.get(newest.agency_id, str(newest.agency_id))}@{newest.effective_from.isoformat()}"
        values = {name: row.value for name, row in in_force.items()}
        versions.append(
            Dated(
                from_day=day_number(start),
                config=apply_thresholds(base, values, label),
                signature=(label, hours, tuple(sorted(values.items()))),
            )
        )
    return tuple(versions)


@dataclass(frozen=True, slots=True, kw_only=True)
class AgencyConfigs:
    """The configurations of every agency over time, and which agency each vehicle belongs to.
    Vehicles of no agency (or one without a schedule) are judged by ``default``."""

    default: RuleConfig
    schedules: Mapping[int, tuple[Dated, ...]] = field(default_factory=dict)
    vehicle_agency: Mapping[int, int] = field(default_factory=dict)

    def single(self) -> bool:
        return not self.schedules


def evaluate_dated(inputs: RuleInputs, configs: AgencyConfigs, rules: tuple[Rule, ...] = RULES) -> Evaluation:
    """Every rule, each alert judged by its vehicle's agency's version in force on its local start day."""
    if configs.single():
        return evaluate(inputs, configs.default, rules)
    calendar = configs.default.calendar
    first_day = int(calendar.local_day(np.array([inputs.start_us]))[0])
    last_day = int(calendar.local_day(np.array([max(inputs.end_us - 1, inputs.start_us)]))[0])
    # alerts may start before the window: a document's warning period starts its lead days before expiry
    lead = max(
        [configs.default.documents.expiring_lead_days]
        + [d.config.documents.expiring_lead_days for schedule in configs.schedules.values() for d in schedule]
    )
    reach = first_day - 2 - (lead if any(r.kind is AlertKind.DOCUMENT_EXPIRING for r in rules) else 0)
    # one run per distinct configuration and span: config, its agencies (None: the unscheduled), days
    runs: dict[tuple[object, ...], tuple[RuleConfig, set[int] | None, int, int]] = {
        ("default",): (configs.default, None, NO_DAY, 1 << 40)
    }
    scheduled = set(configs.schedules)
    members_of: dict[tuple[object, ...], set[int]] = {}
    for agency, schedule in configs.schedules.items():
        for k, dated in enumerate(schedule):
            until = schedule[k + 1].from_day if k + 1 < len(schedule) else 1 << 40
            if until <= reach or dated.from_day > last_day:
                continue
            key = (*dated.signature, dated.from_day, until)
            members = members_of.setdefault(key, set())
            members.add(agency)
            runs[key] = (dated.config, members, dated.from_day, until)
    alerts: list[Alert] = []
    failures: list[RuleFailure] = []
    for config, agencies, lo, hi in runs.values():
        found = evaluate(inputs, config, rules)
        failures += found.failures
        for alert in found.alerts:
            agency = configs.vehicle_agency.get(alert.vehicle_id, -1)
            if agencies is None:
                if agency in scheduled:
                    continue
            elif agency not in agencies:
                continue
            day = int(calendar.local_day(np.array([alert.start_us]))[0])
            if lo <= day < hi:
                alerts.append(alert)
    alerts.sort(key=lambda a: (a.start_us, a.vehicle_id, a.kind.value, a.anchor_value))
    return Evaluation(alerts=tuple(alerts), failures=tuple(failures))
