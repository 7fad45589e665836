"""The host launcher's second chance: a host that dies while starting is started once more."""

from __future__ import annotations

import pytest

from tests.fakelinode.hosts import NamespaceHostBackend, _EarlyExit


def _backend_launching(outcomes: list[Exception | None]) -> tuple[NamespaceHostBackend, list]:
    backend = NamespaceHostBackend.__new__(NamespaceHostBackend)  # no bridge: no root needed
    calls: list[object] = []

    def launch_once(host: object) -> None:
        calls.append(host)
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome

    backend._launch_once = launch_once  # type: ignore[method-assign]
    return backend, calls


def test_a_host_that_dies_while_starting_gets_one_more_try(capsys) -> None:
    backend, calls = _backend_launching([_EarlyExit("host h exited (1) while starting: x"), None])
    backend._launch("h")  # type: ignore[arg-type]
    assert calls == ["h", "h"]
    assert "host h exited (1) while starting: x; starting it again" in capsys.readouterr().err


def test_a_host_that_dies_twice_fails_with_what_it_said() -> None:
    backend, calls = _backend_launching([_EarlyExit("first"), _EarlyExit("second: no /proc")])
    with pytest.raises(RuntimeError, match="second: no /proc"):
        backend._launch("h")  # type: ignore[arg-type]
    assert len(calls) == 2


def test_other_start_failures_are_not_retried() -> None:
    backend, calls = _backend_launching([RuntimeError("sshd did not come up"), None])
    with pytest.raises(RuntimeError, match="did not come up"):
        backend._launch("h")  # type: ignore[arg-type]
    assert len(calls) == 1
