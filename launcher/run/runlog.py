"""A run's render output kept on this machine (`<state>/<run id>/render.log`), whatever the run
was: the server's own lines for one node or a detached cluster's driver, the segments and
warnings of an attached cluster. Appending is best effort: a full disk never stops a run."""

from __future__ import annotations

import threading
from collections import deque
from pathlib import Path

LOG_NAME = "render.log"


class RunLog:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / LOG_NAME
        self._lock = threading.Lock()
        self.failed = False

    def write(self, line: str) -> None:
        if self.failed:
            return
        try:
            with self._lock, open(self.path, "a", encoding="utf-8") as fh:
                fh.write(line.rstrip("\n") + "\n")
        except OSError:
            self.failed = True  # said nowhere: output must not disturb the run

    def tail(self, lines: int = 5) -> list[str]:
        try:
            with open(self.path, encoding="utf-8", errors="replace") as fh:
                return [x.rstrip("\n") for x in deque(fh, maxlen=lines)]
        except OSError:
            return []
