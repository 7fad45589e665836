"""wait_until timing with a fake clock; retry/backoff honouring Retry-After with a fake sleep."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from linode_api4 import ApiError

from provision.errors import CloudError, ProvisionError, SshError
from provision.retry import RetryPolicy, call_with_retry, is_ambiguous, retry_after_s
from provision.wait import wait_until


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s


def test_wait_until_returns_the_first_truthy_value() -> None:
    clock = FakeClock()
    answers = iter([None, 0, "", "ready"])
    ticks: list[float] = []
    got = wait_until(lambda: next(answers), 60, 5, ticks.append, clock=clock, sleep=clock.sleep)
    assert got == "ready"
    assert clock.sleeps == [5, 5, 5]
    assert ticks == [0, 5, 10]


def test_wait_until_times_out_at_the_deadline_not_later() -> None:
    clock = FakeClock()
    calls = []

    def never() -> None:
        calls.append(clock.now)

    with pytest.raises(SshError, match="timed out after 12 s waiting for ssh"):
        wait_until(never, 12, 5, what="ssh", error=SshError, clock=clock, sleep=clock.sleep)
    assert clock.sleeps == [5, 5, 2]  # the last sleep is cut to the deadline
    assert calls[-1] - calls[0] == 12  # one final check exactly at the deadline


def test_wait_until_rejects_nonsense_bounds() -> None:
    with pytest.raises(ValueError):
        wait_until(lambda: True, 0, 1)


def _api_error(status: int, headers: dict[str, str] | None = None) -> ApiError:
    resp = requests.Response()
    resp.status_code = status
    resp.headers.update(headers or {})
    return ApiError(f"POST /v4/linode/instances: [{status}] Too many requests", status=status,
                    json={"errors": [{"reason": "x"}]}, response=resp)


def _flaky(errors: list[BaseException], result: Any = "ok") -> Any:
    calls = {"n": 0}

    def fn() -> Any:
        calls["n"] += 1
        if errors:
            raise errors.pop(0)
        return result

    fn.calls = calls  # type: ignore[attr-defined]
    return fn


def test_retry_after_header_is_honoured_exactly() -> None:
    clock = FakeClock()
    fn = _flaky([_api_error(429, {"Retry-After": "7"}), _api_error(503, {"Retry-After": "2"})])
    assert call_with_retry(fn, "op", sleep=clock.sleep) == "ok"
    assert clock.sleeps == [7.0, 2.0]


def test_exponential_backoff_without_header() -> None:
    clock = FakeClock()
    fn = _flaky([_api_error(500), _api_error(502), _api_error(504), requests.ConnectionError()])
    policy = RetryPolicy(attempts=5, base_delay_s=1, max_delay_s=4)
    assert call_with_retry(fn, "op", policy, sleep=clock.sleep, rng=lambda: 1.0) == "ok"
    assert clock.sleeps == [1, 2, 4, 4]  # doubled, capped at max_delay_s


def test_ratelimit_reset_header_used_when_nothing_remains() -> None:
    exc = _api_error(429, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1030"})
    assert retry_after_s(exc, now_epoch=1000.0) == 30.0
    assert retry_after_s(_api_error(429), now_epoch=1000.0) is None


def test_client_errors_are_not_retried() -> None:
    fn = _flaky([_api_error(400)])
    with pytest.raises(ApiError):
        call_with_retry(fn, "op", sleep=lambda s: None)
    assert fn.calls["n"] == 1


def test_attempts_are_bounded() -> None:
    fn = _flaky([_api_error(500) for _ in range(10)])
    with pytest.raises(CloudError, match="op failed after 3 attempts"):
        call_with_retry(fn, "op", RetryPolicy(attempts=3), sleep=lambda s: None)
    assert fn.calls["n"] == 3


def test_total_sleep_is_bounded_even_when_the_server_asks_for_more() -> None:
    clock = FakeClock()
    fn = _flaky([_api_error(429, {"Retry-After": "100"}) for _ in range(5)])
    with pytest.raises(CloudError, match="server asks to wait 100 s"):
        call_with_retry(fn, "op", RetryPolicy(total_sleep_s=150), sleep=clock.sleep)
    assert clock.sleeps == [100.0]


def test_before_retry_can_adopt_a_result() -> None:
    fn = _flaky([_api_error(502), _api_error(502)])
    seen: list[BaseException] = []

    def adopt(exc: BaseException) -> str | None:
        seen.append(exc)
        return "adopted" if is_ambiguous(exc) else None

    assert call_with_retry(fn, "op", before_retry=adopt, sleep=lambda s: None) == "adopted"
    assert fn.calls["n"] == 1 and len(seen) == 1


def test_ambiguity() -> None:
    assert is_ambiguous(_api_error(500)) and is_ambiguous(requests.ReadTimeout())
    assert not is_ambiguous(_api_error(429)) and not is_ambiguous(_api_error(400))


def test_errors_are_provision_errors() -> None:
    assert issubclass(CloudError, ProvisionError)
