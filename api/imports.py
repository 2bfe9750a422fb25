"""Imports through the API (admin role, agency-scoped, audited row by row): one row or a batch as JSON, or
a file upload, through the same validation path as ``fleetwatch import`` (ingest/imports); the import
batches and their quarantined rows; drivers.

A refused import answers 422 with every error (row, column, value, reason) and writes nothing.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal, get_args

import psycopg
from fastapi import APIRouter, File, Path, Query, UploadFile
from fastapi.responses import JSONResponse
from psycopg.rows import class_row
from pydantic import BaseModel, Field

from api.auth import IMPORTERS, Caller, CallerDep
from api.connection import Conn, Settings
from api.errors import InvalidInputError
from api.schemas import Id, Text
from ingest.imports.kinds import KINDS
from ingest.imports.parse import Datum
from ingest.imports.read import FileError, Table, read_file, table_from_records
from ingest.imports.run import Actor, ImportResult, ImportScopeError, run_import
from store.queries import query

router = APIRouter(prefix="/v1", tags=["imports"])

MAX_UPLOAD_BYTES = 256 * 1024 * 1024
MAX_BATCH_ROWS = 100_000
KindName = Literal[
    "agencies",
    "pools",
    "depots",
    "places",
    "forbidden_zones",
    "vehicles",
    "drivers",
    "fuel_cards",
    "fuel",
    "maintenance",
    "calendar",
    "roads",
    "thresholds",
    "insurance",
    "inspections",
    "rentals",
    "working_hours",
]
assert set(get_args(KindName)) == set(KINDS), "KindName must list ingest.imports.kinds.KINDS"


class ImportErrorRow(BaseModel):
    row: int  # 1 = the first data row; 0 = the file (its header)
    column: str
    value: str
    reason: str


class ImportOut(BaseModel):
    kind: str
    source: str
    refused: bool  # true: nothing was written
    import_batch_id: int | None
    rows: int
    inserted: int
    updated: int
    unchanged: int
    quarantined: int
    errors: list[ImportErrorRow]


class ImportBatch(BaseModel):
    import_batch_id: int
    kind: str
    source: str
    actor: str
    agency_id: int | None
    partial: bool
    rows: int
    inserted: int
    updated: int
    unchanged: int
    quarantined: int
    started_at: Any
    finished_at: Any


class QuarantinedRow(BaseModel):
    row_no: int
    column_name: str
    value: str
    reason: str
    raw: dict[str, Any]


class Driver(BaseModel):
    driver_id: int
    licence_no: str
    name: str
    agency_id: int
    licence_class: str
    licence_expires_on: date
    phone: str


Partial = Annotated[bool, Query(description="write the good rows, quarantine the bad ones")]
DatumQ = Annotated[Datum, Query(description="datum of the coordinates; stored WGS-84")]
AgencyQ = Annotated[Text | None, Query(max_length=64, description="agency code for rows that name none")]
Row = dict[str, Any]


def actor_of(caller: Caller) -> Actor:
    return Actor(
        api_user_id=caller.api_user_id,
        name=caller.name,
        agency_ids=None if caller.all_agencies else caller.agency_ids,
    )


def _answer(result: ImportResult) -> ImportOut | JSONResponse:
    out = ImportOut.model_validate(result.summary())
    if result.refused:
        return JSONResponse(status_code=422, content=out.model_dump(mode="json"))
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class _Request:
    kind: str
    partial: bool
    datum: Datum
    agency: str | None


def _import_sync(url: str, table: Table, actor: Actor, request: _Request) -> ImportResult:
    with psycopg.connect(url, autocommit=True) as conn:
        return run_import(
            conn,
            KINDS[request.kind],
            table,
            actor=actor,
            partial=request.partial,
            datum=request.datum,
            agency_code=request.agency,
        )


async def _import(
    database_url: str, caller: Caller, table: Table, request: _Request
) -> ImportOut | JSONResponse:
    caller.require(IMPORTERS, "importing")
    try:
        result = await asyncio.to_thread(_import_sync, database_url, table, actor_of(caller), request)
    except ImportScopeError as e:
        raise InvalidInputError(str(e)) from e
    return _answer(result)


REFUSED: dict[int | str, dict[str, Any]] = {
    422: {"model": ImportOut, "description": "refused: every error listed, nothing written"}
}


@router.post(
    "/imports/{kind}",
    summary="Import one row (an object) or a batch (a list of objects)",
    response_model=ImportOut,
    responses=REFUSED,
)
async def import_rows(
    *,
    kind: Annotated[KindName, Path()],
    body: Row | Annotated[list[Row], Field(max_length=MAX_BATCH_ROWS)],
    caller: CallerDep,
    settings: Settings,
    partial: Partial = False,
    datum: DatumQ = Datum.WGS84,
    agency: AgencyQ = None,
) -> ImportOut | JSONResponse:
    records = [body] if isinstance(body, dict) else body
    table = table_from_records(records, "api")
    return await _import(
        settings.database_url, caller, table, _Request(kind=kind, partial=partial, datum=datum, agency=agency)
    )


@router.post(
    "/imports/{kind}/file",
    summary="Import a file: .csv, .xlsx, .geojson or .osm.pbf",
    response_model=ImportOut,
    responses=REFUSED,
)
async def import_file(
    *,
    kind: Annotated[KindName, Path()],
    file: Annotated[UploadFile, File()],
    caller: CallerDep,
    settings: Settings,
    partial: Partial = False,
    datum: DatumQ = Datum.WGS84,
    agency: AgencyQ = None,
) -> ImportOut | JSONResponse:
    caller.require(IMPORTERS, "importing")
    data = await file.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise InvalidInputError(f"the file is larger than {MAX_UPLOAD_BYTES} bytes")
    try:
        table = await asyncio.to_thread(read_file, data, file.filename or "upload.csv")
    except FileError as e:
        raise InvalidInputError(f"{file.filename}: {e}") from e
    return await _import(
        settings.database_url, caller, table, _Request(kind=kind, partial=partial, datum=datum, agency=agency)
    )


def _scope(caller: Caller) -> dict[str, Any]:
    return caller.scope() | {"api_user_id": caller.api_user_id}


@router.get("/imports/batches", summary="Import batches, newest first")
async def list_batches(
    *,
    conn: Conn,
    caller: CallerDep,
    kind: Annotated[KindName | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[ImportBatch]:
    caller.require(IMPORTERS, "reading import batches")
    async with conn.cursor(row_factory=class_row(ImportBatch)) as cur:
        await cur.execute(query("import_batches"), _scope(caller) | {"kind": kind, "limit": limit})
        return await cur.fetchall()


@router.get(
    "/imports/batches/{import_batch_id}/quarantine", summary="The rows a batch set aside, with reasons"
)
async def batch_quarantine(*, import_batch_id: Id, conn: Conn, caller: CallerDep) -> list[QuarantinedRow]:
    caller.require(IMPORTERS, "reading import batches")
    async with conn.cursor(row_factory=class_row(QuarantinedRow)) as cur:
        await cur.execute(
            query("import_batch_quarantine"), _scope(caller) | {"import_batch_id": import_batch_id}
        )
        return await cur.fetchall()


@router.get("/drivers", summary="Drivers of the caller's agencies")
async def list_drivers(
    *,
    conn: Conn,
    caller: CallerDep,
    agency_id: Annotated[Id | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=5_000)] = 500,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> list[Driver]:
    params = caller.scope() | {"agency_id": agency_id, "limit": limit, "offset": offset}
    async with conn.cursor(row_factory=class_row(Driver)) as cur:
        await cur.execute(query("api_drivers"), params)
        return await cur.fetchall()
