"""Publish → Mosquitto → ingest worker → TimescaleDB, with the real broker and database."""

from __future__ import annotations

import time
from typing import Any

import orjson
import psycopg
import pytest

from ingest.mqtt_publish import Publisher
from ingest.reasons import Reason
from tests.conftest import Broker, ingest_settings, register_fleet, running_worker, scalar, wait_until

LON, LAT = 119.97, 31.81


def fix(t_s: float, lon: float = LON, lat: float = LAT, **fields: Any) -> dict[str, Any]:
    return {"time": round(t_s * 1000), "lon": lon, "lat": lat, **fields}


def send(broker: Broker, messages: list[tuple[str, Any]]) -> None:
    publisher = Publisher(port=broker.port, client_id=f"test-pub-{time.monotonic_ns()}")
    try:
        assert publisher.wait_connected()
        encoded = [(t, p if isinstance(p, bytes) else orjson.dumps(p)) for t, p in messages]
        result = publisher.publish(encoded, timeout_s=30)
        assert result.acknowledged == len(messages)
    finally:
        publisher.close()


def rows(url: str, sql: Any, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def quarantined(url: str) -> dict[str, int]:
    return dict(rows(url, "SELECT reason, count(*) FROM quarantine GROUP BY reason"))


def test_single_fixes_are_stored_with_their_fields(db: str, broker: Broker) -> None:
    fleet = register_fleet(db, 2)
    now = time.time()
    full = fix(
        now - 20,
        speed_kmh=42.5,
        heading_deg=90,
        altitude_m=12,
        satellites=11,
        hdop=0.9,
        valid=True,
        ignition=True,
        odometer_km=12345.6,
        seq=7,
    )
    bare = fix(now - 10, lon=LON + 0.001)
    with running_worker(ingest_settings(db, broker)):
        send(
            broker,
            [(f"fleet/{fleet.terminal_ids[0]}/pos", full), (f"fleet/{fleet.terminal_ids[0]}/pos", bare)],
        )
        wait_until(lambda: scalar(db, "SELECT count(*) FROM position") == 2, what="2 rows")
    stored = rows(
        db,
        "SELECT vehicle_id, extract(epoch FROM fix_at)::float8, lon, lat, speed_kmh, heading_deg, altitude_m,"
        " satellites, hdop, valid, ignition, odometer_km, seq FROM position ORDER BY fix_at",
    )
    vid = fleet.vehicle_ids[0]
    assert stored[0] == (
        vid,
        round(now - 20, 3),
        LON,
        LAT,
        42.5,
        90.0,
        12.0,
        11,
        pytest.approx(0.9),
        True,
        True,
        12345.6,
        7,
    )
    assert stored[1] == (
        vid,
        round(now - 10, 3),
        LON + 0.001,
        LAT,
        None,
        None,
        None,
        None,
        None,
        True,
        None,
        None,
        None,
    )
    latest = rows(db, "SELECT vehicle_id, lon FROM latest_position")
    assert latest == [(vid, LON + 0.001)]
    assert scalar(db, "SELECT sum(fixes_stored) FROM ingest_batch") == 2
    assert quarantined(db) == {}


def test_batch_and_list_payloads_are_stored(db: str, broker: Broker) -> None:
    fleet = register_fleet(db, 2)
    now = time.time()
    batch = {"fixes": [fix(now - 100 + i, lon=LON + i * 1e-4) for i in range(10)]}
    listed = [fix(now - 100 + i, lon=LON + i * 1e-4) for i in range(5)]
    iso = {"time": "2026-01-02T03:04:05.250+08:00", "lon": LON, "lat": LAT}
    with running_worker(ingest_settings(db, broker, filters={"max_past_s": 10 * 365 * 86400.0})):
        send(
            broker,
            [
                (f"fleet/{fleet.terminal_ids[0]}/pos", batch),
                (f"fleet/{fleet.terminal_ids[1]}/pos", listed),
                (f"fleet/{fleet.terminal_ids[1]}/pos", iso),
            ],
        )
        wait_until(lambda: scalar(db, "SELECT count(*) FROM position") == 16, what="16 rows")
    per_vehicle = dict(rows(db, "SELECT vehicle_id, count(*) FROM position GROUP BY vehicle_id"))
    assert per_vehicle == {fleet.vehicle_ids[0]: 10, fleet.vehicle_ids[1]: 6}
    iso_at = scalar(
        db, "SELECT fix_at AT TIME ZONE 'UTC' FROM position WHERE fix_at < now() - interval '100 days'"
    )
    assert str(iso_at) == "2026-01-01 19:04:05.250000"


def test_owntracks_location_is_a_fix_and_other_types_are_quarantined(db: str, broker: Broker) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        register_fleet(db, 1)
        conn.execute(
            "INSERT INTO terminal (terminal_id, vehicle_id, protocol)"
            " SELECT 'alice:phone', vehicle_id, 'owntracks' FROM vehicle LIMIT 1"
        )
    now = int(time.time())
    location = {
        "_type": "location",
        "tst": now - 5,
        "lat": LAT,
        "lon": LON,
        "vel": 36,
        "cog": 270,
        "acc": 8,
        "alt": 20,
        "batt": 80,
        "tid": "al",
    }
    with running_worker(ingest_settings(db, broker)):
        send(
            broker,
            [("owntracks/alice/phone", location), ("owntracks/alice/phone", {"_type": "lwt", "tst": now})],
        )
        wait_until(
            lambda: scalar(db, "SELECT count(*) FROM position") == 1 and bool(quarantined(db)), what="rows"
        )
    stored = rows(
        db,
        "SELECT extract(epoch FROM fix_at)::bigint, lon, lat, speed_kmh, heading_deg, accuracy_m,"
        " altitude_m FROM position",
    )
    assert stored == [(now - 5, LON, LAT, 36.0, 270.0, 8.0, 20.0)]
    assert quarantined(db) == {"not_a_position": 1}


def test_every_reason_code_is_quarantined(db: str, broker: Broker) -> None:
    fleet = register_fleet(db, 3)
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO terminal (terminal_id, vehicle_id) VALUES ('bob:phone', %s)", (fleet.vehicle_ids[0],)
        )
    t1, t2, t3 = (f"fleet/{t}/pos" for t in fleet.terminal_ids)
    now = time.time()
    messages: list[tuple[str, Any]] = [
        (t1, b"x" * (300 * 1024)),  # oversized_payload
        ("fleet/has space/pos", fix(now)),  # bad_topic
        (t1, b'{"time": 1, "lon": '),  # malformed_json
        (t1, b'"just a string"'),  # wrong_type (message)
        (t1, {"time": now * 1000, "lon": "119.9", "lat": LAT}),  # wrong_type (fix)
        ("owntracks/bob/phone", {"_type": "card"}),  # not_a_position
        ("fleet/NOPE/pos", fix(now)),  # unknown_terminal
        (t1, fix(now - 60, valid=False)),  # invalid_fix
        (t1, fix(now - 59, lon=0.0, lat=0.0)),  # null_island
        (t1, fix(now - 58, lon=190.0)),  # out_of_range
        (t1, fix(now - 57, speed_kmh=-3)),  # bad_value
        (t1, fix(now - 56, hdop=99.0)),  # low_accuracy
        (t1, fix(now + 3600)),  # future_time
        (t1, fix(now - 90 * 86400)),  # past_time
        (
            t2,
            {"fixes": [fix(now - 30), fix(now - 20, lon=LON + 0.5), fix(now - 10, lon=LON + 0.0001)]},
        ),  # spike
        (t3, fix(now - 40)),
        (t3, fix(now - 40, lon=LON + 0.002)),  # conflict
    ]
    with running_worker(ingest_settings(db, broker)):
        send(broker, messages[:-1])
        wait_until(lambda: sum(quarantined(db).values()) >= 15, what="15 quarantine rows")
        send(broker, messages[-1:])
        wait_until(lambda: "conflict" in quarantined(db), what="conflict")
    expected = {r.value for r in Reason} - {"store_error"}
    assert set(quarantined(db)) == expected
    details = dict(
        rows(
            db,
            "SELECT reason, detail FROM quarantine WHERE reason IN ('impossible_speed', 'wrong_type')"
            " AND fix_index IS NOT NULL",
        )
    )
    assert "km/h" in details["impossible_speed"]
    assert "lon is not a number" in details["wrong_type"]
    assert scalar(db, "SELECT count(*) FROM position") == 3  # t2: the two around the spike; t3: the first
    kept = scalar(db, "SELECT payload_bytes FROM quarantine WHERE reason = 'oversized_payload'")
    assert kept == 300 * 1024


