"""What the user sees during a run: phases with durations, streamed render progress, messages."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from launcher.run.hooks import Hooks
from launcher.units import fmt_s


class ConsoleHooks(Hooks):
    """Plain, line-oriented output: readable in a terminal, in CI logs and when piped."""

    def __init__(self, out: TextIO | None = None, progress_every_s: float = 2.0,
                 verbose: bool = False, timestamps: bool | None = None) -> None:
        self.out = out or sys.stderr
        self.progress_every_s = progress_every_s
        self.verbose = verbose
        self._last_progress = 0.0
        self._status: Callable[[], str] = lambda: ""
        # Piped or logged: every line says when it happened (a terminal shows it as it comes).
        if timestamps is None:
            try:
                timestamps = not self.out.isatty()
            except (AttributeError, ValueError):
                timestamps = True
        self.timestamps = timestamps

    def watch(self, status: Callable[[], str]) -> None:
        self._status = status

    def _print(self, text: str) -> None:
        stamp = time.strftime("%H:%M:%S ") if self.timestamps else ""
        print(f"{stamp}{text}", file=self.out, flush=True)

    def phase_started(self, name: str) -> None:
        self._print(f"==> {name}")

    def phase_finished(self, name: str, seconds: float) -> None:
        self._print(f"    {name} done in {fmt_s(seconds)}")

    def message(self, text: str) -> None:
        self._print(f"    {text}")

    def progress(self, done: int, total: int, fps: float) -> None:
        now = time.monotonic()
        if done < total and now - self._last_progress < self.progress_every_s:
            return
        self._last_progress = now
        eta = (total - done) / fps if fps > 0 else 0.0
        status = self._status()
        self._print(f"    render {done}/{total} frames  {fps:.1f} fps  ETA {fmt_s(eta)}"
                    + (f"  ({status})" if status else ""))

    def render_line(self, line: str) -> None:
        if self.verbose:
            self._print(f"    | {line}")

    def before_delete(self, host: object) -> None:
        return None
