"""Turn SIGINT, SIGTERM and SIGHUP into `Interrupted`, so the run's `finally` always deletes.

The first signal raises. Any later one (a second Ctrl-C while the instances are being deleted)
does not interrupt the cleanup, which would leave a server running; instead it is answered at
once with what is still happening ("deleting 12345, up to 40 s"), written straight to the
terminal's file descriptor: a signal handler must not re-enter a buffered `print`, and a broken
stderr must not matter.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType

from launcher.errors import Interrupted

HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass
class RunSignals:
    """The state of one run's signal handling; see `signals_raise`."""

    status: Callable[[], str] = lambda: "cleaning up"
    raised: bool = False     # Interrupted was raised once: never again
    shielded: bool = False   # cleanup under way: nothing may interrupt it
    late: list[int] = field(default_factory=list)  # signals answered with a status line

    def handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.raised or self.shielded:
            self.late.append(signum)
            say(f"{signal.Signals(signum).name} received: still {self.status()}; this launcher "
                "exits as soon as that is done (a SIGKILL now would leave it to the lease "
                "and `launcher cleanup`)")
            return
        self.raised = True
        raise Interrupted(signum, signal.Signals(signum).name)

    @contextmanager
    def shield(self) -> Iterator[None]:
        """Inside: signals are answered, never raised (the delete must run to its end)."""
        before, self.shielded = self.shielded, True
        try:
            yield
        finally:
            self.shielded = before


@contextmanager
def signals_raise(status: Callable[[], str] | None = None) -> Iterator[RunSignals]:
    """Inside this block the handled signals raise Interrupted (once); previous handlers come
    back after. `status()` says what cleanup is doing when a later signal asks."""
    state = RunSignals(status or (lambda: "cleaning up"))
    previous = {s: signal.getsignal(s) for s in HANDLED}
    for s in HANDLED:
        signal.signal(s, state.handle)
    try:
        yield state
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def say(text: str) -> None:
    """One line on stderr's file descriptor, best effort (closed terminal, broken pipe: lost)."""
    try:
        os.write(2, f"    {text}\n".encode(errors="replace"))
    except OSError:
        pass
