"""`launcher run` end to end against the local Linode cloud with real hosts (root only).

The real CLI in a subprocess, the real linode_api4 client, a real Debian 12 host reached over SSH:
create → boot → ssh → bootstrap → sync → render → pull → delete, and the ledger must show the
instance billed and deleted, whatever happened.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from renderer.encode import count_frames, find_ffmpeg

pytestmark = [pytest.mark.root, pytest.mark.slow]

SCENE = """
[frame]
width = 64
height = 48
[view]
center = [0.0, 0.0]
half_height = 1.6
[iteration]
max_iterations = 80
[c]
start = [-0.62772, -0.45]
end = [-0.62772, -0.30]
[timing]
fps = 10
frames = {frames}
[colour]
colormap = "magma"
mode = "smooth"
[output]
path = "tiny.mp4"
"""


def _scene(tmp: Path, frames: int = 12) -> Path:
    p = tmp / "tiny.toml"
    p.write_text(SCENE.format(frames=frames))
    return p


def _env(fake, tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    # The servers' lease watchdog reaches the emulator on the test bridge, not on loopback.
    env.update(LINODE_API_URL=fake.url, LINODE_TOKEN=fake.master_token,
               JULIAFARM_SERVER_API_URL=fake.host_api_url,
               XDG_STATE_HOME=str(tmp / "state"), PYTHONUNBUFFERED="1")
    return env


# This machine's side of the test bridge: the only source the run's cloud firewall lets in (the
# test network has no internet, so the address cannot be detected).
SSH_FROM = ("--ssh-from", "203.0.113.1/32")


def _launcher(*args: str) -> list[str]:
    return [sys.executable, "-c", "from launcher.cli import main; main()", *args]


def _decode(path: Path) -> np.ndarray:
    raw = subprocess.run([find_ffmpeg(), "-v", "error", "-i", str(path), "-f", "rawvideo",
                          "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, dtype=np.uint8)


def test_run_renders_remotely_pulls_and_deletes(fake_linode_hosts, tmp_path) -> None:
    fake = fake_linode_hosts
    scene = _scene(tmp_path)
    out = tmp_path / "out"
    proc = subprocess.run(
        _launcher("run", "--plan", "dedicated-2", "--config", str(scene), "--region", "us-east",
                  "--output", str(out), "--yes", *SSH_FROM),
        env=_env(fake, tmp_path), capture_output=True, text=True, timeout=1500,
        stdin=subprocess.DEVNULL)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    video = out / "tiny.mp4"
    assert count_frames(video) == 12
    # The same scene rendered here gives the same pixels (same renderer, same encoder settings).
    local = tmp_path / "local.mp4"
    subprocess.run([sys.executable, "-c", "from renderer.cli import main; main()", "render",
                    str(scene), "-o", str(local), "-q"], check=True, timeout=300)
    assert np.array_equal(_decode(video), _decode(local))
    entries = fake.ledger.entries()
    assert len(entries) == 1 and entries[0].deleted is not None
    assert fake.ledger.running() == [] and fake.instances() == []
    assert entries[0].type_id == "g6-dedicated-2"
    assert fake.master_token not in log
    text = next((out / "runs").glob("*.json")).read_text()
    assert fake.master_token not in text
    record = json.loads(text)
    assert record["status"] == "completed" and record["deleted"] is True
    assert record["instance_id"] == entries[0].instance_id and record["region"] == "us-east"
    assert record["plan"] == "dedicated-2" and record["frames"] == 12
    assert record["cores"] >= 1 and record["frames_rendered"] == 12  # cores: see test_run_faults
    assert {"create", "ssh", "bootstrap", "sync", "render", "pull", "delete"} <= set(
        record["phases_s"])
    output = record["outputs"][0]
    assert Path(output["path"]) == video
    assert output["sha256"] == hashlib.sha256(video.read_bytes()).hexdigest()
    assert record["billed_hours"] == 1
    assert record["cost_usd"] == pytest.approx(entries[0].charge_usd(entries[0].deleted))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_mid_render_deletes_and_keeps_finished_segments(fake_linode_hosts, tmp_path,
                                                               sig) -> None:
    import re

    fake = fake_linode_hosts
    scene = _scene(tmp_path, frames=300)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        # Heavy frames: the render must still be going when the signal comes (at 5000
        # iterations the faster kernel finished all 300 frames between two progress lines).
        _launcher("run", "--plan", "dedicated-2", "--config", str(scene), "--output", str(out),
                  "--yes", "--num-steps", "480", "--max-iterations", "20000", *SSH_FROM),
        env=_env(fake, tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        stdin=subprocess.DEVNULL)
    lines: list[str] = []
    deadline = time.monotonic() + 1200
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        m = re.search(r"render (\d+)/300 frames", line)
        if m and 60 <= int(m.group(1)) < 300:  # the first 50-frame segment is finished
            break
        assert time.monotonic() < deadline, "".join(lines[-30:])
    proc.send_signal(sig)
    rest, _ = proc.communicate(timeout=300)
    log = "".join(lines) + rest
    assert proc.returncode != 0, log[-2000:]
    assert fake.ledger.running() == [] and fake.instances() == [], log[-2000:]
    assert not (out / "tiny.mp4").exists()
    record = next((out / "runs").glob("*.json")).read_text()
    assert '"status": "interrupted"' in record and '"deleted": true' in record
    partial = list(out.glob("*-partial/seg-*.mp4"))
    assert partial, log[-2000:]
    assert all(count_frames(p) == 50 for p in partial)
