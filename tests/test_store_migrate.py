"""A database migrated by other code is refused with a message that says why, not skipped silently."""

from __future__ import annotations

import logging

import psycopg
import pytest

from store.migrate import MigrationMismatchError, load_migrations, migrate


def test_a_migrated_database_migrates_again_to_nothing(db: str) -> None:
    assert migrate(db) == []


def test_a_version_applied_under_another_name_is_refused(db: str) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("UPDATE schema_migration SET name = 'reserved_jt808' WHERE version = 9")
    with pytest.raises(MigrationMismatchError, match=r"0009 is 'reserved_jt808' there, 'jt808' here"):
        migrate(db)


def test_a_version_unknown_to_this_checkout_is_logged_and_left(
    db: str, caplog: pytest.LogCaptureFixture
) -> None:
    newest = max(m.version for m in load_migrations())
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO schema_migration (version, name) VALUES (%s, 'from_a_newer_release')", (newest + 1,)
        )
    with caplog.at_level(logging.WARNING, logger="store.migrate"):
        assert migrate(db) == []
    assert f"{newest + 1:04d}_from_a_newer_release" in caplog.text
