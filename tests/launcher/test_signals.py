"""SIGINT, SIGTERM and SIGHUP become exceptions, so cleanup in `finally` always runs."""

from __future__ import annotations

import os
import signal
import time

import pytest

from launcher.errors import Interrupted
from launcher.run.signals import signals_raise


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


def test_a_later_signal_is_answered_not_raised(capfd) -> None:
    with pytest.raises(Interrupted):
        with signals_raise(lambda: "deleting 42, up to 180 s") as sig:
            try:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(1)
            finally:  # cleanup: a second Ctrl-C must not stop it
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.05)
                cleaned = True
    assert cleaned and sig.late == [signal.SIGTERM]
    assert "SIGTERM received: still deleting 42, up to 180 s" in capfd.readouterr().err


def test_inside_the_shield_even_a_first_signal_is_only_answered() -> None:
    with signals_raise() as sig:
        with sig.shield():
            os.kill(os.getpid(), signal.SIGHUP)
            time.sleep(0.05)
        assert sig.late == [signal.SIGHUP] and not sig.raised
