"""`launcher run --nodes N` against the local Linode cloud: N real hosts render one scene on Dask.

The real CLI (or launcher.cluster.job's ClusterJob, in process, where a test needs a seam), the real
linode_api4 client, real Debian 12 hosts on one test network with public and private addresses.
Every test ends with the ledger showing each instance deleted. Scenes stay tiny: this machine has
2 cores, shared by all the hosts.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from launcher.cluster.dask_cluster import ClusterError, cluster_segment_frames
from launcher.cluster.job import ClusterJob, cluster_spec
from launcher.config import merge
from launcher.errors import LauncherError
from launcher.preflight import build_spec, preflight
from launcher.run.hooks import Hooks
from provision import ssh
from provision.cloud import LinodeCloud
from provision.errors import BootstrapError, ProvisionError, SshError
from provision.retry import RetryPolicy
from renderer.encode import count_frames
from renderer.scene import Overrides, load_scene
from tests.e2e.test_launcher_run import SCENE, SSH_FROM, _env, _launcher
from tests.fakelinode.hosts import netns_name

FAST = RetryPolicy(attempts=5, base_delay_s=0.05, max_delay_s=0.2, total_sleep_s=5.0)
# fps 2: the renderer's 5-second segments are 10 frames, so 40 frames are 4 tasks.
TINY = SCENE.replace("fps = 10", "fps = 2")


def _scene(tmp: Path, frames: int = 40) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    p = tmp / "tiny.toml"
    p.write_text(TINY.format(frames=frames))
    return p


def assert_all_deleted(fake, count: int) -> None:
    entries = fake.ledger.entries()
    assert len(entries) == count, entries
    assert all(e.deleted is not None for e in entries)
    assert fake.ledger.running() == [] and fake.instances() == []


def make_job(fake, tmp: Path, *, nodes: int = 2, frames: int = 40, hooks: Hooks | None = None,
             overrides: Overrides | None = None, **changes) -> ClusterJob:
    overrides = overrides or Overrides()
    scene_path = _scene(tmp, frames)
    scene = load_scene(scene_path, overrides)
    cfg = merge(scene.cloud, plan="dedicated-2", region="us-east", output_dir=str(tmp / "out"))
    cloud = LinodeCloud(fake.master_token, fake.url, policy=FAST, poll_interval_s=0.1,
                        delete_timeout_s=30)
    checked = preflight(scene, cfg, cloud)
    job = replace(build_spec(scene, scene_path, cfg, checked, ()), ssh_timeout_s=30,
                  ready_timeout_s=30)
    spec = replace(cluster_spec(job, scene, overrides, nodes), **changes)
    return ClusterJob(spec, cloud, hooks, state_dir=tmp / "state")


def test_dry_run_with_nodes_estimates_and_creates_nothing(fake_linode, tmp_path) -> None:
    fake = fake_linode
    scene = _scene(tmp_path)
    proc = subprocess.run(
        _launcher("run", "--plan", "dedicated-48", "--nodes", "3", "--config", str(scene),
                  "--output", str(tmp_path / "out"), "--dry-run", *SSH_FROM),
        env=_env(fake, tmp_path), capture_output=True, text=True, timeout=600,
        stdin=subprocess.DEVNULL)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert "estimate on 3 x dedicated-48" in log, log
    # Segments are cut to fill whole rounds of the task slots (3 nodes x 6 slots of 48 cores):
    # 40 frames as 14 segments of at most 3, one round, where 20 of 2 took a second round of
    # 2 slots and a local render's 5-second segments were 4, leaving nodes 2 and 3 idle. Every
    # node renders; but on a scene this small setup dominates, and one node is suggested.
    split = re.search(r"(\d+) segments split ([\d/]+)", log)
    one_round = -(-40 // cluster_segment_frames(40, 150, nodes=3, tasks_per_node=6))
    assert split and int(split.group(1)) == one_round == 14, log
    assert all(int(n) > 0 for n in split.group(2).split("/")), log
    assert "suggested: --nodes 1" in log, log
    assert "dry run" in log and "nothing was created" in log
    assert fake.ledger.entries() == [] and fake.instances() == []


@pytest.mark.root
@pytest.mark.slow
def test_two_nodes_render_the_local_frames_and_delete_both(fake_linode_hosts, tmp_path) -> None:
    fake = fake_linode_hosts
    scene = _scene(tmp_path)
    out = tmp_path / "out"
    proc = subprocess.run(
        _launcher("run", "--plan", "dedicated-2", "--nodes", "2", "--config", str(scene),
                  "--output", str(out), "--keep-frames", "--yes", *SSH_FROM),
        env=_env(fake, tmp_path), capture_output=True, text=True, timeout=1800,
        stdin=subprocess.DEVNULL)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert count_frames(out / "tiny.mp4") == 40
    local = tmp_path / "local"
    subprocess.run([sys.executable, "-c", "from renderer.cli import main; main()", "render",
                    str(scene), "-o", str(local / "local.mp4"), "--frames-dir",
                    str(local / "frames"), "-q"], check=True, timeout=600)
    pulled = sorted((out / "tiny-frames").iterdir())
    expected = sorted((local / "frames").iterdir())
    assert [p.name for p in pulled] == [p.name for p in expected] and len(pulled) == 40
    for got, want in zip(pulled, expected, strict=True):
        assert got.read_bytes() == want.read_bytes(), got.name  # same PNG bytes: same pixels
    assert_all_deleted(fake, 2)
    assert {e.type_id for e in fake.ledger.entries()} == {"g6-dedicated-2"}
    record = json.loads(next((out / "runs").glob("*.json")).read_text())
    assert record["status"] == "completed" and record["deleted"] is True
    assert record["nodes"] == 2 and len(record["instances"]) == 2
    assert all(i["deleted"] for i in record["instances"])
    assert {i["id"] for i in record["instances"]} == {e.instance_id for e in
                                                      fake.ledger.entries()}
    assert fake.master_token not in log and fake.master_token not in json.dumps(record)
    assert not list(out.glob(".*-segments"))  # the pulled segments were joined and removed
    # Each node had its host key sent ahead and its own lease watchdog, revoked at the end.
    assert all(i["host_key_source"] == "user_data" for i in record["instances"])
    assert all(i["lease"] and i["lease"]["token_revoked"] for i in record["instances"])
    lease_tokens = [t for t in fake.tokens() if t.label == f"juliafarm-lease-{record['run_id']}"]
    assert len(lease_tokens) >= 2 and all(t.revoked for t in lease_tokens)
    assert not [line for line in log.splitlines() if "lease token" in line.lower()
                and "not revoked" in line.lower()]
    # One cloud firewall for the run, attached to both at creation (inbound policy DROP): the
    # render completing proves its Dask rule lets the nodes' private addresses in; it went with
    # the nodes.
    fid = record["firewall_id"]
    assert fid and record["ssh_from"] == ["203.0.113.1/32"] and record["firewall_deleted"]
    opened = [line for line in log.splitlines()
              if f"cloud firewall {fid}: Dask ports 8786-8789 open between" in line]
    assert len(opened) == 1 and opened[0].count("198.51.100.") == 2, log[-3000:]
    assert fake.firewalls() == []


@pytest.mark.root
@pytest.mark.slow
def test_a_node_lost_mid_run_completes_with_a_warning(fake_linode_hosts, tmp_path) -> None:
    fake = fake_linode_hosts

    class KillNodeTwo(Hooks):
        """Once the first segment is in, node 2 (a worker, not the scheduler) disappears."""

        def __init__(self) -> None:
            self.ids: list[int] = []
            self.killer: threading.Thread | None = None
            self.messages: list[str] = []

        def created(self, instance) -> None:
            self.ids.append(instance.id)

        def message(self, text: str) -> None:
            self.messages.append(text)

        def progress(self, done, total, fps) -> None:
            if self.killer is None and done < total:
                victim = next(i for i in self.ids if i != job.nodes[0].instance.id)
                self.killer = threading.Thread(target=fake.disappear, args=(victim,))
                self.killer.start()

    hooks = KillNodeTwo()
    # Heavier frames (more iterations) so that the render outlasts the loss being noticed.
    job = make_job(fake, tmp_path, frames=80, hooks=hooks, worker_ttl_s=10,
                   overrides=Overrides(max_iterations=20000))
    record = job.run()
    assert hooks.killer is not None
    hooks.killer.join()
    assert record.status == "completed"
    assert record.warnings and any("node-2" in w and "left the cluster" in w
                                   for w in record.warnings), record.warnings
    assert count_frames(Path(record.outputs[0]["path"])) == 80
    assert all(s.worker == "node-1" for s in job.result.segments)
    assert_all_deleted(fake, 2)
    assert record.deleted and all(i["deleted"] for i in record.instances)


def _cut_off(instance) -> None:
    """The host keeps running (and billing) but answers nothing: its only link goes down."""
    subprocess.run(["ip", "netns", "exec", netns_name(instance.id, instance.ipv4), "ip", "link",
                    "set", "eth0", "down"], check=True, timeout=30)


@pytest.mark.root
@pytest.mark.slow
# A deleted node is noticed by whichever look comes first: the API (gone) or the tunnel to it
# closing with its scheduler silent (the host goes down with it); both are right.
@pytest.mark.parametrize("how, why", [
    ("deleted", ("its instance is gone", "the SSH tunnel to it closed")),
    ("unreachable", ("its scheduler did not answer",))])
def test_the_scheduler_node_lost_mid_run_fails_over_and_completes(fake_linode_hosts, tmp_path,
                                                                  how, why) -> None:
    fake = fake_linode_hosts

    class LoseNodeOne(Hooks):
        """Once node 2 has finished a segment (kept: its file is on a node alive), node 1 (the
        Dask scheduler, the tunnel's end) is lost."""

        def __init__(self) -> None:
            self.killer: threading.Thread | None = None
            self.messages: list[str] = []

        def message(self, text: str) -> None:
            self.messages.append(text)

        def progress(self, done, total, fps) -> None:
            on_two = [s for s in job.finished.values() if s.worker == "node-2"]
            if self.killer is None and on_two and done < total:
                head = job.nodes[0].instance
                lose = (lambda: fake.disappear(head.id)) if how == "deleted" else (
                    lambda: _cut_off(head))
                self.killer = threading.Thread(target=lose)
                self.killer.start()

    hooks = LoseNodeOne()
    # Heavier frames (more iterations) so that the render outlasts the loss being noticed.
    job = make_job(fake, tmp_path, frames=80, hooks=hooks, worker_ttl_s=10,
                   head_check_interval_s=2, head_probe_timeout_s=5,
                   overrides=Overrides(max_iterations=20000))
    record = job.run()
    assert hooks.killer is not None
    hooks.killer.join()
    assert record.status == "completed", record.error
    assert any(w.startswith("node-1, the Dask scheduler's node, was lost mid-run")
               and any(reason in w for reason in why) for w in record.warnings), record.warnings
    took_over = [t for t in record.lost if "node-2 took over the scheduler" in t]
    assert took_over, record.lost
    left = int(re.search(r"(\d+) of 8 segment\(s\) were left to render", took_over[0])[1])
    assert 1 <= left < 8  # what node 2 had finished was kept
    assert any("Dask scheduler on node-2" in m for m in hooks.messages), hooks.messages
    assert count_frames(Path(record.outputs[0]["path"])) == 80
    assert all(s.worker == "node-2" for s in job.result.segments)
    assert "node-1" in job.result.lost_workers
    assert_all_deleted(fake, 2)  # the lost node too: already gone, or deleted as usual
    assert record.deleted and all(i["deleted"] for i in record.instances)


@pytest.mark.root
@pytest.mark.slow
def test_every_node_lost_mid_run_fails_in_one_line_and_all_are_deleted(fake_linode_hosts,
                                                                       tmp_path) -> None:
    fake = fake_linode_hosts

    class LoseAll(Hooks):
        killed = False

        def progress(self, done, total, fps) -> None:
            if not self.killed and done < total:
                self.killed = True
                for node in job.nodes:  # both, before the next poll: no node left to take over
                    fake.disappear(node.instance.id)

    job = make_job(fake, tmp_path, frames=80, hooks=LoseAll(), worker_ttl_s=10,
                   head_check_interval_s=2, head_probe_timeout_s=5,
                   overrides=Overrides(max_iterations=20000))
    with pytest.raises(ClusterError, match=r"every node is lost \(node-1, the scheduler's: its "
                                           r"instance is gone\); \d+ of 8 segments"):
        job.run()
    assert_all_deleted(fake, 2)
    record = json.loads(job.record_path.read_text())
    assert record["status"] == "failed" and record["deleted"] is True
    assert "\n" not in record["error"] and "every node is lost" in record["error"]
    assert any("node-2 cannot be reached either" in w for w in record["warnings"])


@pytest.mark.root
@pytest.mark.slow
def test_a_failed_create_of_the_second_node_deletes_the_first(fake_linode_hosts,
                                                              tmp_path) -> None:
    fake = fake_linode_hosts
    # The creates go out together: one is refused, the other made an instance, which must go.
    fake.faults.server_error("POST", "linode/instances", status=400)
    with pytest.raises(ProvisionError):
        make_job(fake, tmp_path).run()
    assert_all_deleted(fake, 1)


@pytest.mark.root
@pytest.mark.slow
def test_a_node_whose_ssh_never_comes_up_fails_the_run_and_all_go(fake_linode_hosts,
                                                                 tmp_path) -> None:
    fake = fake_linode_hosts
    fake.faults.ssh_never_up()
    with pytest.raises(SshError):
        make_job(fake, tmp_path, nodes=3).run()
    assert_all_deleted(fake, 3)


@pytest.mark.root
@pytest.mark.slow
def test_a_bootstrap_failure_deletes_every_node(fake_linode_hosts, tmp_path) -> None:
    fake = fake_linode_hosts
    # A requirement no index has: the wheelhouse download fails on every node.
    job = make_job(fake, tmp_path, requirements=("juliafarm-no-such-package==0.0.1",))
    with pytest.raises(BootstrapError, match="wheels"):
        job.run()
    assert_all_deleted(fake, 2)
    record = json.loads(job.record_path.read_text())
    assert record["status"] == "failed" and record["deleted"] is True
    assert len(record["instances"]) == 2 and all(i["deleted"] for i in record["instances"])


@pytest.mark.root
@pytest.mark.slow
def test_a_node_lost_after_the_render_has_its_segments_rendered_again(fake_linode_hosts,
                                                                      tmp_path) -> None:
    fake = fake_linode_hosts

    class KillBeforePull(Hooks):
        seen = ""

        def phase_started(self, name: str) -> None:
            if name == "pull":  # every segment is rendered; node 2's files go with it
                fake.disappear(job.nodes[1].instance.id)

        def before_delete(self, host) -> None:  # node 1, still running its scheduler and worker
            if host is not None and host.address == job.nodes[0].host.address:
                self.seen = subprocess.run(
                    [*ssh.ssh_command(host.keys, "juliafarm", host.address),
                     "sudo -n ufw status; ss -ltnH"], capture_output=True, text=True,
                    timeout=60, stdin=subprocess.DEVNULL).stdout

    hooks = KillBeforePull()
    job = make_job(fake, tmp_path, hooks=hooks, worker_ttl_s=10)
    job.spec = replace(job.spec, keep_frames=True)
    record = job.run()
    assert record.status == "completed"
    assert any("node-2 could not be reached after the render" in w for w in record.warnings)
    assert all(s.worker == "node-1" for s in job.result.segments)
    assert count_frames(Path(record.outputs[0]["path"])) == 40
    assert len(list(Path(record.outputs[1]["path"]).glob("frame-*.png"))) == 40
    assert_all_deleted(fake, 2)
    # Cluster traffic stays private: the Dask ports open to the nodes' private addresses only,
    # and nothing but sshd listens on a public or wildcard address.
    private = {n.private_ip for n in job.nodes}
    dask_rules = [line for line in hooks.seen.splitlines() if "8786:8789" in line]
    sources = [line.split("ALLOW", 1)[1].split()[0] for line in dask_rules]
    assert dask_rules and set(sources) == private, hooks.seen
    assert all(line.split()[0] in private for line in dask_rules), hooks.seen  # destination
    listening = [line.split()[3] for line in hooks.seen.splitlines() if line.startswith("LISTEN")]
    assert any(a.endswith(":8786") for a in listening), hooks.seen
    for local in listening:
        host_part, port = local.rsplit(":", 1)
        assert port == "22" or host_part in private or host_part == "127.0.0.1", local


@pytest.mark.root
@pytest.mark.slow
def test_the_scheduler_node_lost_after_the_render_hands_over_and_completes(fake_linode_hosts,
                                                                           tmp_path) -> None:
    fake = fake_linode_hosts

    class KillHeadBeforePull(Hooks):
        def phase_started(self, name: str) -> None:
            if name == "pull":  # node 1's segments and its scheduler go with it
                fake.disappear(job.nodes[0].instance.id)

    job = make_job(fake, tmp_path, hooks=KillHeadBeforePull(), worker_ttl_s=10)
    job.spec = replace(job.spec, keep_frames=True)
    record = job.run()
    assert record.status == "completed", record.error
    assert any("node-1, the Dask scheduler's node" in w for w in record.warnings), record.warnings
    assert any("node-1 could not be reached after the render" in w for w in record.warnings)
    assert all(s.worker == "node-2" for s in job.result.segments)
    assert count_frames(Path(record.outputs[0]["path"])) == 40
    assert len(list(Path(record.outputs[1]["path"]).glob("frame-*.png"))) == 40
    assert any("node-2 took over the scheduler" in line for line in record.lost), record.lost
    assert_all_deleted(fake, 2)


@pytest.mark.root
@pytest.mark.slow
def test_max_cost_stops_the_render_in_time_and_deletes_every_node(fake_linode_hosts,
                                                                  tmp_path) -> None:
    fake = fake_linode_hosts
    # A cap of one billed hour per node, and a stop margin that leaves one second of it.
    job = make_job(fake, tmp_path, cost_stop_margin_s=3599)
    cap = 2 * job.spec.plan.price_hourly_usd
    job.spec = replace(job.spec, max_cost_usd=cap)
    with pytest.raises(LauncherError, match="--max-cost"):
        job.run()
    assert_all_deleted(fake, 2)
    record = json.loads(job.record_path.read_text())
    assert record["status"] == "failed" and "--max-cost" in record["error"]
    assert record["cost_usd"] <= cap + 1e-9


@pytest.mark.root
@pytest.mark.slow
def test_sigterm_mid_render_deletes_every_node(fake_linode_hosts, tmp_path) -> None:
    import re
    import signal
    import time

    fake = fake_linode_hosts
    scene = _scene(tmp_path, frames=120)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        _launcher("run", "--plan", "dedicated-2", "--nodes", "2", "--config", str(scene),
                  "--output", str(out), "--yes", "--max-iterations", "20000", *SSH_FROM),
        env=_env(fake, tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        stdin=subprocess.DEVNULL)
    lines: list[str] = []
    deadline = time.monotonic() + 900
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        m = re.search(r"render (\d+)/120 frames", line)
        if m and int(m.group(1)) < 120:  # a segment is finished, the others are rendering
            break
        assert time.monotonic() < deadline, "".join(lines[-30:])
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=300)
    log = "".join(lines) + rest
    assert proc.returncode != 0, log[-3000:]
    assert_all_deleted(fake, 2)
    record = json.loads(next((out / "runs").glob("*.json")).read_text())
    assert record["status"] == "interrupted" and record["deleted"] is True, log[-3000:]
    assert not (out / "tiny.mp4").exists()
    assert list(out.glob("*-partial/node-*/seg-*.mp4")), log[-3000:]  # finished ones saved
    assert record["firewall_deleted"] and fake.firewalls() == []


