"""The billed setup phase: the server's venv with what it used to get vs what rendering needs.

    sudo .venv/bin/python benchmarks/setup_phase.py [--repeat 2]

Each variant bootstraps a fresh Debian 12 host of the local Linode cloud (root: network
namespaces) with wheels shipped from here (the test network has no index), and times the venv
step, which is what the requirements change. "before" adds back what only this machine needs
(requests, imageio-ffmpeg: the server has ffmpeg from apt); "after" is
provision.wheelhouse.project_requirements() as the launcher sends it. Variants alternate so a
noisy machine hits both alike; the ratio is what to read.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from provision import bootstrap, ssh, wheelhouse  # noqa: E402
from provision.cloud import InstanceRequest, LinodeCloud  # noqa: E402
from provision.keys import RunKeys  # noqa: E402
from tests.fakelinode.hosts import NamespaceHostBackend  # noqa: E402
from tests.fakelinode.image import debian12  # noqa: E402
from tests.fakelinode.server import FakeLinode  # noqa: E402

ADDED_BACK = ("requests>=2.31", "imageio-ffmpeg>=0.5")


def venv_seconds(fake: FakeLinode, requirements: list[str], work: Path) -> float:
    cloud = LinodeCloud(fake.master_token, fake.url, poll_interval_s=0.2)
    keys = RunKeys.create(work / secrets.token_hex(4))
    info = cloud.create(InstanceRequest(f"bench-{secrets.token_hex(3)}", "g6-dedicated-2",
                                        "us-east", "linode/debian12", "Bench-Pass-123456!",
                                        (keys.public_line,), ("bench",)))
    try:
        info = cloud.wait_running(info.id, timeout_s=120)
        assert info.ipv4
        ssh.wait_for_ssh(info.ipv4, "root", keys, timeout_s=120)
        steps: dict[str, float] = {}
        root = ssh.connect(info.ipv4, "root", keys)
        try:
            bootstrap.bootstrap(root, "juliafarm", keys, deps="wheelhouse",
                                requirements=requirements,
                                on_step=lambda name, s, changed: steps.__setitem__(name, s))
        finally:
            root.close()
        return steps["venv"]
    finally:
        cloud.delete(info.id)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    after = wheelhouse.project_requirements()
    before = sorted(set(after) | set(ADDED_BACK))
    print(f"after:  {', '.join(after)}")
    print(f"before: + {', '.join(ADDED_BACK)}")
    times: dict[str, list[float]] = {"before": [], "after": []}
    backend = NamespaceHostBackend(debian12())
    with FakeLinode(secrets.token_hex(32), backend=backend, provision_delay_s=0.2,
                    boot_delay_s=0.2, delete_delay_s=0.05, claim_addresses=True) as fake, \
            tempfile.TemporaryDirectory() as tmp:
        fake.bind_for_hosts("203.0.113.1")
        # A first run fills this machine's wheel cache, so neither variant pays the download.
        venv_seconds(fake, before, Path(tmp))
        for _ in range(args.repeat):
            for name, reqs in (("before", before), ("after", after)):
                t0 = time.perf_counter()
                s = venv_seconds(fake, reqs, Path(tmp))
                times[name].append(s)
                total = time.perf_counter() - t0
                print(f"{name:<7} venv step {s:6.1f} s  (host total {total:.1f} s)")
    b, a = statistics.median(times["before"]), statistics.median(times["after"])
    print(f"venv step, median: before {b:.1f} s, after {a:.1f} s -> after/before = {a / b:.2f}")


if __name__ == "__main__":
    main()
