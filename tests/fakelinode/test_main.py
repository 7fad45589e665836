"""`python -m tests.fakelinode`: started by hand, it prints the exports, serves, and cleans up."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from linode_api4 import LinodeClient

from tests.fakelinode.host_fixtures import hosts_unavailable
from tests.fakelinode.hosts import host_root, netns_name
from tests.fakelinode.test_hosts import _mounts_under, _processes_in

ROOT = Path(__file__).resolve().parents[2]


def _start(*flags: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
    proc = subprocess.Popen([sys.executable, "-m", "tests.fakelinode", "--provision-delay-s",
                             "0.1", "--boot-delay-s", "0.1", *flags], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    exports = {}
    for _ in range(2):
        line = proc.stdout.readline()
        assert line.startswith("export "), line + proc.stderr.read() if proc.poll() else line
        name, value = line.removeprefix("export ").strip().split("=", 1)
        exports[name] = value
    return proc, exports


def _ledger(env: dict[str, str]) -> dict:
    req = urllib.request.Request(env["LINODE_API_URL"] + "/_fake/ledger",
                                 headers={"Authorization": f"Bearer {env['LINODE_TOKEN']}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return err


def test_by_hand_api_only() -> None:
    proc, env = _start("--no-hosts", "--no-capacity", "eu-west")
    try:
        assert env["LINODE_API_URL"].startswith("http://127.0.0.1:")
        c = LinodeClient(env["LINODE_TOKEN"], base_url=env["LINODE_API_URL"], retry=False)
        inst = c.linode.instance_create("g6-dedicated-2", "us-east", image="linode/debian12",
                                        label="by-hand", root_pass="Str0ng-Passw0rd-xyz")
        seen = _ledger(env)
        assert [row["instance_id"] for row in seen["ledger"]] == [inst.id]
        assert seen["ledger"][0]["deleted"] is None and seen["ledger"][0]["billed_hours"] == 1
        assert [i["label"] for i in seen["instances"]] == ["by-hand"]
        with pytest.raises(Exception, match="capacity|Unable|400"):
            c.linode.instance_create("g6-dedicated-2", "eu-west", image="linode/debian12",
                                     label="nope", root_pass="Str0ng-Passw0rd-xyz")
        bad = urllib.request.Request(env["LINODE_API_URL"] + "/_fake/ledger",
                                     headers={"Authorization": "Bearer wrong"})
        with pytest.raises(urllib.error.HTTPError, match="401"):
            urllib.request.urlopen(bad, timeout=10)
    finally:
        _stop(proc)


@pytest.mark.root
@pytest.mark.slow
@pytest.mark.skipif(hosts_unavailable() is not None, reason=str(hosts_unavailable()))
def test_by_hand_with_hosts_deletes_them_on_sigterm(tmp_path) -> None:
    proc, env = _start()
    try:
        c = LinodeClient(env["LINODE_TOKEN"], base_url=env["LINODE_API_URL"], retry=False)
        inst = c.linode.instance_create("g6-dedicated-2", "us-east", image="linode/debian12",
                                        label="by-hand-host", root_pass="Str0ng-Passw0rd-xyz")
        for _ in range(300):
            if _ledger(env)["instances"][0]["status"] == "running":
                break
            subprocess.run(["sleep", "0.1"], check=True)
        netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        name = netns_name(inst.id, inst.ipv4[0])
        assert name in netns.split()
        assert _processes_in(host_root(inst.id, inst.ipv4[0]))
    finally:
        _stop(proc)
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert name not in netns.split()
    root = host_root(inst.id, inst.ipv4[0])
    assert not root.exists() and not _mounts_under(root) and not _processes_in(root)

