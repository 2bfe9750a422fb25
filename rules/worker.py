"""The rules' I/O shell: configuration and records from the database in, alerts upserted out.

The track engine calls ``RulesStep`` after each round (live) or step (recompute), in the same
transaction as the trips it stored: the alerts always describe the stored trips.

- An alert is upserted on its natural key (kind, vehicle, anchor, anchor value): recomputation and late
  data update it in place, never duplicate it. An alert a supervisor has reviewed (status not 'open')
  is never rewritten.
- An open alert in the recomputed span that the rules no longer raise is marked retracted (kept, with
  its evidence), and comes back to life if a later recomputation raises it again.
- A rule that raised is recorded in ``rule_failure``; the other rules' alerts are stored as usual.
- Each vehicle is judged by its agency's configuration (working hours, threshold version in force on
  the alert's day: ``rules.thresholds``); the configuration is reloaded when the data it is built from
  changes (``rule_config_stamp``, bumped by triggers) or every ``reload_s``.
- ``document_expiring`` is not tied to trips: ``sweep_documents`` raises it once a day (the engine
  rounds leave it alone); ``vehicle_unfit`` is judged with the trips.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import orjson
import psycopg

from rules.alert import Alert, AlertKind, Anchor
from rules.calendar import calendar_from_days, day_number
from rules.catalogue import RULES, Evaluation
from rules.config import ForbiddenZones, RuleConfig, SpeedLimits, Vehicles, no_roads, polylines
from rules.config_store import (
    agency_configs,
    config_stamp,
    documents_from_rows,
    load_documents,
    with_zone_dwell,
)
from rules.facts import FuelRecords, MaintenanceRecords, Reports, RuleInputs
from rules.thresholds import AgencyConfigs, evaluate_dated
from store.epoch import utc
from store.queries import columns as table
from store.queries import query
from tracks.match import Orders, orders_table
from tracks.params import Params
from tracks.pipeline import Context, VehicleResult, run_fleet
from tracks.places import StopKind, places
from tracks.track import make_track

log = logging.getLogger(__name__)

_TIME_ANCHORS = {Anchor.TRIP, Anchor.STOP, Anchor.GAP, Anchor.NIGHT}


def load_config(conn: psycopg.Connection[Any]) -> RuleConfig:
    """Calendar, depots, tanks, fuel norms, forbidden zones and the road speed-limit layer as the
    database holds them (without roads, overspeed judges against the national maximum only)."""
    calendar = calendar_from_days(conn.execute(query("rule_calendar")).fetchall())
    rows = conn.execute(query("rule_vehicles")).fetchall()
    columns = table(rows, 6)
    vehicles = Vehicles(
        vehicle_id=np.array(columns[0], dtype=np.int64),
        depot_lon=np.array(columns[1], dtype=np.float64),
        depot_lat=np.array(columns[2], dtype=np.float64),
        depot_radius_m=np.array(columns[3], dtype=np.float64),
        tank_l=np.array(columns[4], dtype=np.float64),
        fuel_norm_l_per_100km=np.array(columns[5], dtype=np.float64),
    )
    zones = [
        (place_id, orjson.loads(polygon)) for place_id, polygon in conn.execute(query("rule_forbidden_zones"))
    ]
    rings = [np.asarray(polygon["coordinates"][0], dtype=np.float64) for _, polygon in zones]
    forbidden = with_zone_dwell(
        conn,
        ForbiddenZones(
            zone_id=np.array([place_id for place_id, _ in zones], dtype=np.int64),
            rings=polylines([r[:, 0] for r in rings], [r[:, 1] for r in rings]),
        ),
    )
    roads = [(limit, orjson.loads(line)["coordinates"]) for limit, line in conn.execute(query("rule_roads"))]
    speed = no_roads()
    if roads:
        lines = [np.asarray(coordinates, dtype=np.float64).reshape(-1, 2) for _, coordinates in roads]
        speed = SpeedLimits(
            roads=polylines([line[:, 0] for line in lines], [line[:, 1] for line in lines]),
            limit_kmh=np.array([limit for limit, _ in roads], dtype=np.float64),
        )
    return RuleConfig(calendar=calendar, vehicles=vehicles, forbidden=forbidden, speed=speed)


def load_records(
    conn: psycopg.Connection[Any], vehicle_ids: Sequence[int], from_us: int, to_us: int
) -> tuple[FuelRecords, MaintenanceRecords]:
    window = {"vehicle_ids": list(vehicle_ids), "from": utc(from_us), "to": utc(to_us)}
    fuel = conn.execute(query("rule_fuel_records"), window).fetchall()
    repairs = conn.execute(query("rule_maintenance_records"), window).fetchall()
    f, m = table(fuel, 7), table(repairs, 7)
    return (
        FuelRecords(
            record_id=np.array(f[0], dtype=np.int64),
            vehicle_id=np.array(f[1], dtype=np.int64),
            t_us=np.array(f[2], dtype=np.int64),
            lon=np.array(f[3], dtype=np.float64),
            lat=np.array(f[4], dtype=np.float64),
            litres=np.array(f[5], dtype=np.float64),
            place_id=np.array(f[6], dtype=np.int64),
        ),
        MaintenanceRecords(
            record_id=np.array(m[0], dtype=np.int64),
            vehicle_id=np.array(m[1], dtype=np.int64),
            start_us=np.array(m[2], dtype=np.int64),
            end_us=np.array(m[3], dtype=np.int64),
            lon=np.array(m[4], dtype=np.float64),
            lat=np.array(m[5], dtype=np.float64),
            place_id=np.array(m[6], dtype=np.int64),
        ),
    )


def load_reports(
    conn: psycopg.Connection[Any], result: VehicleResult, vehicle_ids: Sequence[int], from_us: int
) -> Reports:
    """When each terminal reported at all: the stored fixes and the ones ingest quarantined (a tunnel's
    invalid fixes), so that a tunnel does not look like a terminal gone silent."""
    vehicle, t_us = [result.track.vehicle_id], [result.track.t_us]
    extra_v, extra_t = [], []
    for vehicle_id, payload in conn.execute(
        query("rule_quarantined_fixes"), {"vehicle_ids": list(vehicle_ids), "from": utc(from_us)}
    ):
        try:
            moment = orjson.loads(payload).get("time")
        except (orjson.JSONDecodeError, AttributeError):
            continue
        if isinstance(moment, int | float) and not isinstance(moment, bool):
            extra_v.append(vehicle_id)
            extra_t.append(int(moment * 1000))
        elif isinstance(moment, str):
            try:
                parsed = datetime.fromisoformat(moment)
            except ValueError:
                continue
            parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
            extra_v.append(vehicle_id)
            extra_t.append(int(parsed.timestamp() * 1e6))
    vehicle.append(np.array(extra_v, dtype=np.int64))
    t_us.append(np.array(extra_t, dtype=np.int64))
    v, t = np.concatenate(vehicle), np.concatenate(t_us)
    keep = (t >= from_us) & np.isin(v, np.asarray(vehicle_ids, dtype=np.int64))
    v, t = v[keep], t[keep]
    order = np.lexsort((t, v))
    return Reports(vehicle_id=v[order], t_us=t[order])


def _row(alert: Alert) -> dict[str, Any]:
    evidence = alert.evidence
    return {
        "kind": alert.kind.value,
        "severity": alert.severity.value,
        "vehicle_id": alert.vehicle_id,
        "anchor": alert.anchor.value,
        "anchor_value": alert.anchor_value,
        "dispatch_order_id": alert.order_id,
        "start_at": utc(alert.start_us),
        "end_at": utc(max(alert.end_us, alert.start_us)),
        "evidence": orjson.dumps(
            {
                "thresholds": [
                    {"name": f.name, "value": f.value, "unit": f.unit} for f in evidence.thresholds
                ],
                "measured": [{"name": f.name, "value": f.value, "unit": f.unit} for f in evidence.measured],
                "segment": evidence.geojson(),
                "trip_start_at": None
                if alert.trip_start_us is None
                else utc(alert.trip_start_us).isoformat(),
                "place_id": alert.place_id,
                "fuel_record_id": alert.fuel_record_id,
                "maintenance_record_id": alert.maintenance_record_id,
                "documents": [
                    {
                        "vehicle_document_id": d.document_id,
                        "kind": d.kind,
                        "number": d.number,
                        "expires_on": d.expires_on.isoformat(),
                    }
                    for d in alert.documents
                ],
                "version": evidence.version,
            }
        ).decode(),
    }


def upsert_alerts(conn: psycopg.Connection[Any], alerts: Sequence[Alert]) -> tuple[int, int]:
    """Upsert on the natural key; returns (new, updated)."""
    raised = updated = 0
    with conn.cursor() as cur:
        for alert in alerts:
            row = cur.execute(query("upsert_alert"), _row(alert)).fetchone()
            if row is not None:
                raised += int(row[0])
                updated += int(not row[0])
    return raised, updated


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredAlerts:
    raised: int = 0  # new alerts
    updated: int = 0
    retracted: int = 0
    failures: int = 0


def judged_on_own_data(
    evaluation: Evaluation,
    orders: Orders,
    vehicle_ids: Sequence[int],
    until_us: Sequence[int],
    grace_us: int,
) -> Evaluation:
    """Keep an order's verdict only once its own car has reported past the order's window (with grace).

    A round's window ends at the newest fix of any car in it; the rules judge an order as "over" by that
    end. A car whose fixes lag behind the others' (a terminal behind a gateway, a blind-area batch still
    to come) would otherwise be judged on half a journey — wrong destination, not executed — and the
    verdict retracted a second later, after it was published.
    """
    until = dict(zip(vehicle_ids, until_us, strict=True))
    window_end = dict(zip(orders.order_id.tolist(), orders.window_end_us.tolist(), strict=True))
    kept = tuple(
        a
        for a in evaluation.alerts
        if a.anchor is not Anchor.ORDER
        or window_end.get(a.anchor_value, 0) + grace_us <= until.get(a.vehicle_id, 0)
    )
    if len(kept) == len(evaluation.alerts):
        return evaluation
    return replace(evaluation, alerts=kept)


def store_evaluation(
    conn: psycopg.Connection[Any],
    evaluation: Evaluation,
    vehicle_ids: Sequence[int],
    after_us: Sequence[int],
    until_us: Sequence[int],
    *,
    judged: frozenset[AlertKind] = frozenset(AlertKind),
) -> StoredAlerts:
    """Per vehicle, upsert the alerts of the ``judged`` kinds that start after ``after_us`` (earlier
    ones were judged on the context only) and end by ``until_us`` (its newest data: an order whose
    window reaches past what the car has reported is not judged yet), and retract the open ones of
    those kinds there that were not raised again."""
    span = {v: (a, u) for v, a, u in zip(vehicle_ids, after_us, until_us, strict=True)}
    fresh = [
        a
        for a in evaluation.alerts
        if a.kind in judged
        and a.vehicle_id in span
        and span[a.vehicle_id][0] < a.start_us
        and a.end_us <= span[a.vehicle_id][1]
    ]
    raised, updated = upsert_alerts(conn, fresh)
    kept = [(a.kind.value, a.vehicle_id, a.anchor.value, a.anchor_value) for a in fresh]
    retracted = conn.execute(
        query("retract_alerts"),
        {
            "vehicle_ids": list(vehicle_ids),
            "after": [utc(max(a, 0)) for a in after_us],
            "until": [utc(max(u, 0)) for u in until_us],  # a vehicle without fixes: nothing judged
            "kinds": [k[0] for k in kept],
            "vehicles": [k[1] for k in kept],
            "anchors": [k[2] for k in kept],
            "anchor_values": [k[3] for k in kept],
            "judged_kinds": sorted(k.value for k in judged),
        },
    ).rowcount
    for failure in evaluation.failures:
        log.error("rule %s failed on vehicle %s: %s", failure.rule, failure.vehicle_id, failure.error)
        conn.execute(
            query("insert_rule_failure"),
            {"rule": failure.rule, "vehicle_id": failure.vehicle_id, "detail": failure.error},
        )
    return StoredAlerts(
        raised=raised, updated=updated, retracted=retracted, failures=len(evaluation.failures)
    )


def local_today() -> date:
    """Today in China Standard Time."""
    return (datetime.now(UTC) + timedelta(hours=8)).date()


SWEPT = frozenset({AlertKind.DOCUMENT_EXPIRING})  # judged by a daily sweep, not in the engine's rounds
ROUND_KINDS = frozenset(AlertKind) - SWEPT


def load_configs(conn: psycopg.Connection[Any]) -> AgencyConfigs:
    return agency_configs(conn, load_config(conn))


@dataclass(slots=True)
class RulesStep:
    """Evaluate the rules on what the engine just stored; the configuration is reloaded when its data
    changed (``rule_config_stamp``) or every ``reload_s``. With ``sweep_daily`` (the live engine), the
    first round of each local day (``today``) also runs ``sweep_documents`` for it."""

    reload_s: float = 60.0
    sweep_daily: bool = False
    today: Callable[[], date] = field(default=local_today)
    _swept: date | None = None
    _configs: AgencyConfigs | None = None
    _stamp: int = -1
    _loaded_at: float = 0.0
    totals: dict[str, int] = field(default_factory=lambda: {"raised": 0, "updated": 0, "retracted": 0})

    def configs(self, conn: psycopg.Connection[Any]) -> AgencyConfigs:
        stamp = config_stamp(conn)
        if (
            self._configs is None
            or stamp != self._stamp
            or time.monotonic() - self._loaded_at > self.reload_s
        ):
            self._configs = load_configs(conn)
            self._stamp = stamp
            self._loaded_at = time.monotonic()
        return self._configs

    def __call__(
        self,
        conn: psycopg.Connection[Any],
        result: VehicleResult,
        *,
        context: Context,
        vehicle_ids: Sequence[int],
        after_us: Sequence[int],
        window_us: tuple[int, int],
        until_us: Sequence[int],
    ) -> None:
        configs = self.configs(conn)
        if self.sweep_daily and self._swept != (today := self.today()):
            sweep_documents(conn, today, configs)
            self._swept = today
        fuel, maintenance = load_records(conn, vehicle_ids, *window_us)
        reports = load_reports(conn, result, vehicle_ids, window_us[0])
        inputs = RuleInputs(
            result=result,
            orders=context.orders,
            start_us=window_us[0],
            end_us=window_us[1],
            fuel=fuel,
            maintenance=maintenance,
            reports=reports,
            documents=load_documents(conn, vehicle_ids),
        )
        rules = tuple(r for r in RULES if r.kind in ROUND_KINDS)
        evaluation = evaluate_dated(inputs, configs, rules)
        grace_us = int(configs.default.orders.window_grace_s * 1_000_000)
        evaluation = judged_on_own_data(evaluation, context.orders, vehicle_ids, until_us, grace_us)
        stored = store_evaluation(conn, evaluation, vehicle_ids, after_us, until_us, judged=ROUND_KINDS)
        self.totals["raised"] += stored.raised
        self.totals["updated"] += stored.updated
        self.totals["retracted"] += stored.retracted
        if stored.raised or stored.retracted or stored.failures:
            log.info(
                "rules: %d alerts raised, %d updated, %d retracted, %d rule failures",
                stored.raised, stored.updated, stored.retracted, stored.failures,
            )  # fmt: skip


def empty_result() -> VehicleResult:
    """The engine's result over no fixes (for rules not tied to trips)."""
    i, f = np.zeros(0, np.int64), np.zeros(0, np.float64)
    track = make_track(
        vehicle_id=i, t_us=i, lon=f, lat=f, speed_kmh=f, ignition=np.zeros(0, np.int8), odometer_km=f
    )
    return run_fleet(
        track, Context(orders=orders_table([]), places=places(StopKind.DEPOT, [], [], [])), Params()
    )


