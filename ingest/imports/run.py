"""One import: parsed rows COPYed into a staging table, references, scope and duplicate keys checked in
SQL, then set-based upserts on the natural key that audit every written row — all in one transaction.

A file with any error is refused whole (every error listed, nothing written) unless ``partial``: then
the good rows are written and the bad ones kept in import_quarantine with their reasons, under one
import_batch. The statements are the templates of store/queries/imports.sql filled from the kind.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from psycopg import Connection, sql
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb

from ingest.imports.kinds import Col, ColType, Kind
from ingest.imports.parse import Datum, Parsed, RowError, parse_table
from ingest.imports.read import Table, gc_paused
from store.queries import query

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class Actor:
    """Who imports: an API user or the command line (api_user_id None)."""

    api_user_id: int | None
    name: str
    agency_ids: frozenset[int] | None = None  # the agencies they may write (and those below); None: all


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportResult:
    kind: str
    source: str
    rows: int
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0
    import_batch_id: int | None = None  # None: refused, nothing written
    errors: tuple[RowError, ...] = field(default=())

    @property
    def refused(self) -> bool:
        return self.import_batch_id is None

    def summary(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "source": self.source,
            "refused": self.refused,
            "import_batch_id": self.import_batch_id,
            "rows": self.rows,
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "quarantined": self.quarantined,
            "errors": [
                {"row": e.row_no, "column": e.column, "value": e.value, "reason": e.reason}
                for e in self.errors
            ],
        }


class _RefusedError(Exception):
    """Rolls the import's transaction back."""


class ImportScopeError(Exception):
    """The --agency default names an agency that does not exist."""


def _q(name: str, **parts: sql.Composable) -> sql.Composed:
    return sql.SQL(query(name)).format(**parts)


def _ids(names: Sequence[str], alias: str | None = None) -> sql.Composed:
    if alias is None:
        return sql.SQL(", ").join(sql.Identifier(n) for n in names)
    return sql.SQL(", ").join(sql.Identifier(alias, n) for n in names)


def _owner(template: str | None, alias: str) -> sql.Composable:
    if template is None:
        return sql.SQL("NULL::integer")
    return sql.SQL(template).format(a=sql.Identifier(alias))


def _key_match(kind: Kind) -> sql.Composed:
    return sql.SQL(" AND ").join(
        sql.SQL("{} = {}").format(sql.Identifier("t", k), sql.Identifier("r", k)) for k in kind.key
    )


def _stage_types(kind: Kind) -> list[str]:
    return [c.type.pg for c in kind.columns]


def _stage_values(col: Col, values: list[object]) -> list[object]:
    if col.type in (ColType.POLYGON, ColType.LINE):
        return [None if v is None else Jsonb(v) for v in values]
    return values


def run_import(
    conn: Connection[TupleRow],
    kind: Kind,
    table: Table,
    *,
    actor: Actor,
    partial: bool = False,
    datum: Datum = Datum.WGS84,
    agency_code: str | None = None,
) -> ImportResult:
    """Import ``table`` as ``kind`` in one transaction of ``conn``."""
    started_at = datetime.now(UTC)
    defaults: dict[str, object] = {}
    agency_id = None
    if agency_code is not None:
        row = conn.execute(query("import_agency_id"), {"code": agency_code}).fetchone()
        if row is None:
            raise ImportScopeError(f"--agency {agency_code}: no such agency")
        agency_id = row[0]
        if any(c.name == "agency_code" for c in kind.columns):
            defaults["agency_code"] = agency_code
    with gc_paused():
        return _run(
            conn,
            kind,
            table,
            actor=actor,
            partial=partial,
            datum=datum,
            defaults=defaults,
            agency_id=agency_id,
            started_at=started_at,
        )


