"""A detached cluster render's driver: runs on node 1, next to the scheduler, in place of the
launcher's own Dask client, so `launcher run --nodes N --detach` can leave.

    python -m launcher.cluster.driver JOB.json

JOB.json (written by the launcher) says what to render and where; the driver prints progress in
the renderer's own line format ("frame 12/120  3.1 fps") so `launcher attach` follows it like a
one-node render, and writes the result (which segment lies on which node) atomically to
`result_path` before it exits 0. A failure is one line on stderr and exit 1.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from launcher.cluster.dask_cluster import ClusterRun, NodeSegment, render_on_cluster
from renderer.scene import Overrides
from renderer.segments import plan_segments
from renderer.shard import SegmentResult


@dataclass(frozen=True)
class DriverJob:
    """What the driver renders; plain JSON both ways (no secret in it)."""

    scheduler: str          # tcp://<private ip>:<port>, node 1's scheduler
    scene_path: str         # the scene as synced to node 1
    overrides: dict[str, Any]
    frames: int
    segment_frames: int
    segments_dir: str       # the same path on every node
    frames_dir: str | None
    kernel_threads: int
    no_workers_timeout_s: float
    result_path: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> DriverJob:
        data = json.loads(text)
        return cls(**{f.name: data[f.name] for f in fields(cls)})


def overrides_to_dict(ov: Overrides) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(ov).items()
            if v is not None}


def overrides_from_dict(data: dict[str, Any]) -> Overrides:
    return Overrides(**{k: (Path(v) if k == "output" else v) for k, v in data.items()})


def run_to_json(run: ClusterRun) -> str:
    return json.dumps({"segments": [{"worker": s.worker, "address": s.address,
                                     "result": asdict(s.result)} for s in run.segments],
                       "lost_workers": list(run.lost_workers),
                       "warnings": list(run.warnings), "wall_s": run.wall_s}, sort_keys=True)


def run_from_json(text: str) -> ClusterRun:
    data = json.loads(text)
    return ClusterRun(
        segments=tuple(NodeSegment(s["worker"], s["address"], SegmentResult(**s["result"]))
                       for s in data["segments"]),
        lost_workers=tuple(data["lost_workers"]), warnings=tuple(data["warnings"]),
        wall_s=float(data["wall_s"]))


def drive(job: DriverJob, client: Any) -> ClusterRun:
    """Render every segment on the cluster behind `client`; progress lines on stderr."""
    segments = plan_segments(job.frames, job.segment_frames)
    started = time.monotonic()
    done: list[int] = []

    def on_segment(seg: NodeSegment) -> None:
        done.append(seg.result.stop - seg.result.first)
        frames = sum(done)
        fps = frames / max(1e-6, time.monotonic() - started)
        print(f"frame {frames}/{job.frames}  {fps:.1f} fps", file=sys.stderr, flush=True)

    run = render_on_cluster(
        client, Path(job.scene_path).read_text(encoding="utf-8"), segments, job.segment_frames,
        job.segments_dir, overrides=overrides_from_dict(job.overrides),
        frames_dirs=job.frames_dir, kernel_threads=job.kernel_threads, on_segment=on_segment,
        on_warning=lambda text: print(f"warning: {text}", file=sys.stderr, flush=True),
        no_workers_timeout_s=job.no_workers_timeout_s)
    tmp = Path(job.result_path + ".part")
    tmp.write_text(run_to_json(run), encoding="utf-8")
    os.replace(tmp, job.result_path)
    return run


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m launcher.cluster.driver JOB.json", file=sys.stderr)
        return 2
    import distributed

    job = DriverJob.from_json(Path(args[0]).read_text(encoding="utf-8"))
    try:
        with distributed.Client(job.scheduler, timeout=60, set_as_default=False) as client, \
                client.as_current():
            run = drive(job, client)
    except Exception as exc:  # noqa: BLE001 - one line for `launcher attach`, exit 1
        print(f"cluster render failed: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    print(f"rendered {len(run.segments)} segments on "
          f"{len(run.files_by_worker())} node(s) in {run.wall_s:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
