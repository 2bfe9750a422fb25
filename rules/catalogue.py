"""The catalogue of rules, written once, and ``evaluate``: every rule over one batch, each in isolation.

A rule is a pure function ``(Facts, RuleConfig) -> tuple[Alert, ...]``. Adding a behaviour is one
function and one line in ``RULES``. A rule that raises is logged with its name and the batch, then
retried vehicle by vehicle, so that only the vehicles it fails on lose its alerts; each of those
yields a ``RuleFailure``. The other rules always run. (Deriving the shared facts is engine maths, not a
rule: an error there fails loudly.)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

from rules.alarms import (
    alarm_antenna_cut,
    alarm_collision,
    alarm_emergency,
    alarm_illegal_displacement,
    alarm_illegal_ignition,
    alarm_power_cut,
    alarm_rollover,
)
from rules.alert import Alert, AlertKind, RuleFailure
from rules.config import RuleConfig
from rules.documents import document_expiring, vehicle_unfit
from rules.driving import mileage_padding, overspeed, silent_terminal
from rules.facts import Facts, RuleInputs, derive_facts
from rules.orders import (
    mileage_excess,
    no_order,
    not_returned,
    off_hours,
    order_not_executed,
    outside_window,
    wrong_destination,
)
from rules.records import fuel_card_elsewhere, fuel_consumption, fuel_over_tank, maintenance_elsewhere
from rules.route import detour
from rules.stays import forbidden_place, overnight_away

log = logging.getLogger(__name__)

Check = Callable[[Facts, RuleConfig], tuple[Alert, ...]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    name: str
    kind: AlertKind
    check: Check


def _rule(check: Check, kind: AlertKind) -> Rule:
    return Rule(name=check.__name__, kind=kind, check=check)


RULES: tuple[Rule, ...] = (
    _rule(no_order, AlertKind.NO_ORDER),
    _rule(outside_window, AlertKind.OUTSIDE_WINDOW),
    _rule(off_hours, AlertKind.OFF_HOURS),
    _rule(order_not_executed, AlertKind.ORDER_NOT_EXECUTED),
    _rule(detour, AlertKind.DETOUR),
    _rule(wrong_destination, AlertKind.WRONG_DESTINATION),
    _rule(mileage_excess, AlertKind.MILEAGE_EXCESS),
    _rule(not_returned, AlertKind.NOT_RETURNED),
    _rule(overnight_away, AlertKind.OVERNIGHT_AWAY),
    _rule(forbidden_place, AlertKind.FORBIDDEN_PLACE),
    _rule(overspeed, AlertKind.OVERSPEED),
    _rule(silent_terminal, AlertKind.SILENT_TERMINAL),
    _rule(mileage_padding, AlertKind.MILEAGE_PADDING),
    _rule(fuel_card_elsewhere, AlertKind.FUEL_CARD_ELSEWHERE),
    _rule(fuel_over_tank, AlertKind.FUEL_OVER_TANK),
    _rule(fuel_consumption, AlertKind.FUEL_CONSUMPTION),
    _rule(maintenance_elsewhere, AlertKind.MAINTENANCE_ELSEWHERE),
    _rule(alarm_emergency, AlertKind.ALARM_EMERGENCY),
    _rule(alarm_power_cut, AlertKind.ALARM_POWER_CUT),
    _rule(alarm_antenna_cut, AlertKind.ALARM_ANTENNA_CUT),
    _rule(alarm_illegal_ignition, AlertKind.ALARM_ILLEGAL_IGNITION),
    _rule(alarm_illegal_displacement, AlertKind.ALARM_ILLEGAL_DISPLACEMENT),
    _rule(alarm_collision, AlertKind.ALARM_COLLISION),
    _rule(alarm_rollover, AlertKind.ALARM_ROLLOVER),
    _rule(document_expiring, AlertKind.DOCUMENT_EXPIRING),
    _rule(vehicle_unfit, AlertKind.VEHICLE_UNFIT),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Evaluation:
    alerts: tuple[Alert, ...]  # ordered by (start, vehicle, kind); natural keys unique
    failures: tuple[RuleFailure, ...]


def evaluate(inputs: RuleInputs, config: RuleConfig, rules: tuple[Rule, ...] = RULES) -> Evaluation:
    """Every rule over the inputs; see the module docstring for what happens when one raises."""
    return evaluate_facts(derive_facts(inputs, config), config, rules)


def evaluate_facts(facts: Facts, config: RuleConfig, rules: tuple[Rule, ...] = RULES) -> Evaluation:
    alerts: list[Alert] = []
    failures: list[RuleFailure] = []
    for rule in rules:
        try:
            alerts += rule.check(facts, config)
        except Exception as error:  # isolation: a broken rule must not silence the others
            found, failed = _vehicle_by_vehicle(rule, facts, config, error)
            alerts += found
            failures += failed
    unique: dict[tuple[str, int, str, int], Alert] = {}
    for raised in alerts:
        # every alert names the threshold version it was judged by
        alert = replace(raised, evidence=replace(raised.evidence, version=config.version))
        if alert.key in unique:
            log.warning("rule output repeats the alert key %s; the first one is kept", alert.key)
            continue
        unique[alert.key] = alert
    ordered = sorted(unique.values(), key=lambda a: (a.start_us, a.vehicle_id, a.kind.value, a.anchor_value))
    return Evaluation(alerts=tuple(ordered), failures=tuple(failures))


def _vehicle_by_vehicle(
    rule: Rule, facts: Facts, config: RuleConfig, error: Exception
) -> tuple[list[Alert], list[RuleFailure]]:
    vehicles = facts.vehicle_ids.tolist()
    log.error(
        "rule %s raised on a batch of %d vehicles (%d … %d µs): %s; retrying vehicle by vehicle",
        rule.name,
        len(vehicles),
        facts.start_us,
        facts.end_us,
        _describe(error),
        exc_info=error,
    )
    alerts: list[Alert] = []
    failures: list[RuleFailure] = []
    for vehicle in vehicles:
        try:
            alerts += rule.check(facts.only(vehicle), config)
        except Exception as again:  # isolation, per vehicle
            failures.append(
                RuleFailure(
                    rule=rule.name,
                    error=_describe(again),
                    vehicle_id=vehicle,
                    vehicles=1,
                    window_start_us=facts.start_us,
                    window_end_us=facts.end_us,
                )
            )
    if failures:
        log.error(
            "rule %s failed on %d of %d vehicles (first: vehicle %d, %s); its alerts for them are missing",
            rule.name,
            len(failures),
            len(vehicles),
            failures[0].vehicle_id,
            failures[0].error,
        )
    elif vehicles:
        log.warning("rule %s succeeded vehicle by vehicle after failing on the batch", rule.name)
    else:
        failures.append(
            RuleFailure(
                rule=rule.name,
                error=_describe(error),
                vehicle_id=None,
                vehicles=0,
                window_start_us=facts.start_us,
                window_end_us=facts.end_us,
            )
        )
    return alerts, failures


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"
