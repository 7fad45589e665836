"""Retrying transient API failures (429, 5xx, lost connections), honouring Retry-After."""

from __future__ import annotations

import email.utils
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import requests
from linode_api4 import ApiError

from provision.errors import CloudError

T = TypeVar("T")
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: attempts, exponential delays, and a bound on the total time slept."""

    attempts: int = 6
    base_delay_s: float = 1.0
    max_delay_s: float = 30.0
    total_sleep_s: float = 180.0  # honouring a Retry-After beyond this gives up instead


DEFAULT_POLICY = RetryPolicy()
# Read-only commands (plans, estimate, a dry run, ls): fail in seconds, not minutes.
QUICK_POLICY = RetryPolicy(attempts=2, base_delay_s=0.5, max_delay_s=1.0, total_sleep_s=2.0)


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: rate limited, a server error, or the connection failed or timed out."""
    if isinstance(exc, ApiError):
        return exc.status in RETRY_STATUSES
    return isinstance(exc, requests.ConnectionError | requests.Timeout)


def is_ambiguous(exc: BaseException) -> bool:
    """The request may or may not have taken effect (a 429 was refused before doing anything)."""
    if isinstance(exc, ApiError):
        return exc.status >= 500 or exc.status == 408
    return isinstance(exc, requests.ConnectionError | requests.Timeout)


def retry_after_s(exc: BaseException, now_epoch: float | None = None) -> float | None:
    """Seconds the server asked us to wait: Retry-After (seconds or HTTP date), else the
    X-RateLimit-Reset epoch when nothing remains; None when it said nothing."""
    response = getattr(exc, "response", None)
    headers: Any = getattr(response, "headers", None)
    if not headers:
        return None
    now_epoch = time.time() if now_epoch is None else now_epoch
    value = headers.get("Retry-After")
    if value is not None:
        value = str(value).strip()
        try:
            return max(0.0, float(value))
        except ValueError:
            parsed = email.utils.parsedate_to_datetime(value) if value else None
            if parsed is not None:
                return max(0.0, parsed.timestamp() - now_epoch)
    if str(headers.get("X-RateLimit-Remaining", "")).strip() == "0":
        try:
            return max(0.0, float(headers["X-RateLimit-Reset"]) - now_epoch)
        except (KeyError, ValueError):
            return None
    return None


def describe(exc: BaseException) -> str:
    """One line for the user (ApiError text holds method, path, status and reasons; no token).
    Network failures say what happened in a few words, not urllib3's 200 characters."""
    if isinstance(exc, ApiError):
        return " ".join(str(exc).split())
    if isinstance(exc, requests.Timeout):
        return "the API did not answer in time"
    if isinstance(exc, requests.ConnectionError):
        m = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", str(exc))
        return f"cannot reach the API ({m.group(1).strip() if m else 'connection failed'})"
    return f"{exc.__class__.__name__}: {' '.join(str(exc).split())[:200]}"


def _short(exc: BaseException) -> str:
    if isinstance(exc, ApiError):
        return f"API {exc.status}"
    return describe(exc)


def call_with_retry(
    fn: Callable[[], T],
    what: str,
    policy: RetryPolicy = DEFAULT_POLICY,
    *,
    before_retry: Callable[[BaseException], T | None] | None = None,
    on_retry: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    rng: Callable[[], float] = random.random,
) -> T:
    """Run `fn`, retrying transient failures. `before_retry(exc)` may return a result that
    makes the retry unnecessary (the instance a timed-out create did make). Others propagate."""
    slept = 0.0
    for attempt in range(1, policy.attempts + 1):
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - filtered just below
            if not is_transient(exc):
                raise
            if attempt == policy.attempts:
                raise CloudError(f"{what} failed after {attempt} attempt"
                                 f"{'s' if attempt > 1 else ''}: {describe(exc)}") \
                    from None
            asked = retry_after_s(exc)
            if asked is not None and asked > 0:
                delay = asked  # the server knows when its window resets; guessing earlier wastes
            else:
                backoff = min(policy.max_delay_s, policy.base_delay_s * 2 ** (attempt - 1))
                delay = backoff * (0.5 + rng() / 2)  # jitter so parallel runs do not sync up
            if slept + delay > policy.total_sleep_s:
                raise CloudError(f"{what} still failing after {attempt} attempts and {slept:.0f} s "
                                 f"(server asks to wait {delay:.0f} s more): {describe(exc)}") \
                    from None
            if on_retry is not None:  # retries are visible: "API 503, retry 2/6 in 4 s"
                on_retry(f"{what}: {_short(exc)}, retry {attempt + 1}/{policy.attempts} in "
                         f"{delay:.1f} s")
            sleep(delay)
            slept += delay
            if before_retry is not None:
                found = before_retry(exc)
                if found is not None:
                    return found
    raise AssertionError("unreachable")