def sweep_documents(
    conn: psycopg.Connection[Any], day: date, configs: AgencyConfigs | None = None
) -> StoredAlerts:
    """The daily sweep: ``document_expiring`` for every document due on local ``day`` (its expiry at
    most the agency's lead days ahead and not past), upserted on its natural key (once per document
    and expiry date; a later sweep only updates the days left)."""
    configs = configs or load_configs(conn)
    leads = [configs.default.documents.expiring_lead_days] + [
        dated.config.documents.expiring_lead_days for s in configs.schedules.values() for dated in s
    ]
    n = day_number(day)
    documents = documents_from_rows(
        conn.execute(
            query("rule_documents_due"), {"from_day": day, "to_day": day + timedelta(days=max(leads))}
        ).fetchall()
    )
    calendar = configs.default.calendar
    start_us, end_us = (int(x) for x in calendar.midnight_us(np.array([n, n + 1])))
    inputs = RuleInputs(
        result=empty_result(), orders=orders_table([]), start_us=start_us, end_us=end_us, documents=documents
    )
    rules = tuple(r for r in RULES if r.kind in SWEPT)
    evaluation = evaluate_dated(inputs, configs, rules)
    for failure in evaluation.failures:
        log.error("rule %s failed on vehicle %s: %s", failure.rule, failure.vehicle_id, failure.error)
        conn.execute(
            query("insert_rule_failure"),
            {"rule": failure.rule, "vehicle_id": failure.vehicle_id, "detail": failure.error},
        )
    # (a document renewed or removed leaves its alert as it is: it was due when raised)
    raised, updated = upsert_alerts(conn, evaluation.alerts)
    stored = StoredAlerts(raised=raised, updated=updated, failures=len(evaluation.failures))
    vehicles = len(set(documents.vehicle_id.tolist()))
    log.info(
        "document sweep of %s: %d documents of %d vehicles, %d alerts raised, %d updated",
        day, len(documents), vehicles, stored.raised, stored.updated,
    )  # fmt: skip
    return stored
