"""--max-cost as pure logic: refuse before start, and the latest moment to stop during a run.

Linode bills every started hour in full (provision.billing), so the spend only moves at whole
hours of instance lifetime. A cap of $X therefore allows H whole hours, the most whose bill stays
within X; the run must have its instance confirmed deleted before lifetime H h, which means it
starts stopping (stop the render, pull the finished segments, delete) `stop_margin_s` earlier.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from launcher.errors import LauncherError
from provision.billing import HOURS_PER_MONTH, Priced, cost_usd

# Stopping takes: the render's interrupt and segment flush (a few s), the pull of finished
# segments (minutes for a long 4K render over a home link), and the delete until the API
# confirms it (about 10 s, see estimate.model.DEFAULT_PHASES_S). Ten minutes covers them with
# room for a slow API; a run with a measured pull estimate may pass its own margin.
DEFAULT_STOP_MARGIN_S = 600.0
# Never search more than this many months of hours for a (very large) cap.
_MAX_MONTHS = 24


class CostCapExceeded(LauncherError):
    """The estimate is above --max-cost; nothing was created."""

    exit_code = 2


def allowed_hours(plan: Priced, max_cost_usd: float) -> int:
    """The most whole billed hours whose cost under Linode's rule stays within the cap."""
    if max_cost_usd < 0:
        raise ValueError(f"max_cost_usd must be >= 0, got {max_cost_usd}")
    if plan.price_hourly_usd <= 0:
        return HOURS_PER_MONTH * _MAX_MONTHS
    # A tiny epsilon so $0.108 x 1 h fits a $0.108 cap despite binary rounding.
    h = math.floor(max_cost_usd / plan.price_hourly_usd + 1e-9)
    # The monthly cap can make further hours free: extend while the bill does not grow past it.
    while (h < HOURS_PER_MONTH * _MAX_MONTHS
           and cost_usd(plan, (h + 1) * 3600.0) <= max_cost_usd + 1e-9):
        h += 1
    return h


def refusal(estimated_cost_usd: float, max_cost_usd: float | None) -> str | None:
    """Why the run must not start, or None when the estimate fits the cap (or there is none)."""
    if max_cost_usd is None or estimated_cost_usd <= max_cost_usd + 1e-9:
        return None
    return (f"the estimate is ${estimated_cost_usd:.2f}, above --max-cost ${max_cost_usd:.2f}: "
            "nothing was created (pick a smaller plan, or raise the cap)")


def check_before_start(estimated_cost_usd: float, max_cost_usd: float | None) -> None:
    """Raise CostCapExceeded when the estimate is above the cap."""
    reason = refusal(estimated_cost_usd, max_cost_usd)
    if reason:
        raise CostCapExceeded(reason)


@dataclass(frozen=True)
class CostGuard:
    """The cap for one run on one plan: when to start stopping, given the instance's lifetime."""

    plan: Priced
    max_cost_usd: float
    stop_margin_s: float = DEFAULT_STOP_MARGIN_S

    @property
    def allowed_hours(self) -> int:
        return allowed_hours(self.plan, self.max_cost_usd)

    @property
    def stop_at_lifetime_s(self) -> float:
        """Lifetime (since create) at which to begin stopping; <= 0 means never start."""
        return self.allowed_hours * 3600.0 - self.stop_margin_s

    def can_start(self) -> bool:
        return self.stop_at_lifetime_s > 0

    def remaining_s(self, lifetime_s: float) -> float:
        """Seconds left before stopping must begin (negative: overdue)."""
        return self.stop_at_lifetime_s - lifetime_s

    def should_stop(self, lifetime_s: float) -> bool:
        """True once the render must stop so the confirmed delete lands within the cap."""
        return lifetime_s >= self.stop_at_lifetime_s

    def spend_usd(self, lifetime_s: float) -> float:
        """What the instance has cost so far under the billing rule."""
        return cost_usd(self.plan, lifetime_s)
