"""Settlement through the API on a simulated day: lines per executed order from verified km and time,
priced by the pool's tariff; monthly statements as JSON and CSV; provider-reported km beside measured
km; scoping (no other agency's bills) and bad input. And the pricing itself, by hand."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx
import psycopg
import pytest

from api.cost import Terms, price, yuan
from api.schemas import Role, TariffKind
from api.settlement import month_bounds
from tests import api_fixtures, api_sim_fixtures
from tests.api_fixtures import rows
from tests.api_sim_fixtures import Sim

pytestmark = pytest.mark.anyio
anyio_backend = api_fixtures.anyio_backend
sim_template, sim, sim_client = (
    api_sim_fixtures.sim_template,
    api_sim_fixtures.sim,
    api_sim_fixtures.sim_client,
)

OWN = {"kind": "own_pool", "per_km_fen": 180, "per_hour_fen": 2_500}
RENTAL = {"kind": "rental", "per_day_fen": 45_000, "per_hour_fen": 8_000}
RIDE = {"kind": "ride_hailing", "discount_pct": 12.5}
TARIFF_OF_POOL_KIND = {"city": OWN, "district": OWN, "rental": RENTAL, "ride_hailing": RIDE}


# --- pricing, by hand ---------------------------------------------------------------------------


def terms(body: dict[str, Any]) -> Terms:
    pct = body.get("discount_pct")
    return Terms(
        kind=TariffKind(body["kind"]),
        per_km_fen=body.get("per_km_fen"),
        per_hour_fen=body.get("per_hour_fen"),
        per_day_fen=body.get("per_day_fen"),
        discount_pct=None if pct is None else Decimal(str(pct)),
    )


@pytest.mark.parametrize(
    ("tariff", "distance_m", "duration_s", "fare", "fen"),
    [
        (OWN, "12345", "5400", None, 2222 + 3750),  # 12.345 km × 180 = 2222.1, 1.5 h × 2500
        (OWN, "0", "0", None, 0),
        (OWN, "2.777", "1", None, 1),  # 0.4999 + 0.6944 = 1.19: rounded once, at the end
        (RENTAL, "100000", "3600", None, 8_000),  # one started hour
        (RENTAL, "100000", "3601", None, 16_000),  # two started hours
        (RENTAL, "100000", str(7 * 3600), None, 45_000),  # 7 h would be 56,000: a day at most
        (RENTAL, "100000", str(86_400 + 1800), None, 45_000 + 8_000),  # a day and a started hour
        (RENTAL, "100000", str(2 * 86_400), None, 90_000),
        (RIDE, "9000", "900", 4_321, 3781),  # 4321 × 0.875 = 3780.875
        (RIDE, "9000", "900", None, None),
    ],
)
def test_price_by_tariff_kind(
    tariff: dict[str, Any], distance_m: str, duration_s: str, fare: int | None, fen: int | None
) -> None:
    cost = price(
        terms(tariff), distance_m=Decimal(distance_m), duration_s=Decimal(duration_s), provider_fare_fen=fare
    )
    assert cost.fen == fen
    assert cost.basis


def test_yuan_and_china_months() -> None:
    assert (yuan(12_345), yuan(5), yuan(0), yuan(None), yuan(-150)) == (
        "123.45",
        "0.05",
        "0.00",
        None,
        "-1.50",
    )
    start, end = month_bounds("2026-12")
    assert start == datetime(2026, 11, 30, 16, tzinfo=UTC) and end == datetime(2026, 12, 31, 16, tzinfo=UTC)


# --- through the API ----------------------------------------------------------------------------


def add_tariffs(url: str) -> None:
    with psycopg.connect(url) as conn:
        for pool_id, kind in conn.execute("SELECT pool_id, kind FROM pool").fetchall():
            body = TARIFF_OF_POOL_KIND[kind]
            conn.execute(
                "INSERT INTO tariff (pool_id, kind, per_km_fen, per_hour_fen, per_day_fen, discount_pct,"
                " valid_from) VALUES (%s, %s, %s, %s, %s, %s, '2020-01-01')",
                (
                    pool_id,
                    body["kind"],
                    body.get("per_km_fen"),
                    body.get("per_hour_fen"),
                    body.get("per_day_fen"),
                    body.get("discount_pct"),
                ),
            )


def month_of(sim: Sim) -> str:
    return sim.day.strftime("%Y-%m")


def expected_fen(tariff: dict[str, Any], km: Decimal, hours: Decimal) -> int:
    amount = tariff["per_km_fen"] * km + tariff["per_hour_fen"] * hours
    return int(amount.quantize(Decimal(1), rounding=ROUND_HALF_UP))


async def test_lines_price_executed_orders_from_their_trips(sim_client: httpx.AsyncClient, sim: Sim) -> None:
    add_tariffs(sim.url)
    r = await sim_client.get("/v1/settlement/lines", params={"month": month_of(sim)}, headers=sim.admin())
    assert r.status_code == 200, r.text
    lines = r.json()
    executed = rows(
        sim.url,
        "SELECT DISTINCT dispatch_order_id FROM trip_order WHERE role = 'main' ORDER BY 1",
    )
    assert sorted(line["dispatch_order_id"] for line in lines) == [e[0] for e in executed]
    assert len(lines) >= 3
    for line in lines:
        trips = rows(
            sim.url,
            "SELECT sum(t.distance_m)::numeric, min(t.start_at), max(t.end_at), count(*) FROM trip_order o"
            " JOIN trip t USING (trip_id) WHERE o.dispatch_order_id = %s",
            (line["dispatch_order_id"],),
        )[0]
        assert line["verified_km"] == pytest.approx(float(trips[0]) / 1000)
        assert len(line["trips"]) == trips[3] and "main" in {t["role"] for t in line["trips"]}
        hours = Decimal((trips[2] - trips[1]).total_seconds()) / 3600
        assert line["verified_hours"] == pytest.approx(float(hours))
        assert line["tariff_id"] is not None and line["cost_fen"] is not None
        assert line["cost_yuan"] == f"{line['cost_fen'] / 100:.2f}"
        if line["pool_kind"] in ("city", "district"):
            assert line["cost_fen"] == expected_fen(OWN, trips[0] / 1000, hours)
        assert line["provider_km"] is None and line["km_difference"] is None


async def test_statement_json_and_csv_with_provider_km(sim_client: httpx.AsyncClient, sim: Sim) -> None:
    add_tariffs(sim.url)
    admin = sim.admin()
    lines = (
        await sim_client.get("/v1/settlement/lines", params={"month": month_of(sim)}, headers=admin)
    ).json()
    agency_id = lines[0]["agency_id"]
    order_id = lines[0]["dispatch_order_id"]
    # the provider bills 1.5 km more than was measured
    claimed = round(lines[0]["verified_km"] + 1.5, 3)
    r = await sim_client.put(
        f"/v1/settlement/orders/{order_id}/provider-report",
        json={"provider_km": claimed, "reference": "INV-2026-001"},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    assert r.json()["provider_km"] == claimed
    # ride-hailing: the order's fare, less the discount
    ride_pool = rows(sim.url, "SELECT pool_id FROM pool WHERE kind = 'ride_hailing'")[0][0]
    ride_order = lines[-1]["dispatch_order_id"]
    with psycopg.connect(sim.url) as conn:
        conn.execute(
            "UPDATE dispatch_order SET pool_id = %s WHERE dispatch_order_id = %s", (ride_pool, ride_order)
        )
    r = await sim_client.put(
        f"/v1/settlement/orders/{ride_order}/provider-report", json={"fare_fen": 8_000}, headers=admin
    )
    assert r.status_code == 200, r.text
    assert rows(sim.url, "SELECT count(*) FROM audit WHERE entity = 'provider_statement'") == [(2,)]

    url = f"/v1/settlement/statements/{agency_id}/{month_of(sim)}"
    supervisor = sim.auth(
        Role.SUPERVISOR, rows(sim.url, "SELECT code FROM agency WHERE agency_id = %s", (agency_id,))[0][0]
    )
    r = await sim_client.get(url, headers=supervisor)
    assert r.status_code == 200, r.text
    statement = r.json()
    assert statement["agency"]["agency_id"] == agency_id and statement["month"] == month_of(sim)
    assert {line["agency_id"] for line in statement["lines"]} == {agency_id}
    mine = [line for line in lines if line["agency_id"] == agency_id]
    assert [line["dispatch_order_id"] for line in statement["lines"]] == [
        line["dispatch_order_id"] for line in mine
    ]
    totals = statement["totals"]
    priced = [line["cost_fen"] for line in statement["lines"] if line["cost_fen"] is not None]
    assert totals["orders"] == len(mine) and totals["cost_fen"] == sum(priced)
    assert totals["cost_yuan"] == f"{sum(priced) / 100:.2f}"
    first = statement["lines"][0]
    assert first["provider_km"] == claimed and first["km_difference"] == pytest.approx(1.5, abs=1e-3)
    assert first["provider_reference"] == "INV-2026-001"
    assert totals["km_difference"] == pytest.approx(1.5, abs=1e-3)

    ride = next(
        line
        for line in (await sim_client.get("/v1/settlement/lines", headers=admin)).json()
        if line["dispatch_order_id"] == ride_order
    )
    assert ride["tariff_kind"] == "ride_hailing" and ride["cost_fen"] == 7_000  # 8000 × 0.875

    for path, headers in ((url + ".csv", supervisor), (url, supervisor | {"Accept": "text/csv"})):
        r = await sim_client.get(path, headers=headers)
        assert r.status_code == 200 and r.headers["content-type"] == "text/csv; charset=utf-8"
        table = list(csv.DictReader(io.StringIO(r.content.decode("utf-8"))))
        assert [int(row["dispatch_order_id"]) for row in table] == [
            line["dispatch_order_id"] for line in mine
        ]
        assert table[0]["provider_km"] == str(claimed) and table[0]["cost_fen"] == str(first["cost_fen"])
        assert "main" in table[0]["trips"]


async def test_bills_are_scoped_to_the_callers_agencies(sim_client: httpx.AsyncClient, sim: Sim) -> None:
    add_tariffs(sim.url)
    month = month_of(sim)
    lines = (
        await sim_client.get("/v1/settlement/lines", params={"month": month}, headers=sim.admin())
    ).json()
    parents = {r[0] for r in rows(sim.url, "SELECT parent_agency_id FROM agency")}
    agency_id = next(line["agency_id"] for line in lines if line["agency_id"] not in parents)  # a leaf
    code = rows(sim.url, "SELECT code FROM agency WHERE agency_id = %s", (agency_id,))[0][0]
    other = next(line["agency_id"] for line in lines if line["agency_id"] != agency_id)
    viewer = sim.auth(Role.AGENCY_VIEWER, code)
    theirs = (await sim_client.get("/v1/settlement/lines", params={"month": month}, headers=viewer)).json()
    assert {line["agency_id"] for line in theirs} == {agency_id}
    r = await sim_client.get(f"/v1/settlement/statements/{other}/{month}", headers=viewer)
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    r = await sim_client.get(f"/v1/settlement/statements/{other}/{month}.csv", headers=viewer)
    assert r.status_code == 403
    r = await sim_client.get("/v1/settlement/lines", params={"agency": other}, headers=viewer)
    assert r.status_code == 403
    # another month: nothing; an unknown agency (admin): 404
    empty = (await sim_client.get(f"/v1/settlement/statements/{agency_id}/2019-01", headers=viewer)).json()
    assert empty["lines"] == [] and empty["totals"]["cost_yuan"] == "0.00"
    assert (
        await sim_client.get(f"/v1/settlement/statements/99999/{month}", headers=sim.admin())
    ).status_code == 404


@pytest.mark.parametrize(
    ("role", "body", "status", "reason"),
    [
        (
            Role.SUPERVISOR,
            {"provider_km": 12.5},
            403,
            "recording provider reports needs one of the roles admin",
        ),
        (Role.DISPATCHER, {"provider_km": 12.5}, 403, "recording provider reports"),
        (Role.ADMIN, {}, 422, "provider_km, fare_fen or both"),
        (Role.ADMIN, {"provider_km": -1}, 422, "provider_km"),
        (Role.ADMIN, {"provider_km": 1.23456}, 422, "decimal"),
        (Role.ADMIN, {"fare_fen": 1.5}, 422, "fare_fen"),
        (Role.ADMIN, {"provider_km": 1, "other": 2}, 422, "other"),
        (Role.ADMIN, {"provider_km": 1, "order": 999_999}, 404, "no order 999999"),
    ],
)
async def test_bad_provider_reports_are_refused_and_write_nothing(
    *, sim_client: httpx.AsyncClient, sim: Sim, role: Role, body: dict[str, Any], status: int, reason: str
) -> None:
    order_id = rows(sim.url, "SELECT min(dispatch_order_id) FROM trip_order")[0][0]
    headers = sim.admin() if role is Role.ADMIN else sim.auth(role, "A0001")
    if "order" in body:
        order_id = body.pop("order")
    before = rows(sim.url, "SELECT (SELECT count(*) FROM provider_statement), (SELECT count(*) FROM audit)")
    r = await sim_client.put(f"/v1/settlement/orders/{order_id}/provider-report", json=body, headers=headers)
    assert r.status_code == status, r.text
    assert reason in r.json()["detail"]
    assert (
        rows(sim.url, "SELECT (SELECT count(*) FROM provider_statement), (SELECT count(*) FROM audit)")
        == before
    )


@pytest.mark.parametrize("month", ["2026-13", "2026-1", "26-01", "2026-00", "x"])
async def test_bad_months_are_refused(sim_client: httpx.AsyncClient, sim: Sim, month: str) -> None:
    r = await sim_client.get("/v1/settlement/lines", params={"month": month}, headers=sim.admin())
    assert r.status_code == 422 and "month" in r.json()["detail"]
    r = await sim_client.get(f"/v1/settlement/statements/1/{month}", headers=sim.admin())
    assert r.status_code == 422
