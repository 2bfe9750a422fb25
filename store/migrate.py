"""Apply the numbered migrations in store/migrations/ in order, each in its own transaction."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources
from typing import LiteralString

import psycopg

log = logging.getLogger(__name__)

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_KEY = 0x666C6565  # "flee": one migration runner at a time per database


@dataclass(frozen=True, slots=True, kw_only=True)
class Migration:
    version: int
    name: str
    sql: LiteralString


def load_migrations() -> list[Migration]:
    folder = resources.files("store") / "migrations"
    found = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match:
            sql: LiteralString = entry.read_text(encoding="utf-8")
            found.append(Migration(version=int(match[1]), name=match[2], sql=sql))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migrations must be numbered 0001, 0002, … without gaps; found {versions}")
    return found


class MigrationMismatchError(RuntimeError):
    """The database was migrated by other code than this checkout's (another branch, a newer release)."""


def check_history(applied: dict[int, str], migrations: list[Migration]) -> None:
    """Refuse a database whose applied versions carry other names than this checkout's migrations.

    Skipping such a version would leave the schema without what this code expects (seen when two
    branches both numbered a migration 0009), and the failure would surface far away, as a missing table.
    Versions this checkout does not know (a newer release, another branch's next migration) are only
    logged: they add to the schema, and older code runs beside them.
    """
    mine = {m.version: m.name for m in migrations}
    clashes = [
        f"{v:04d} is {name!r} there, {mine[v]!r} here"
        for v, name in sorted(applied.items())
        if mine.get(v, name) != name
    ]
    if clashes:
        raise MigrationMismatchError(
            "the database was migrated by other code than this checkout's (versions differ: "
            + "; ".join(clashes)
            + "): use a database of its own, or `fleetwatch db reset` if its data can go"
        )
    newer = sorted(v for v in applied if v not in mine)
    if newer:
        log.warning(
            "the database has migrations this checkout does not know (%s): it was migrated by newer code",
            ", ".join(f"{v:04d}_{applied[v]}" for v in newer),
        )


def migrate(conninfo: str) -> list[int]:
    """Bring the database at ``conninfo`` up to date; return the versions applied now."""
    applied_now: list[int] = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migration ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done: dict[int, str] = dict(conn.execute("SELECT version, name FROM schema_migration").fetchall())
            migrations = load_migrations()
            check_history(done, migrations)
            for migration in migrations:
                if migration.version in done:
                    continue
                with conn.transaction():
                    conn.execute(migration.sql)
                    conn.execute(
                        "INSERT INTO schema_migration (version, name) VALUES (%s, %s)",
                        (migration.version, migration.name),
                    )
                log.info("applied migration %04d_%s", migration.version, migration.name)
                applied_now.append(migration.version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied_now
