"""What the user sees during a run: phases with durations, streamed render progress, messages."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from launcher.run.hooks import Hooks


def fmt_s(seconds: float, decimals: int = 1) -> str:
    """The one duration format: 90 -> '1m30s', 4000 -> '1h07m'; under a minute with
    `decimals` (progress lines keep one, tables none)."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.{decimals}f}s"
    m, s = divmod(int(round(seconds)), 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m"


class ConsoleHooks(Hooks):
    """Plain, line-oriented output: readable in a terminal, in CI logs and when piped."""

    def __init__(self, out: TextIO | None = None, progress_every_s: float = 2.0,
                 verbose: bool = False) -> None:
        self.out = out or sys.stderr
        self.progress_every_s = progress_every_s
        self.verbose = verbose
        self._last_progress = 0.0

    def _print(self, text: str) -> None:
        print(text, file=self.out, flush=True)

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
        self._print(f"    render {done}/{total} frames  {fps:.1f} fps  ETA {fmt_s(eta)}")

    def render_line(self, line: str) -> None:
        if self.verbose:
            self._print(f"    | {line}")

    def before_delete(self, host: object) -> None:
        return None
