"""Named queries whose fix column lists come from the declaration (store.fixcolumns).

A query in store/queries/*.sql may hold placeholders in braces, filled here with quoted identifiers
(``psycopg.sql.Identifier``), never with text pasted from elsewhere:

  {fix_columns}        every column of ``position``, in declaration order
  {latest_columns}     the columns ``latest_position`` keeps
  {latest_updated}     the same without ``vehicle_id`` (the conflict key)
  {latest_excluded}    ``excluded.<column>`` of those
  {stage_compared}     ``s.<column>`` of the compared columns (a conflict when any differs)
  {stored_compared}    ``p.<column>`` of the same
  {engine_columns}     ``p.<column>`` of what the engine reads, NULLs replaced by the sentinels its
                       fixed-width COPY reader needs (``engine_layout`` says the wire types)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache

from psycopg import sql

from store.copy import Layout
from store.fixcolumns import FixColumn, SqlType, fix_columns
from store.queries import query

_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


def fix_query(name: str) -> sql.Composed:
    """The named query with its placeholders filled from the fix declaration as it stands."""
    return _compose(query(name), fix_columns())


def engine_layout(declared: Sequence[FixColumn] | None = None) -> Layout:
    """The engine query's columns on the COPY wire: a nullable boolean comes as int2 (-1/0/1)."""
    chosen = [c for c in (declared if declared is not None else fix_columns()) if c.engine]
    return [(c.name, _engine_wire(c)) for c in chosen]


def _engine_wire(column: FixColumn) -> str:
    return "int2" if column.sql_type is SqlType.BOOL and column.nullable else column.pg_name


@lru_cache(maxsize=256)
def _compose(text: str, declared: tuple[FixColumn, ...]) -> sql.Composed:
    wanted = set(_PLACEHOLDER.findall(text))
    if not wanted:
        return sql.Composed([sql.SQL(text)])
    fills = _fills(declared)
    unknown = wanted - fills.keys()
    if unknown:
        raise KeyError(f"unknown fix placeholders {sorted(unknown)}")
    return sql.SQL(text).format(**{name: fills[name] for name in wanted})


def _fills(declared: tuple[FixColumn, ...]) -> dict[str, sql.Composable]:
    latest = [c.name for c in declared if c.latest]
    updated = [name for name in latest if name != "vehicle_id"]
    compared = [c.name for c in declared if c.compared]
    return {
        "fix_columns": _names(c.name for c in declared),
        "latest_columns": _names(latest),
        "latest_updated": _names(updated),
        "latest_excluded": _names(updated, "excluded"),
        "stage_compared": _names(compared, "s"),
        "stored_compared": _names(compared, "p"),
        "engine_columns": sql.SQL(", ").join(_engine_expression(c) for c in declared if c.engine),
    }


def _names(names: Iterable[str], table: str | None = None) -> sql.Composable:
    return sql.SQL(", ").join(
        sql.Identifier(table, name) if table else sql.Identifier(name) for name in names
    )


def _engine_expression(column: FixColumn) -> sql.Composable:
    """``p.<column>`` with NULL replaced by the in-Python sentinel (NaN, -1; a boolean as int2)."""
    name = sql.Identifier("p", column.name)
    if not column.nullable:
        return name
    if column.sql_type is SqlType.BOOL:
        return sql.SQL("coalesce({}::integer::smallint, CAST(-1 AS smallint))").format(name)
    if column.floating:
        return sql.SQL("coalesce({}, 'NaN')").format(name)
    return sql.SQL("coalesce({}, CAST(-1 AS {}))").format(name, sql.SQL(column.sql_type.value))