@pytest.mark.root
@pytest.mark.slow
def test_sigkill_mid_run_every_node_deletes_itself_at_lease_end(fake_linode_hosts,
                                                                tmp_path) -> None:
    fake = fake_linode_hosts
    scene = _scene(tmp_path, frames=300)
    env = _env(fake, tmp_path)
    proc = subprocess.Popen(
        _launcher("run", "--plan", "dedicated-2", "--nodes", "2", "--config", str(scene),
                  "--output", str(tmp_path / "out"), "--yes", "--max-lifetime", "60s",
                  "--num-steps", "480", "--max-iterations", "20000", *SSH_FROM),
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        stdin=subprocess.DEVNULL)
    lines: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if "==> render" in line:
            break
    else:
        pytest.fail("".join(lines[-30:]))
    proc.kill()  # no finally runs: only the nodes' watchdogs can delete them now
    proc.wait()
    killed = time.monotonic()
    ids = [i["id"] for i in fake.instances()]
    assert len(ids) == 2, "".join(lines[-30:])
    for iid in ids:
        fake.wait_status(iid, "gone", timeout_s=150)
    assert time.monotonic() - killed < 60 + 60
    entries = {e.instance_id: e for e in fake.ledger.entries()}
    for iid in ids:  # each deleted through the API by its own watchdog
        assert entries[iid].deleted is not None and entries[iid].deleted_by != "outside"
        assert ("DELETE", f"linode/instances/{iid}") in fake.requests
    assert_all_deleted(fake, 2)
    # The lease token may delete Linodes only: the run's firewall (free, guarding nothing now)
    # is left for `launcher cleanup`.
    run_id = fake.ledger.entries()[0].label.removeprefix("juliafarm-").rsplit("-", 1)[0]
    assert [f["label"] for f in fake.firewalls()] == [f"jf-{run_id}"]
    done = subprocess.run(_launcher("cleanup", "--yes"), env=env, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 0 and "deleted firewall" in done.stdout, done.stdout + done.stderr
    assert fake.firewalls() == []



@pytest.mark.root
@pytest.mark.slow
def test_two_nodes_detach_then_attach(fake_linode_hosts, tmp_path) -> None:
    """`--nodes 2 --detach`: the render goes on under a driver on node 1 with the launcher gone,
    every node leased and firewalled; `launcher attach` follows it, pulls, joins and deletes
    both (it was refused before the one lifecycle)."""
    fake = fake_linode_hosts
    scene = _scene(tmp_path)
    out = tmp_path / "out"
    env = _env(fake, tmp_path)
    started = subprocess.run(
        _launcher("run", "--plan", "dedicated-2", "--nodes", "2", "--config", str(scene),
                  "--output", str(out), "--yes", "--detach", "--max-lifetime", "15m",
                  *SSH_FROM),
        env=env, capture_output=True, text=True, timeout=1800, stdin=subprocess.DEVNULL)
    log = started.stdout + started.stderr
    assert started.returncode == 0, log[-4000:]
    assert "DELETES ITSELF" in log
    m = re.search(r"launcher attach (\S+)`", log)
    assert m, log[-2000:]
    run_id = m.group(1)
    assert len(fake.instances()) == 2 and len(fake.ledger.running()) == 2
    record = json.loads(next((out / "runs").glob("*.json")).read_text())
    assert record["status"] == "detached" and record["detached"]["cluster"]
    assert all(i["lease"]["deadline"] for i in record["instances"])
    # The driver's output, followed from node 1 to its end (read only: the leases run on).
    followed = subprocess.run(_launcher("logs", run_id, "--follow"), env=env,
                              capture_output=True, text=True, timeout=1800,
                              stdin=subprocess.DEVNULL)
    assert followed.returncode == 0, followed.stdout[-2000:] + followed.stderr
    assert "frame 40/40" in followed.stdout and "rendered 4 segments" in followed.stdout
    attached = subprocess.run(_launcher("attach", run_id), env=env, capture_output=True,
                              text=True, timeout=1800, stdin=subprocess.DEVNULL)
    alog = attached.stdout + attached.stderr
    assert attached.returncode == 0, alog[-4000:]
    assert count_frames(out / "tiny.mp4") == 40
    record = json.loads(next((out / "runs").glob("*.json")).read_text())
    assert record["status"] == "completed" and record["deleted"] is True
    assert all(i["deleted"] for i in record["instances"])
    assert all(t.revoked for t in fake.tokens() if t.label == f"juliafarm-lease-{run_id}")
    assert fake.firewalls() == []
    assert_all_deleted(fake, 2)
    kept = subprocess.run(_launcher("logs", run_id), env=env, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)
    assert kept.returncode == 0 and "frame 40/40" in kept.stdout
