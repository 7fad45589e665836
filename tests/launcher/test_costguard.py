"""launcher.run.costguard: --max-cost refusal and the latest stop under whole-hour billing."""

from __future__ import annotations

import pytest

from launcher.run.costguard import (
    CostCapExceeded,
    CostGuard,
    allowed_hours,
    check_before_start,
    refusal,
)
from provision.billing import cost_usd
from provision.plans import offline_plans, resolve_plan


@pytest.fixture(scope="module")
def d48():
    return resolve_plan("dedicated-48", offline_plans())


class _Priced:
    def __init__(self, hourly: float, monthly: float | None) -> None:
        self.price_hourly_usd = hourly
        self.price_monthly_usd = monthly


@pytest.mark.parametrize("cap,hours", [(0.0, 0), (1.0, 0), (1.296, 1), (2.0, 1), (2.592, 2),
                                       (3.9, 3)])
def test_allowed_hours_is_the_most_hours_within_the_cap(d48, cap, hours):
    assert d48.price_hourly_usd == pytest.approx(1.296)
    assert allowed_hours(d48, cap) == hours
    assert cost_usd(d48, hours * 3600) <= cap + 1e-9
    assert cost_usd(d48, hours * 3600 + 1) > cap


def test_monthly_cap_makes_the_rest_of_the_month_free():
    p = _Priced(1.0, 10.0)
    # 10 hours cost $10 = the monthly price; every further hour of that month is free.
    assert allowed_hours(p, 10.0) == 730
    assert allowed_hours(p, 9.5) == 9


def test_refuses_before_start_when_the_estimate_is_above_the_cap():
    assert refusal(1.30, None) is None
    assert refusal(1.30, 2.00) is None
    assert refusal(2.00, 2.00) is None
    msg = refusal(2.59, 2.00)
    assert msg and "$2.59" in msg and "$2.00" in msg and "nothing was created" in msg
    with pytest.raises(CostCapExceeded) as exc:
        check_before_start(2.59, 2.00)
    assert exc.value.exit_code == 2
    check_before_start(1.0, 2.0)  # no exception


def test_guard_stops_so_the_spend_never_passes_the_cap(d48):
    g = CostGuard(d48, max_cost_usd=2.00, stop_margin_s=300)
    assert g.allowed_hours == 1
    assert g.stop_at_lifetime_s == 3600 - 300
    assert not g.should_stop(3299)
    assert g.should_stop(3300)
    assert g.remaining_s(3000) == pytest.approx(300)
    # Stopping when told and finishing the delete within the margin keeps every spend in the cap.
    for t in range(0, 3600 * 3, 60):
        stop_begins = min(t, g.stop_at_lifetime_s) if g.should_stop(t) else t
        deleted_at = stop_begins + g.stop_margin_s if g.should_stop(t) else t
        assert g.spend_usd(deleted_at) <= 2.00


def test_guard_with_a_cap_below_one_hour_cannot_start(d48):
    g = CostGuard(d48, max_cost_usd=1.00)
    assert not g.can_start()
    assert g.should_stop(0)
    assert CostGuard(d48, max_cost_usd=5.0, stop_margin_s=600).can_start()


def test_negative_cap_is_an_error(d48):
    with pytest.raises(ValueError):
        allowed_hours(d48, -1.0)
