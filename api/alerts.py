"""The alert queue: filters, one alert with its evidence and review trail, and the review itself.

A review (confirm, or dismiss with a note) sets the alert's status and inserts an ``alert_review``
row and an ``audit`` row in one transaction. An alert may be reviewed again: another row, the status
follows the newest; nothing earlier is rewritten. The rules never rewrite a reviewed alert.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from psycopg import AsyncConnection
from psycopg.rows import TupleRow, class_row
from pydantic import AwareDatetime

from api.audit import write_audit
from api.auth import ALERT_REVIEWERS, Caller, CallerDep
from api.connection import Conn
from api.errors import ConflictError, InvalidInputError, NotFoundError
from api.schemas import Id
from api.schemas_supervision import (
    AlertDetail,
    AlertStatus,
    AlertSummary,
    Review,
    Reviewed,
    ReviewIn,
    ReviewStatus,
)
from rules.alert import AlertKind, Severity
from store.queries import query

router = APIRouter(prefix="/v1", tags=["supervision"])

BigPathId = Annotated[int, Path(ge=1, le=2**62)]
BigId = Annotated[int, Query(ge=1, le=2**62)]
REVIEW_ACTIONS = {ReviewStatus.CONFIRMED: "alert.confirm", ReviewStatus.DISMISSED: "alert.dismiss"}


async def list_alert_rows(
    conn: AsyncConnection[TupleRow], caller: Caller, **filters: Any
) -> list[AlertSummary]:
    params: dict[str, Any] = {
        "alert_id": None,
        "status": None,
        "kind": None,
        "severity": None,
        "vehicle_id": None,
        "agency_id": None,
        "dispatch_order_id": None,
        "start_at": None,
        "end_at": None,
        "include_retracted": False,
        "limit": 1,
        "offset": 0,
    }
    params |= filters | caller.scope()
    async with conn.cursor(row_factory=class_row(AlertSummary)) as cur:
        await cur.execute(query("api_alerts"), params)
        return await cur.fetchall()


async def get_alert(conn: AsyncConnection[TupleRow], caller: Caller, alert_id: int) -> AlertDetail:
    found = await list_alert_rows(conn, caller, alert_id=alert_id, include_retracted=True)
    if not found:
        raise NotFoundError("alert", alert_id)
    cur = await conn.execute(query("api_alert_detail"), {"alert_id": alert_id})
    row = await cur.fetchone()
    assert row is not None
    evidence, trip_ids = row
    async with conn.cursor(row_factory=class_row(Review)) as rcur:
        await rcur.execute(query("api_alert_reviews"), {"alert_id": alert_id})
        reviews = await rcur.fetchall()
    return AlertDetail(evidence=evidence, trip_ids=trip_ids, reviews=reviews, **found[0].model_dump())


@router.get("/alerts", summary="The alert queue in the caller's scope, newest first")
async def list_alerts(
    *,
    conn: Conn,
    caller: CallerDep,
    alert_status: Annotated[AlertStatus | None, Query(alias="status")] = None,
    kind: AlertKind | None = None,
    severity: Severity | None = None,
    vehicle_id: Id | None = None,
    agency_id: Id | None = None,
    dispatch_order_id: BigId | None = None,
    start_at: Annotated[AwareDatetime | None, Query(description="alerts ending at or after this")] = None,
    end_at: Annotated[AwareDatetime | None, Query(description="alerts starting before this")] = None,
    include_retracted: Annotated[
        bool, Query(description="also alerts the rules no longer raise (open ones only are retracted)")
    ] = False,
    limit: Annotated[int, Query(ge=1, le=5_000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> list[AlertSummary]:
    if start_at is not None and end_at is not None and end_at <= start_at:
        raise InvalidInputError("end_at must be after start_at")
    return await list_alert_rows(
        conn,
        caller,
        status=alert_status.value if alert_status else None,
        kind=kind.value if kind else None,
        severity=severity.value if severity else None,
        vehicle_id=vehicle_id,
        agency_id=agency_id,
        dispatch_order_id=dispatch_order_id,
        start_at=start_at,
        end_at=end_at,
        include_retracted=include_retracted,
        limit=limit,
        offset=offset,
    )


@router.get("/alerts/{alert_id}", summary="One alert: evidence, the car's trips then, its reviews")
async def read_alert(*, alert_id: BigPathId, conn: Conn, caller: CallerDep) -> AlertDetail:
    return await get_alert(conn, caller, alert_id)


@router.post(
    "/alerts/{alert_id}/review",
    summary="Confirm or dismiss an alert (supervisor, admin; a dismissal needs a note)",
)
async def review_alert(*, alert_id: BigPathId, body: ReviewIn, conn: Conn, caller: CallerDep) -> Reviewed:
    caller.require(ALERT_REVIEWERS, "reviewing alerts")
    async with conn.transaction():
        cur = await conn.execute(query("api_alert_row"), {"alert_id": alert_id} | caller.scope())
        row = await cur.fetchone()
        if row is None:
            raise NotFoundError("alert", alert_id)
        before, agency_id, _status, retracted_at = row
        if retracted_at is not None and body.status is ReviewStatus.CONFIRMED:
            raise ConflictError(
                f"alert {alert_id} was retracted by the rules at {retracted_at.isoformat()}; it can only be"
                " dismissed"
            )
        cur = await conn.execute(
            query("api_set_alert_status"), {"alert_id": alert_id, "status": body.status.value}
        )
        updated = await cur.fetchone()
        assert updated is not None
        async with conn.cursor(row_factory=class_row(Review)) as rcur:
            await rcur.execute(
                query("api_insert_alert_review"),
                {
                    "alert_id": alert_id,
                    "status": body.status.value,
                    "note": body.note,
                    "reviewer": caller.name,
                },
            )
            review = await rcur.fetchone()
        assert review is not None
        await write_audit(
            conn,
            caller,
            action=REVIEW_ACTIONS[body.status],
            entity="alert",
            entity_id=alert_id,
            agency_id=agency_id,
            before=before,
            after=updated[0] | {"review": review.model_dump(mode="json")},
        )
        return Reviewed(alert=await get_alert(conn, caller, alert_id), review=review)
