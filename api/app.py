"""``create_app(settings)``: the FastAPI application under /v1, its connection pool and error mapping."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from api import (
    alerts,
    audit,
    downlink,
    fleet,
    imports,
    nearest,
    operating,
    orders,
    settlement,
    stream,
    tariffs,
    trips,
    usage,
    users,
)
from api.errors import (
    ApiError,
    ConflictError,
    ForbiddenError,
    GatewayTimeoutError,
    InvalidInputError,
    NotAuthenticatedError,
    NotFoundError,
)
from api.schemas import Problem
from api.settings import ApiSettings

log = logging.getLogger(__name__)

STATUS_OF_ERROR: dict[type[ApiError], int] = {
    NotAuthenticatedError: 401,
    ForbiddenError: 403,
    NotFoundError: 404,
    ConflictError: 409,
    InvalidInputError: 422,
    GatewayTimeoutError: 504,
}

# Constraint violations that reach the database are the caller's: a duplicate or an overlap is a
# conflict, a dangling reference or an out-of-range value is invalid input. Nothing else is mapped.
STATUS_OF_DB_ERROR: tuple[tuple[type[psycopg.Error], int, str], ...] = (
    (psycopg.errors.UniqueViolation, 409, "conflict"),
    (psycopg.errors.ExclusionViolation, 409, "conflict"),
    (psycopg.errors.ForeignKeyViolation, 422, "invalid_input"),
    (psycopg.errors.CheckViolation, 422, "invalid_input"),
    (psycopg.errors.NotNullViolation, 422, "invalid_input"),
    (psycopg.DataError, 422, "invalid_input"),
)

ERROR_NAMES = {
    NotAuthenticatedError: "not_authenticated",
    ForbiddenError: "forbidden",
    NotFoundError: "not_found",
    ConflictError: "conflict",
    InvalidInputError: "invalid_input",
    GatewayTimeoutError: "gateway_timeout",
}

PROBLEM_RESPONSES: dict[int | str, dict[str, object]] = {
    code: {"model": Problem, "description": name.replace("_", " ")}
    for code, name in ((401, "not_authenticated"), (403, "forbidden"), (404, "not_found"), (409, "conflict"))
}


def problem(exc: Exception) -> tuple[int, Problem] | None:
    """The HTTP status and body of a domain error or a constraint violation; None for anything else."""
    if isinstance(exc, ApiError):
        return STATUS_OF_ERROR[type(exc)], Problem(error=ERROR_NAMES[type(exc)], detail=exc.reason)
    for error_type, status, name in STATUS_OF_DB_ERROR:
        if isinstance(exc, error_type):
            diag = exc.diag if isinstance(exc, psycopg.Error) else None
            detail = (diag.message_primary if diag else None) or str(exc)
            if diag and diag.message_detail:
                detail = f"{detail}: {diag.message_detail}"
            return status, Problem(error=name, detail=detail)
    return None


async def _handle(_request: Request, exc: Exception) -> JSONResponse:
    found = problem(exc)
    if found is None:  # pragma: no cover - only the mapped classes are registered
        raise exc
    status, body = found
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


async def _handle_validation(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    reasons = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ()))
        reasons.append(f"{where}: {error.get('msg', 'invalid')}")
    body = {"error": "invalid_input", "detail": "; ".join(reasons), "errors": jsonable_errors(exc)}
    return JSONResponse(body, status_code=422)


def jsonable_errors(exc: RequestValidationError) -> list[dict[str, object]]:
    return [
        {
            "loc": [str(p) for p in e.get("loc", ())],
            "msg": str(e.get("msg", "")),
            "type": str(e.get("type", "")),
        }
        for e in exc.errors()
    ]


def create_app(settings: ApiSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = AsyncConnectionPool(
            settings.database_url,
            min_size=settings.db_pool_min,
            max_size=max(settings.db_pool_max, settings.db_pool_min),
            kwargs={"autocommit": True},
            connection_class=AsyncConnection,
            open=False,
            name="fleetwatch-api",
        )
        await pool.open(wait=True, timeout=30)
        app.state.db_pool = pool
        log.info("API ready: pool of %d–%d connections", settings.db_pool_min, settings.db_pool_max)
        try:
            yield
        finally:
            await pool.close()

    app = FastAPI(
        title="fleetwatch",
        version="1",
        summary="Dispatch, supervision and settlement of a government motor pool",
        description="Coordinates are (lon, lat) in WGS-84 degrees unless a `datum` says GCJ-02."
        " Every write is audited. Errors are `{error, detail}` with the reason.",
        lifespan=lifespan,
        responses=PROBLEM_RESPONSES,
    )
    app.state.settings = settings
    handled: list[type[Exception]] = [ApiError, *(t for t, _, _ in STATUS_OF_DB_ERROR)]
    for error_type in handled:
        app.add_exception_handler(error_type, _handle)
    app.add_exception_handler(RequestValidationError, _handle_validation)
    # fixed paths before their parameterised siblings: /v1/vehicles/nearest before
    # /v1/vehicles/{vehicle_id}, /v1/alerts/stream before /v1/alerts/{alert_id},
    # a statement's .csv before the statement
    routers = (
        nearest.router,
        users.router,
        fleet.router,
        orders.router,
        tariffs.router,
        audit.router,
        trips.router,
        stream.router,
        alerts.router,
        usage.router,
        settlement.router,
        operating.router,
        imports.router,
        downlink.router,
    )
    for router in routers:
        app.include_router(router)
    return app
