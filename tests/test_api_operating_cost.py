"""``GET /v1/costs/operating``: a month's running cost per car and in total, by category, from provider
records written straight into the database: fuel and maintenance by their time in the China-local
month, insurance, inspection and rental pro rata over their validity days; km from the daily usage;
scoping like settlement; bad months refused with 422."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import httpx
import psycopg
import pytest

from tests import api_fixtures
from tests.api_fixtures import World

pytestmark = pytest.mark.anyio
anyio_backend = api_fixtures.anyio_backend
world, client = api_fixtures.world, api_fixtures.client

MONTH = "2026-02"  # 28 days; China time is UTC+8


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def seed(w: World) -> None:
    car, dis = w.vehicle["CAR1"], w.vehicle["DIS1"]
    fuel = (
        (car, "C1", at("2026-02-10T03:00"), 30_000),
        (car, "C1", at("2026-01-31T16:30"), 1_111),  # 1 February 00:30 China: in
        (car, "C1", at("2026-02-28T16:30"), 9_999),  # 1 March 00:30 China: out
        (car, "C1", at("2026-01-31T15:30"), 8_888),  # 31 January 23:30 China: out
        (car, "C1", at("2026-02-11T03:00"), None),  # no amount
        (dis, "D1", at("2026-02-05T03:00"), 20_000),
    )
    maintenance = (
        (car, "WO-1", at("2026-01-30T01:00"), at("2026-02-02T02:00"), 50_000),  # out in February: in
        (car, "WO-2", at("2026-02-27T01:00"), at("2026-03-01T00:00"), 7_777),  # out 1 March 08:00 China
        (car, "WO-3", at("2026-02-03T01:00"), at("2026-02-03T05:00"), None),
    )
    documents = (
        # 2026 has 365 days: 1,000 fen a day, 28 days in February
        (car, "insurance", "P-1", date(2026, 1, 1), date(2026, 12, 31), 365_000),
        # no valid_from: the year up to 14 February 2026 (365 days), 14 of them in February
        (car, "inspection", "I-1", None, date(2026, 2, 14), 36_500),
        (car, "inspection", "I-0", date(2025, 1, 1), date(2025, 12, 31), 99_999),  # before: nothing
        (dis, "insurance", "P-2", date(2026, 3, 1), date(2027, 2, 28), 12_345),  # after: nothing
    )
    rentals: tuple[tuple[str, str, int | None, date, date, int], ...] = (
        # 14 days, 9 in February: 1000 × 9 / 14 = 642.86 → 643
        ("R-1", "BUR", car, date(2026, 2, 20), date(2026, 3, 5), 1_000),
        ("R-2", "DIS", None, date(2026, 2, 1), date(2026, 2, 28), 56_000),  # bound to no car
    )
    usage = ((car, date(2026, 2, 1), 100.5), (car, date(2026, 2, 28), 49.5), (car, date(2026, 3, 1), 1_000.0))
    with psycopg.connect(w.url) as conn:
        for vehicle_id, card, fuelled_at, fen in fuel:
            conn.execute(
                "INSERT INTO fuel_record (vehicle_id, card, lon, lat, fuelled_at, litres, station,"
                " amount_fen) VALUES (%s, %s, 119.97, 31.81, %s, 40, 'station', %s)",
                (vehicle_id, card, fuelled_at, fen),
            )
        for vehicle_id, work_order, started_at, ended_at, fen in maintenance:
            conn.execute(
                "INSERT INTO maintenance_record (vehicle_id, lon, lat, started_at, ended_at, work_order,"
                " cost_fen) VALUES (%s, 119.97, 31.81, %s, %s, %s, %s)",
                (vehicle_id, started_at, ended_at, work_order, fen),
            )
        for vehicle_id, kind, number, valid_from, expires_on, fen in documents:
            conn.execute(
                "INSERT INTO vehicle_document (vehicle_id, kind, number, valid_from, expires_on, cost_fen)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                (vehicle_id, kind, number, valid_from, expires_on, fen),
            )
        for number, agency, rented_car, starts_on, ends_on, fen in rentals:
            conn.execute(
                "INSERT INTO rental_contract (contract_no, pool_id, agency_id, vehicle_id, starts_on,"
                " ends_on, amount_fen) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (number, w.pool["RENT"], w.agency[agency], rented_car, starts_on, ends_on, fen),
            )
        for vehicle_id, day, km in usage:
            conn.execute(
                "INSERT INTO vehicle_day_usage (vehicle_id, day, trips, distance_km, hours_in_use)"
                " VALUES (%s, %s, 1, %s, 1)",
                (vehicle_id, day, km),
            )


CAR1 = {
    "fuel_fen": 31_111,
    "maintenance_fen": 50_000,
    "insurance_fen": 28_000,
    "inspection_fen": 1_400,
    "rental_fen": 643,
    "total_fen": 111_154,
    "total_yuan": "1111.54",
    "distance_km": 150.0,
}
DIS1 = {"fuel_fen": 20_000, "total_fen": 20_000, "distance_km": 0.0, "fen_per_km": None}
DIS_RENTAL = {"vehicle_id": None, "plate": None, "rental_fen": 56_000, "total_fen": 56_000}


def by_plate(body: dict[str, Any]) -> dict[str | None, dict[str, Any]]:
    return {v["plate"]: v for v in body["vehicles"]}


async def get(client: httpx.AsyncClient, w: World, user: str, **params: Any) -> httpx.Response:
    return await client.get("/v1/costs/operating", params={"month": MONTH} | params, headers=w.auth(user))


async def test_costs_by_category_with_pro_rata(client: httpx.AsyncClient, world: World) -> None:
    seed(world)
    r = await get(client, world, "admin")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["month"] == MONTH and body["agency_id"] is None
    rows = by_plate(body)
    assert set(rows) == {"CAR1", "DIS1", None}
    car = rows["CAR1"]
    assert car | CAR1 == car
    assert car["vehicle_id"] == world.vehicle["CAR1"] and car["agency_id"] == world.agency["BUR"]
    assert car["fen_per_km"] == pytest.approx(111_154 / 150)
    assert rows["DIS1"] | DIS1 == rows["DIS1"] and rows["DIS1"]["rental_fen"] == 0
    assert rows[None] | DIS_RENTAL == rows[None] and rows[None]["agency_id"] == world.agency["DIS"]
    totals = body["totals"]
    assert totals["vehicle_id"] is None and totals["plate"] is None
    assert (totals["fuel_fen"], totals["maintenance_fen"], totals["insurance_fen"]) == (
        51_111,
        50_000,
        28_000,
    )
    assert (totals["inspection_fen"], totals["rental_fen"]) == (1_400, 56_643)
    assert totals["total_fen"] == 111_154 + 20_000 + 56_000 and totals["distance_km"] == 150.0
    assert totals["fen_per_km"] == pytest.approx(187_154 / 150)

    # one agency: its cars and its contracts only
    r = await get(client, world, "admin", agency=world.agency["DIS"])
    assert r.status_code == 200, r.text
    assert set(by_plate(r.json())) == {"DIS1", None}
    assert r.json()["totals"]["total_fen"] == 76_000 and r.json()["agency_id"] == world.agency["DIS"]

    # another month: the spread records only
    r = await get(client, world, "admin", month="2026-03")
    rows = by_plate(r.json())
    assert rows["CAR1"]["fuel_fen"] == 9_999 and rows["CAR1"]["maintenance_fen"] == 7_777
    assert rows["CAR1"]["rental_fen"] == 1_000 - 643 and rows["CAR1"]["insurance_fen"] == 31_000
    assert rows["CAR1"]["distance_km"] == 1_000.0 and rows["DIS1"]["insurance_fen"] == round(
        12_345 * 31 / 365
    )


async def test_scoped_to_the_callers_agencies(client: httpx.AsyncClient, world: World) -> None:
    seed(world)
    r = await get(client, world, "city_supervisor")
    assert r.status_code == 200, r.text
    assert set(by_plate(r.json())) == {"CAR1"} and r.json()["totals"]["total_fen"] == 111_154
    r = await get(client, world, "district_supervisor")
    assert set(by_plate(r.json())) == {"DIS1", None} and r.json()["totals"]["total_fen"] == 76_000
    # a viewer of a sub-office sees none of its parent's cars
    r = await get(client, world, "office_a_viewer")
    assert r.status_code == 200 and r.json()["vehicles"] == [] and r.json()["totals"]["total_fen"] == 0
    assert r.json()["totals"]["fen_per_km"] is None
    # asking for another agency: 403
    r = await get(client, world, "district_supervisor", agency=world.agency["BUR"])
    assert r.status_code == 403, r.text
    r = await get(client, world, "office_a_viewer", agency=world.agency["DIS"])
    assert r.status_code == 403, r.text
    r = await client.get("/v1/costs/operating", params={"month": MONTH})
    assert r.status_code == 401


@pytest.mark.parametrize("month", ["0000-01", "0001-01", "9999-12", "2026-13", "2026-00", "2026-1", "x", ""])
async def test_bad_months_are_refused(client: httpx.AsyncClient, world: World, month: str) -> None:
    r = await get(client, world, "admin", month=month)
    assert r.status_code == 422, r.text
    assert "month" in r.json()["detail"]


async def test_month_is_required(client: httpx.AsyncClient, world: World) -> None:
    r = await client.get("/v1/costs/operating", headers=world.auth("admin"))
    assert r.status_code == 422 and "month" in r.json()["detail"]
