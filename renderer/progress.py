"""Render progress: a rich bar on a terminal, plain parseable lines otherwise (CI, pipes, SSH).

Plain lines look like ``frame 150/1800  32.1 fps  ETA 51s``; the launcher parses them from the
server's output, so keep that shape.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

PLAIN_EVERY_S = 2.0


def fmt_duration(seconds: float) -> str:
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


class Progress:
    """Counts frames done; shows rate and ETA. Use as a context manager."""

    def __init__(self, total: int, *, already_done: int = 0, enabled: bool = True,
                 stream: TextIO | None = None) -> None:
        self.total = total
        self.done = already_done
        self._start_done = already_done
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self._t0 = time.perf_counter()
        self._last_line = 0.0
        self._printed = -1
        self._bar = None
        self._task = None

    def __enter__(self) -> Progress:
        if self.enabled and self.stream.isatty():
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                TextColumn("frames"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[fps]:.1f} fps"), TextColumn("ETA"),
                TimeRemainingColumn(), transient=True)
            self._bar.__enter__()
            self._task = self._bar.add_task("render", total=self.total, completed=self.done,
                                            fps=0.0)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
        elif (self.enabled and exc[0] is None and self.done > self._start_done
              and self._printed != self.done):
            self._plain()

    @property
    def fps(self) -> float:
        elapsed = time.perf_counter() - self._t0
        return (self.done - self._start_done) / elapsed if elapsed > 0 else 0.0

    @property
    def eta_s(self) -> float:
        rate = self.fps
        return (self.total - self.done) / rate if rate > 0 else float("inf")

    def advance(self, frames: int = 1) -> None:
        self.done += frames
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, fps=self.fps)
            return
        now = time.perf_counter()
        if now - self._last_line >= PLAIN_EVERY_S or self.done == self.total:
            self._plain()

    def note(self, line: str) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.console.print(line, highlight=False, markup=False)
        else:
            print(line, file=self.stream, flush=True)

    def _plain(self) -> None:
        self._last_line = time.perf_counter()
        self._printed = self.done
        eta = fmt_duration(self.eta_s) if self.eta_s != float("inf") else "?"
        print(f"frame {self.done}/{self.total}  {self.fps:.1f} fps  ETA {eta}",
              file=self.stream, flush=True)