def test_replay_is_a_noop(db: str, broker: Broker) -> None:
    fleet = register_fleet(db, 1)
    now = time.time()
    topic = f"fleet/{fleet.terminal_ids[0]}/pos"
    messages: list[tuple[str, Any]] = [
        (topic, {"fixes": [fix(now - 50 + i, lon=LON + i * 1e-4) for i in range(20)]}),
        (topic, b"not json"),
    ]
    with running_worker(ingest_settings(db, broker)):
        send(broker, messages)
        wait_until(lambda: scalar(db, "SELECT count(*) FROM position") == 20, what="20 rows")
        before = rows(db, "SELECT * FROM position ORDER BY fix_at")
        send(broker, messages)
        wait_until(lambda: scalar(db, "SELECT sum(seen_count) FROM quarantine") == 2, what="replayed garbage")
        wait_until(
            lambda: scalar(db, "SELECT sum(fixes_duplicate) FROM ingest_batch") == 20, what="duplicates"
        )
    assert rows(db, "SELECT * FROM position ORDER BY fix_at") == before
    assert scalar(db, "SELECT count(*) FROM quarantine") == 1


def test_same_key_with_other_content_is_a_conflict_even_within_one_batch(db: str, broker: Broker) -> None:
    fleet = register_fleet(db, 1)
    now = time.time()
    topic = f"fleet/{fleet.terminal_ids[0]}/pos"
    same_batch = {
        "fixes": [fix(now - 10, speed_kmh=10), fix(now - 10, speed_kmh=12), fix(now - 10, speed_kmh=10)]
    }
    with running_worker(ingest_settings(db, broker)):
        send(broker, [(topic, same_batch)])
        wait_until(lambda: quarantined(db) == {"conflict": 1}, what="conflict")
    assert rows(db, "SELECT speed_kmh FROM position") == [(10.0,)]
    detail = scalar(db, "SELECT detail FROM quarantine")
    assert "already stored with" in detail


