"""Operator jobs on stored input: replay what was quarantined, drop what is past retention."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import psycopg

from ingest.decode import DecodeLimits, Message, terminal_of, vehicle_ids_of
from ingest.filters import FilterParams
from ingest.reasons import Reason
from ingest.write import BatchOutcome, load_anchors, load_terminals, prepare_batch, store_batch
from store.queries import query

log = logging.getLogger(__name__)


def replay_quarantine(
    conn: psycopg.Connection[Any],
    reasons: Sequence[Reason],
    *,
    params: FilterParams,
    limits: DecodeLimits,
    batch_rows: int = 2_000,
) -> BatchOutcome:
    """Run quarantined payloads through the write path again (after a terminal was registered, or a
    filter was widened). Each chunk is taken and re-written in one transaction: a payload that is still
    refused is quarantined again with today's reason, one that passes is stored. Truncated (oversized)
    payloads are never replayed."""
    total = BatchOutcome()
    terminals = load_terminals(conn)
    row = conn.execute(query("last_quarantine_id")).fetchone()
    until_id, after_id = (int(row[0]) if row else 0), 0  # what is quarantined again is not taken again
    while True:
        with conn.transaction():
            rows = conn.execute(
                query("take_quarantined"),
                {
                    "reasons": [r.value for r in reasons],
                    "limit": batch_rows,
                    "after_id": after_id,
                    "until_id": until_id,
                },
            ).fetchall()
            if not rows:
                break
            after_id = max(r[0] for r in rows)
            messages = [Message(topic=t, payload=bytes(p), received_at_us=r) for _, t, p, r in rows]
            vehicles, _ = vehicle_ids_of([terminal_of(m.topic) for m in messages], terminals)
            prepared = prepare_batch(
                messages,
                terminals,
                load_anchors(conn, vehicles[vehicles > 0]),
                now_us=time.time_ns() // 1000,
                params=params,
                limits=limits,
            )
            total.merge(store_batch(conn, prepared, worker="replay"))
    log.info(
        "replayed %d quarantined messages: %d fixes stored, %d duplicates, still refused: %s",
        total.messages,
        total.fixes_stored,
        total.fixes_duplicate,
        dict(total.fixes_quarantined + total.messages_quarantined) or "none",
    )
    return total


def apply_retention(conn: psycopg.Connection[Any], keep_days: int) -> Counter[str]:
    """Drop position chunks, quarantine rows and batch statistics older than ``keep_days``."""
    if keep_days < 1:
        raise ValueError("keep_days must be at least 1")
    dropped: Counter[str] = Counter()
    with conn.transaction():
        row = conn.execute(query("drop_old_positions"), {"keep_days": keep_days}).fetchone()
        dropped["position_chunks"] = int(row[0]) if row else 0
        dropped["quarantine_rows"] = conn.execute(
            query("delete_old_quarantine"), {"keep_days": keep_days}
        ).rowcount
        dropped["ingest_batch_rows"] = conn.execute(
            query("delete_old_ingest_batches"), {"keep_days": keep_days}
        ).rowcount
    log.info("retention %d days: dropped %s", keep_days, dict(dropped))
    return dropped
