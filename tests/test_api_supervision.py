"""Supervision through the API on a simulated day: trips (filters, detail with track, orders, routes and
conformance), the alert queue, reviews (audited, insert-only trail), the SSE stream, usage statistics;
role and agency scoping everywhere, bad input refused with nothing written."""

from __future__ import annotations

import asyncio
import socket
from datetime import timedelta
from typing import Any

import httpx
import orjson
import psycopg
import pytest
import uvicorn

from api.app import create_app
from api.schemas import Role
from tests import api_fixtures, api_sim_fixtures
from tests.api_fixtures import api_settings, rows
from tests.api_sim_fixtures import Sim

pytestmark = pytest.mark.anyio
anyio_backend = api_fixtures.anyio_backend
sim_template, sim, sim_client = (
    api_sim_fixtures.sim_template,
    api_sim_fixtures.sim,
    api_sim_fixtures.sim_client,
)

SUPERVISOR, VIEWER, DISPATCHER = Role.SUPERVISOR, Role.AGENCY_VIEWER, Role.DISPATCHER


def agency_code(url: str, agency_id: int) -> str:
    return str(rows(url, "SELECT code FROM agency WHERE agency_id = %s", (agency_id,))[0][0])


def subtree(url: str, agency_id: int) -> set[int]:
    found = rows(
        url,
        "WITH RECURSIVE b(agency_id) AS (SELECT %s::integer UNION SELECT a.agency_id FROM agency a"
        " JOIN b ON a.parent_agency_id = b.agency_id) SELECT agency_id FROM b",
        (agency_id,),
    )
    return {r[0] for r in found}


def counts(url: str) -> tuple[Any, ...]:
    return rows(
        url,
        "SELECT (SELECT count(*) FROM alert_review), (SELECT count(*) FROM audit),"
        " (SELECT array_agg(status ORDER BY alert_id) FROM alert)",
    )[0]


# --- trips --------------------------------------------------------------------------------------


