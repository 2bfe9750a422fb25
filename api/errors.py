"""The API's domain errors. Each class is one HTTP status; ``api.app`` maps them in one handler."""

from __future__ import annotations


class ApiError(Exception):
    """A request the API refuses, with the reason shown to the caller."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotAuthenticatedError(ApiError):
    """No bearer token, or one that is unknown, expired or revoked (401)."""


class ForbiddenError(ApiError):
    """The caller's role or agencies do not allow this (403)."""


class NotFoundError(ApiError):
    """No such row within the caller's agencies (404)."""

    def __init__(self, entity: str, entity_id: object) -> None:
        super().__init__(f"no {entity} {entity_id}")
        self.entity = entity
        self.entity_id = entity_id


class ConflictError(ApiError):
    """The request contradicts the current state, e.g. an illegal order transition (409)."""


class InvalidInputError(ApiError):
    """Well-formed input that breaks a domain rule (422)."""


class GatewayTimeoutError(ApiError):
    """A terminal behind a gateway did not answer in time, or cannot be reached now (504)."""
