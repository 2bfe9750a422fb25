"""JT/T 808 terminal alarms that matter to supervisors, from the alarm word stored with each fix.

One alert per episode: the reports of a vehicle with the alarm's bit set, each at most
``AlarmParams.max_gap_s`` after the previous one; the alert is anchored on the episode's first report
(its natural key), its evidence holds the duration, the number of reports, the alarm word, the top
speed, whether the ignition was on, and the positions. Vectorized over the fixes; a loop per episode.
"""

from __future__ import annotations

import numpy as np

from rules.alert import Alert, AlertKind, Anchor, Evidence, Severity, coordinates, figure
from rules.config import RuleConfig
from rules.facts import Facts

S = 1_000_000

# bit of the alarm word (JT/T 808 table 24; gateway.jt808.location.ALARM_BITS names all of them)
ALARM_BITS: dict[AlertKind, int] = {
    AlertKind.ALARM_EMERGENCY: 0,
    AlertKind.ALARM_POWER_CUT: 8,
    AlertKind.ALARM_ANTENNA_CUT: 5,
    AlertKind.ALARM_ILLEGAL_IGNITION: 27,
    AlertKind.ALARM_ILLEGAL_DISPLACEMENT: 28,
    AlertKind.ALARM_COLLISION: 29,
    AlertKind.ALARM_ROLLOVER: 30,
}
SEVERITY: dict[AlertKind, Severity] = {
    AlertKind.ALARM_EMERGENCY: Severity.HIGH,
    AlertKind.ALARM_POWER_CUT: Severity.HIGH,
    AlertKind.ALARM_ANTENNA_CUT: Severity.HIGH,
    AlertKind.ALARM_ILLEGAL_IGNITION: Severity.MEDIUM,
    AlertKind.ALARM_ILLEGAL_DISPLACEMENT: Severity.HIGH,
    AlertKind.ALARM_COLLISION: Severity.HIGH,
    AlertKind.ALARM_ROLLOVER: Severity.HIGH,
}


def alarm_episodes(facts: Facts, config: RuleConfig, kind: AlertKind) -> tuple[Alert, ...]:
    """The episodes of one alarm bit as alerts."""
    fixes = facts.fixes
    word = fixes.extra.get("alarm_word")
    if word is None or len(word) == 0:
        return ()
    word = np.asarray(word, dtype=np.int64)
    rows = np.flatnonzero((word >= 0) & ((word >> ALARM_BITS[kind]) & 1 == 1))
    if len(rows) == 0:
        return ()
    v, t = fixes.vehicle_id[rows], fixes.t_us[rows]
    new = np.ones(len(rows), dtype=np.bool_)
    new[1:] = (v[1:] != v[:-1]) | (np.diff(t) > config.alarm.max_gap_s * S)
    starts = np.flatnonzero(new)
    ends = np.append(starts[1:], len(rows))
    alerts = []
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        episode = rows[a:b]
        speed = fixes.speed_kmh[episode]
        ignition = fixes.ignition[episode]
        measured = (
            figure("duration_s", (t[b - 1] - t[a]) / S, "s", 0),
            figure("reports", b - a, "reports", 0),
            figure("alarm_word", int(word[episode[0]]), "bits", 0),
            figure("max_speed_kmh", float(np.nanmax(speed)) if np.isfinite(speed).any() else 0.0, "km/h"),
            figure("ignition_on_reports", int(np.sum(ignition == 1)), "reports", 0),
        )
        alerts.append(
            Alert(
                kind=kind,
                severity=SEVERITY[kind],
                vehicle_id=int(v[a]),
                start_us=int(t[a]),
                end_us=int(t[b - 1]),
                anchor=Anchor.ALARM,
                anchor_value=int(t[a]),
                evidence=Evidence(
                    thresholds=(figure("max_gap_s", config.alarm.max_gap_s, "s", 0),),
                    measured=measured,
                    segments=(coordinates(fixes.lon[episode], fixes.lat[episode]),),
                ),
            )
        )
    return tuple(alerts)


def alarm_emergency(facts: Facts, config: RuleConfig) -> tuple[Alert, ...]:
    """The emergency button (alarm bit 0), once per episode."""
    return alarm_episodes(facts, config, AlertKind.ALARM_EMERGENCY)


def alarm_power_cut(facts: Facts, config: RuleConfig) -> tuple[Alert, ...]:
    """Main power cut (alarm bit 8): a terminal unplugged, once per episode."""
    return alarm_episodes(facts, config, AlertKind.ALARM_POWER_CUT)


def alarm_antenna_cut(facts: Facts, config: RuleConfig) -> tuple[Alert, ...]:
    """GNSS antenna disconnected (alarm bit 5), once per episode."""
    return alarm_episodes(facts, config, AlertKind.ALARM_ANTENNA_CUT)


def alarm_illegal_ignition(facts: Facts, config: RuleConfig) -> tuple[Alert, ...]:
    """Illegal ignition (alarm bit 27), once per episode."""
    return alarm_episodes(facts, config, AlertKind.ALARM_ILLEGAL_IGNITION)


def alarm_illegal_displacement(facts: Facts, config: RuleConfig) -> tuple[Alert, ...]:
    """Illegal displacement (alarm bit 28): the car moved while it should stand, once per episode."""
    return alarm_episodes(facts, config, AlertKind.ALARM_ILLEGAL_DISPLACEMENT)


def alarm_collision(facts: Facts, config: RuleConfig) -> tuple[Alert, ...]:
    """Collision (alarm bit 29), once per episode."""
    return alarm_episodes(facts, config, AlertKind.ALARM_COLLISION)


def alarm_rollover(facts: Facts, config: RuleConfig) -> tuple[Alert, ...]:
    """Rollover (alarm bit 30), once per episode."""
    return alarm_episodes(facts, config, AlertKind.ALARM_ROLLOVER)
