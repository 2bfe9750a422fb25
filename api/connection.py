"""The request's database connection, from the app's pool (autocommit: writes open their own transaction)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from api.settings import ApiSettings

DbPool = AsyncConnectionPool[AsyncConnection[TupleRow]]


def app_settings(request: Request) -> ApiSettings:
    settings = request.app.state.settings
    assert isinstance(settings, ApiSettings)
    return settings


async def connection(request: Request) -> AsyncIterator[AsyncConnection[TupleRow]]:
    pool = request.app.state.db_pool
    assert isinstance(pool, AsyncConnectionPool)
    async with pool.connection() as conn:
        yield conn


Conn = Annotated[AsyncConnection[TupleRow], Depends(connection)]
Settings = Annotated[ApiSettings, Depends(app_settings)]
