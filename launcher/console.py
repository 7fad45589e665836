"""What the user sees during a run: phases with durations, streamed render progress, messages."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

from rich.progress import Progress as RichProgress

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

        # On a terminal the render gets a rich bar (frames, fps, ETA, and what the run costs so
        # far with its lease countdown), the other lines print above it; piped: plain lines.
        self.rich = not self.timestamps
        self._bar: Any = None
        self._task: Any = None
        self._lock = threading.Lock()

    def watch(self, status: Callable[[], str]) -> None:
        self._status = status

    def _print(self, text: str) -> None:
        stamp = time.strftime("%H:%M:%S ") if self.timestamps else ""
        with self._lock:
            if self._bar is not None:
                self._bar.console.print(f"{stamp}{text}", markup=False, highlight=False)
                return
        print(f"{stamp}{text}", file=self.out, flush=True)

    def _render_bar(self, done: int, total: int, fps: float) -> bool:
        """The rich bar on a terminal; False when plain lines are wanted."""
        if not self.rich:
            return False
        with self._lock:
            if self._bar is None:
                from rich.console import Console
                from rich.progress import (
                    BarColumn,
                    MofNCompleteColumn,
                    TextColumn,
                    TimeRemainingColumn,
                )

                self._bar = RichProgress(
                    TextColumn("    render"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[fps]:.1f} fps  ETA"), TimeRemainingColumn(),
                    TextColumn("{task.fields[status]}"),
                    console=Console(file=self.out), transient=True)
                self._bar.start()
                self._task = self._bar.add_task("render", total=total, fps=fps, status="")
            self._bar.update(self._task, completed=done, total=total, fps=fps,
                             status=self._status())
        return True

    def _stop_bar(self) -> None:
        with self._lock:
            bar, self._bar = self._bar, None
        if bar is not None:
            bar.stop()

    def phase_started(self, name: str) -> None:
        self._print(f"==> {name}")

    def phase_finished(self, name: str, seconds: float) -> None:
        self._stop_bar()
        self._print(f"    {name} done in {fmt_s(seconds)}")

    def message(self, text: str) -> None:
        self._print(f"    {text}")

    def progress(self, done: int, total: int, fps: float) -> None:
        if self._render_bar(done, total, fps):
            return
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
