"""Fuel-card and maintenance records checked against where the car was (异常加油, 异常维保)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from rules.alert import Alert, AlertKind, Anchor, Evidence, Severity, coordinates, figure
from rules.config import RuleConfig
from rules.facts import Facts, FuelRecords, first_at_or_after, last_at_or_before, rows_around
from tracks.geo import plane_m
from tracks.ranges import expand

S = 1_000_000


def fuel_position(facts: Facts, config: RuleConfig) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Per fuel record: the distance (m) from the station to the nearer of the car's fixes just before
    and just after the record's time (each only if at most ``max_fix_age_s`` away), NaN where neither
    is; and that fix's row (-1)."""
    fuel, fixes = facts.fuel, facts.fixes
    before, after = rows_around(fixes, fuel.vehicle_id, fuel.t_us)
    age_us = config.records.max_fix_age_s * S
    d = np.full(len(fuel), np.inf)
    row = np.full(len(fuel), -1, np.int64)
    for side in (before, after):
        r = np.maximum(side, 0)
        fresh = (side >= 0) & (np.abs(np.append(fixes.t_us, 0)[side] - fuel.t_us) <= age_us)
        gap = np.where(
            fresh,
            plane_m(np.append(fixes.lon, 0.0)[r], np.append(fixes.lat, 0.0)[r], fuel.lon, fuel.lat),
            np.inf,
        )
        closer = gap < d
        d, row = np.where(closer, gap, d), np.where(closer, side, row)
    return np.where(np.isfinite(d), d, np.nan), row


def _elsewhere(
    facts: Facts, config: RuleConfig
) -> tuple[NDArray[np.bool_], NDArray[np.float64], NDArray[np.int64]]:
    d, row = fuel_position(facts, config)
    with np.errstate(invalid="ignore"):
        return np.asarray(d > config.records.radius_m, dtype=np.bool_), d, row


def _tank(facts: Facts, config: RuleConfig) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per fuel record: the vehicle's tank (L) and norm (L/100 km), NaN for an unknown vehicle."""
    index = config.vehicles.index(facts.fuel.vehicle_id)
    known = index >= 0
    tank = np.where(known, np.append(config.vehicles.tank_l, np.nan)[index], np.nan)
    norm = np.where(known, np.append(config.vehicles.fuel_norm_l_per_100km, np.nan)[index], np.nan)
    return tank, norm


def _over_tank(facts: Facts, config: RuleConfig) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
    tank, _ = _tank(facts, config)
    with np.errstate(invalid="ignore"):
        return np.asarray(facts.fuel.litres > tank * (1 + config.records.tank_tolerance), np.bool_), tank


def _fuel_alert(
    fuel: FuelRecords, i: int, kind: AlertKind, evidence: Evidence, severity: Severity = Severity.HIGH
) -> Alert:
    return Alert(
        kind=kind,
        severity=severity,
        vehicle_id=int(fuel.vehicle_id[i]),
        start_us=int(fuel.t_us[i]),
        end_us=int(fuel.t_us[i]),
        anchor=Anchor.FUEL_RECORD,
        anchor_value=int(fuel.record_id[i]),
        place_id=int(fuel.place_id[i]) if fuel.place_id[i] >= 0 else None,
        fuel_record_id=int(fuel.record_id[i]),
        evidence=evidence,
    )


def fuel_card_elsewhere(facts: Facts, config: RuleConfig) -> tuple[Alert, ...]:
    """The card was used at a station farther than ``radius_m`` from where the car's GPS put it."""
    fuel, fixes = facts.fuel, facts.fixes
    far, d, row = _elsewhere(facts, config)
    return tuple(
        _fuel_alert(
            fuel,
            i,
            AlertKind.FUEL_CARD_ELSEWHERE,
            Evidence(
                thresholds=(figure("radius_m", config.records.radius_m, "m"),),
                measured=(
                    figure("car_to_station_m", d[i], "m"),
                    figure("fix_age_s", abs(int(fixes.t_us[row[i]]) - int(fuel.t_us[i])) / S, "s"),
                    figure("litres", fuel.litres[i], "L", 2),
                ),
                segments=(coordinates([fixes.lon[row[i]], fuel.lon[i]], [fixes.lat[row[i]], fuel.lat[i]]),),
            ),
        )
        for i in np.flatnonzero(far).tolist()
    )


def fuel_over_tank(facts: Facts, config: RuleConfig) -> tuple[Alert, ...]:
    """More litres than the vehicle's tank holds (beyond ``tank_tolerance``)."""
    fuel = facts.fuel
    over, tank = _over_tank(facts, config)
    return tuple(
        _fuel_alert(
            fuel,
            i,
            AlertKind.FUEL_OVER_TANK,
            Evidence(
                thresholds=(
                    figure("tank_l", tank[i], "L", 2),
                    figure("tank_tolerance", config.records.tank_tolerance, "", 3),
                ),
                measured=(figure("litres", fuel.litres[i], "L", 2),),
                segments=(coordinates([fuel.lon[i]], [fuel.lat[i]]),),
            ),
        )
        for i in np.flatnonzero(over).tolist()
    )