def test_backfill_is_stored_but_latest_position_stays_newest(db: str, broker: Broker) -> None:
    fleet = register_fleet(db, 1)
    now = time.time()
    topic = f"fleet/{fleet.terminal_ids[0]}/pos"
    with running_worker(ingest_settings(db, broker)):
        send(broker, [(topic, fix(now - 5, lon=LON + 0.01))])
        wait_until(lambda: scalar(db, "SELECT count(*) FROM position") == 1, what="live fix")
        send(
            broker,
            [(topic, {"fixes": [fix(now - 3600 + 10 * i, lon=LON + i * 1e-4) for i in range(30)][::-1]})],
        )
        wait_until(lambda: scalar(db, "SELECT count(*) FROM position") == 31, what="back-fill")
    assert scalar(db, "SELECT lon FROM latest_position") == LON + 0.01
    # the track engine is told the vehicle changed, from the oldest back-filled fix to the newest
    marked = rows(
        db,
        "SELECT extract(epoch FROM dirty_from)::float8, extract(epoch FROM dirty_to)::float8"
        " FROM engine_queue",
    )
    assert marked == [(round(now - 3600, 3), round(now - 5, 3))]


def test_database_refusal_is_quarantined_and_the_rest_of_the_batch_stored(db: str, broker: Broker) -> None:
    fleet = register_fleet(db, 1)
    with psycopg.connect(
        db, autocommit=True
    ) as conn:  # an operator's constraint that the filters know nothing of
        conn.execute("ALTER TABLE position ADD CONSTRAINT below_200 CHECK (speed_kmh < 200)")
    now = time.time()
    topic = f"fleet/{fleet.terminal_ids[0]}/pos"
    with running_worker(ingest_settings(db, broker, flush_interval_s=1.0)):
        send(broker, [(topic, fix(now - 3)), (topic, fix(now - 2.5, speed_kmh=250)), (topic, fix(now - 2))])
        wait_until(lambda: quarantined(db) == {"store_error": 1}, what="store_error")
        wait_until(lambda: scalar(db, "SELECT count(*) FROM position") == 2, what="the good fixes")
    assert "below_200" in scalar(db, "SELECT detail FROM quarantine")


def test_terminal_registered_later_is_picked_up(db: str, broker: Broker) -> None:
    fleet = register_fleet(db, 1)
    now = time.time()
    with running_worker(ingest_settings(db, broker)):
        send(broker, [("fleet/LATE1/pos", fix(now - 9))])
        wait_until(lambda: quarantined(db) == {"unknown_terminal": 1}, what="unknown terminal")
        with psycopg.connect(db, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO terminal (terminal_id, vehicle_id) VALUES ('LATE1', %s)", (fleet.vehicle_ids[0],)
            )
        time.sleep(5.2)  # the registry reloads on an unknown id at most every 5 s
        send(broker, [("fleet/LATE1/pos", fix(now - 8))])
        wait_until(lambda: scalar(db, "SELECT count(*) FROM position") == 1, what="fix of the new terminal")
