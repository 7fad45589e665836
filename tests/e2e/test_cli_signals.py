"""The real CLI as a user runs it, interrupted the ways terminals interrupt it (root only).

- `launcher run … 2>&1 | head -c 300`, then Ctrl-C: the terminal sends SIGINT to the whole
  foreground group, so `head` is gone too and every later line the launcher writes meets a
  broken pipe. The instance must still be deleted, confirmed and recorded.
- A closed terminal: SIGHUP, and from then on every write fails with EIO (the pty's master side
  is closed). Same promise.
"""

from __future__ import annotations

import json
import os
import pty
import shlex
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.test_launcher_run import SSH_FROM, _env, _launcher, _scene

pytestmark = [pytest.mark.root, pytest.mark.slow]


def _wait_for_a_running_instance(fake, proc: subprocess.Popen, timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if any(i.get("status") == "running" for i in fake.instances()):
            time.sleep(3)  # into ssh/bootstrap: the lease and the firewall are being set up
            return
        assert proc.poll() is None, "the launcher exited before any instance ran"
        time.sleep(0.5)
    raise AssertionError("no instance came up")


def _record(out: Path) -> dict:
    return json.loads(next((out / "runs").glob("*.json")).read_text())


def test_ctrl_c_with_output_piped_into_head_still_deletes(fake_linode_hosts, tmp_path) -> None:
    fake = fake_linode_hosts
    scene = _scene(tmp_path, frames=60)
    out = tmp_path / "out"
    argv = _launcher("run", "--plan", "dedicated-2", "--config", str(scene), "--region",
                     "us-east", "--output", str(out), "--yes", "--max-iterations", "20000",
                     *SSH_FROM)
    # A shell pipeline in its own process group: Ctrl-C reaches every process of it.
    proc = subprocess.Popen(["bash", "-c", f"{shlex.join(argv)} 2>&1 | head -c 300"],
                            env=_env(fake, tmp_path), stdout=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    _wait_for_a_running_instance(fake, proc)
    os.killpg(proc.pid, signal.SIGINT)
    head_out, _ = proc.communicate(timeout=600)
    assert len(head_out) <= 300
    deadline = time.monotonic() + 300  # the launcher outlives the pipeline's shell if need be
    while fake.ledger.running() and time.monotonic() < deadline:
        time.sleep(1)
    assert fake.ledger.running() == [] and fake.instances() == []
    record = _record(out)
    assert record["status"] == "interrupted" and record["deleted"] is True
    assert record["instances"][0]["deleted"] is True and record["cost_usd"] > 0
    assert fake.firewalls() == [] and record["firewall_deleted"] is True


def test_a_closed_terminal_sighup_then_eio_still_deletes(fake_linode_hosts, tmp_path) -> None:
    fake = fake_linode_hosts
    scene = _scene(tmp_path, frames=60)
    out = tmp_path / "out"
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        _launcher("run", "--plan", "dedicated-2", "--config", str(scene), "--region", "us-east",
                  "--output", str(out), "--yes", "--max-iterations", "20000", *SSH_FROM),
        env=_env(fake, tmp_path), stdout=slave, stderr=slave, stdin=subprocess.DEVNULL,
        start_new_session=True)
    os.close(slave)
    drained = []

    def drain() -> None:
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                return
            if not chunk:
                return
            drained.append(chunk)

    import threading

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    _wait_for_a_running_instance(fake, proc)
    os.close(master)  # the terminal window is gone: writes now fail with EIO
    proc.send_signal(signal.SIGHUP)
    code = proc.wait(timeout=600)
    assert code == 130
    assert fake.ledger.running() == [] and fake.instances() == []
    record = _record(out)
    assert record["status"] == "interrupted" and record["deleted"] is True
    assert record["error"] == "interrupted by SIGHUP"


def test_a_run_in_a_region_with_its_own_price_records_that_price(fake_linode_hosts,
                                                                  tmp_path) -> None:
    """br-gru prices dedicated-2 above the default: the plan line, the record's price and cost,
    and the emulator's bill all say the region's price."""
    fake = fake_linode_hosts
    scene = _scene(tmp_path, frames=6)
    out = tmp_path / "out"
    proc = subprocess.run(
        _launcher("run", "--plan", "dedicated-2", "--config", str(scene), "--region", "br-gru",
                  "--output", str(out), "--yes", *SSH_FROM),
        env=_env(fake, tmp_path), capture_output=True, text=True, timeout=1500,
        stdin=subprocess.DEVNULL)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    record = _record(out)
    entry = fake.ledger.entries()[0]
    assert record["region"] == "br-gru" and record["deleted"] is True
    assert entry.price_hourly_usd == pytest.approx(0.076)  # the recorded br-gru price
    assert record["price_hourly_usd"] == pytest.approx(entry.price_hourly_usd)
    assert record["cost_usd"] == pytest.approx(entry.charge_usd(entry.deleted))
    assert "at $0.076/h" in log
