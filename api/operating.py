"""``GET /v1/costs/operating``: what the cars in the caller's scope cost to run in a China-local month,
per car and in total, in fen by category, from the provider records (ingest/imports):

- fuel: fuel-card transactions (``amount_fen``) by the time of fuelling;
- maintenance: work orders (``cost_fen``) by the time the car left the shop (``ended_at``);
- insurance and inspection: a policy's or inspection's ``cost_fen`` spread pro rata over its validity
  days, ``valid_from`` to ``expires_on`` both included (without ``valid_from``: the year up to
  ``expires_on``); the month gets cost × days of the validity in the month / days of the validity;
- rental: a contract's ``amount_fen`` spread the same way over ``starts_on`` to ``ends_on``; a
  contract bound to no car is a row of its own per agency (vehicle_id null).

Each spread record is rounded to the fen on its own. km driven come from the daily usage
(vehicle_day_usage), and fen per km is the total over those km. Settlement amounts of the month's
orders are not part of these figures (see /v1/settlement/lines). Scoped like the settlement routes:
every role reads, within its agencies (a car's agency; a rental contract's agency)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from psycopg.rows import dict_row

from api.auth import CallerDep
from api.connection import Conn
from api.cost import yuan
from api.schemas import Id
from api.schemas_settlement import OperatingCost, OperatingCosts
from api.settlement import CHINA, Month, month_bounds
from store.queries import query

router = APIRouter(prefix="/v1", tags=["settlement"])

CATEGORIES = ("fuel_fen", "maintenance_fen", "insurance_fen", "inspection_fen", "rental_fen")


def _cost(
    *,
    vehicle_id: int | None,
    plate: str | None,
    agency_id: int | None,
    distance_km: float,
    fen: dict[str, int],
) -> OperatingCost:
    total = sum(fen[c] for c in CATEGORIES)
    return OperatingCost(
        vehicle_id=vehicle_id,
        plate=plate,
        agency_id=agency_id,
        **{c: fen[c] for c in CATEGORIES},
        total_fen=total,
        total_yuan=yuan(total) or "0.00",
        distance_km=distance_km,
        fen_per_km=total / distance_km if distance_km > 0 else None,
    )


@router.get("/costs/operating", summary="Running cost per car and in total for a month (China time)")
async def operating_costs(
    *,
    conn: Conn,
    caller: CallerDep,
    month: Month,
    agency: Annotated[Id | None, Query(description="the cars of one agency")] = None,
) -> OperatingCosts:
    """Fuel and maintenance by their time in the month; insurance, inspection and rental pro rata over
    their validity days (see the module docstring)."""
    if agency is not None:
        caller.require_agency(agency)
    start, end = month_bounds(month)
    params: dict[str, Any] = caller.scope() | {
        "agency_id": agency,
        "from": start,
        "to": end,
        "first_day": (start + CHINA).date(),
        "last_day": (end + CHINA - timedelta(days=1)).date(),
    }
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query("api_operating_costs"), params)
        vehicles = [
            _cost(
                vehicle_id=row["vehicle_id"],
                plate=row["plate"],
                agency_id=row["agency_id"],
                distance_km=float(row["distance_km"]),
                fen={c: int(row[c]) for c in CATEGORIES},
            )
            for row in await cur.fetchall()
        ]
    totals = _cost(
        vehicle_id=None,
        plate=None,
        agency_id=agency,
        distance_km=sum(v.distance_km for v in vehicles),
        fen={c: sum(int(getattr(v, c)) for v in vehicles) for c in CATEGORIES},
    )
    return OperatingCosts(month=month, agency_id=agency, vehicles=vehicles, totals=totals)
