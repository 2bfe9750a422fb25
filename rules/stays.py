"""Where cars stay: away from the depot at night, inside a forbidden zone."""

from __future__ import annotations

import numpy as np

from rules.alert import Alert, AlertKind, Anchor, Evidence, Severity, coordinates, figure
from rules.config import RuleConfig
from rules.facts import Facts, at_depot, fix_coordinates, last_at_or_before
from rules.geo import zone_of_points

S = 1_000_000
DAY_US = 86_400 * S


def overnight_away(facts: Facts, config: RuleConfig) -> tuple[Alert, ...]:
    """At the night check (03:00 local by default) the car stood in a stop away from its depot."""
    stops, trips = facts.stops, facts.trips
    vehicles = np.intersect1d(np.unique(stops.vehicle_id), config.vehicles.vehicle_id)
    calendar = config.calendar
    first_day = int(calendar.local_day(np.array([facts.start_us]))[0])
    last_day = int(calendar.local_day(np.array([facts.end_us]))[0])
    checks = calendar.midnight_us(np.arange(first_day, last_day + 1)) + config.stay.night_check_local_s * S
    checks = checks[(checks >= facts.start_us) & (checks < facts.end_us)]
    if len(vehicles) == 0 or len(checks) == 0:
        return ()
    v = np.repeat(vehicles, len(checks))
    c = np.tile(checks, len(vehicles))
    stop = last_at_or_before(stops.vehicle_id, stops.start_us, v, c)
    s = np.maximum(stop, 0)
    covering = (stop >= 0) & (stops.end_us[s] > c)
    home, depot_m = at_depot(config.vehicles, v, stops.lon[s], stops.lat[s])
    hit = np.flatnonzero(covering & ~home & ~np.isnan(depot_m))
    alerts = []
    for i in hit.tolist():
        p = int(s[i])
        k = int(facts.stop_arrival[p])
        radius = float(config.vehicles.depot_radius_m[config.vehicles.index(v[i : i + 1])[0]])
        alerts.append(
            Alert(
                kind=AlertKind.OVERNIGHT_AWAY,
                severity=Severity.HIGH,
                vehicle_id=int(v[i]),
                start_us=int(stops.start_us[p]),
                end_us=int(stops.end_us[p]),
                anchor=Anchor.NIGHT,
                anchor_value=int(c[i]),
                trip_start_us=int(trips.start_us[k]) if k >= 0 else None,
                evidence=Evidence(
                    thresholds=(
                        figure("depot_radius_m", radius, "m"),
                        figure("night_check_local_s", config.stay.night_check_local_s, "s", 0),
                    ),
                    measured=(
                        figure("from_depot_m", depot_m[i], "m"),
                        figure("parked_s", (stops.end_us[p] - stops.start_us[p]) / S, "s"),
                    ),
                    segments=(coordinates([stops.lon[p]], [stops.lat[p]]),),
                ),
            )
        )
    return tuple(alerts)


def forbidden_place(facts: Facts, config: RuleConfig) -> tuple[Alert, ...]:
    """The car stayed inside a forbidden zone for at least the zone's own minimum dwell
    (place.min_dwell_s), else ``forbidden_min_dwell_s``.

    A stay is a run of the vehicle's fixes inside one zone, continued across fixes outside it (parked
    drift at the edge) or without data for up to ``forbidden_bridge_s``; its dwell runs from the first
    fix inside to the last.
    """
    fixes = facts.fixes
    zones = config.forbidden
    zone = zone_of_points(zones.rings, fixes.lon, fixes.lat)
    inside = np.flatnonzero(zone >= 0)
    if len(inside) == 0:
        return ()
    bridge_us = int(config.stay.forbidden_bridge_s * S)
    v, t, z = fixes.vehicle_id[inside], fixes.t_us[inside], zone[inside]
    new = np.ones(len(inside), np.bool_)
    new[1:] = (v[1:] != v[:-1]) | (z[1:] != z[:-1]) | (t[1:] - t[:-1] > bridge_us)
    heads = np.flatnonzero(new)
    tails = np.append(heads[1:], len(inside)) - 1
    trips = facts.trips
    min_dwell_s = zones.dwell_s(config.stay.forbidden_min_dwell_s)
    alerts = []
    for a, b in zip(heads.tolist(), tails.tolist(), strict=True):
        dwell = (t[b] - t[a]) / S
        threshold_s = float(min_dwell_s[z[a]])
        if dwell < threshold_s:
            continue
        row = int(inside[a])
        arrived = int(np.searchsorted(trips.from_row, row, side="right")) - 1
        arrived = arrived if arrived >= 0 and trips.vehicle_id[arrived] == v[a] else -1
        alerts.append(
            Alert(
                kind=AlertKind.FORBIDDEN_PLACE,
                severity=Severity.HIGH,
                vehicle_id=int(v[a]),
                start_us=int(t[a]),
                end_us=int(t[b]),
                anchor=Anchor.STOP,
                anchor_value=int(t[a]),
                trip_start_us=int(trips.start_us[arrived]) if arrived >= 0 else None,
                place_id=int(zones.zone_id[z[a]]),
                evidence=Evidence(
                    thresholds=(figure("forbidden_min_dwell_s", threshold_s, "s"),),
                    measured=(figure("dwell_s", dwell, "s"), figure("fixes_inside", b - a + 1, "", 0)),
                    segments=(fix_coordinates(fixes, row, int(inside[b])),),
                ),
            )
        )
    return tuple(alerts)
