"""SIGINT, SIGTERM and SIGHUP become exceptions, so cleanup in `finally` always runs."""

from __future__ import annotations

import os
import signal

import pytest

from launcher.errors import Interrupted
from launcher.run.signals import signals_deferred, signals_raise


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_signal_raises_and_finally_runs(sig: signal.Signals) -> None:
    cleaned = []
    before = signal.getsignal(sig)
    with pytest.raises(Interrupted) as info:
        with signals_raise():
            try:
                os.kill(os.getpid(), sig)
                signal.sigtimedwait([], 0.1) if hasattr(signal, "sigtimedwait") else None
            finally:
                cleaned.append(True)
    assert cleaned == [True]
    assert info.value.signum == sig
    assert signal.getsignal(sig) == before


def test_signals_during_cleanup_are_recorded_not_raised() -> None:
    with signals_deferred() as seen:
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)
    assert seen == [signal.SIGTERM, signal.SIGINT]
