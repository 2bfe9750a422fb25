"""The rules' configuration and documents as the database holds them (the I/O side of
``rules.thresholds``): per agency its working hours (inherited from the parent agency, else the
default) and its threshold versions; forbidden zones with their own minimum dwell; vehicle documents.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import psycopg

from rules.calendar import WorkHours
from rules.config import ForbiddenZones, RuleConfig
from rules.facts import DOCUMENT_KINDS, Documents
from rules.thresholds import AgencyConfigs, Dated, ThresholdRow, schedule_of
from store.queries import columns as table
from store.queries import query


def lineage(agency_id: int, parent: dict[int, int | None]) -> tuple[int, ...]:
    """The agency, its parent, … up to the root (a cycle stops at the first repeat)."""
    chain: list[int] = []
    current: int | None = agency_id
    while current is not None and current not in chain:
        chain.append(current)
        current = parent.get(current)
    return tuple(chain)


def with_zone_dwell(conn: psycopg.Connection[Any], zones: ForbiddenZones) -> ForbiddenZones:
    dwell = [row[0] for row in conn.execute(query("rule_forbidden_zone_dwell"))]
    if len(dwell) != len(zones):  # the places changed between the two reads: the next load mends it
        return zones
    return replace(zones, min_dwell_s=np.array(dwell, dtype=np.float64))


def agency_configs(conn: psycopg.Connection[Any], base: RuleConfig) -> AgencyConfigs:
    """Per agency with its own (or inherited) working hours or thresholds: its versions over time;
    ``base`` (the calendar, vehicles, zones and roads) is shared by all."""
    agencies = conn.execute(query("rule_agencies")).fetchall()
    parent = {int(a): (int(p) if p is not None else None) for a, _, p in agencies}
    codes = {int(a): str(code) for a, code, _ in agencies}
    rows = [
        ThresholdRow(agency_id=int(a), name=str(n), value=float(v), effective_from=d)
        for a, n, v, d in conn.execute(query("rule_thresholds"))
    ]
    hours = {
        int(a): WorkHours(start_s=int(s), end_s=int(e))
        for a, s, e in conn.execute(query("rule_working_hours"))
    }
    with_thresholds = {r.agency_id for r in rows}
    schedules: dict[int, tuple[Dated, ...]] = {}
    for agency in parent:
        chain = lineage(agency, parent)
        own_hours = next((hours[a] for a in chain if a in hours), None)
        if own_hours is None and not with_thresholds.intersection(chain):
            continue
        config = base
        if own_hours is not None:
            config = replace(base, calendar=replace(base.calendar, hours=own_hours))
        schedules[agency] = schedule_of(replace(config, agency_id=agency), rows, chain, codes)
    vehicle_agency = {int(v): int(a) for v, a in conn.execute(query("rule_vehicle_agencies"))}
    return AgencyConfigs(default=base, schedules=schedules, vehicle_agency=vehicle_agency)


def documents_from_rows(rows: Sequence[Sequence[Any]]) -> Documents:
    columns = table(list(rows), 6)
    kinds = {kind: i for i, kind in enumerate(DOCUMENT_KINDS)}
    return Documents(
        document_id=np.array(columns[0], dtype=np.int64),
        vehicle_id=np.array(columns[1], dtype=np.int64),
        kind=np.array([kinds[k] for k in columns[2]], dtype=np.int8),
        valid_from_day=np.array(columns[3], dtype=np.int64),
        expires_day=np.array(columns[4], dtype=np.int64),
        number=np.array(columns[5], dtype=np.str_),
    )


def load_documents(conn: psycopg.Connection[Any], vehicle_ids: Sequence[int]) -> Documents:
    return documents_from_rows(
        conn.execute(query("rule_documents"), {"vehicle_ids": list(vehicle_ids)}).fetchall()
    )


def config_stamp(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(query("rule_config_stamp")).fetchone()
    return int(row[0]) if row else 0
