"""Instants: the code holds epoch microseconds (int64, UTC), the database timestamptz. One conversion."""

from __future__ import annotations

from datetime import UTC, datetime


def utc(us: int | float) -> datetime:
    """The aware UTC datetime of an epoch-µs instant (a timestamptz parameter)."""
    return datetime.fromtimestamp(us / 1e6, tz=UTC)
