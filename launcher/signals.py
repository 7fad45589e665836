"""Turn SIGINT, SIGTERM and SIGHUP into an exception, so the run's `finally` always deletes."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from launcher.errors import Interrupted

HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextmanager
def signals_raise() -> Iterator[None]:
    """Inside this block the handled signals raise Interrupted; previous handlers come back after.

    A second signal while cleanup is already running is ignored: cleanup (the delete) must not
    itself be interrupted, or the instance would be left running.
    """
    state = {"raised": False}

    def handler(signum: int, _frame: FrameType | None) -> None:
        if state["raised"]:
            return
        state["raised"] = True
        raise Interrupted(signum, signal.Signals(signum).name)

    previous = {s: signal.getsignal(s) for s in HANDLED}
    for s in HANDLED:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@contextmanager
def signals_deferred() -> Iterator[list[int]]:
    """Inside this block (cleanup) the handled signals are recorded but do not interrupt."""
    seen: list[int] = []

    def handler(signum: int, _frame: FrameType | None) -> None:
        seen.append(signum)

    previous = {s: signal.getsignal(s) for s in HANDLED}
    for s in HANDLED:
        signal.signal(s, handler)
    try:
        yield seen
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
