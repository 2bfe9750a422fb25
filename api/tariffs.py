"""Settlement tariffs per provider pool, as data: read by every role, written by admins, audited.

own_pool (city and district pools): per km + per hour; rental: per day + per hour; ride_hailing: the
provider's fare less a discount. Settlement lines from verified trips come with the track engine.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status
from psycopg import AsyncConnection
from psycopg.rows import TupleRow, class_row

from api.audit import write_audit
from api.auth import ADMINS, Caller, CallerDep
from api.connection import Conn
from api.errors import InvalidInputError, NotFoundError
from api.schemas import Id, Tariff, TariffIn, TariffKind
from store.queries import query

router = APIRouter(prefix="/v1", tags=["settlement"])

# the tariff kind each pool kind is billed by
KIND_OF_POOL = {
    "city": TariffKind.OWN_POOL,
    "district": TariffKind.OWN_POOL,
    "rental": TariffKind.RENTAL,
    "ride_hailing": TariffKind.RIDE_HAILING,
}


async def _tariffs(
    conn: AsyncConnection[TupleRow], *, tariff_id: int | None, pool_id: int | None
) -> list[Tariff]:
    async with conn.cursor(row_factory=class_row(Tariff)) as cur:
        await cur.execute(query("api_tariffs"), {"tariff_id": tariff_id, "pool_id": pool_id})
        return await cur.fetchall()


async def _get(conn: AsyncConnection[TupleRow], tariff_id: int) -> Tariff:
    found = await _tariffs(conn, tariff_id=tariff_id, pool_id=None)
    if not found:
        raise NotFoundError("tariff", tariff_id)
    return found[0]


async def _check_pool(conn: AsyncConnection[TupleRow], body: TariffIn) -> None:
    cur = await conn.execute(query("api_pool"), {"pool_id": body.pool_id})
    pool = await cur.fetchone()
    if pool is None:
        raise InvalidInputError(f"no pool {body.pool_id}")
    expected = KIND_OF_POOL[pool[3]]
    if body.kind is not expected:
        raise InvalidInputError(
            f"pool {body.pool_id} is a {pool[3]} pool, billed by a {expected.value} tariff"
        )


def _params(body: TariffIn) -> dict[str, Any]:
    return body.model_dump() | {"kind": body.kind.value}


@router.get("/tariffs", summary="Tariffs, by pool and validity")
async def list_tariffs(*, conn: Conn, caller: CallerDep, pool_id: Id | None = None) -> list[Tariff]:
    del caller  # any role may read tariffs
    return await _tariffs(conn, tariff_id=None, pool_id=pool_id)


@router.get("/tariffs/{tariff_id}", summary="One tariff")
async def read_tariff(*, tariff_id: Id, conn: Conn, caller: CallerDep) -> Tariff:
    del caller
    return await _get(conn, tariff_id)


async def _audit(
    conn: AsyncConnection[TupleRow],
    caller: Caller,
    action: str,
    *,
    tariff_id: int,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    await write_audit(
        conn,
        caller,
        action=action,
        entity="tariff",
        entity_id=tariff_id,
        agency_id=None,
        before=before,
        after=after,
    )


@router.post("/tariffs", status_code=status.HTTP_201_CREATED, summary="Add a tariff (admin)")
async def create_tariff(*, body: TariffIn, conn: Conn, caller: CallerDep) -> Tariff:
    caller.require(ADMINS, "writing tariffs")
    async with conn.transaction():
        await _check_pool(conn, body)
        cur = await conn.execute(query("api_insert_tariff"), _params(body))
        row = await cur.fetchone()
        assert row is not None
        await _audit(conn, caller, "tariff.create", tariff_id=row[0], before=None, after=row[1])
        return await _get(conn, row[0])


async def _lock(conn: AsyncConnection[TupleRow], tariff_id: int) -> tuple[dict[str, Any], int]:
    cur = await conn.execute(query("api_tariff_row"), {"tariff_id": tariff_id})
    row = await cur.fetchone()
    if row is None:
        raise NotFoundError("tariff", tariff_id)
    return row[0], row[1]


@router.put("/tariffs/{tariff_id}", summary="Replace a tariff's terms (admin; the pool stays)")
async def update_tariff(*, tariff_id: Id, body: TariffIn, conn: Conn, caller: CallerDep) -> Tariff:
    caller.require(ADMINS, "writing tariffs")
    async with conn.transaction():
        before, pool_id = await _lock(conn, tariff_id)
        if body.pool_id != pool_id:
            raise InvalidInputError(
                f"tariff {tariff_id} belongs to pool {pool_id}; add a new tariff for another pool"
            )
        await _check_pool(conn, body)
        cur = await conn.execute(query("api_update_tariff"), _params(body) | {"tariff_id": tariff_id})
        row = await cur.fetchone()
        assert row is not None
        await _audit(conn, caller, "tariff.update", tariff_id=tariff_id, before=before, after=row[0])
        return await _get(conn, tariff_id)


@router.delete(
    "/tariffs/{tariff_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a tariff (admin)"
)
async def delete_tariff(*, tariff_id: Id, conn: Conn, caller: CallerDep) -> None:
    caller.require(ADMINS, "writing tariffs")
    async with conn.transaction():
        before, _ = await _lock(conn, tariff_id)
        await conn.execute(query("api_delete_tariff"), {"tariff_id": tariff_id})
        await _audit(conn, caller, "tariff.delete", tariff_id=tariff_id, before=before, after=None)
