"""``GET /v1/alerts/stream``: server-sent events of new alerts in the caller's scope.

The stream polls the alert table for ids above the last one sent (alerts are numbered as they are
raised), a short-lived pooled connection per poll, so an open stream holds no connection. Each event
is ``event: alert``, ``id: <alert_id>``, data the alert as JSON. A client that reconnects with
``Last-Event-ID`` gets what was raised since; without it the stream starts at the newest alert.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials
from fastapi.sse import EventSourceResponse, ServerSentEvent
from psycopg.rows import class_row
from psycopg_pool import AsyncConnectionPool

from api.auth import Caller, bearer, current_caller
from api.connection import DbPool
from api.errors import InvalidInputError
from api.schemas import Id
from api.schemas_supervision import AlertSummary
from rules.alert import AlertKind
from store.queries import query

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", tags=["supervision"])

POLL_S = 1.0  # how often an open stream looks for new alerts
KEEPALIVE_S = 15.0  # a comment line this often keeps proxies from closing a quiet stream
RETRY_MS = 3_000  # the reconnection delay the browser is told
BATCH = 500  # alerts read per poll


def _pool(request: Request) -> DbPool:
    pool: DbPool = request.app.state.db_pool
    assert isinstance(pool, AsyncConnectionPool)
    return pool


async def stream_caller(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Caller:
    """The caller, with a connection held only while the token is looked up."""
    async with _pool(request).connection() as conn:
        return await current_caller(conn, credentials)


def last_seen_alert_id(
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=64)] = None,
) -> int | None:
    """The id of the last event the client saw, checked before the stream starts."""
    if last_event_id is None:
        return None
    text = last_event_id.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise InvalidInputError(f"Last-Event-ID must be an alert id (digits), not {last_event_id[:40]!r}")
    return int(text)


@router.get(
    "/alerts/stream",
    response_class=EventSourceResponse,
    summary="Server-sent events of new alerts in the caller's scope (supports Last-Event-ID)",
)
async def stream_alerts(
    *,
    request: Request,
    caller: Annotated[Caller, Depends(stream_caller)],
    last_seen: Annotated[int | None, Depends(last_seen_alert_id)],
    agency_id: Id | None = None,
    kind: AlertKind | None = None,
) -> AsyncIterator[ServerSentEvent]:
    pool = _pool(request)
    after = last_seen
    if after is None:
        async with pool.connection() as conn:
            newest = await conn.execute(query("api_last_alert_id"))
            row = await newest.fetchone()
            after = int(row[0]) if row else 0
    params = caller.scope() | {"agency_id": agency_id, "kind": kind.value if kind else None, "limit": BATCH}
    log.info("alert stream for %s opened after alert %d", caller.name, after)
    yield ServerSentEvent(comment="fleetwatch alerts", retry=RETRY_MS)
    quiet_since = time.monotonic()
    while not await request.is_disconnected():
        async with pool.connection() as conn, conn.cursor(row_factory=class_row(AlertSummary)) as cur:
            await cur.execute(query("api_alerts_after"), params | {"after_alert_id": after})
            alerts = await cur.fetchall()
        for alert in alerts:
            after = alert.alert_id
            yield ServerSentEvent(event="alert", id=str(alert.alert_id), data=alert)
        if alerts:
            quiet_since = time.monotonic()
            if len(alerts) == BATCH:
                continue
        elif time.monotonic() - quiet_since >= KEEPALIVE_S:
            quiet_since = time.monotonic()
            yield ServerSentEvent(comment="keepalive")
        await asyncio.sleep(POLL_S)
    log.info("alert stream for %s closed after alert %d", caller.name, after)