def fuel_consumption(facts: Facts, config: RuleConfig) -> tuple[Alert, ...]:
    """Litres of a fill per 100 km driven (GNSS trips) since the vehicle's previous fill, far above its
    norm. Fills flagged as elsewhere or over the tank are left out of the chain (they are alerts of
    their own, and their litres say nothing about consumption)."""
    fuel, trips, params = facts.fuel, facts.trips, config.records
    far, _, _ = _elsewhere(facts, config)
    over, _ = _over_tank(facts, config)
    _, norm = _tank(facts, config)
    good = np.flatnonzero(~far & ~over & ~np.isnan(norm) & (fuel.t_us >= facts.start_us))
    good = good[np.lexsort((fuel.t_us[good], fuel.vehicle_id[good]))]
    if len(good) < 2:
        return ()
    prev, cur = good[:-1], good[1:]
    pair = fuel.vehicle_id[prev] == fuel.vehicle_id[cur]
    prev, cur = prev[pair], cur[pair]
    # km driven between the fills: the trips that ended in between (cumulative per vehicle)
    total = np.concatenate(([0.0], np.cumsum(trips.distance_m)))
    ended_before_prev = last_at_or_before(
        trips.vehicle_id, trips.end_us, fuel.vehicle_id[prev], fuel.t_us[prev]
    )
    ended_before_cur = last_at_or_before(trips.vehicle_id, trips.end_us, fuel.vehicle_id[cur], fuel.t_us[cur])
    first = np.searchsorted(trips.vehicle_id, fuel.vehicle_id[cur])
    a = np.where(ended_before_prev >= 0, ended_before_prev + 1, first)
    b = np.where(ended_before_cur >= 0, ended_before_cur + 1, first)
    km = np.maximum(total[b] - total[a], 0.0) / 1000.0
    with np.errstate(invalid="ignore", divide="ignore"):
        per_100km = fuel.litres[cur] / km * 100.0
    hit = (km >= params.consumption_min_km) & (per_100km > norm[cur] * params.consumption_ratio)
    return tuple(
        _fuel_alert(
            fuel,
            int(cur[j]),
            AlertKind.FUEL_CONSUMPTION,
            Evidence(
                thresholds=(
                    figure("norm_l_per_100km", norm[cur[j]], "L/100km", 2),
                    figure("consumption_ratio", params.consumption_ratio, "", 3),
                ),
                measured=(
                    figure("l_per_100km", per_100km[j], "L/100km", 2),
                    figure("km_since_previous_fill", km[j], "km"),
                    figure("litres", fuel.litres[cur[j]], "L", 2),
                    figure("previous_fuel_record_id", fuel.record_id[prev[j]], "", 0),
                ),
                segments=(coordinates([fuel.lon[cur[j]]], [fuel.lat[cur[j]]]),),
            ),
            Severity.MEDIUM,
        )
        for j in np.flatnonzero(hit).tolist()
    )


def maintenance_elsewhere(facts: Facts, config: RuleConfig) -> tuple[Alert, ...]:
    """A repair recorded at a shop while none of the car's fixes during it, or within ``max_fix_age_s``
    either side, came within ``radius_m`` of the shop (no fixes then: not judged)."""
    records, fixes = facts.maintenance, facts.fixes
    if len(records) == 0:
        return ()
    age_us = int(config.records.max_fix_age_s * S)
    lo = first_at_or_after(fixes.vehicle_id, fixes.t_us, records.vehicle_id, records.start_us - age_us)
    hi = last_at_or_before(fixes.vehicle_id, fixes.t_us, records.vehicle_id, records.end_us + age_us)
    count = np.where((lo >= 0) & (hi >= lo), hi - lo + 1, 0)
    rows = expand(lo, count)
    owner = np.repeat(np.arange(len(records)), count)
    d = plane_m(fixes.lon[rows], fixes.lat[rows], records.lon[owner], records.lat[owner])
    nearest = np.full(len(records), np.inf)
    np.minimum.at(nearest, owner, d)
    hit = np.flatnonzero(np.isfinite(nearest) & (nearest > config.records.radius_m))
    alerts = []
    for i in hit.tolist():
        mine = np.flatnonzero(owner == i)
        closest = int(rows[mine[np.argmin(d[mine])]])
        alerts.append(
            Alert(
                kind=AlertKind.MAINTENANCE_ELSEWHERE,
                severity=Severity.HIGH,
                vehicle_id=int(records.vehicle_id[i]),
                start_us=int(records.start_us[i]),
                end_us=int(records.end_us[i]),
                anchor=Anchor.MAINTENANCE_RECORD,
                anchor_value=int(records.record_id[i]),
                place_id=int(records.place_id[i]) if records.place_id[i] >= 0 else None,
                maintenance_record_id=int(records.record_id[i]),
                evidence=Evidence(
                    thresholds=(figure("radius_m", config.records.radius_m, "m"),),
                    measured=(figure("nearest_m", nearest[i], "m"), figure("fixes", len(mine), "", 0)),
                    segments=(
                        coordinates(
                            [fixes.lon[closest], records.lon[i]], [fixes.lat[closest], records.lat[i]]
                        ),
                    ),
                ),
            )
        )
    return tuple(alerts)
