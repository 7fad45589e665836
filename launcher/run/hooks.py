"""What a run tells its user (phases, messages, progress), and the wrapper that makes it safe.

Output is never allowed to change what a run does: a closed terminal (EIO), a pipe whose reader
died with the same Ctrl-C (EPIPE) or a buggy hook must not skip or reorder a delete. Every call
the lifecycle makes goes through `BestEffort`, which drops what cannot be shown.
"""

from __future__ import annotations

from typing import Any


class Hooks:
    """Seams for tests and the UI; every method is optional to override."""

    def phase_started(self, name: str) -> None: ...
    def phase_finished(self, name: str, seconds: float) -> None: ...
    def message(self, text: str) -> None: ...
    def progress(self, done: int, total: int, fps: float) -> None: ...
    def render_line(self, line: str) -> None: ...
    def before_delete(self, host: Any) -> None: ...
    def created(self, instance: Any) -> None: ...
    def watch(self, status: Any) -> None:
        """`status()` says what the run costs so far and when its lease ends (for progress)."""


class BestEffort(Hooks):
    """Forwards to `inner`; any Exception from it is swallowed (interrupts pass through)."""

    def __init__(self, inner: Hooks | None) -> None:
        self.inner = inner or Hooks()
        self.dropped = 0  # calls that failed: a broken terminal, say

    def _call(self, name: str, *args: Any) -> None:
        try:
            getattr(self.inner, name)(*args)
        except Exception:  # noqa: BLE001 - output is best effort; the run goes on
            self.dropped += 1

    def phase_started(self, name: str) -> None:
        self._call("phase_started", name)

    def phase_finished(self, name: str, seconds: float) -> None:
        self._call("phase_finished", name, seconds)

    def message(self, text: str) -> None:
        self._call("message", text)

    def progress(self, done: int, total: int, fps: float) -> None:
        self._call("progress", done, total, fps)

    def render_line(self, line: str) -> None:
        self._call("render_line", line)

    def before_delete(self, host: Any) -> None:
        self._call("before_delete", host)

    def created(self, instance: Any) -> None:
        self._call("created", instance)

    def watch(self, status: Any) -> None:
        self._call("watch", status)
