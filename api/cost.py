"""What an executed order costs under its pool's tariff, in whole fen (0.01 CNY), rounded half up once
at the end. Pure: Decimal in, integers out.

- own pool (city, district): per_km_fen × km + per_hour_fen × hours, both exact;
- rental: per_day_fen per whole 24 h, then per_hour_fen per started hour of the rest, that rest never
  above a day's rate (so a started day costs at most a day);
- ride-hailing: the provider's fare less discount_pct per cent (no fare reported: no cost yet).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

from api.schemas import TariffKind

SECONDS_PER_HOUR = Decimal(3_600)
SECONDS_PER_DAY = Decimal(86_400)


@dataclass(frozen=True, slots=True, kw_only=True)
class Terms:
    kind: TariffKind
    per_km_fen: int | None
    per_hour_fen: int | None
    per_day_fen: int | None
    discount_pct: Decimal | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Cost:
    fen: int | None  # None: cannot be priced yet, see basis
    basis: str  # how it was priced, for the statement


def _fen(amount: Decimal) -> int:
    return int(amount.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def price(terms: Terms, *, distance_m: Decimal, duration_s: Decimal, provider_fare_fen: int | None) -> Cost:
    km = distance_m / 1_000
    if terms.kind is TariffKind.OWN_POOL:
        assert terms.per_km_fen is not None and terms.per_hour_fen is not None
        hours = duration_s / SECONDS_PER_HOUR
        amount = terms.per_km_fen * km + terms.per_hour_fen * hours
        return Cost(
            fen=_fen(amount), basis=f"{km:.3f} km × {terms.per_km_fen} + {hours:.3f} h × {terms.per_hour_fen}"
        )
    if terms.kind is TariffKind.RENTAL:
        assert terms.per_day_fen is not None and terms.per_hour_fen is not None
        days = (duration_s / SECONDS_PER_DAY).to_integral_value(rounding=ROUND_FLOOR)
        rest_h = ((duration_s - days * SECONDS_PER_DAY) / SECONDS_PER_HOUR).to_integral_value(
            rounding=ROUND_CEILING
        )
        rest = min(rest_h * terms.per_hour_fen, Decimal(terms.per_day_fen))
        return Cost(
            fen=_fen(days * terms.per_day_fen + rest),
            basis=f"{days} d × {terms.per_day_fen}"
            f" + min({rest_h} h × {terms.per_hour_fen}, {terms.per_day_fen})",
        )
    assert terms.discount_pct is not None
    if provider_fare_fen is None:
        return Cost(fen=None, basis="ride-hailing: no provider fare reported")
    amount = provider_fare_fen * (100 - terms.discount_pct) / 100
    return Cost(fen=_fen(amount), basis=f"fare {provider_fare_fen} − {terms.discount_pct} %")


def yuan(fen: int | None) -> str | None:
    """Fen as a yuan amount for display: 12345 → "123.45"."""
    if fen is None:
        return None
    return f"{Decimal(fen) / 100:.2f}"
