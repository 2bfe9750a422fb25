"""Bearer tokens, callers and their scope: roles, the agencies a caller sees, the pools they may use."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.connection import Conn
from api.errors import ForbiddenError, NotAuthenticatedError
from api.schemas import Role
from store.queries import query

TOKEN_PREFIX = "fw_"

# who may do what (reads are open to every role, within the caller's agencies)
FLEET_WRITERS = frozenset({Role.ADMIN, Role.DISPATCHER})
ORDER_WRITERS = frozenset({Role.ADMIN, Role.DISPATCHER})
ORDER_APPROVERS = frozenset({Role.ADMIN, Role.SUPERVISOR})
DISPATCHERS = frozenset({Role.ADMIN, Role.DISPATCHER})  # nearest free car
PLANNERS = frozenset({Role.ADMIN, Role.DISPATCHER, Role.SUPERVISOR})  # merge suggestions
AUDIT_READERS = frozenset({Role.ADMIN, Role.SUPERVISOR})
ALERT_REVIEWERS = frozenset({Role.ADMIN, Role.SUPERVISOR})
SETTLEMENT_WRITERS = frozenset({Role.ADMIN})  # provider reports
IMPORTERS = frozenset({Role.ADMIN})  # reference data, provider records, calendar, thresholds, roads
ADMINS = frozenset({Role.ADMIN})


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_sha256(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


@dataclass(frozen=True, slots=True, kw_only=True)
class Caller:
    api_user_id: int | None  # None: the command line
    name: str
    role: Role
    agency_ids: frozenset[int]  # their agencies and every agency below them
    pool_ids: frozenset[int]  # pools they may draw cars from

    @property
    def all_agencies(self) -> bool:
        """An administrator given no agencies sees all; one given agencies is scoped to them."""
        return self.role is Role.ADMIN and not self.agency_ids

    def scope(self) -> dict[str, Any]:
        """Query parameters of the agency scope (see store/queries/api.sql)."""
        return {
            "all_agencies": self.all_agencies,
            "agency_ids": sorted(self.agency_ids),
            "all_pools": self.all_agencies,
            "pool_ids": sorted(self.pool_ids),
        }

    def sees_agency(self, agency_id: int | None) -> bool:
        return self.all_agencies or (agency_id is not None and agency_id in self.agency_ids)

    def may_use_pool(self, pool_id: int) -> bool:
        return self.all_agencies or pool_id in self.pool_ids

    def require(self, roles: frozenset[Role], what: str) -> None:
        if self.role not in roles:
            allowed = ", ".join(sorted(r.value for r in roles))
            raise ForbiddenError(f"{what} needs one of the roles {allowed}; {self.name} is {self.role.value}")

    def require_agency(self, agency_id: int | None) -> None:
        if not self.sees_agency(agency_id):
            raise ForbiddenError(f"agency {agency_id} is not one of {self.name}'s agencies")

    def require_pool(self, pool_id: int) -> None:
        if not self.may_use_pool(pool_id):
            raise ForbiddenError(f"pool {pool_id} is not a pool {self.name} may use")


CLI_CALLER = Caller(
    api_user_id=None, name="cli", role=Role.ADMIN, agency_ids=frozenset(), pool_ids=frozenset()
)

bearer = HTTPBearer(
    auto_error=False, description="A token from `fleetwatch api token` or POST /v1/users/{id}/tokens."
)


async def current_caller(
    conn: Conn, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Caller:
    if credentials is None:
        raise NotAuthenticatedError("an Authorization: Bearer <token> header is required")
    cur = await conn.execute(
        query("api_caller_by_token"), {"token_sha256": token_sha256(credentials.credentials)}
    )
    row = await cur.fetchone()
    if row is None:
        raise NotAuthenticatedError("the bearer token is unknown, expired or revoked")
    api_user_id, name, role, agency_ids, pool_ids = row
    return Caller(
        api_user_id=api_user_id,
        name=name,
        role=Role(role),
        agency_ids=frozenset(agency_ids),
        pool_ids=frozenset(pool_ids),
    )


CallerDep = Annotated[Caller, Depends(current_caller)]
