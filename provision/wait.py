"""wait_until: the one bounded polling loop in the codebase."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from provision.errors import ProvisionError

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T | None],
    timeout_s: float,
    interval_s: float,
    on_tick: Callable[[float], None] | None = None,
    what: str = "a condition",
    *,
    error: type[ProvisionError] = ProvisionError,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call `predicate` until it returns something truthy and return that; raise `error` after
    `timeout_s`. `on_tick(elapsed_s)` runs after each miss (for progress lines)."""
    if timeout_s <= 0 or interval_s <= 0:
        raise ValueError("timeout_s and interval_s must be positive")
    start = clock()
    deadline = start + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        now = clock()
        if now >= deadline:
            raise error(f"timed out after {timeout_s:g} s waiting for {what}")
        if on_tick is not None:
            on_tick(now - start)
        # Never sleep past the deadline: the last check happens right at it.
        sleep(max(0.0, min(interval_s, deadline - now)))
