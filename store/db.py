"""Database creation and connection helpers."""

from __future__ import annotations

import logging

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

log = logging.getLogger(__name__)


def with_dbname(conninfo: str, dbname: str) -> str:
    return make_conninfo(conninfo, dbname=dbname)


def dbname_of(conninfo: str) -> str:
    return str(conninfo_to_dict(conninfo).get("dbname") or "postgres")


def create_database(conninfo: str, *, template: str | None = None, drop_existing: bool = False) -> bool:
    """Create the database named in ``conninfo`` unless it exists; True if it was created now."""
    name = dbname_of(conninfo)
    with psycopg.connect(with_dbname(conninfo, "postgres"), autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None
        if exists and drop_existing:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
            exists = False
        if exists:
            return False
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            statement = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        admin.execute(statement)
        log.info("created database %s%s", name, f" from template {template}" if template else "")
        return True


def drop_database(conninfo: str) -> None:
    name = dbname_of(conninfo)
    with psycopg.connect(with_dbname(conninfo, "postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
