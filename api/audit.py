"""The audit trail: one insert-only row per write, in the write's transaction; and reading it back."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from psycopg import AsyncConnection, Connection
from psycopg.rows import TupleRow, class_row
from psycopg.types.json import Jsonb

from api.auth import AUDIT_READERS, Caller, CallerDep
from api.connection import Conn
from api.schemas import AuditRow, Text
from store.queries import query

router = APIRouter(prefix="/v1", tags=["audit"])


def _audit_params(
    caller: Caller,
    *,
    action: str,
    entity: str,
    entity_id: object,
    agency_id: int | None,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> dict[str, Any]:
    return {
        "api_user_id": caller.api_user_id,
        "actor": caller.name,
        "action": action,
        "entity": entity,
        "entity_id": str(entity_id),
        "agency_id": agency_id,
        "before": None if before is None else Jsonb(before),
        "after": None if after is None else Jsonb(after),
    }


async def write_audit(
    conn: AsyncConnection[TupleRow],
    caller: Caller,
    *,
    action: str,
    entity: str,
    entity_id: object,
    agency_id: int | None,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    """Record a write; call it inside the write's transaction."""
    await conn.execute(
        query("api_insert_audit"),
        _audit_params(
            caller,
            action=action,
            entity=entity,
            entity_id=entity_id,
            agency_id=agency_id,
            before=before,
            after=after,
        ),
    )


def write_audit_sync(
    conn: Connection[TupleRow],
    caller: Caller,
    *,
    action: str,
    entity: str,
    entity_id: object,
    agency_id: int | None,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    """``write_audit`` for the command line's synchronous connection."""
    conn.execute(
        query("api_insert_audit"),
        _audit_params(
            caller,
            action=action,
            entity=entity,
            entity_id=entity_id,
            agency_id=agency_id,
            before=before,
            after=after,
        ),
    )


@router.get("/audit", summary="Audit rows, newest first (admin: all; supervisor: their agencies)")
async def list_audit(
    *,
    conn: Conn,
    caller: CallerDep,
    entity: Annotated[Text | None, Query(max_length=64)] = None,
    entity_id: Annotated[Text | None, Query(max_length=64)] = None,
    before_audit_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AuditRow]:
    caller.require(AUDIT_READERS, "reading the audit")
    params = caller.scope() | {
        "entity": entity,
        "entity_id": entity_id,
        "before_audit_id": before_audit_id,
        "limit": limit,
    }
    async with conn.cursor(row_factory=class_row(AuditRow)) as cur:
        await cur.execute(query("api_audit"), params)
        return await cur.fetchall()
