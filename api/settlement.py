"""Settlement: a line per executed order (one with a main trip) from the verified km and time of its
trips, priced by the pool's tariff (api.cost); a per-agency monthly statement as JSON or CSV; what the
provider reported beside what was measured. Months and tariff days are China time."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from psycopg import AsyncConnection
from psycopg.rows import TupleRow, class_row, dict_row

from api.audit import write_audit
from api.auth import SETTLEMENT_WRITERS, Caller, CallerDep
from api.connection import Conn
from api.cost import Terms, price, yuan
from api.errors import InvalidInputError, NotFoundError
from api.schemas import Agency, Id, TariffKind
from api.schemas_settlement import (
    LineTrip,
    ProviderReport,
    ProviderReportIn,
    SettlementLine,
    Statement,
    StatementTotals,
)
from api.schemas_supervision import TripRole
from store.queries import query

router = APIRouter(prefix="/v1", tags=["settlement"])

CHINA = timedelta(hours=8)
MONTH_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2])$"
Month = Annotated[str, Query(pattern=MONTH_PATTERN, description="YYYY-MM, China time")]
MonthPath = Annotated[str, Path(pattern=MONTH_PATTERN, description="YYYY-MM, China time")]
MAX_LINES = 20_000
CSV_COLUMNS = (
    "dispatch_order_id",
    "code",
    "agency_id",
    "pool_id",
    "pool_kind",
    "vehicle_id",
    "plate",
    "window_start_at",
    "first_start_at",
    "last_end_at",
    "trips",
    "verified_km",
    "verified_hours",
    "tariff_id",
    "tariff_kind",
    "cost_fen",
    "cost_yuan",
    "cost_basis",
    "provider_km",
    "provider_fare_fen",
    "km_difference",
    "final",
)


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """[first instant, first instant of the next month) of a China-local month, as UTC."""
    year, number = int(month[:4]), int(month[5:7])
    try:
        first = date(year, number, 1)
        after = date(year + number // 12, number % 12 + 1, 1)
        start = datetime(first.year, first.month, 1, tzinfo=UTC) - CHINA
    except (ValueError, OverflowError):
        raise InvalidInputError(f"month {month!r} is not a month between 0001-02 and 9999-11") from None
    return start, datetime(after.year, after.month, 1, tzinfo=UTC) - CHINA


def _line(row: dict[str, Any]) -> SettlementLine:
    distance_m: Decimal = row["distance_m"]
    duration_s = Decimal((row["last_end_at"] - row["first_start_at"]).total_seconds())
    verified_km = float(distance_m / 1_000)
    if row["tariff_id"] is None:
        fen, basis = None, f"no tariff for pool {row['pool_id']} on the order's first day"
    else:
        terms = Terms(
            kind=TariffKind(row["tariff_kind"]),
            per_km_fen=row["per_km_fen"],
            per_hour_fen=row["per_hour_fen"],
            per_day_fen=row["per_day_fen"],
            discount_pct=row["discount_pct"],
        )
        cost = price(
            terms, distance_m=distance_m, duration_s=duration_s, provider_fare_fen=row["provider_fare_fen"]
        )
        fen, basis = cost.fen, cost.basis
    provider_km = None if row["provider_km"] is None else float(row["provider_km"])
    difference = None if provider_km is None else provider_km - verified_km
    return SettlementLine(
        dispatch_order_id=row["dispatch_order_id"],
        code=row["code"],
        agency_id=row["agency_id"],
        pool_id=row["pool_id"],
        pool_kind=row["pool_kind"],
        vehicle_id=row["vehicle_id"],
        plate=row["plate"],
        status=row["status"],
        window_start_at=row["window_start_at"],
        window_end_at=row["window_end_at"],
        trips=[
            LineTrip(trip_id=t, role=TripRole(r)) for t, r in zip(row["trip_ids"], row["roles"], strict=True)
        ],
        final=row["final"],
        first_start_at=row["first_start_at"],
        last_end_at=row["last_end_at"],
        verified_km=verified_km,
        verified_hours=float(duration_s / 3_600),
        tariff_id=row["tariff_id"],
        tariff_kind=row["tariff_kind"],
        cost_fen=fen,
        cost_yuan=yuan(fen),
        cost_basis=basis,
        provider_km=provider_km,
        provider_fare_fen=row["provider_fare_fen"],
        provider_reference=row["provider_reference"],
        km_difference=difference,
        km_difference_pct=None if difference is None or verified_km == 0 else 100 * difference / verified_km,
    )


async def settlement_lines(
    conn: AsyncConnection[TupleRow], caller: Caller, **filters: Any
) -> list[SettlementLine]:
    params: dict[str, Any] = {"agency_id": None, "dispatch_order_id": None, "from": None, "to": None}
    params |= {"limit": MAX_LINES} | filters | caller.scope()
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query("api_settlement_lines"), params)
        return [_line(row) for row in await cur.fetchall()]


@router.get("/settlement/lines", summary="A settlement line per executed order in the caller's scope")
async def list_lines(
    *,
    conn: Conn,
    caller: CallerDep,
    agency: Annotated[Id | None, Query(description="the ordering agency")] = None,
    month: Month | None = None,
) -> list[SettlementLine]:
    """Orders whose window starts in ``month``; an order is executed when a trip served it as its
    main trip. Verified km: its main, positioning and return trips; time: first start to last end."""
    if agency is not None:
        caller.require_agency(agency)
    start, end = month_bounds(month) if month else (None, None)
    return await settlement_lines(conn, caller, agency_id=agency, **{"from": start, "to": end})


def _totals(lines: list[SettlementLine]) -> StatementTotals:
    priced = [line.cost_fen for line in lines if line.cost_fen is not None]
    reported = [line for line in lines if line.provider_km is not None]
    provider_km = sum(line.provider_km or 0.0 for line in reported)
    measured = sum(line.verified_km for line in reported)
    return StatementTotals(
        orders=len(lines),
        verified_km=sum(line.verified_km for line in lines),
        verified_hours=sum(line.verified_hours for line in lines),
        cost_fen=sum(priced),
        cost_yuan=yuan(sum(priced)) or "0.00",
        unpriced_lines=len(lines) - len(priced),
        provider_km=provider_km,
        measured_km_of_reported=measured,
        km_difference=provider_km - measured,
    )


def statement_csv(statement: Statement) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for line in statement.lines:
        values = line.model_dump(mode="json")
        values["trips"] = " ".join(f"{t.trip_id}:{t.role.value}" for t in line.trips)
        values["final"] = "true" if line.final else "false"
        values["verified_km"] = f"{line.verified_km:.3f}"
        values["verified_hours"] = f"{line.verified_hours:.3f}"
        if line.km_difference is not None:
            values["km_difference"] = f"{line.km_difference:.3f}"
        writer.writerow(["" if values[c] is None else values[c] for c in CSV_COLUMNS])
    return out.getvalue()


async def _statement(
    conn: AsyncConnection[TupleRow], caller: Caller, agency_id: int, month: str
) -> Statement:
    caller.require_agency(agency_id)
    async with conn.cursor(row_factory=class_row(Agency)) as cur:
        await cur.execute(query("api_agency"), {"agency_id": agency_id})
        agency = await cur.fetchone()
    if agency is None:
        raise NotFoundError("agency", agency_id)
    start, end = month_bounds(month)
    lines = await settlement_lines(conn, caller, agency_id=agency_id, **{"from": start, "to": end})
    return Statement(agency=agency, month=month, lines=lines, totals=_totals(lines))


CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "the lines as CSV"}
}


@router.get(
    "/settlement/statements/{agency_id}/{month}.csv",
    summary="An agency's monthly statement as CSV (UTF-8, one header row)",
    response_class=Response,
    responses=CSV_RESPONSE,
)
async def read_statement_csv(*, agency_id: Id, month: MonthPath, conn: Conn, caller: CallerDep) -> Response:
    statement = await _statement(conn, caller, agency_id, month)
    return _csv_response(statement)


def _csv_response(statement: Statement) -> Response:
    name = f"statement-{statement.agency.code}-{statement.month}.csv"
    return Response(
        statement_csv(statement),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get(
    "/settlement/statements/{agency_id}/{month}",
    summary="An agency's monthly statement (JSON; CSV with Accept: text/csv)",
    response_model=Statement,
    responses=CSV_RESPONSE,
)
async def read_statement(
    *, agency_id: Id, month: MonthPath, request: Request, conn: Conn, caller: CallerDep
) -> Statement | Response:
    statement = await _statement(conn, caller, agency_id, month)
    if "text/csv" in request.headers.get("accept", ""):
        return _csv_response(statement)
    return statement


@router.put(
    "/settlement/orders/{dispatch_order_id}/provider-report",
    summary="Record what the provider billed for an order (admin)",
)
async def put_provider_report(
    *,
    dispatch_order_id: Annotated[int, Path(ge=1, le=2**62)],
    body: ProviderReportIn,
    conn: Conn,
    caller: CallerDep,
) -> ProviderReport:
    caller.require(SETTLEMENT_WRITERS, "recording provider reports")
    async with conn.transaction():
        cur = await conn.execute(
            query("api_order_row"), {"dispatch_order_id": dispatch_order_id} | caller.scope()
        )
        order = await cur.fetchone()
        if order is None:
            raise NotFoundError("order", dispatch_order_id)
        cur = await conn.execute(
            query("api_provider_statement_row"), {"dispatch_order_id": dispatch_order_id}
        )
        existing = await cur.fetchone()
        params = body.model_dump() | {"dispatch_order_id": dispatch_order_id}
        cur = await conn.execute(query("api_upsert_provider_statement"), params)
        row = await cur.fetchone()
        assert row is not None
        after: dict[str, Any] = row[0]
        await write_audit(
            conn,
            caller,
            action="provider_statement.put",
            entity="provider_statement",
            entity_id=dispatch_order_id,
            agency_id=order[1],
            before=None if existing is None else existing[0],
            after=after,
        )
    return ProviderReport(
        dispatch_order_id=dispatch_order_id,
        provider_km=None if after["provider_km"] is None else float(after["provider_km"]),
        fare_fen=after["fare_fen"],
        reference=after["reference"],
        reported_at=after["reported_at"],
    )
