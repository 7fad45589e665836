"""Cluster benchmark on the test hosts: `launcher run` on 1 node vs `--nodes 2`, and the per-task
overhead through the SSH tunnel (root: the hosts are network namespaces of the local Linode cloud).

    sudo .venv/bin/python benchmarks/cluster_hosts.py            # spiral 240 px, 96 frames
    sudo .venv/bin/python benchmarks/cluster_hosts.py --frames 48 --size 160

Both runs go through the real code (launcher.run.single.Job, launcher.cluster.job.ClusterJob)
against the emulator with real Debian 12 hosts, with the same segments (--segment-frames).
Every host sees this machine's cores, so two nodes here share the cores one node has: what this
shows is the work split and what the cluster costs (its start, the per-task round trip over the
tunnel and the private network), not node scaling. The render phases include each process's
first-use kernel compile.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from launcher.cluster.job import ClusterJob, cluster_spec  # noqa: E402
from launcher.config import merge  # noqa: E402
from launcher.preflight import build_spec, preflight  # noqa: E402
from launcher.run.hooks import Hooks  # noqa: E402
from launcher.run.single import Job  # noqa: E402
from provision.cloud import LinodeCloud  # noqa: E402
from renderer.scene import Overrides, load_scene  # noqa: E402
from tests.fakelinode.hosts import NamespaceHostBackend  # noqa: E402
from tests.fakelinode.image import debian12  # noqa: E402
from tests.fakelinode.server import FakeLinode  # noqa: E402

SCENE = ROOT / "renderer" / "examples" / "spiral.toml"


class Overhead(Hooks):
    """Right after the cluster is up: empty tasks through the tunnel, one at a time and batched."""

    def __init__(self, tasks: int) -> None:
        self.tasks = tasks
        self.job: ClusterJob | None = None
        self.result: tuple[float, float] | None = None

    def phase_finished(self, name: str, seconds: float) -> None:
        if name != "cluster" or self.job is None or self.job._client is None:
            return
        client = self.job._client
        client.submit(abs, -1, pure=False).result()
        trips = []
        for i in range(100):
            t0 = time.perf_counter()
            client.submit(abs, -i, pure=False).result()
            trips.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        client.gather(client.map(abs, range(-self.tasks, 0), pure=False))
        self.result = (statistics.median(trips), (time.perf_counter() - t0) / self.tasks)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=96)
    ap.add_argument("--size", type=int, default=240, help="square frame side in pixels")
    ap.add_argument("--segment-frames", type=int, default=8)
    ap.add_argument("--empty-tasks", type=int, default=1000)
    args = ap.parse_args()
    ov = Overrides(num_steps=args.size, num_frames=args.frames)
    render_args = ("--num-steps", str(args.size), "--num-frames", str(args.frames),
                   "--segment-frames", str(args.segment_frames))
    backend = NamespaceHostBackend(debian12())
    try:
        with FakeLinode(secrets.token_hex(32), backend=backend, provision_delay_s=0.2,
                        boot_delay_s=0.2, delete_delay_s=0.05) as fake, \
                tempfile.TemporaryDirectory() as tmp:
            fake.bind_for_hosts("203.0.113.1")
            scene = load_scene(SCENE, ov)
            cfg = merge(scene.cloud, plan="dedicated-2", region="us-east",
                        output_dir=str(Path(tmp) / "out"))
            cloud = LinodeCloud(fake.master_token, fake.url, poll_interval_s=0.2)
            checked = preflight(scene, cfg, cloud)
            spec = build_spec(scene, SCENE, cfg, checked, render_args)
            one = Job(spec, cloud, state_dir=Path(tmp) / "s1").run()
            hooks = Overhead(args.empty_tasks)
            cspec = replace(cluster_spec(spec, scene, ov, 2), segment_frames=args.segment_frames)
            job = ClusterJob(cspec, cloud, hooks, state_dir=Path(tmp) / "s2")
            hooks.job = job
            two = job.run()
            assert job.result is not None and hooks.result is not None
            split = Counter(s.worker for s in job.result.segments)
            left = [e for e in fake.ledger.entries() if e.deleted is None]
    finally:
        backend.close()
    segs = -(-args.frames // args.segment_frames)
    print(f"# spiral {args.size}x{args.size}, {args.frames} frames, {segs} segments of "
          f"{args.segment_frames} frames; hosts: dedicated-2 on this machine's "
          f"{one.cores} cores")
    print(f"{'nodes':>5} {'render s':>9} {'frames/s':>9} {'setup s':>8} {'total s':>8}  split")
    for n, rec, sp in ((1, one, str(segs)), (2, two, " / ".join(
            f"{k} {v}" for k, v in sorted(split.items())))):
        ph = rec.phases_s
        setup = sum(ph.get(k, 0.0) for k in ("create", "boot", "ssh", "bootstrap", "sync",
                                              "cluster"))
        total = setup + ph["render"] + ph.get("pull", 0.0)
        print(f"{n:>5} {ph['render']:9.2f} {args.frames / ph['render']:9.2f} {setup:8.1f} "
              f"{total:8.1f}  {sp}")
    rt, batch = hooks.result
    print(f"cluster start (scheduler, workers, tunnel, client): {two.phases_s['cluster']:.1f} s")
    print(f"per-task overhead through the tunnel: {rt * 1e3:.2f} ms one at a time, "
          f"{batch * 1e3:.3f} ms per task in a batch of {args.empty_tasks}")
    print(f"instances left running: {len(left)}")


if __name__ == "__main__":
    main()