def _run(
    conn: Connection[TupleRow],
    kind: Kind,
    table: Table,
    *,
    actor: Actor,
    partial: bool,
    datum: Datum,
    defaults: Mapping[str, object],
    agency_id: int | None,
    started_at: datetime,
) -> ImportResult:
    parsed = parse_table(kind, table, datum=datum, defaults=defaults)
    if any(e.row_no == 0 for e in parsed.errors):  # a header problem: no row can be read right
        return ImportResult(kind=kind.name, source=table.source, rows=parsed.row_count, errors=parsed.errors)
    work = _Import(conn, kind, parsed, actor, partial)
    try:
        with conn.transaction():
            counts = work.run()
            if work.errors and not partial:
                raise _RefusedError
            batch_id = work.finish(table, started_at, agency_id, counts)
    except _RefusedError:
        errors = tuple(sorted(work.errors, key=lambda e: (e.row_no, e.column)))
        log.info("import %s from %s refused: %d errors", kind.name, table.source, len(errors))
        return ImportResult(kind=kind.name, source=table.source, rows=parsed.row_count, errors=errors)
    errors = tuple(sorted(work.errors, key=lambda e: (e.row_no, e.column)))
    quarantined = len({e.row_no for e in errors})
    inserted, updated = counts
    result = ImportResult(
        kind=kind.name,
        source=table.source,
        rows=parsed.row_count,
        inserted=inserted,
        updated=updated,
        unchanged=parsed.row_count - quarantined - inserted - updated,
        quarantined=quarantined,
        import_batch_id=batch_id,
        errors=errors,
    )
    log.info("import %s from %s: %s", kind.name, table.source, result.summary() | {"errors": len(errors)})
    return result


