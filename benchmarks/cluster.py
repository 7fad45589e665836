"""Cluster benchmark: segments on a Dask LocalCluster, 2 workers vs 1, and the per-task overhead.

    python benchmarks/cluster.py                 # spiral at 480 px, 96 frames, 12 segments
    python benchmarks/cluster.py --frames 48 --size 320

Each worker is a separate process with one task thread and one kernel thread, standing in for a
node (this machine has 2 cores, so 2 workers is as far as it goes). Printed side by side: the
throughput with 1 and 2 workers and how the scheduler split the segments, and the scheduler's own
cost per task, measured with empty tasks (one at a time: the round trip a task pays; a batch: the
rate at which the scheduler can hand out tasks). At scale (48-core nodes, segments of seconds) the
per-task cost is what limits how finely the work can be cut.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

import dask
import distributed
import numba

from launcher.cluster.dask_cluster import render_on_cluster
from renderer.encode import concat, count_frames
from renderer.scene import Overrides, parse_scene
from renderer.segments import plan_segments
from renderer.shard import render_segment

ROOT = Path(__file__).resolve().parents[1]
SCENE = ROOT / "renderer" / "examples" / "spiral.toml"


def noop(x: int) -> int:
    return x


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=96)
    ap.add_argument("--size", type=int, default=480, help="square frame side in pixels")
    ap.add_argument("--segment-frames", type=int, default=8)
    ap.add_argument("--empty-tasks", type=int, default=2000)
    args = ap.parse_args()

    text = SCENE.read_text()
    ov = Overrides(num_steps=args.size, num_frames=args.frames)
    scene = parse_scene(text, overrides=ov)
    segments = plan_segments(scene.frames, args.segment_frames)
    print(f"# spiral {scene.width}x{scene.height}, {scene.frames} frames, {scene.max_iterations} "
          f"iterations, {len(segments)} segments of {args.segment_frames} frames")
    print(f"# {platform.processor() or platform.machine()}, dask {dask.__version__}, "
          f"distributed {distributed.__version__}, numba {numba.__version__}")

    with tempfile.TemporaryDirectory() as tmp:
        # Compile (or load) the kernels once, so no worker's first task pays for it... in this
        # process; each worker process loads numba's cache on its warm-up task below.
        render_segment(text, 0, args.segment_frames, Path(tmp) / "warm.mp4", overrides=ov,
                       kernel_threads=1)
        rows = []
        for workers in (1, 2):
            rows.append(run(workers, text, ov, segments, args.segment_frames, Path(tmp)))
        overhead = task_overhead(args.empty_tasks)

    print()
    print(f"{'workers':>7} {'wall s':>8} {'frames/s':>9} {'speedup':>8} {'CPU s':>7} "
          f"{'cores busy':>10}  work split (segments per worker)")
    base = rows[0][0]
    for workers, (wall, cpu, split) in zip((1, 2), rows, strict=True):
        print(f"{workers:>7} {wall:8.2f} {scene.frames / wall:9.2f} {base / wall:7.2f}x "
              f"{cpu:7.2f} {cpu / wall:10.2f}  {split}")
    print("(CPU s = kernel + colour time (wall, inside the tasks) + ffmpeg's CPU time, summed "
          "over tasks; under contention the wall parts overstate CPU. With one worker, x264 "
          "already runs beside the kernel on the other core, which is why 2 workers gain little "
          "on 2 cores.)")
    print()
    rt, batch = overhead
    print(f"scheduler per-task overhead: {rt * 1e3:.2f} ms one at a time (submit -> result), "
          f"{batch * 1e3:.3f} ms per task in a batch of {args.empty_tasks} "
          f"({1 / batch:.0f} tasks/s)")
    seg_s = rows[0][0] / len(segments)
    print(f"one segment here takes {seg_s:.2f} s on one core: the overhead is "
          f"{rt / seg_s:.2%} of a task")


def run(workers: int, text: str, ov: Overrides, segments: list, segment_frames: int,
        tmp: Path) -> tuple[float, float, str]:
    """Render every segment on `workers` single-threaded worker processes.

    Returns (wall s, CPU s of the tasks, the work split)."""
    with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        out = str(tmp / f"w{workers}")
        # Warm-up: every worker imports the renderer and loads the compiled kernels.
        client.run(_warm, text, ov, segment_frames, str(tmp / f"warm{workers}"))
        t0 = time.perf_counter()
        result = render_on_cluster(client, text, segments, segment_frames, out, overrides=ov,
                                   kernel_threads=1)
        wall = time.perf_counter() - t0
    joined = tmp / f"joined{workers}.mp4"
    concat([Path(s.result.path) for s in result.segments], joined)
    assert count_frames(joined) == sum(s.frames for s in segments)
    split = Counter(s.worker for s in result.segments)
    cpu = sum(s.result.kernel_s + s.result.colour_s + s.result.encode_cpu_s
              for s in result.segments)
    return wall, cpu, " / ".join(f"{n}" for _, n in sorted(split.items()))


def _warm(text: str, ov: Overrides, segment_frames: int, out: str) -> None:
    render_segment(text, 0, segment_frames, Path(out) / f"{os.getpid()}.mp4", overrides=ov,
                   kernel_threads=1)


def task_overhead(n: int) -> tuple[float, float]:
    """(median round trip of one empty task, batch time per empty task) on 2 workers."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        client.submit(noop, -1, pure=False).result()
        trips = []
        for i in range(200):
            t0 = time.perf_counter()
            client.submit(noop, i, pure=False).result()
            trips.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        client.gather(client.map(noop, range(n), pure=False))
        batch = (time.perf_counter() - t0) / n
    return statistics.median(trips), batch


if __name__ == "__main__":
    main()