async def test_trips_filter_and_paginate(sim_client: httpx.AsyncClient, sim: Sim) -> None:
    admin = sim.admin()
    r = await sim_client.get("/v1/trips", params={"limit": 5_000}, headers=admin)
    assert r.status_code == 200, r.text
    trips = r.json()
    assert len(trips) == rows(sim.url, "SELECT count(*) FROM trip")[0][0] >= 10
    assert [t["start_at"] for t in trips] == sorted((t["start_at"] for t in trips), reverse=True)

    pages = []
    for offset in range(0, len(trips), 7):
        page = await sim_client.get("/v1/trips", params={"limit": 7, "offset": offset}, headers=admin)
        pages += page.json()
    assert [t["trip_id"] for t in pages] == [t["trip_id"] for t in trips]

    vehicle_id = trips[0]["vehicle_id"]
    r = await sim_client.get("/v1/trips", params={"vehicle_id": vehicle_id}, headers=admin)
    assert {t["vehicle_id"] for t in r.json()} == {vehicle_id}
    assert len(r.json()) == sum(t["vehicle_id"] == vehicle_id for t in trips)

    without = await sim_client.get("/v1/trips", params={"without_order": True}, headers=admin)
    with_order = await sim_client.get("/v1/trips", params={"without_order": False}, headers=admin)
    assert all(not t["dispatch_order_ids"] for t in without.json())
    assert all(t["dispatch_order_ids"] for t in with_order.json())
    assert len(without.json()) + len(with_order.json()) == len(trips)
    assert (
        len(without.json())
        == rows(
            sim.url,
            "SELECT count(*) FROM trip t"
            " WHERE NOT EXISTS (SELECT 1 FROM trip_order o WHERE o.trip_id = t.trip_id)",
        )[0][0]
    )

    flagged = (await sim_client.get("/v1/trips", params={"flagged": True}, headers=admin)).json()
    calm = (await sim_client.get("/v1/trips", params={"flagged": False}, headers=admin)).json()
    assert flagged and all(t["open_alerts"] > 0 for t in flagged)
    assert all(t["open_alerts"] == 0 for t in calm) and len(flagged) + len(calm) == len(trips)

    middle = trips[len(trips) // 2]
    window = {"start_at": middle["start_at"], "end_at": middle["end_at"]}
    during = (await sim_client.get("/v1/trips", params=window, headers=admin)).json()
    assert middle["trip_id"] in {t["trip_id"] for t in during}
    assert all(t["end_at"] >= window["start_at"] and t["start_at"] < window["end_at"] for t in during)


async def test_trips_are_scoped_to_the_callers_agencies(sim_client: httpx.AsyncClient, sim: Sim) -> None:
    everything = (await sim_client.get("/v1/trips", params={"limit": 5_000}, headers=sim.admin())).json()
    # a district centre: its cars' trips and the trips that served its orders, nothing else
    district = 2
    scope = subtree(sim.url, district)
    headers = sim.auth(SUPERVISOR, agency_code(sim.url, district))
    mine = (await sim_client.get("/v1/trips", params={"limit": 5_000}, headers=headers)).json()
    served = dict(rows(sim.url, "SELECT dispatch_order_id, agency_id FROM dispatch_order"))
    expected = {
        t["trip_id"]
        for t in everything
        if t["agency_id"] in scope or any(served[o] in scope for o in t["dispatch_order_ids"])
    }
    assert {t["trip_id"] for t in mine} == expected and 0 < len(expected) < len(everything)
    outsider = next(t for t in everything if t["trip_id"] not in expected)
    r = await sim_client.get(f"/v1/trips/{outsider['trip_id']}", headers=headers)
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    unauthenticated = await sim_client.get("/v1/trips")
    assert unauthenticated.status_code == 401


async def test_trip_detail_has_track_orders_route_and_conformance(
    sim_client: httpx.AsyncClient, sim: Sim
) -> None:
    trip_id, order_id = rows(
        sim.url,
        "SELECT o.trip_id, o.dispatch_order_id FROM trip_order o JOIN trip_conformance c USING (trip_id,"
        " dispatch_order_id) WHERE o.role = 'main' ORDER BY o.trip_id LIMIT 1",
    )[0]
    r = await sim_client.get(f"/v1/trips/{trip_id}", headers=sim.admin())
    assert r.status_code == 200, r.text
    trip = r.json()
    fixes = rows(
        sim.url,
        "SELECT count(*) FROM position p JOIN trip t USING (vehicle_id)"
        " WHERE t.trip_id = %s AND p.fix_at BETWEEN t.start_at AND t.end_at AND p.valid",
        (trip_id,),
    )[0][0]
    assert trip["track"]["type"] == "Feature" and trip["track"]["geometry"]["type"] == "LineString"
    assert trip["track"]["properties"]["points"] == fixes >= 2
    main = next(o for o in trip["orders"] if o["dispatch_order_id"] == order_id)
    assert main["role"] == "main" and trip["orders"][0]["role"] == "main"
    assert main["route"]["type"] == "LineString" and len(main["route"]["coordinates"]) >= 2
    assert 0.0 <= main["conformance"]["inside_share"] <= 1.0
    assert main["conformance"]["approved_m"] > 0
    assert r.json()["dispatch_order_ids"] == sorted(o["dispatch_order_id"] for o in trip["orders"])

    flagged = (await sim_client.get("/v1/trips", params={"flagged": True}, headers=sim.admin())).json()[0]
    detail = (await sim_client.get(f"/v1/trips/{flagged['trip_id']}", headers=sim.admin())).json()
    assert len([a for a in detail["alerts"] if a["status"] == "open"]) == flagged["open_alerts"] > 0

    for bad in ("0", "-1", "abc", str(2**63)):
        assert (await sim_client.get(f"/v1/trips/{bad}", headers=sim.admin())).status_code == 422
    assert (await sim_client.get("/v1/trips/999999", headers=sim.admin())).status_code == 404
    r = await sim_client.get(
        "/v1/trips",
        params={"start_at": "2026-01-02T00:00:00Z", "end_at": "2026-01-01T00:00:00Z"},
        headers=sim.admin(),
    )
    assert r.status_code == 422 and "end_at must be after start_at" in r.json()["detail"]


# --- alerts -------------------------------------------------------------------------------------


async def test_alert_queue_filters_and_scope(sim_client: httpx.AsyncClient, sim: Sim) -> None:
    admin = sim.admin()
    alerts = (await sim_client.get("/v1/alerts", params={"limit": 5_000}, headers=admin)).json()
    assert len(alerts) == rows(sim.url, "SELECT count(*) FROM alert WHERE retracted_at IS NULL")[0][0] >= 3
    first = alerts[0]
    for name in ("kind", "severity", "vehicle_id", "agency_id"):
        picked = (await sim_client.get("/v1/alerts", params={name: first[name]}, headers=admin)).json()
        assert picked and all(a[name] == first[name] for a in picked)
        assert len(picked) == sum(a[name] == first[name] for a in alerts)
    opened = (await sim_client.get("/v1/alerts", params={"status": "open"}, headers=admin)).json()
    assert len(opened) == len(alerts)
    assert (await sim_client.get("/v1/alerts", params={"status": "confirmed"}, headers=admin)).json() == []

    # retracted alerts are left out unless asked for
    with psycopg.connect(sim.url) as conn:
        conn.execute("UPDATE alert SET retracted_at = now() WHERE alert_id = %s", (first["alert_id"],))
    shown = (await sim_client.get("/v1/alerts", headers=admin)).json()
    assert first["alert_id"] not in {a["alert_id"] for a in shown}
    shown = (await sim_client.get("/v1/alerts", params={"include_retracted": True}, headers=admin)).json()
    assert first["alert_id"] in {a["alert_id"] for a in shown}

    # an agency's supervisor sees its alerts (and those of the agencies below), nobody else's
    agency_id = first["agency_id"]
    headers = sim.auth(SUPERVISOR, agency_code(sim.url, agency_id))
    scope = subtree(sim.url, agency_id)
    mine = (await sim_client.get("/v1/alerts", params={"limit": 5_000}, headers=headers)).json()
    expected = {a["alert_id"] for a in alerts if a["agency_id"] in scope} - {first["alert_id"]}  # retracted
    assert {a["alert_id"] for a in mine} == expected
    other = next(a for a in alerts if a["agency_id"] not in scope)
    assert (await sim_client.get(f"/v1/alerts/{other['alert_id']}", headers=headers)).status_code == 404
    assert (
        await sim_client.get("/v1/alerts", params={"agency_id": other["agency_id"]}, headers=headers)
    ).json() == []

    detail = (await sim_client.get(f"/v1/alerts/{mine[0]['alert_id']}", headers=headers)).json()
    assert detail["evidence"] and detail["reviews"] == []
    assert all(isinstance(t, int) for t in detail["trip_ids"])
    assert (await sim_client.get("/v1/alerts", params={"kind": "nonsense"}, headers=admin)).status_code == 422


async def test_review_confirms_then_dismisses_with_an_insert_only_trail(
    sim_client: httpx.AsyncClient, sim: Sim
) -> None:
    alert = (await sim_client.get("/v1/alerts", headers=sim.admin())).json()[0]
    headers = sim.auth(SUPERVISOR, agency_code(sim.url, alert["agency_id"]))
    url = f"/v1/alerts/{alert['alert_id']}/review"
    r = await sim_client.post(url, json={"status": "confirmed"}, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["alert"]["status"] == "confirmed" and r.json()["review"]["note"] == ""
    r = await sim_client.post(url, json={"status": "dismissed", "note": "公务接待，已补单"}, headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()["alert"]
    assert body["status"] == "dismissed"
    assert [(v["status"], v["note"]) for v in body["reviews"]] == [
        ("confirmed", ""),
        ("dismissed", "公务接待，已补单"),
    ]
    audit = rows(
        sim.url,
        "SELECT action, before->>'status', after->>'status', actor FROM audit"
        " WHERE entity = 'alert' AND entity_id = %s ORDER BY audit_id",
        (str(alert["alert_id"]),),
    )
    supervisor = f"supervisor_{agency_code(sim.url, alert['agency_id'])}"
    assert audit == [
        ("alert.confirm", "open", "confirmed", supervisor),
        ("alert.dismiss", "confirmed", "dismissed", supervisor),
    ]
    queue = (await sim_client.get("/v1/alerts", params={"status": "dismissed"}, headers=headers)).json()
    assert [a["alert_id"] for a in queue] == [alert["alert_id"]]
    # the engine leaves a reviewed alert alone: its status is the supervisor's
    assert rows(sim.url, "SELECT status FROM alert WHERE alert_id = %s", (alert["alert_id"],)) == [
        ("dismissed",)
    ]


@pytest.mark.parametrize(
    ("who", "body", "status", "reason"),
    [
        ("viewer", {"status": "confirmed"}, 403, "reviewing alerts needs one of the roles admin, supervisor"),
        ("dispatcher", {"status": "confirmed"}, 403, "reviewing alerts"),
        ("supervisor", {"status": "dismissed"}, 422, "dismissing an alert needs a note"),
        ("supervisor", {"status": "dismissed", "note": "   "}, 422, "needs a note"),
        ("supervisor", {"status": "open"}, 422, "status"),
        ("supervisor", {"status": "confirmed", "extra": 1}, 422, "extra"),
        ("supervisor", {"status": "confirmed", "note": "a\x00b"}, 422, "NUL"),
        ("outsider", {"status": "confirmed"}, 404, "no alert"),
        ("retracted", {"status": "confirmed"}, 409, "can only be dismissed"),
        ("unknown", {"status": "confirmed"}, 404, "no alert 999999"),
    ],
)
async def test_bad_reviews_are_refused_and_write_nothing(
    *, sim_client: httpx.AsyncClient, sim: Sim, who: str, body: dict[str, Any], status: int, reason: str
) -> None:
    alert = (await sim_client.get("/v1/alerts", headers=sim.admin())).json()[0]
    code = agency_code(sim.url, alert["agency_id"])
    outsider = next(
        a
        for a in rows(sim.url, "SELECT agency_id FROM agency")
        if alert["agency_id"] not in subtree(sim.url, a[0])
    )[0]
    headers = {
        "viewer": lambda: sim.auth(VIEWER, code),
        "dispatcher": lambda: sim.auth(DISPATCHER, code),
        "outsider": lambda: sim.auth(SUPERVISOR, agency_code(sim.url, outsider)),
    }.get(who, lambda: sim.auth(SUPERVISOR, code))()
    alert_id = 999_999 if who == "unknown" else alert["alert_id"]
    if who == "retracted":
        with psycopg.connect(sim.url) as conn:
            conn.execute("UPDATE alert SET retracted_at = now() WHERE alert_id = %s", (alert_id,))
    before = counts(sim.url)
    r = await sim_client.post(f"/v1/alerts/{alert_id}/review", json=body, headers=headers)
    assert r.status_code == status, r.text
    assert reason in r.json()["detail"]
    assert counts(sim.url) == before


# --- the stream ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def _events(response: httpx.Response, n: int) -> list[dict[str, str]]:
    """The next n events (comments skipped) from an open text/event-stream response."""
    events: list[dict[str, str]] = []
    current: dict[str, str] = {}
    async for line in response.aiter_lines():
        if not line:
            if "data" in current:
                events.append(current)
                if len(events) == n:
                    return events
            current = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            current[name] = value.removeprefix(" ")
    raise AssertionError("the stream ended early")


async def test_alert_stream_sends_new_alerts_in_scope_and_resumes(sim: Sim) -> None:
    everything = rows(sim.url, "SELECT alert_id, agency_id FROM alert ORDER BY alert_id")
    agency_id = everything[0][1]
    scope = subtree(sim.url, agency_id)
    headers = sim.auth(SUPERVISOR, agency_code(sim.url, agency_id))
    mine = [a for a, g in everything if g in scope]
    assert len(mine) >= 2

    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(api_settings(sim.url)), host="127.0.0.1", port=port, log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.02)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            # resume after the agency's first alert: the rest come, oldest first, only the agency's
            resume = headers | {"Last-Event-ID": str(mine[0] - 1)}
            async with client.stream("GET", "/v1/alerts/stream", headers=resume) as r:
                assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
                got = await asyncio.wait_for(_events(r, 2), timeout=10)
            assert [int(e["id"]) for e in got] == mine[:2]
            assert all(e["event"] == "alert" for e in got)
            assert orjson.loads(got[0]["data"])["agency_id"] in scope

            # from now on: a new alert of another agency is not sent, one of the agency is
            async with client.stream("GET", "/v1/alerts/stream", headers=headers) as r:
                assert r.status_code == 200
                await asyncio.to_thread(_raise_alerts, sim.url, agency_id, scope)
                (event,) = await asyncio.wait_for(_events(r, 1), timeout=10)
            data = orjson.loads(event["data"])
            assert data["agency_id"] == agency_id and data["kind"] == "silent_terminal"

            bad = await client.get("/v1/alerts/stream", headers=headers | {"Last-Event-ID": "x1"})
            assert bad.status_code == 422 and "Last-Event-ID" in bad.json()["detail"]
            assert (await client.get("/v1/alerts/stream")).status_code == 401
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, timeout=15)


def _raise_alerts(url: str, agency_id: int, scope: set[int]) -> None:
    """Two new alerts as the rules would write them: another agency's first, then this agency's."""
    other = rows(url, "SELECT agency_id FROM agency WHERE NOT agency_id = ANY(%s) LIMIT 1", (list(scope),))[
        0
    ][0]
    vehicle_id = rows(url, "SELECT min(vehicle_id) FROM vehicle")[0][0]
    with psycopg.connect(url) as conn:
        for n, agency in enumerate((other, agency_id)):
            conn.execute(
                "INSERT INTO alert (kind, severity, vehicle_id, agency_id, anchor, anchor_value, start_at,"
                " end_at, evidence)"
                " VALUES ('silent_terminal', 'medium', %s, %s, 'gap', %s, now(), now(), '{}')",
                (vehicle_id, agency, 1_000 + n),
            )


# --- usage --------------------------------------------------------------------------------------


async def test_usage_per_day_week_month_with_idle_days(sim_client: httpx.AsyncClient, sim: Sim) -> None:
    admin = sim.admin()
    day = sim.day
    span = {"from": str(day - timedelta(days=1)), "to": str(day + timedelta(days=1))}
    r = await sim_client.get("/v1/usage", params=span | {"period": "day"}, headers=admin)
    assert r.status_code == 200, r.text
    usage = r.json()
    by_day = {b["period_start"]: b for b in usage["buckets"]}
    assert list(by_day) == [span["from"], str(day), span["to"]]
    trips, km, cars_used = rows(
        sim.url,
        "SELECT sum(trips)::int, sum(distance_km), count(*) FILTER (WHERE trips > 0)::int"
        " FROM vehicle_day_usage WHERE day = %s",
        (day,),
    )[0]
    cars = rows(sim.url, "SELECT count(*)::int FROM vehicle WHERE status = 'in_service'")[0][0]
    assert by_day[str(day)]["trips"] == trips > 0
    assert by_day[str(day)]["distance_km"] == pytest.approx(km)
    assert by_day[str(day)]["idle_days"] == cars - cars_used
    assert by_day[span["from"]]["trips"] == 0 and by_day[span["from"]]["idle_days"] == cars
    assert usage["trips"] == trips and usage["idle_days"] == 3 * cars - cars_used

    for period in ("week", "month"):
        r = await sim_client.get("/v1/usage", params=span | {"period": period}, headers=admin)
        assert r.json()["trips"] == trips and r.json()["idle_days"] == usage["idle_days"]
        assert sum(b["days"] for b in r.json()["buckets"]) == 3
        assert all(b["period_start"] <= b["period_end"] for b in r.json()["buckets"])

    # a car of an agency (pool cars have none), the same one on every run
    vehicle_id = rows(
        sim.url,
        "SELECT u.vehicle_id FROM vehicle_day_usage AS u JOIN vehicle AS v USING (vehicle_id)"
        " WHERE u.day = %s AND v.agency_id IS NOT NULL ORDER BY u.vehicle_id LIMIT 1",
        (day,),
    )[0][0]
    one = (await sim_client.get("/v1/usage", params=span | {"vehicle": vehicle_id}, headers=admin)).json()
    assert one["vehicle_id"] == vehicle_id and one["idle_days"] == 2
    assert (
        one["trips"]
        == rows(
            sim.url,
            "SELECT trips FROM vehicle_day_usage WHERE vehicle_id = %s AND day = %s",
            (vehicle_id, day),
        )[0][0]
    )

    # an agency's viewer: only its cars; another agency's cars are refused
    agency_id = rows(sim.url, "SELECT agency_id FROM vehicle WHERE vehicle_id = %s", (vehicle_id,))[0][0]
    viewer = sim.auth(VIEWER, agency_code(sim.url, agency_id))
    theirs = (await sim_client.get("/v1/usage", params=span | {"agency": agency_id}, headers=viewer)).json()
    assert (
        theirs["buckets"][0]["vehicles"]
        == rows(sim.url, "SELECT count(*) FROM vehicle WHERE agency_id = %s", (agency_id,))[0][0]
    )
    scope = list(subtree(sim.url, agency_id))
    other_car = rows(
        sim.url,
        "SELECT vehicle_id FROM vehicle WHERE NOT coalesce(agency_id = ANY(%s), false) LIMIT 1",
        (scope,),
    )[0][0]
    r = await sim_client.get("/v1/usage", params=span | {"vehicle": other_car}, headers=viewer)
    assert r.status_code == 404
    other_agency = rows(
        sim.url, "SELECT agency_id FROM agency WHERE NOT agency_id = ANY(%s) LIMIT 1", (scope,)
    )
    if other_agency:
        r = await sim_client.get("/v1/usage", params=span | {"agency": other_agency[0][0]}, headers=viewer)
        assert r.status_code == 403


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"from": "2026-02-01", "to": "2026-01-01"}, "to must not be before from"),
        ({"from": "2020-01-01", "to": "2026-01-01"}, "spans at most"),
        ({"from": "2026-01-01", "to": "2026-01-31", "vehicle": 1, "agency": 1}, "not both"),
        ({"from": "2026-01-01", "to": "2026-01-31", "period": "year"}, "period"),
        ({"from": "2026-13-01", "to": "2026-01-31"}, "from"),
        ({"to": "2026-01-31"}, "from"),
    ],
)
async def test_bad_usage_queries_are_refused(
    sim_client: httpx.AsyncClient, sim: Sim, params: dict[str, Any], reason: str
) -> None:
    r = await sim_client.get("/v1/usage", params=params, headers=sim.admin())
    assert r.status_code == 422 and reason in r.json()["detail"]
