"""The fix record is declared once (store/fixcolumns.py): a new column is one edit there plus its migration.

The proof adds a throw-away column with exactly that and follows it from the MQTT payload through a real
Mosquitto, the ingest worker (its store process too), TimescaleDB, the binary COPY reader and into the
live engine's track arrays; a bad value is quarantined, a changed value is a conflict, latest_position
keeps it. The drift test holds the declaration to the migrated tables; the COPY reader refuses what does
not match its layout.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import psycopg
import pytest

from store import fixcolumns
from store.copy import CopyFormatError, binary_copy_payload, read_binary_copy
from store.fixcolumns import FixColumn, SqlType
from store.fixsql import engine_layout
from tests.conftest import Broker, ingest_settings, register_fleet, running_worker, scalar, wait_until
from tests.test_ingest_pipeline import LAT, LON, fix, quarantined, rows, send
from tracks.params import Params
from tracks.pipeline import VehicleResult
from tracks.track import Track
from tracks.worker import process_dirty

CABIN = FixColumn(
    name="cabin_temp_c",
    sql_type=SqlType.FLOAT4,
    unit="°C",
    payload_key="cabin_temp_c",
    engine=True,
    latest=True,
    compared=True,
)


def _table_columns(url: str, table: str) -> dict[str, tuple[str, bool]]:
    found = rows(
        url,
        "SELECT column_name, data_type, is_nullable = 'YES' FROM information_schema.columns"
        " WHERE table_schema = 'public' AND table_name = %s",
        (table,),
    )
    return {name: (data_type, nullable) for name, data_type, nullable in found}


def test_declaration_matches_the_migrated_tables(db: str) -> None:
    declared = fixcolumns.fix_columns()
    assert len({c.name for c in declared}) == len(declared), "a column is declared twice"
    assert _table_columns(db, "position") == {c.name: (c.sql_type.value, c.nullable) for c in declared}
    latest = _table_columns(db, "latest_position")
    assert latest == {c.name: (c.sql_type.value, c.nullable) for c in declared if c.latest}
    keys = [c.payload_key for c in declared if c.payload_key is not None]
    assert len(set(keys)) == len(keys), "two columns read the same payload key"
    assert [c.name for c in declared if c.engine][:2] == ["vehicle_id", "fix_at"]


def test_a_new_fix_column_flows_from_the_payload_to_the_engine(
    db: str, broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the one edit: the declaration gains a column …
    monkeypatch.setattr(fixcolumns, "FIX_COLUMNS", (*fixcolumns.FIX_COLUMNS, CABIN))
    # … and its migration
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("ALTER TABLE position ADD COLUMN cabin_temp_c real")
        conn.execute("ALTER TABLE latest_position ADD COLUMN cabin_temp_c real")
    test_declaration_matches_the_migrated_tables(db)

    fleet = register_fleet(db, 1)
    topic = f"fleet/{fleet.terminal_ids[0]}/pos"
    start_s = math.floor(time.time()) - 900
    fixes: list[dict[str, Any]] = [
        fix(start_s + 10 * i, lon=LON + i * 1e-4, speed_kmh=3.0, cabin_temp_c=20 + i / 2) for i in range(30)
    ]
    del fixes[5]["cabin_temp_c"]  # not reported: NULL in the database, NaN in the engine
    expected = [None if i == 5 else 20 + i / 2 for i in range(30)]
    bad = fix(start_s + 400, lon=LON + 0.01, cabin_temp_c="warm")
    changed = dict(fixes[0], cabin_temp_c=99.5)  # the same fix time, only the new column differs
    with running_worker(ingest_settings(db, broker)):
        send(broker, [(topic, {"fixes": fixes}), (topic, bad)])
        wait_until(lambda: scalar(db, "SELECT count(*) FROM position") == 30, 60, what="30 stored fixes")
        wait_until(lambda: quarantined(db) == {"wrong_type": 1}, 60, what="the bad value quarantined")
        send(broker, [(topic, changed), (topic, fixes[1])])
        wait_until(lambda: quarantined(db) == {"wrong_type": 1, "conflict": 1}, 60, what="the conflict")
        wait_until(
            lambda: scalar(db, "SELECT sum(fixes_duplicate) FROM ingest_batch") == 1, 60, what="a duplicate"
        )

    stored = rows(db, "SELECT cabin_temp_c FROM position ORDER BY fix_at")
    assert [value for (value,) in stored] == expected
    assert rows(db, "SELECT lon, cabin_temp_c FROM latest_position") == [(fixes[-1]["lon"], 34.5)]
    assert "cabin_temp_c is not a number" in scalar(
        db, "SELECT detail FROM quarantine WHERE reason = 'wrong_type'"
    )
    conflict = scalar(db, "SELECT detail FROM quarantine WHERE reason = 'conflict'")
    assert "cabin_temp_c 20.0" in conflict

    seen: list[Track] = []

    def keep_track(conn: psycopg.Connection[Any], result: VehicleResult, **_: Any) -> None:
        seen.append(result.track)

    with psycopg.connect(db, autocommit=True) as conn:
        assert process_dirty(conn, "test-engine", Params(), after=keep_track) is not None
    (track,) = seen
    cabin = track.extra["cabin_temp_c"]
    assert cabin.dtype == np.float32 and not cabin.flags.writeable
    assert np.isnan(cabin[5])
    assert cabin[np.arange(30) != 5].tolist() == [v for v in expected if v is not None]
    assert track.lat.tolist() == [LAT] * 30
    # the extra column travels with the rows the engine takes
    assert track.take(np.array([0, 29])).extra["cabin_temp_c"].tolist() == [20.0, 34.5]


def _stream(**columns: Any) -> bytes:
    return binary_copy_payload(list(columns.values()))


def test_copy_reader_reads_what_the_writer_wrote() -> None:
    t_us = np.array([1_700_000_000_000_000, 1_700_000_010_000_000], np.int64)
    payload = binary_copy_payload(
        [
            ("vehicle_id", "int4", np.array([7, 7], np.int32)),
            ("fix_at", "timestamptz", t_us),
            ("speed_kmh", "float4", np.array([1.5, np.nan], np.float32)),
            ("ignition", "int2", np.array([1, -1], np.int16)),
        ]
    )
    layout = [
        ("vehicle_id", "int4"),
        ("fix_at", "timestamptz"),
        ("speed_kmh", "float4"),
        ("ignition", "int2"),
    ]
    read = read_binary_copy(payload, layout)
    assert read["vehicle_id"].tolist() == [7, 7] and read["fix_at"].tolist() == t_us.tolist()
    assert read["speed_kmh"][0] == 1.5 and np.isnan(read["speed_kmh"][1])
    assert read["ignition"].tolist() == [1, -1] and read["ignition"].dtype == np.int16
    empty = binary_copy_payload([("vehicle_id", "int4", np.zeros(0, np.int32))])
    assert len(read_binary_copy(empty, [("vehicle_id", "int4")])["vehicle_id"]) == 0


def test_copy_reader_refuses_nulls_wrong_layout_and_truncation() -> None:
    values = np.array([1.0, 2.0, 3.0])
    with_null = binary_copy_payload(
        [("a", "int4", np.arange(3, dtype=np.int32)), ("b", "float8", values, np.array([False, True, False]))]
    )
    layout = [("a", "int4"), ("b", "float8")]
    with pytest.raises(CopyFormatError, match="NULL in column b"):
        read_binary_copy(with_null, layout)
    whole = binary_copy_payload([("a", "int4", np.arange(3, dtype=np.int32)), ("b", "float8", values)])
    assert read_binary_copy(whole, layout)["b"].tolist() == [1.0, 2.0, 3.0]
    with pytest.raises(CopyFormatError, match="cut short"):
        read_binary_copy(whole[:-7], layout)
    with pytest.raises(CopyFormatError, match="8 bytes wide, expected 4"):
        read_binary_copy(whole, [("a", "int4"), ("b", "float4")])
    with pytest.raises(CopyFormatError, match="2 columns, expected 3"):
        read_binary_copy(whole, [*layout, ("c", "int2")])
    with pytest.raises(CopyFormatError, match="signature"):
        read_binary_copy(b"not a copy stream at all", layout)


def test_engine_reads_the_declared_engine_columns_with_sentinel_types() -> None:
    layout = dict(engine_layout())
    assert layout == {
        "vehicle_id": "int4",
        "fix_at": "timestamptz",
        "lon": "float8",
        "lat": "float8",
        "speed_kmh": "float4",
        "ignition": "int2",  # a nullable boolean comes as -1 / 0 / 1
        "odometer_km": "float8",
    }
