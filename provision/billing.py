"""Linode's billing rule: hourly rate, every started hour counts, capped at the monthly price."""

from __future__ import annotations

import math
from typing import Protocol

HOURS_PER_MONTH = 730  # a calendar month is approximated as 730 h for the monthly cap


class Priced(Protocol):
    price_hourly_usd: float
    price_monthly_usd: float | None


def billed_hours(lifetime_s: float) -> int:
    """Whole hours rounded up: any started hour is billed in full (0 only for no lifetime)."""
    if lifetime_s <= 0:
        return 0
    return math.ceil(lifetime_s / 3600.0)


def cost_usd(plan: Priced, lifetime_s: float) -> float:
    """Billed hours × hourly price, each (approximate) month capped at the monthly price."""
    hours = billed_hours(lifetime_s)
    hourly = plan.price_hourly_usd
    monthly = plan.price_monthly_usd
    if monthly is None:  # hourly-only types (G8) have no cap
        return hours * hourly
    full_months, rest_h = divmod(hours, HOURS_PER_MONTH)
    return full_months * monthly + min(rest_h * hourly, monthly)


def fmt_hourly(price_usd: float) -> str:
    """A price per hour as people read it: $1.296, and $0.0075 for the cheapest types."""
    return f"${price_usd:.3f}" if price_usd >= 0.01 or price_usd == 0 else f"${price_usd:.4f}"
