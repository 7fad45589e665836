"""Scheduler failover: notice that the head node (the Dask scheduler, the tunnel's end) is lost, and
what is left to render once another node takes over.

Dask already survives a lost worker; it cannot survive its scheduler. When the head goes, the
launcher's client either hears nothing (the tunnel still accepts here while nothing answers there)
or loses its connection some time later, when ssh gives up. So the head is watched from outside
the client, in a thread: the cloud API (a deleted or stopped instance is known at once) and an SSH
probe of the scheduler's process (an unreachable node misses a few probes in a row). Once the head
is judged lost, the watch closes the tunnel, so a client waiting on a silent scheduler wakes up.
launcher.cluster.job then starts a scheduler on the next node alive and renders what `remaining`
says is left.
"""

from __future__ import annotations

import shlex
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Protocol, TypeVar

from launcher.cluster.dask_cluster import ClusterError, NodeSegment
from renderer.segments import Segment

# Linode statuses of an instance whose processes are not running (or soon will not be).
DOWN_STATES = frozenset({"offline", "shutting_down", "deleting", "stopped", "rebooting",
                         "rebuilding", "restoring", "booting", "provisioning"})


class HeadLost(ClusterError):
    """The node running the Dask scheduler is lost; another may take over."""

    def __init__(self, node: str, reason: str) -> None:
        super().__init__(f"{node}, the Dask scheduler's node, is lost: {reason}")
        self.node = node
        self.reason = reason


@dataclass(frozen=True)
class HeadProbes:
    """How the watch looks at the head; each call must return within a bounded time."""

    instance_status: Callable[[], str | None]  # the API's status; None: the instance is gone
    scheduler_answers: Callable[[], bool]      # over SSH: the scheduler's process is alive
    tunnel_open: Callable[[], bool]            # the launcher's SSH tunnel to it still runs


class HeadWatch:
    """Watches the head during a render; `reason` says why once it is judged lost.

    Lost means: the API says the instance is gone or down, or the scheduler missed `misses`
    probes in a row, or the tunnel closed and the scheduler missed a probe (a tunnel that died
    while the scheduler answers is not a lost head). An API that cannot be asked is no evidence.
    Use as a context manager: the thread runs inside the block.
    """

    def __init__(self, name: str, probes: HeadProbes, on_lost: Callable[[str], None],
                 interval_s: float = 5.0, misses: int = 3) -> None:
        self.name = name
        self.probes = probes
        self.on_lost = on_lost
        self.interval_s = interval_s
        self.misses = max(1, misses)
        self.reason: str | None = None
        self._missed = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> HeadWatch:
        self._thread = threading.Thread(target=self._watch, daemon=True,
                                        name=f"juliafarm-watch-{self.name}")
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            # A probe under way is bounded; the thread is a daemon, so an interrupt need not
            # wait for it longer than one interval.
            self._thread.join(timeout=self.interval_s)

    def _watch(self) -> None:
        while not self._stop.wait(self.interval_s):
            if self.check() is not None:
                return

    def check(self) -> str | None:
        """One look at the head; the reason once it is lost (and on_lost has run, once)."""
        with self._lock:
            if self.reason is None:
                self.reason = self._look()
                if self.reason is not None:
                    self.on_lost(self.reason)
            return self.reason

    def confirm(self) -> str | None:
        """After the render failed: is the head lost? Looks until it is judged lost or the
        scheduler answers a probe (then None: the failure was something else)."""
        for _ in range(self.misses):
            if self.check() is not None:
                return self.reason
            if self._missed == 0:
                return None
            time.sleep(self.interval_s)  # a blip of the network is not a lost node
        return self.reason

    def _look(self) -> str | None:
        gone = self._instance_down()
        if gone is not None:
            return gone
        if self.probes.scheduler_answers():
            self._missed = 0
            return None
        self._missed += 1
        # A failed probe can take its whole timeout, long enough for the instance to go
        # meanwhile; the API's word then names the cause better than the closed tunnel does.
        gone = self._instance_down()
        if gone is not None:
            return gone
        if not self.probes.tunnel_open():
            return "the SSH tunnel to it closed and its scheduler does not answer"
        if self._missed >= self.misses:
            return f"its scheduler did not answer {self._missed} probes in a row"
        return None

    def _instance_down(self) -> str | None:
        """Why the API says the head's processes are not running, or None."""
        try:
            status = self.probes.instance_status()
        except Exception:  # noqa: BLE001 - an API that cannot be asked is no evidence
            return None
        if status is None:
            return "its instance is gone"
        if status in DOWN_STATES:
            return f"its instance is {status}"
        return None


# ----------------------------------------------------------------------------- after the loss


class Named(Protocol):
    @property
    def name(self) -> str: ...


N = TypeVar("N", bound=Named)


def choose_head(nodes: Sequence[N], lost: Collection[str]) -> N | None:
    """The next scheduler: the first node (in node order) not lost; None if every node is."""
    return next((n for n in nodes if n.name not in lost), None)


def remaining(segments: Sequence[Segment], finished: Mapping[int, NodeSegment],
              lost: Collection[str]) -> list[Segment]:
    """The segments still to render: those not finished, and those whose file lies on a lost
    node (it went with the node)."""
    return [s for s in segments if s.index not in finished or finished[s.index].worker in lost]


def frames_of(segments: Sequence[Segment], finished: Mapping[int, NodeSegment],
              lost: Collection[str]) -> int:
    """Frames rendered and still held by a node alive: the progress after a loss."""
    todo = {s.index for s in remaining(segments, finished, lost)}
    return sum(s.frames for s in segments if s.index not in todo)


def frames_cleanup_command(frames_dir: str | PurePosixPath, segments: Sequence[Segment]) -> str:
    """Shell command removing the PNG frames (--keep-frames) of `segments` from a node: a worker
    stopped mid-segment may have left one half-written, and the pull must not bring it back."""
    ranges = "; ".join(f"seq -f 'frame-%06g.png' {s.first} {s.stop - 1}" for s in segments)
    if not ranges:
        return "true"
    return (f"cd {shlex.quote(str(frames_dir))} 2>/dev/null || exit 0; "
            f"{{ {ranges}; }} | xargs -r rm -f")