class _Import:
    """The steps of one import inside its transaction; errors gather in ``errors``."""

    def __init__(
        self, conn: Connection[TupleRow], kind: Kind, parsed: Parsed, actor: Actor, partial: bool
    ) -> None:
        self.conn, self.kind, self.parsed, self.actor, self.partial = conn, kind, parsed, actor, partial
        self.errors: list[RowError] = list(parsed.errors)

    def run(self) -> tuple[int, int]:
        kind = self.kind
        self._stage()
        self._check_refs()
        self._create_ready()
        self._check_duplicates()
        self._check_scope()
        if self.errors and not self.partial:
            raise _RefusedError
        self._drop_bad_rows()
        counts = self._upsert_rounds()
        if kind.self_ref is not None:
            self._check_cycles()
        if kind.after is not None:
            self.conn.execute(query(kind.after), self._audit_params())
        return counts

    # --- staging -------------------------------------------------------------------------------
    def _stage(self) -> None:
        kind, parsed = self.kind, self.parsed
        names = kind.file_columns
        columns = sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.type.pg)) for c in kind.columns
        )
        self.conn.execute(_q("import_create_stage", columns=columns))
        # rows with bad cells are staged too (those cells empty), so that their other cells are checked
        # in SQL as well and a refusal lists every error; they are dropped before anything is written
        values = [_stage_values(c, parsed.columns[c.name]) for c in kind.columns]
        with self.conn.cursor() as cur, cur.copy(_q("import_copy_stage", columns=_ids(names))) as copy:
            copy.set_types(["int4", *_stage_types(kind)])
            for row in zip(range(1, parsed.row_count + 1), *values, strict=True):
                copy.write_row(row)

    def _check_refs(self) -> None:
        kind = self.kind
        for ref in kind.refs:
            self_ref = ref.column == kind.self_ref
            statement = _q(
                "import_unknown_refs",
                column=sql.Identifier(ref.column),
                table=sql.Identifier(ref.table),
                key=sql.Identifier(ref.key),
                self_key=sql.Identifier(ref.key if self_ref else ref.column),
            )
            for row_no, value in self.conn.execute(statement, {"self_ref": self_ref}).fetchall():
                self._error(row_no, ref.column, value, f"unknown {ref.what or ref.table}")

    def _create_ready(self) -> None:
        kind = self.kind
        values: list[sql.Composable] = []
        joins: list[sql.Composable] = []
        for col in kind.columns:
            target = kind.target_of(col)
            if target is not None:
                values.append(sql.SQL("s.{} AS {}").format(sql.Identifier(col.name), sql.Identifier(target)))
        for n, ref in enumerate(kind.refs):
            alias = f"ref{n}"
            values.append(
                sql.SQL("{} AS {}").format(
                    sql.Identifier(alias, ref.value or ref.target), sql.Identifier(ref.target)
                )
            )
            joins.append(
                sql.SQL("LEFT JOIN {} AS {} ON {} = {}").format(
                    sql.Identifier(ref.table),
                    sql.Identifier(alias),
                    sql.Identifier(alias, ref.key),
                    sql.Identifier("s", ref.column),
                )
            )
        for target, constant in kind.fixed.items():
            values.append(sql.SQL("{} AS {}").format(sql.Literal(constant), sql.Identifier(target)))
        self.conn.execute(
            _q("import_create_ready", values=sql.SQL(", ").join(values), joins=sql.SQL(" ").join(joins))
        )

    def _check_duplicates(self) -> None:
        statement = _q("import_duplicate_keys", key=_ids(self.kind.key))
        key_column = self.kind.columns[0].name
        for row_no, first in self.conn.execute(statement).fetchall():
            self._error(row_no, key_column, "", f"the same key as row {first}")

    def _check_scope(self) -> None:
        kind, agency_ids = self.kind, self.actor.agency_ids
        if agency_ids is None:
            return
        owners = ("agency_code", "plate", "pool_code", "card")
        column = next((c.name for c in kind.columns if c.name in owners), kind.columns[0].name)
        if kind.owner is None:
            rows = [r for (r,) in self.conn.execute("SELECT row_no FROM import_stage ORDER BY row_no")]
            for row_no in rows:
                self._error(row_no, column, "", "city-wide data: only an administrator without agencies")
            return
        in_file_tree: sql.Composable = sql.SQL("false")
        if kind.self_ref is not None:
            in_file_tree = sql.SQL(
                "EXISTS (SELECT 1 FROM import_stage AS s JOIN import_stage AS p ON p.code = s.{} "
                "WHERE s.row_no = r.row_no)"
            ).format(sql.Identifier(kind.self_ref))
        statement = _q(
            "import_out_of_scope",
            owner_new=_owner(kind.owner_new or kind.owner, "r"),
            owner_old=_owner(kind.owner, "t"),
            in_file_tree=in_file_tree,
            table=sql.Identifier(kind.table),
            key_match=_key_match(kind),
        )
        ids = sorted(agency_ids)
        for (row_no,) in self.conn.execute(statement, {"agency_ids": ids}).fetchall():
            self._error(row_no, column, "", "not one of the caller's agencies")
        if kind.after == "import_vehicle_terminals":
            taken = self.conn.execute(query("import_terminals_taken"), {"agency_ids": ids}).fetchall()
            for row_no, terminal_id in taken:
                self._error(row_no, "terminal_id", terminal_id, "bound to a vehicle of another agency")

    def _drop_bad_rows(self) -> None:
        bad = sorted({e.row_no for e in self.errors})
        if bad:
            self.conn.execute(query("import_drop_rows"), {"row_nos": bad})
            self.conn.execute(query("import_drop_ready_rows"), {"row_nos": bad})

    # --- writing -------------------------------------------------------------------------------
    def _audit_params(self) -> dict[str, Any]:
        return {
            "api_user_id": self.actor.api_user_id,
            "actor": self.actor.name,
            "action": f"import.{self.kind.name}",
            "entity": self.kind.table,
        }

    def _upsert_rounds(self) -> tuple[int, int]:
        kind = self.kind
        targets = kind.targets
        requeue: sql.Composable = sql.SQL("")
        if kind.requeue is not None:
            requeue = _q(
                "import_requeue",
                time_from=sql.Identifier(kind.requeue[0]),
                time_to=sql.Identifier(kind.requeue[1]),
            )
        upsert = _q(
            "import_upsert",
            id=sql.Identifier(kind.id_column),
            table=sql.Identifier(kind.table),
            key=_ids(kind.key),
            key_match=_key_match(kind),
            targets=_ids(targets),
            excluded=_ids(targets, "excluded"),
            old_values=_ids(targets, "t"),
            owner_up=_owner(kind.owner, "up"),
            requeue=requeue,
        )
        ready: sql.Composable = sql.SQL("true")
        resolve = None
        if kind.self_ref is not None:
            ref = next(r for r in kind.refs if r.column == kind.self_ref)
            ready = sql.SQL(
                "({} IS NOT NULL OR NOT EXISTS (SELECT 1 FROM import_stage AS s "
                "WHERE s.row_no = r.row_no AND s.{} IS NOT NULL))"
            ).format(sql.Identifier("r", ref.target), sql.Identifier(ref.column))
            resolve = _q(
                "import_resolve_tree",
                target=sql.Identifier(ref.target),
                value=sql.Identifier(ref.value or ref.target),
                table=sql.Identifier(ref.table),
                key=sql.Identifier(ref.key),
                column=sql.Identifier(ref.column),
            )
        inserted = updated = 0
        for round_no in range(1, 10_000):
            if self.conn.execute(_q("import_next_round", ready=ready), {"round": round_no}).rowcount == 0:
                break
            row = self.conn.execute(upsert, self._audit_params() | {"round": round_no}).fetchone()
            assert row is not None
            inserted, updated = inserted + row[0], updated + row[1]
            if resolve is None:
                break
            self.conn.execute(resolve)
        if kind.self_ref is not None:
            for (row_no,) in self.conn.execute(query("import_unplaced")).fetchall():
                self._error(row_no, kind.self_ref, "", "a cycle: the agency would be its own ancestor")
            if self.errors and not self.partial:
                raise _RefusedError
        return inserted, updated

    def _check_cycles(self) -> None:
        cycles = self.conn.execute(query("import_agency_cycles")).fetchall()
        for row_no, parent in cycles:
            self._error(row_no, "parent_code", parent, "a cycle: the agency would be its own ancestor")
        if cycles:
            raise _RefusedError  # already written in this transaction: refused even with --partial

    def finish(
        self, table: Table, started_at: datetime, agency_id: int | None, counts: tuple[int, int]
    ) -> int:
        quarantined = {e.row_no: e for e in self.errors}
        inserted, updated = counts
        row = self.conn.execute(
            query("import_insert_batch"),
            {
                "kind": self.kind.name,
                "source": table.source,
                "actor": self.actor.name,
                "api_user_id": self.actor.api_user_id,
                "agency_id": agency_id,
                "partial": self.partial,
                "rows": self.parsed.row_count,
                "inserted": inserted,
                "updated": updated,
                "unchanged": self.parsed.row_count - len(quarantined) - inserted - updated,
                "quarantined": len(quarantined),
                "started_at": started_at,
            },
        ).fetchone()
        assert row is not None
        batch_id: int = row[0]
        if self.errors:
            raws = [_raw(table, e.row_no) for e in self.errors]
            self.conn.execute(
                query("import_insert_quarantine"),
                {
                    "import_batch_id": batch_id,
                    "row_no": [e.row_no for e in self.errors],
                    "column_name": [e.column for e in self.errors],
                    "value": [e.value for e in self.errors],
                    "reason": [e.reason for e in self.errors],
                    "raw": [Jsonb(r) for r in raws],
                },
            )
        return batch_id

    def _error(self, row_no: int, column: str, value: object, reason: str) -> None:
        shown = "" if value is None else str(value)
        self.errors.append(RowError(row_no=row_no, column=column, value=shown, reason=reason))


def _raw(table: Table, row_no: int) -> Mapping[str, object]:
    if not 1 <= row_no <= len(table.rows):
        return {}
    row = table.rows[row_no - 1]
    text = orjson.dumps(dict(zip(table.header, row, strict=False)), default=str)
    loaded: dict[str, object] = orjson.loads(text.replace(b"\\u0000", b""))  # jsonb holds no NUL
    return loaded
