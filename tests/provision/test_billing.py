"""Linode's billing rule: started hours rounded up, capped at the monthly price."""

from __future__ import annotations

import pytest

from provision import billing
from provision.plans import offline_plans, resolve_plan


@pytest.mark.parametrize(("lifetime_s", "hours"), [
    (0, 0), (1, 1), (3599.9, 1), (3600, 1), (3600.01, 2), (7 * 3600 + 5, 8),
])
def test_billed_hours_rounds_every_started_hour_up(lifetime_s: float, hours: int) -> None:
    assert billing.billed_hours(lifetime_s) == hours


def test_cost_is_hours_times_hourly_price() -> None:
    plan = resolve_plan("dedicated-48", offline_plans())
    assert billing.cost_usd(plan, 90 * 60) == pytest.approx(2 * plan.price_hourly_usd)


def test_cost_is_capped_at_the_monthly_price() -> None:
    plan = resolve_plan("dedicated-2", offline_plans())
    assert plan.price_monthly_usd is not None
    almost_month_s = 700 * 3600  # 700 h × hourly is above the monthly price
    assert 700 * plan.price_hourly_usd > plan.price_monthly_usd
    assert billing.cost_usd(plan, almost_month_s) == pytest.approx(plan.price_monthly_usd)
    # Below the cap, hourly pricing still applies.
    assert billing.cost_usd(plan, 100 * 3600) == pytest.approx(100 * plan.price_hourly_usd)


def test_second_month_is_charged_again() -> None:
    plan = resolve_plan("dedicated-4", offline_plans())
    assert plan.price_monthly_usd is not None
    cost = billing.cost_usd(plan, (billing.HOURS_PER_MONTH + 10) * 3600)
    assert cost == pytest.approx(plan.price_monthly_usd + 10 * plan.price_hourly_usd)


def test_hourly_only_plans_have_no_cap() -> None:
    from dataclasses import replace

    plan = replace(resolve_plan("dedicated-2", offline_plans()), price_monthly_usd=None)
    assert billing.cost_usd(plan, 700 * 3600) == pytest.approx(700 * plan.price_hourly_usd)
