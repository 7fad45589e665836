"""Defence in depth against the local Linode cloud with real hosts (root only): the host key is
known before first contact, the cloud firewall admits only the launcher, the lease token is
private and revoked at the end, the watchdog deletes an instance whose launcher died, and a
detached run is finished by `launcher attach`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
import requests
from linode_api4 import LinodeClient

from launcher.run.guards import GuardSpec
from provision.errors import SshError
from renderer.encode import count_frames
from tests.e2e.test_launcher_run import SCENE, SSH_FROM, _env, _launcher
from tests.e2e.test_run_faults import Inspect, _run, assert_nothing_left, make_job

pytestmark = [pytest.mark.root, pytest.mark.slow]
LAUNCHER_SIDE = "203.0.113.1/32"  # this machine's address on the test bridge
LONG = ("--num-steps", "480", "--max-iterations", "20000")  # 300 frames: minutes on 2 cores


def _guards(fake, **changes) -> GuardSpec:
    return replace(GuardSpec(lease_s=600, server_api_url=fake.host_api_url,
                             ssh_from=(LAUNCHER_SIDE,), host_key_user_data=True), **changes)


def _lease_tokens(fake, run_id: str) -> list:
    return [t for t in fake.tokens() if t.label == f"juliafarm-lease-{run_id}"]


def _refused(fake, secret: str) -> bool:
    r = requests.get(f"{fake.url}/linode/instances", timeout=10,
                     headers={"Authorization": f"Bearer {secret}"})
    return r.status_code == 401


def _cmdline_watcher(seen: list[str], stop: threading.Event) -> threading.Thread:
    """Every process's argv on this machine, the hosts' included (they share the kernel)."""
    def watch() -> None:
        while not stop.is_set():
            for pid in os.listdir("/proc"):
                if pid.isdigit():
                    try:
                        seen.append(Path(f"/proc/{pid}/cmdline").read_bytes().decode(
                            errors="replace"))
                    except OSError:
                        pass
            stop.wait(0.05)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    return t


def test_host_key_mismatch_on_first_contact_aborts_and_deletes(fake_linode_hosts,
                                                               tmp_path) -> None:
    fake = fake_linode_hosts
    fake.faults.ignore_user_data()  # the machine presents a key we did not make
    job = make_job(fake, tmp_path, guards=_guards(fake))
    t0 = time.monotonic()
    with pytest.raises(SshError, match="host key"):
        job.run()
    assert time.monotonic() - t0 < 60  # aborted at once, not retried until the SSH timeout
    record = json.loads(job.record_path.read_text())
    assert record["host_key_source"] == "user_data" and record["deleted"] is True
    assert record["firewall_deleted"] is True
    assert fake.firewalls() == []
    assert_nothing_left(fake)


def test_firewall_admits_only_the_launcher_and_the_lease_token_is_private_then_revoked(
        fake_linode_hosts, tmp_path) -> None:
    fake = fake_linode_hosts
    c = LinodeClient(fake.master_token, base_url=fake.url, retry=False)
    probe_key = tmp_path / "probe"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(probe_key)],
                   check=True)
    other = c.linode.instance_create("g6-dedicated-2", "us-east", image="linode/debian12",
                                     label="another-machine", root_pass="Str0ng-Passw0rd-xyz",
                                     authorized_keys=[probe_key.with_suffix(".pub").read_text()])
    fake.wait_status(other.id, "running")

    def from_other(command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ssh", "-i", str(probe_key), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
             "-o", f"UserKnownHostsFile={tmp_path / 'kh'}", "-o",
             "StrictHostKeyChecking=accept-new", f"root@{other.ipv4[0]}", command],
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)

    def check(host) -> dict[str, str]:
        probe = (f"python3 -c \"import socket; socket.create_connection(('{host.address}', 22),"
                 f" 3); print('open')\"")
        lease = "/var/lib/juliafarm-lease"
        return {
            "other": from_other(probe).stdout + from_other(probe).stderr,
            "lease": _run(host, "juliafarm", f"sudo stat -c '%a %U %n' {lease} "
                          f"{lease}/lease.json; sudo ps -o user=,args= -p "
                          f"\"$(sudo cat {lease}/watchdog.pid)\"").stdout,
            "status": _run(host, "juliafarm", "sudo python3 /usr/local/lib/juliafarm/"
                           "watchdog.py status").stdout,
            "readable": str(_run(host, "juliafarm", f"cat {lease}/lease.json").returncode),
        }

    seen: list[str] = []
    stop = threading.Event()
    watcher = _cmdline_watcher(seen, stop)
    hooks = Inspect(check)
    try:
        job = make_job(fake, tmp_path / "run", hooks=hooks, guards=_guards(fake))
        record = job.run()
    finally:
        stop.set()
        watcher.join()
    r = hooks.result
    assert isinstance(r, dict)
    assert "open" not in r["other"] and "timed out" in r["other"]  # dropped, not refused
    assert "700 root /var/lib/juliafarm-lease" in r["lease"]
    assert "600 root /var/lib/juliafarm-lease/lease.json" in r["lease"]
    assert re.search(r"root\s+python3 /usr/local/lib/juliafarm/watchdog.py run", r["lease"])
    assert json.loads(r["status"])["running"] is True and r["readable"] != "0"
    assert record.host_key_source == "user_data" and record.host_key == \
        "preinstalled via user_data"
    minted = _lease_tokens(fake, record.run_id)
    assert minted and all(t.revoked for t in minted)
    assert all(t.scopes == "linodes:read_write" and t.expiry is not None for t in minted)
    assert all(_refused(fake, t.secret) for t in minted)
    secrets = [t.secret for t in minted]
    text = job.record_path.read_text()
    assert record.lease and record.lease["token_revoked"] is True
    assert not [s for s in secrets if s in text or any(s in a for a in seen)]
    assert fake.firewalls() == [] and record.firewall_deleted
    other.delete()
    fake.wait_status(other.id, "gone")
    assert_nothing_left(fake)


def test_sigkill_mid_render_the_instance_deletes_itself_at_lease_end(fake_linode_hosts,
                                                                     tmp_path) -> None:
    fake = fake_linode_hosts
    scene = tmp_path / "tiny.toml"
    scene.write_text(SCENE.format(frames=300))
    env = _env(fake, tmp_path)
    proc = subprocess.Popen(
        _launcher("run", "--plan", "dedicated-2", "--config", str(scene), "--output",
                  str(tmp_path / "out"), "--yes", "--max-lifetime", "60s", *SSH_FROM, *LONG),
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        stdin=subprocess.DEVNULL)
    lines: list[str] = []
    assert proc.stdout is not None
    deadline = time.monotonic() + 900
    for line in proc.stdout:
        lines.append(line)
        if re.search(r"render \d+/300 frames", line):
            break
        assert time.monotonic() < deadline, "".join(lines[-30:])
    else:
        pytest.fail("".join(lines[-30:]))
    proc.kill()  # no finally runs: only the watchdog can delete it now
    proc.wait()
    killed = time.monotonic()
    assert len(fake.instances()) == 1, "".join(lines[-30:])
    iid = fake.instances()[0]["id"]
    time.sleep(20)
    assert fake.instance(iid) is not None  # still leased: the last heartbeat was < 60 s ago
    fake.wait_status(iid, "gone", timeout_s=120)
    gone_after = time.monotonic() - killed
    assert 20 < gone_after < 60 + 40, gone_after
    entry = next(e for e in fake.ledger.entries() if e.instance_id == iid)
    assert entry.deleted is not None and entry.deleted_by != "outside"  # through the API
    assert ("DELETE", f"linode/instances/{iid}") in fake.requests
    # What the killed launcher left: its firewall and (expiring) lease token. cleanup removes
    # them.
    assert len(fake.firewalls()) == 1
    done = subprocess.run(_launcher("cleanup", "--yes"), env=env, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert fake.firewalls() == []
    assert all(t.revoked for t in fake.tokens() if t.label.startswith("juliafarm-lease-"))
    assert_nothing_left(fake)


def test_detach_then_attach(fake_linode_hosts, tmp_path) -> None:
    fake = fake_linode_hosts
    scene = tmp_path / "tiny.toml"
    scene.write_text(SCENE.format(frames=40))
    out = tmp_path / "out"
    env = _env(fake, tmp_path)
    started = subprocess.run(
        _launcher("run", "--plan", "dedicated-2", "--config", str(scene), "--output", str(out),
                  "--yes", "--detach", "--max-lifetime", "10m", *SSH_FROM),
        env=env, capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)
    log = started.stdout + started.stderr
    assert started.returncode == 0, log[-3000:]
    assert "DELETES ITSELF" in log and "LOST" in log
    m = re.search(r"launcher attach (\S+)`", log)
    assert m, log[-2000:]
    run_id = m.group(1)
    # The launcher is gone; the instance renders on, leased, behind its firewall.
    assert len(fake.instances()) == 1 and fake.ledger.running()
    fw = fake.firewalls()
    assert len(fw) == 1 and fw[0]["entities"][0]["id"] == fake.instances()[0]["id"]
    minted = _lease_tokens(fake, run_id)
    assert minted and not all(t.revoked for t in minted)
    record_text = next((out / "runs").glob("*.json")).read_text()
    record = json.loads(record_text)
    assert record["status"] == "detached" and record["lease"]["deadline"]
    assert not [t for t in minted if t.secret in record_text or t.secret in log]
    time.sleep(5)
    attached = subprocess.run(_launcher("attach", run_id), env=env, capture_output=True,
                              text=True, timeout=900, stdin=subprocess.DEVNULL)
    alog = attached.stdout + attached.stderr
    assert attached.returncode == 0, alog[-3000:]
    assert count_frames(out / "tiny.mp4") == 40
    record = json.loads(next((out / "runs").glob("*.json")).read_text())
    assert record["status"] == "completed" and record["deleted"] is True
    assert all(t.revoked for t in _lease_tokens(fake, run_id))
    assert all(_refused(fake, t.secret) for t in _lease_tokens(fake, run_id))
    assert fake.firewalls() == []
    assert_nothing_left(fake)
    again = subprocess.run(_launcher("attach", run_id), env=env, capture_output=True,
                           text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert again.returncode != 0 and "not a detached run" in again.stderr
    kept = subprocess.run(_launcher("logs", run_id), env=env, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)
    assert kept.returncode == 0 and "frame 40/40" in kept.stdout, kept.stdout[-2000:]
