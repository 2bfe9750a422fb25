"""The API's schema (migration 0006) until migrations 0004 and 0005 exist.

store/migrate.py applies only gapless numbered migrations, and 0004 (trips) and 0005 (alerts) are not
written yet, so 0006_api.sql waits in store/migrations/pending/. ``ensure_api_schema`` applies it the way
the runner would (one transaction, recorded in schema_migration as version 6), once. When 0004 and 0005
land, move the file up to store/migrations/ and this becomes a no-op (the runner records version 6).
"""

from __future__ import annotations

import logging
from importlib import resources
from typing import LiteralString

import psycopg

log = logging.getLogger(__name__)

VERSION = 6
NAME = "api"
_LOCK_KEY = 0x666C6565  # the migration runner's advisory lock


def _pending_sql() -> LiteralString | None:
    entry = resources.files("store") / "migrations" / "pending" / f"{VERSION:04d}_{NAME}.sql"
    if not entry.is_file():
        return None
    sql: LiteralString = entry.read_text(encoding="utf-8")
    return sql


def ensure_api_schema(conninfo: str) -> bool:
    """Apply the pending API migration if the database lacks it; True if applied now."""
    sql = _pending_sql()
    if sql is None:
        return False
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            done = conn.execute("SELECT 1 FROM schema_migration WHERE version = %s", (VERSION,)).fetchone()
            if done:
                return False
            with conn.transaction():
                conn.execute(sql)
                conn.execute("INSERT INTO schema_migration (version, name) VALUES (%s, %s)", (VERSION, NAME))
            log.info("applied migration %04d_%s (pending until 0004 and 0005 exist)", VERSION, NAME)
            return True
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
