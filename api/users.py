"""Users, their agencies and bearer tokens (admin), and ``/v1/me``; the command line's token maker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from fastapi import APIRouter, status
from psycopg.rows import TupleRow, class_row

from api.audit import write_audit, write_audit_sync
from api.auth import ADMINS, CLI_CALLER, Caller, CallerDep, new_token, token_sha256
from api.connection import Conn, Settings
from api.errors import ConflictError, InvalidInputError, NotFoundError
from api.schemas import Id, Me, NewToken, Role, TokenIn, TokenInfo, User, UserIn
from store.queries import query

router = APIRouter(prefix="/v1", tags=["users"])


@router.get("/me", summary="The caller: role, agencies in scope, pools they may use")
async def me(*, caller: CallerDep) -> Me:
    return Me(
        api_user_id=caller.api_user_id or 0,
        name=caller.name,
        role=caller.role,
        all_agencies=caller.all_agencies,
        agency_ids=sorted(caller.agency_ids),
        pool_ids=None if caller.all_agencies else sorted(caller.pool_ids),
    )


@router.get("/users", summary="All users (admin)")
async def list_users(*, conn: Conn, caller: CallerDep) -> list[User]:
    caller.require(ADMINS, "listing users")
    async with conn.cursor(row_factory=class_row(User)) as cur:
        await cur.execute(query("api_users"), {"api_user_id": None})
        return await cur.fetchall()


def _check_agencies(role: Role, agency_ids: list[int]) -> None:
    if role is not Role.ADMIN and not agency_ids:
        raise InvalidInputError(f"a {role.value} needs at least one agency")


@router.post("/users", status_code=status.HTTP_201_CREATED, summary="Create a user (admin)")
async def create_user(*, body: UserIn, conn: Conn, caller: CallerDep) -> User:
    caller.require(ADMINS, "creating users")
    _check_agencies(body.role, body.agency_ids)
    async with conn.transaction():
        cur = await conn.execute(query("api_user_by_name"), {"name": body.name})
        if await cur.fetchone():
            raise ConflictError(f"a user named {body.name!r} exists")
        async with conn.cursor(row_factory=class_row(User)) as ucur:
            await ucur.execute(query("api_insert_user"), {"name": body.name, "role": body.role.value})
            user = await ucur.fetchone()
        assert user is not None
        for agency_id in sorted(set(body.agency_ids)):
            await conn.execute(
                query("api_insert_user_agency"), {"api_user_id": user.api_user_id, "agency_id": agency_id}
            )
        user = user.model_copy(update={"agency_ids": sorted(set(body.agency_ids))})
        await write_audit(
            conn,
            caller,
            action="user.create",
            entity="api_user",
            entity_id=user.api_user_id,
            agency_id=None,
            before=None,
            after=user.model_dump(mode="json"),
        )
    return user


def _expiry(ttl_days: int) -> datetime:
    return datetime.now(UTC) + timedelta(days=ttl_days)


@router.post(
    "/users/{api_user_id}/tokens", status_code=status.HTTP_201_CREATED, summary="Issue a bearer token (admin)"
)
async def create_token(
    *, api_user_id: Id, body: TokenIn, conn: Conn, caller: CallerDep, settings: Settings
) -> NewToken:
    caller.require(ADMINS, "issuing tokens")
    token = new_token()
    async with conn.transaction():
        cur = await conn.execute(query("api_users"), {"api_user_id": api_user_id})
        if await cur.fetchone() is None:
            raise NotFoundError("user", api_user_id)
        params = {
            "api_user_id": api_user_id,
            "token_sha256": token_sha256(token),
            "label": body.label,
            "expires_at": _expiry(body.ttl_days or settings.token_ttl_days),
        }
        async with conn.cursor(row_factory=class_row(TokenInfo)) as tcur:
            await tcur.execute(query("api_insert_token"), params)
            info = await tcur.fetchone()
        assert info is not None
        await write_audit(
            conn,
            caller,
            action="token.create",
            entity="api_token",
            entity_id=info.api_token_id,
            agency_id=None,
            before=None,
            after=info.model_dump(mode="json"),
        )
    return NewToken(token=token, **info.model_dump())


@router.delete("/tokens/{api_token_id}", summary="Revoke a bearer token (admin)")
async def revoke_token(*, api_token_id: Id, conn: Conn, caller: CallerDep) -> TokenInfo:
    caller.require(ADMINS, "revoking tokens")
    async with conn.transaction():
        async with conn.cursor(row_factory=class_row(TokenInfo)) as cur:
            await cur.execute(query("api_revoke_token"), {"api_token_id": api_token_id})
            info = await cur.fetchone()
        if info is None:
            raise NotFoundError("unrevoked token", api_token_id)
        await write_audit(
            conn,
            caller,
            action="token.revoke",
            entity="api_token",
            entity_id=api_token_id,
            agency_id=None,
            before=info.model_copy(update={"revoked_at": None}).model_dump(mode="json"),
            after=info.model_dump(mode="json"),
        )
    return info


def issue_token(
    conn: psycopg.Connection[TupleRow],
    *,
    name: str,
    role: Role | None,
    agency_codes: list[str],
    ttl_days: int,
    label: str = "cli",
    actor: Caller = CLI_CALLER,
) -> tuple[dict[str, Any], str]:
    """The command line's way in: create the user ``name`` if new (``role`` and ``agency_codes`` are
    then needed), issue a token, audit both; returns the user row and the token."""
    with conn.transaction():
        row = conn.execute(query("api_user_by_name"), {"name": name}).fetchone()
        if row is None:
            if role is None:
                raise InvalidInputError(f"no user {name!r}: give --role (and --agency) to create one")
            found: dict[int, str] = dict(
                conn.execute(query("api_agency_ids_by_code"), {"codes": agency_codes}).fetchall()
            )
            missing = sorted(set(agency_codes) - set(found.values()))
            if missing:
                raise InvalidInputError(f"no agency with code {', '.join(missing)}")
            agency_ids = sorted(found)
            _check_agencies(role, agency_ids)
            created = UserIn(name=name, role=role, agency_ids=agency_ids)
            new = conn.execute(query("api_insert_user"), {"name": name, "role": role.value}).fetchone()
            assert new is not None
            api_user_id = int(new[0])
            for agency_id in agency_ids:
                conn.execute(
                    query("api_insert_user_agency"), {"api_user_id": api_user_id, "agency_id": agency_id}
                )
            write_audit_sync(
                conn,
                actor,
                action="user.create",
                entity="api_user",
                entity_id=api_user_id,
                agency_id=None,
                before=None,
                after={"api_user_id": api_user_id} | created.model_dump(mode="json"),
            )
        else:
            api_user_id = int(row[0])
        token = new_token()
        info = conn.execute(
            query("api_insert_token"),
            {
                "api_user_id": api_user_id,
                "token_sha256": token_sha256(token),
                "label": label,
                "expires_at": _expiry(ttl_days),
            },
        ).fetchone()
        assert info is not None
        write_audit_sync(
            conn,
            actor,
            action="token.create",
            entity="api_token",
            entity_id=info[0],
            agency_id=None,
            before=None,
            after={"api_token_id": info[0], "api_user_id": api_user_id, "label": label},
        )
        user = conn.execute(query("api_users"), {"api_user_id": api_user_id}).fetchone()
        assert user is not None
    return {"api_user_id": user[0], "name": user[1], "role": user[2], "agency_ids": user[5]}, token
