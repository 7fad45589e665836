"""The emulator's billing ledger: what each instance would cost under Linode's rule.

Linode bills the hourly rate for every started hour an instance exists (powered off or not), from
create to delete, capped at the monthly price (shared/linode-api/README.md, "Billing").
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class LedgerEntry:
    instance_id: int
    label: str
    type_id: str
    price_hourly_usd: float
    price_monthly_usd: float | None
    created: datetime
    deleted: datetime | None = None
    deleted_by: str | None = None  # "api" or "outside" (the disappear fault)

    def lifetime_s(self, now: datetime) -> float:
        return ((self.deleted or now) - self.created).total_seconds()

    def billed_hours(self, now: datetime) -> int:
        return max(1, math.ceil(self.lifetime_s(now) / 3600 - 1e-9))

    def charge_usd(self, now: datetime) -> float:
        charge = self.billed_hours(now) * self.price_hourly_usd
        if self.price_monthly_usd is not None:
            charge = min(charge, self.price_monthly_usd)
        return round(charge, 6)


class Ledger:
    def __init__(self, clock: Callable[[], datetime] = utcnow) -> None:
        self.clock = clock
        self._entries: dict[int, LedgerEntry] = {}
        self._lock = threading.Lock()

    def opened(self, instance_id: int, label: str, type_id: str, hourly: float,
               monthly: float | None) -> None:
        with self._lock:
            self._entries[instance_id] = LedgerEntry(instance_id, label, type_id, hourly, monthly,
                                                     self.clock())

    def closed(self, instance_id: int, by: str = "api") -> None:
        with self._lock:
            entry = self._entries.get(instance_id)
            if entry is not None and entry.deleted is None:
                entry.deleted = self.clock()
                entry.deleted_by = by

    def entries(self) -> list[LedgerEntry]:
        with self._lock:
            return list(self._entries.values())

    def entry(self, instance_id: int) -> LedgerEntry:
        with self._lock:
            return self._entries[instance_id]

    def running(self) -> list[LedgerEntry]:
        """Instances created and not (yet) deleted: still billing."""
        return [e for e in self.entries() if e.deleted is None]

    def total_usd(self) -> float:
        now = self.clock()
        return round(sum(e.charge_usd(now) for e in self.entries()), 6)
