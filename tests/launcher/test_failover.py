"""launcher.cluster.failover without a cluster: when the head counts as lost (fake probes), which
node takes over, which segments are rendered again, and the frames a stopped worker may have
half-written. tests/e2e/test_run_nodes.py loses the scheduler's node for real."""

from __future__ import annotations

import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from launcher.cluster.dask_cluster import NodeSegment
from launcher.cluster.failover import (
    HeadLost,
    HeadProbes,
    HeadWatch,
    choose_head,
    frames_cleanup_command,
    frames_of,
    remaining,
)
from renderer.segments import plan_segments
from renderer.shard import SegmentResult


@dataclass
class FakeHead:
    """Answers the watch's probes as told, and counts them."""

    status: str | None = "running"
    answers: bool = True
    tunnel: bool = True
    api_down: bool = False
    probes: int = 0

    def instance_status(self) -> str | None:
        if self.api_down:
            raise ConnectionError("the API is unreachable")
        return self.status

    def scheduler_answers(self) -> bool:
        self.probes += 1
        return self.answers

    def tunnel_open(self) -> bool:
        return self.tunnel

    def watch(self, misses: int = 3, interval_s: float = 0.01) -> tuple[HeadWatch, list[str]]:
        told: list[str] = []
        probes = HeadProbes(self.instance_status, self.scheduler_answers, self.tunnel_open)
        return HeadWatch("node-1", probes, told.append, interval_s, misses), told


def test_a_healthy_head_is_never_lost() -> None:
    head = FakeHead()
    watch, told = head.watch()
    assert [watch.check() for _ in range(5)] == [None] * 5
    assert watch.confirm() is None and told == [] and head.probes == 6


@pytest.mark.parametrize("status, why", [(None, "its instance is gone"),
                                         ("offline", "its instance is offline"),
                                         ("deleting", "its instance is deleting")])
def test_an_instance_gone_or_down_is_lost_at_the_first_look(status, why) -> None:
    head = FakeHead(status=status, answers=True)
    watch, told = head.watch()
    assert watch.check() == why
    assert watch.check() == why
    assert told == [why]  # on_lost runs once
    assert head.probes == 0  # the API's word is enough


def test_an_unreachable_scheduler_is_lost_after_misses_in_a_row() -> None:
    head = FakeHead(answers=False)
    watch, told = head.watch(misses=3)
    assert watch.check() is None and watch.check() is None
    head.answers = True  # one answer starts the count again
    assert watch.check() is None
    head.answers = False
    assert [watch.check() for _ in range(3)][:2] == [None, None]
    assert watch.reason == "its scheduler did not answer 3 probes in a row" and told == [
        watch.reason]


def test_a_closed_tunnel_counts_only_if_the_scheduler_does_not_answer() -> None:
    head = FakeHead(tunnel=False)
    watch, told = head.watch()
    assert watch.check() is None  # the tunnel died, the head did not: not a failover
    head.answers = False
    assert watch.check() == "the SSH tunnel to it closed and its scheduler does not answer"
    assert len(told) == 1


def test_an_instance_that_goes_during_the_probe_is_named_as_gone() -> None:
    """The race CI met: the API said running, then the instance went while the scheduler's
    probe waited for its timeout, and the tunnel closed with it."""
    head = FakeHead()

    def probe_while_it_goes() -> bool:
        head.probes += 1
        head.status, head.tunnel = None, False
        return False

    head.scheduler_answers = probe_while_it_goes  # type: ignore[method-assign]
    watch, told = head.watch()
    assert watch.check() == "its instance is gone" and told == ["its instance is gone"]


def test_an_api_that_cannot_be_asked_is_no_evidence() -> None:
    head = FakeHead(api_down=True)
    watch, _ = head.watch()
    assert watch.check() is None and head.probes == 1
    head.answers = False
    assert watch.confirm() == "its scheduler did not answer 3 probes in a row"


def test_confirm_stops_at_the_first_answer() -> None:
    head = FakeHead()
    watch, _ = head.watch(misses=5)
    assert watch.confirm() is None and head.probes == 1


def test_the_watch_thread_notices_the_loss_and_stops_with_the_block() -> None:
    head = FakeHead()
    noticed = threading.Event()
    probes = HeadProbes(head.instance_status, head.scheduler_answers, head.tunnel_open)
    watch = HeadWatch("node-1", probes, lambda _why: noticed.set(), interval_s=0.01)
    with watch:
        assert not noticed.wait(0.1)  # healthy: nothing told
        head.status = None
        assert noticed.wait(5)
    assert watch.reason == "its instance is gone"
    assert watch._thread is not None and not watch._thread.is_alive()


def test_head_lost_names_the_node_and_why() -> None:
    lost = HeadLost("node-1", "its instance is gone")
    assert str(lost) == "node-1, the Dask scheduler's node, is lost: its instance is gone"
    assert (lost.node, lost.reason) == ("node-1", "its instance is gone")


@dataclass(frozen=True)
class Named:
    name: str


def test_the_next_head_is_the_first_node_alive_in_node_order() -> None:
    nodes = [Named(f"node-{i}") for i in (1, 2, 3)]
    assert choose_head(nodes, {"node-1"}) == nodes[1]
    assert choose_head(nodes, {"node-2", "node-1"}) == nodes[2]
    assert choose_head(nodes, set()) == nodes[0]
    assert choose_head(nodes, {"node-1", "node-2", "node-3"}) is None


def _on(worker: str, index: int) -> NodeSegment:
    result = SegmentResult(index=index, first=index * 10, stop=index * 10 + 10,
                           path=f"/s/seg-{index:05d}.mp4", host=worker, size_bytes=1, sha256="x",
                           kernel_threads=1, total_s=0, kernel_s=0, colour_s=0, encode_wait_s=0,
                           encode_cpu_s=0)
    return NodeSegment(worker=worker, address=f"tcp://{worker}:8788", result=result)


def test_remaining_is_unfinished_or_held_by_a_lost_node() -> None:
    segments = plan_segments(50, 10)
    finished = {0: _on("node-1", 0), 1: _on("node-2", 1), 3: _on("node-1", 3)}
    assert [s.index for s in remaining(segments, finished, {"node-1"})] == [0, 2, 3, 4]
    assert [s.index for s in remaining(segments, finished, set())] == [2, 4]
    assert frames_of(segments, finished, {"node-1"}) == 10
    assert frames_of(segments, finished, set()) == 30
    everything = {i: _on("node-2", i) for i in range(5)}
    assert remaining(segments, everything, {"node-1"}) == []


def test_frames_cleanup_removes_only_the_segments_frames(tmp_path: Path) -> None:
    for k in range(30):
        (tmp_path / f"frame-{k:06d}.png").write_bytes(b"png")
    todo = [s for s in plan_segments(30, 10) if s.index == 1]
    subprocess.run(["sh", "-c", frames_cleanup_command(tmp_path, todo)], check=True, timeout=10)
    left = sorted(int(p.stem.split("-")[1]) for p in tmp_path.glob("frame-*.png"))
    assert left == [*range(10), *range(20, 30)]
    assert frames_cleanup_command(tmp_path, []) == "true"
    missing = tmp_path / "no-such-dir"
    subprocess.run(["sh", "-c", frames_cleanup_command(missing, todo)], check=True, timeout=10)
