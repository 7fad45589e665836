"""The lease watchdog script, run here as a plain process against the emulator (no root): its
lease file is private, extend/set-token/end work, and at the deadline it deletes its instance."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from linode_api4 import LinodeClient

from provision.lease import heartbeat_interval_s, watchdog_source
from tests.fakelinode.server import FakeLinode

SCRIPT = Path(__file__).resolve().parents[2] / "provision" / "data" / "watchdog.py"


def _wd(lease_dir: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, JULIAFARM_LEASE_DIR=str(lease_dir))
    return subprocess.run([sys.executable, str(SCRIPT), *args], input=stdin, env=env,
                          capture_output=True, text=True, timeout=30)


def test_the_shipped_source_is_the_script() -> None:
    assert watchdog_source() == SCRIPT.read_text()


def test_lease_file_is_private_and_commands_edit_it(tmp_path: Path) -> None:
    lease_dir = tmp_path / "lease"
    done = _wd(lease_dir, "install", "600", "40000001", "https://api.example/v4",
               stdin="SECRET-TOKEN-1\n")
    assert done.returncode == 0, done.stderr
    assert "SECRET-TOKEN-1" not in done.stdout + done.stderr
    lease_file = lease_dir / "lease.json"
    assert stat.S_IMODE(lease_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(lease_dir.stat().st_mode) == 0o700
    lease = json.loads(lease_file.read_text())
    assert lease["token"] == "SECRET-TOKEN-1" and lease["instance_id"] == 40000001
    assert 590 < lease["deadline"] - time.time() <= 600
    status = json.loads(_wd(lease_dir, "extend", "30").stdout)
    assert 25 < status["left_s"] <= 30 and status["running"] is False
    assert "SECRET" not in json.dumps(status)
    assert _wd(lease_dir, "set-token", stdin="SECRET-TOKEN-2\n").returncode == 0
    assert json.loads(lease_file.read_text())["token"] == "SECRET-TOKEN-2"
    assert stat.S_IMODE(lease_file.stat().st_mode) == 0o600
    assert _wd(lease_dir, "set-token", stdin="two words\n").returncode != 0
    assert _wd(lease_dir, "end").returncode == 0
    assert not lease_file.exists()
    assert _wd(lease_dir, "extend", "30").returncode != 0  # no lease: nothing to extend


def test_watchdog_deletes_its_instance_when_the_lease_ends(tmp_path: Path) -> None:
    with FakeLinode() as fake:
        master = LinodeClient(fake.master_token, base_url=fake.url, retry=False)
        inst = master.linode.instance_create("g6-dedicated-2", "us-east",
                                             image="linode/debian12", label="leased",
                                             root_pass="Str0ng-Passw0rd-xyz")
        token = master.profile.token_create(label="juliafarm-lease-t", scopes="linodes:read_write")
        lease_dir = tmp_path / "lease"
        assert _wd(lease_dir, "install", "3", str(inst.id), fake.url,
                   stdin=token.token + "\n").returncode == 0
        env = dict(os.environ, JULIAFARM_LEASE_DIR=str(lease_dir))
        loop = subprocess.Popen([sys.executable, str(SCRIPT), "run"], env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            time.sleep(1.0)
            assert fake.instance(inst.id) is not None  # not before the deadline
            fake.wait_status(inst.id, "gone", timeout_s=20)
        finally:
            loop.kill()
            out = loop.communicate()[0]
        assert "delete requested" in out and token.token not in out
        assert ("DELETE", f"linode/instances/{inst.id}") in fake.requests
        assert fake.ledger.running() == []


def test_an_extended_lease_is_not_ended(tmp_path: Path) -> None:
    with FakeLinode() as fake:
        master = LinodeClient(fake.master_token, base_url=fake.url, retry=False)
        inst = master.linode.instance_create("g6-dedicated-2", "us-east",
                                             image="linode/debian12", label="kept",
                                             root_pass="Str0ng-Passw0rd-xyz")
        lease_dir = tmp_path / "lease"
        _wd(lease_dir, "install", "3", str(inst.id), fake.url, stdin="tok\n")
        env = dict(os.environ, JULIAFARM_LEASE_DIR=str(lease_dir))
        loop = subprocess.Popen([sys.executable, str(SCRIPT), "run"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(6):  # a heartbeat every second for six seconds
                time.sleep(1.0)
                assert _wd(lease_dir, "extend", "3").returncode == 0
            assert fake.instance(inst.id) is not None
            _wd(lease_dir, "end")
            loop.wait(timeout=10)  # the launcher ended the lease: the loop exits
        finally:
            loop.kill()
        assert fake.instance(inst.id) is not None


@pytest.mark.parametrize("lease_s, interval", [(60, 10), (7200, 60), (6, 2)])
def test_heartbeat_interval(lease_s: float, interval: float) -> None:
    assert heartbeat_interval_s(lease_s) == interval
