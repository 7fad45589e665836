"""One `launcher run` job per fault, in process, against the local Linode cloud with real hosts.

Every test ends with the same proof: the emulator has no instance left and its ledger shows each
one deleted (billed, but not billing). Root only: the hosts are network namespaces.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from launcher.config import merge
from launcher.errors import LauncherError
from launcher.preflight import build_spec, preflight
from launcher.run import lifecycle as job_mod
from launcher.run.hooks import Hooks
from launcher.run.single import Job
from provision import ssh
from provision.cloud import LinodeCloud
from provision.errors import BootstrapError, CapacityError, ProvisionError, SshError
from provision.retry import RetryPolicy
from renderer.scene import load_scene
from tests.e2e.test_launcher_run import SCENE

pytestmark = [pytest.mark.root, pytest.mark.slow]
FAST = RetryPolicy(attempts=5, base_delay_s=0.05, max_delay_s=0.2, total_sleep_s=5.0)
ROOT_PASS = "Kn0wn-Root-Pass-For-The-Leak-Check"


def make_job(fake, tmp: Path, *, frames: int = 12, hooks: Hooks | None = None,
             regions: tuple[str, ...] = ("us-east",), render_args: tuple[str, ...] = (),
             **spec_changes) -> Job:
    tmp.mkdir(parents=True, exist_ok=True)
    scene_path = tmp / "tiny.toml"
    scene_path.write_text(SCENE.format(frames=frames))
    scene = load_scene(scene_path)
    cfg = merge(scene.cloud, plan="dedicated-2", region=regions[0],
                fallback_regions=tuple(regions[1:]), output_dir=str(tmp / "out"))
    cloud = LinodeCloud(fake.master_token, fake.url, policy=FAST, poll_interval_s=0.1,
                        delete_timeout_s=30)
    checked = preflight(scene, cfg, cloud)
    changes = {"ssh_timeout_s": 20, "ready_timeout_s": 30, **spec_changes}
    spec = replace(build_spec(scene, scene_path, cfg, checked, render_args), **changes)
    return Job(spec, cloud, hooks, state_dir=tmp / "state")


def assert_nothing_left(fake) -> None:
    assert fake.instances() == []
    assert fake.ledger.running() == []
    assert all(e.deleted is not None for e in fake.ledger.entries())


class Inspect(Hooks):
    """Runs checks on the live host just before the delete."""

    def __init__(self, check) -> None:
        self.check = check
        self.result: object = None

    def before_delete(self, host) -> None:
        self.result = self.check(host)


def _run(host, user: str, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ssh.ssh_command(host.keys, user, host.address), command],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def _password_login_offered(host) -> bool:
    """Ask sshd which methods it offers when the client has no key: a real probe, not config."""
    probe = subprocess.run(
        ["ssh", "-o", "BatchMode=yes", "-o", "PubkeyAuthentication=no",
         "-o", "PreferredAuthentications=password,keyboard-interactive",
         "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
         "-o", "ConnectTimeout=10", "-l", "root", host.address, "true"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    offered = probe.stderr.rsplit("Permission denied (", 1)[-1]
    assert probe.returncode != 0 and "publickey" in offered, probe.stderr
    return "password" in offered or "keyboard-interactive" in offered


def _reachable_from_outside(host) -> dict[int, bool]:
    """Start a listener on 8000 on the host, check it works from inside, then try 22 and 8000
    from this machine (outside the host's firewall)."""
    _run(host, "juliafarm", "nohup python3 -m http.server 8000 >/dev/null 2>&1 &")
    inside = _run(host, "juliafarm", "for i in $(seq 50); do python3 -c \"import socket; "
                  "socket.create_connection(('127.0.0.1', 8000), 1)\" && exit 0; sleep 0.1; "
                  "done; exit 1")
    assert inside.returncode == 0, "the probe listener did not start on the host"
    result = {}
    for port in (22, 8000):
        try:
            socket.create_connection((host.address, port), timeout=3).close()
            result[port] = True
        except OSError:
            result[port] = False
    return result


def test_the_host_is_locked_down_and_got_only_what_it_should(fake_linode_hosts, tmp_path,
                                                             monkeypatch) -> None:
    fake = fake_linode_hosts
    monkeypatch.setattr(job_mod, "random_root_password", lambda: ROOT_PASS)
    seen_argv: list[str] = []
    stop = threading.Event()

    def watch_cmdlines() -> None:  # every process's argv during the run
        while not stop.is_set():
            for pid in os.listdir("/proc"):
                if pid.isdigit():
                    try:
                        seen_argv.append(Path(f"/proc/{pid}/cmdline").read_bytes().decode(
                            errors="replace"))
                    except OSError:
                        pass
            stop.wait(0.05)

    def check(host) -> dict[str, str]:
        layout = host.layout
        return {
            "sudo": _run(host, "juliafarm", "sudo -n true && echo sudo-ok").stdout,
            "root": str(_run(host, "root", "true").returncode),
            "ufw": _run(host, "juliafarm", "sudo ufw status verbose").stdout,
            "tools": _run(host, "juliafarm", f"command -v ffmpeg; ls {layout.venv_python}"
                          ).stdout,
            "files": _run(host, "juliafarm", f"cd {layout.project} && find . -maxdepth 2"
                          ).stdout,
            "nproc": _run(host, "juliafarm", "nproc").stdout.strip(),
            "password": _password_login_offered(host),
            "ports": _reachable_from_outside(host),
        }

    hooks = Inspect(check)
    watcher = threading.Thread(target=watch_cmdlines, daemon=True)
    watcher.start()
    try:
        record = make_job(fake, tmp_path, hooks=hooks).run()
    finally:
        stop.set()
        watcher.join()
    r = hooks.result
    assert isinstance(r, dict)
    assert "sudo-ok" in r["sudo"] and r["root"] != "0"
    assert "Status: active" in r["ufw"] and "deny (incoming)" in r["ufw"]
    allowed = [line for line in r["ufw"].splitlines() if "ALLOW" in line]
    assert allowed and all("OpenSSH" in line for line in allowed)  # only port 22
    assert r["password"] is False  # sshd offers only publickey, to anyone
    assert r["ports"] == {22: True, 8000: False}  # a listening service stays unreachable
    assert "ffmpeg" in r["tools"] and "venv/bin/python" in r["tools"]
    files = r["files"].split()
    assert "./renderer" in files and "./pyproject.toml" in files
    uploaded = [x for x in ("./.git", "./.venv", "./output", "./tests", "./docs") if x in files]
    assert not uploaded, uploaded
    assert record.cores == int(r["nproc"])  # the render used every core the host has
    assert_nothing_left(fake)
    leaked = [a for a in seen_argv if fake.master_token in a or ROOT_PASS in a]
    assert not leaked, leaked[:3]
    text = next((tmp_path / "out" / "runs").glob("*.json")).read_text()
    assert ROOT_PASS not in text and fake.master_token not in text


def test_api_bursts_during_create_and_delete(fake_linode_hosts, tmp_path) -> None:
    fake = fake_linode_hosts
    fake.faults.rate_limit("POST", "linode/instances", count=2, retry_after_s=0)
    fake.faults.server_error("POST", "linode/instances", status=502, after_effect=True)
    fake.faults.server_error("DELETE", r"linode/instances/\d+", status=503, count=2)
    make_job(fake, tmp_path).run()
    assert len(fake.ledger.entries()) == 1  # the lost create response was adopted, not repeated
    assert_nothing_left(fake)


def test_no_capacity_fails_over_or_fails_clearly(fake_linode_hosts, tmp_path) -> None:
    fake = fake_linode_hosts
    fake.faults.no_capacity("us-east")
    with pytest.raises(CapacityError, match="us-east"):
        make_job(fake, tmp_path / "a").run()
    assert fake.ledger.entries() == []
    record = make_job(fake, tmp_path / "b", regions=("us-east", "us-central")).run()
    assert record.region == "us-central"
    assert_nothing_left(fake)


def test_ssh_never_ready(fake_linode_hosts, tmp_path) -> None:
    fake = fake_linode_hosts
    fake.faults.ssh_never_up()
    with pytest.raises(SshError):
        make_job(fake, tmp_path, ssh_timeout_s=6).run()
    assert_nothing_left(fake)


def test_a_failing_bootstrap_command_is_reported_and_deletes(fake_linode_hosts,
                                                             tmp_path) -> None:
    fake = fake_linode_hosts
    # This host lacks ffmpeg (and its cached .deb), so bootstrap must apt-get it, and the test
    # network has no mirror.
    fake.faults.at_first_boot("dpkg --purge --force-depends ffmpeg >/dev/null 2>&1 && "
                              "rm -f /var/cache/apt/archives/ffmpeg_*.deb")
    with pytest.raises(BootstrapError, match="apt-get") as failed:
        make_job(fake, tmp_path).run()
    assert len(str(failed.value).splitlines()) == 1
    record = next((tmp_path / "out" / "runs").glob("*.json")).read_text()
    assert '"failed"' in record and "apt-get" in record
    assert_nothing_left(fake)


def test_render_crash_midway_pulls_finished_segments(fake_linode_hosts, tmp_path) -> None:
    fake = fake_linode_hosts

    class KillRenderer(Hooks):
        host = None
        killed = False

        def progress(self, done, total, fps):
            if done >= 60 and not self.killed and self.host is not None:
                self.killed = True
                _run(self.host, "juliafarm", "pkill -KILL -f 'renderer.cli render'")

    hooks = KillRenderer()
    job = make_job(fake, tmp_path, frames=300, hooks=hooks,
                   render_args=("--num-steps", "480", "--max-iterations", "20000"))
    original = job._render

    def render_with_handle():
        hooks.host = job.host
        original()

    job._render = render_with_handle  # type: ignore[method-assign]
    with pytest.raises(LauncherError, match="render failed"):
        job.run()
    assert hooks.killed
    assert list((tmp_path / "out").glob("*-partial/seg-*.mp4"))
    assert '"partial-segments"' in next((tmp_path / "out" / "runs").glob("*.json")).read_text()
    assert_nothing_left(fake)


def test_instance_vanishing_mid_run(fake_linode_hosts, tmp_path) -> None:
    fake = fake_linode_hosts

    class Vanish(Hooks):
        def created(self, instance):
            self.instance_id = instance.id

        def phase_started(self, name):
            if name == "sync":
                fake.disappear(self.instance_id)

    with pytest.raises((ProvisionError, LauncherError)):
        make_job(fake, tmp_path, hooks=Vanish()).run()
    assert_nothing_left(fake)


def test_rsync_failure(fake_linode_hosts, tmp_path) -> None:
    fake = fake_linode_hosts
    with pytest.raises(ProvisionError):
        make_job(fake, tmp_path, project_dir=tmp_path / "does-not-exist").run()
    assert_nothing_left(fake)


def test_sigkill_leaves_an_instance_that_cleanup_removes(fake_linode_hosts, tmp_path) -> None:
    fake = fake_linode_hosts
    scene = tmp_path / "tiny.toml"
    scene.write_text(SCENE.format(frames=300))
    env = dict(os.environ, LINODE_API_URL=fake.url, LINODE_TOKEN=fake.master_token,
               XDG_STATE_HOME=str(tmp_path / "state"))
    launcher = [sys.executable, "-c", "from launcher.cli import main; main()"]
    proc = subprocess.Popen([*launcher, "run", "--plan", "dedicated-2", "--config", str(scene),
                             "--output", str(tmp_path / "out"), "--yes",
                             "--no-cloud-firewall"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    for line in proc.stdout:
        if "==> ssh" in line:
            break
    proc.kill()
    proc.wait()
    assert len(fake.instances()) == 1  # nobody deleted it: this is what cleanup is for
    ls = subprocess.run([*launcher, "ls"], env=env, capture_output=True, text=True, timeout=60)
    run_id = fake.instances()[0]["label"].removeprefix("juliafarm-")
    assert run_id in ls.stdout and "orphaned" in ls.stdout, ls.stdout
    done = subprocess.run([*launcher, "cleanup", "--yes"], env=env, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert_nothing_left(fake)


def test_max_cost_stops_the_render_in_time_and_deletes(fake_linode_hosts, tmp_path,
                                                       monkeypatch) -> None:
    from launcher.run import costguard

    fake = fake_linode_hosts
    # An hour is too long for a test: the guard's stop point comes 25 s into the lifetime.
    monkeypatch.setattr(costguard.CostGuard, "stop_at_lifetime_s", property(lambda self: 25.0))
    job = make_job(fake, tmp_path, frames=300, max_cost_usd=0.10,
                   render_args=("--num-steps", "480", "--max-iterations", "20000"))
    with pytest.raises(LauncherError, match="--max-cost"):
        job.run()
    assert job.record.lifetime_s is not None and job.record.lifetime_s < 60
    assert_nothing_left(fake)
