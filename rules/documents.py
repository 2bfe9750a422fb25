"""Vehicle documents: an insurance policy or annual inspection (年检) about to expire, and a car driven
while one has lapsed.

- ``document_expiring``: a daily sweep, not tied to trips. On every local day of the window, a document
  whose expiry date is at most ``expiring_lead_days`` ahead (and not past) is due, unless a later
  document of the same vehicle and kind takes over from it (already renewed). One alert per document
  and expiry date (anchor ``document``: id x 100,000 + expiry day), spanning the warning period: from
  local midnight ``expiring_lead_days`` before the expiry date to the end of that date. A changed expiry
  date is a new alert.
- ``vehicle_unfit``: a trip that started on a local day after the last valid day of the vehicle's
  latest insurance policy or inspection in force (the newest one whose validity had begun), per trip
  one alert naming every lapsed document. A vehicle without documents of a kind is not judged on it.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
from numpy.typing import NDArray

from rules.alert import Alert, AlertKind, Anchor, DocumentRef, Evidence, Severity, figure
from rules.calendar import EPOCH
from rules.config import RuleConfig
from rules.facts import DOCUMENT_KINDS, Documents, Facts, fix_coordinates
from tracks.match import same_vehicle_pairs

ANCHOR_DAYS = 100_000  # anchor_value = document_id x ANCHOR_DAYS + expiry day (days since 1970-01-01)


def document_ref(documents: Documents, i: int) -> DocumentRef:
    return DocumentRef(
        document_id=int(documents.document_id[i]),
        kind=DOCUMENT_KINDS[int(documents.kind[i])],
        number=str(documents.number[i]),
        expires_on=EPOCH + timedelta(days=int(documents.expires_day[i])),
    )


def _renewed(documents: Documents) -> NDArray[np.bool_]:
    """Per document: a later one of the same vehicle and kind is valid from the day after it at latest."""
    a, b = same_vehicle_pairs(documents.vehicle_id, documents.vehicle_id)
    follows = (
        (documents.kind[a] == documents.kind[b])
        & (documents.expires_day[b] > documents.expires_day[a])
        & (documents.valid_from_day[b] <= documents.expires_day[a] + 1)
    )
    renewed = np.zeros(len(documents), np.bool_)
    renewed[a[follows]] = True
    return renewed


def document_expiring(facts: Facts, config: RuleConfig) -> tuple[Alert, ...]:
    """Documents due for renewal on a local day of the window (see the module docstring)."""
    documents = facts.documents
    if len(documents) == 0 or facts.end_us <= facts.start_us:
        return ()
    calendar, lead = config.calendar, config.documents.expiring_lead_days
    first, last = (int(d) for d in calendar.local_day(np.array([facts.start_us, facts.end_us - 1])))
    due_day = documents.expires_day - lead
    hit = (due_day <= last) & (documents.expires_day >= first) & ~_renewed(documents)
    start_us = calendar.midnight_us(due_day)
    end_us = calendar.midnight_us(documents.expires_day + 1)
    return tuple(
        Alert(
            kind=AlertKind.DOCUMENT_EXPIRING,
            severity=Severity.MEDIUM,
            vehicle_id=int(documents.vehicle_id[i]),
            start_us=int(start_us[i]),
            end_us=int(end_us[i]),
            anchor=Anchor.DOCUMENT,
            anchor_value=int(documents.document_id[i]) * ANCHOR_DAYS + int(documents.expires_day[i]),
            documents=(document_ref(documents, i),),
            evidence=Evidence(
                thresholds=(figure("expiring_lead_days", lead, "d", 0),),
                measured=(
                    figure("days_left", documents.expires_day[i] - max(first, int(due_day[i])), "d", 0),
                ),
            ),
        )
        for i in np.flatnonzero(hit).tolist()
    )


def vehicle_unfit(facts: Facts, config: RuleConfig) -> tuple[Alert, ...]:
    """Trips started after a document in force had lapsed (see the module docstring)."""
    documents, trips = facts.documents, facts.trips
    if len(documents) == 0 or len(trips) == 0:
        return ()
    trip_day = config.calendar.local_day(trips.start_us)
    t, d = same_vehicle_pairs(trips.vehicle_id, documents.vehicle_id)
    begun = documents.valid_from_day[d] <= trip_day[t]
    t, d = t[begun], d[begun]
    # per (trip, kind): the document in force is the begun one that expires last
    key = t * len(DOCUMENT_KINDS) + documents.kind[d]
    order = np.lexsort((documents.expires_day[d], key))
    t, d, key = t[order], d[order], key[order]
    newest = np.append(key[1:] != key[:-1], True) if len(key) else np.zeros(0, np.bool_)
    t, d = t[newest], d[newest]
    lapsed = documents.expires_day[d] < trip_day[t]
    t, d = t[lapsed], d[lapsed]
    alerts = []
    for trip in np.unique(t).tolist():
        mine = d[t == trip]
        days = trip_day[trip] - documents.expires_day[mine]
        alerts.append(
            Alert(
                kind=AlertKind.VEHICLE_UNFIT,
                severity=Severity.HIGH,
                vehicle_id=int(trips.vehicle_id[trip]),
                start_us=int(trips.start_us[trip]),
                end_us=int(trips.end_us[trip]),
                anchor=Anchor.TRIP,
                anchor_value=int(trips.start_us[trip]),
                trip_start_us=int(trips.start_us[trip]),
                documents=tuple(document_ref(documents, int(i)) for i in mine),
                evidence=Evidence(
                    measured=tuple(
                        figure(f"{DOCUMENT_KINDS[int(documents.kind[i])]}_lapsed_days", n, "d", 0)
                        for i, n in zip(mine.tolist(), days.tolist(), strict=True)
                    ),
                    segments=(
                        fix_coordinates(facts.fixes, int(trips.from_row[trip]), int(trips.to_row[trip])),
                    ),
                ),
            )
        )
    return tuple(alerts)
