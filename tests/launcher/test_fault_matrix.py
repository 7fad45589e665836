"""The fault matrix: phase × fault × {1, 2 nodes}, each cell a whole run of the shared lifecycle
through the real linode_api4 client against the local Linode API (no machines behind its
instances: the SSH-side steps are stand-ins that still ask the API whether their instance
exists). Every cell must end with nothing running in the emulator's billing ledger, the right
status in the run record and the CLI's exit code for what was raised; where the API itself is
down at the end, with "unconfirmed" and exit 4, until `launcher down` finishes the job.

Real hosts run a handful of the same cells in tests/e2e (SIGINT/SIGHUP through the real CLI,
a broken pipe, lost nodes).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from launcher.config import merge
from launcher.console import ConsoleHooks
from launcher.errors import DeleteUnconfirmed, LauncherError, exit_code_for
from launcher.preflight import build_spec, preflight
from launcher.run.down import take_down
from launcher.run.lifecycle import Lifecycle, Node
from launcher.run.spec import new_run_id
from provision.cloud import InstanceInfo, InstanceRequest, LinodeCloud
from provision.retry import RetryPolicy
from renderer.scene import load_scene
from tests.e2e.test_launcher_run import SCENE

FAST = RetryPolicy(attempts=3, base_delay_s=0.01, max_delay_s=0.05, total_sleep_s=1.0)
PHASES = ("create", "boot", "ssh", "bootstrap", "sync", "render", "pull")
SIGNALS = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM, "SIGHUP": signal.SIGHUP}
FAULTS = (*SIGNALS, "output closed", "api 5xx burst", "instance vanishes",
          "create response lost")


def cells() -> list[tuple[str, str, int]]:
    out = []
    for nodes in (1, 2):
        for phase in PHASES:
            for fault in FAULTS:
                if fault == "create response lost" and phase != "create":
                    continue  # a create's answer can only be lost while creating
                out.append((phase, fault, nodes))
    return out


class Injector:
    """Fires one fault once, at the start of one phase (or inside the create request)."""

    def __init__(self, fake, phase: str, fault: str) -> None:
        self.fake, self.phase, self.fault = fake, phase, fault
        self.fired = False
        self.pipe_read: int | None = None
        self.first_id: int | None = None
        self.first_label = ""
        self._lock = threading.Lock()

    def take(self, phase: str) -> bool:
        with self._lock:
            if self.fired or phase != self.phase:
                return False
            self.fired = True
            return True

    def fire(self) -> None:
        f = self.fault
        if f in SIGNALS:
            os.kill(os.getpid(), SIGNALS[f])
            time.sleep(0.2)  # the main thread takes it while this request is still under way
        elif f == "output closed":
            assert self.pipe_read is not None
            os.close(self.pipe_read)  # the terminal's reader (tee, head) is gone
        elif f == "api 5xx burst":
            self.fake.faults.server_error("*", ".*", status=503, count=2)
        elif f == "instance vanishes":
            assert self.first_id is not None
            self.fake.disappear(self.first_id)


class FaultyCloud(LinodeCloud):
    """The real client; create-phase faults fire inside the create request."""

    injector: Injector

    def create(self, req: InstanceRequest) -> InstanceInfo:
        inj = self.injector
        fire = req.label == inj.first_label and inj.take("create")
        if fire and inj.fault != "instance vanishes":
            inj.fire()
        info = super().create(req)
        if fire and inj.fault == "instance vanishes":
            inj.first_id = info.id
            inj.fire()
        return info


class StandInRun(Lifecycle):
    """The shared lifecycle with the SSH-side steps replaced: each asks the API for its
    instance (a vanished one is unreachable, as over SSH) and lets the injector fire."""

    injector: Injector

    def _step(self, node: Node, phase: str) -> None:
        if node.index == 1 and self.injector.take(phase):
            self.injector.first_id = node.instance.id if node.instance else None
            self.injector.fire()
        assert node.instance is not None
        if self.cloud.get(node.instance.id) is None:
            raise LauncherError(f"{node.name}: {phase}: the host does not answer")

    def wait_ssh(self, node: Node) -> None:
        self._step(node, "ssh")

    def bootstrap(self, node: Node, requirements) -> None:
        self._step(node, "bootstrap")

    def sync(self, node: Node) -> None:
        self._step(node, "sync")

    def render_and_pull(self) -> None:
        with self.phase("render"):
            self.parallel("render", lambda n: self._step(n, "render"), self.nodes)
        with self.phase("pull"):
            self.parallel("pull", lambda n: self._step(n, "pull"), self.nodes)


class PhaseHooks(ConsoleHooks):
    """The real console, writing into a pipe; the boot phase's fault fires as it starts."""

    def __init__(self, out, injector: Injector, run: list[StandInRun]) -> None:
        super().__init__(out=out)
        self.injector, self.run = injector, run

    def phase_started(self, name: str) -> None:
        super().phase_started(name)
        if name == "boot" and self.injector.take("boot"):
            self.injector.first_id = self.run[0].nodes[0].instance.id  # type: ignore[union-attr]
            self.injector.fire()


def make_run(fake, tmp: Path, phase: str, fault: str, nodes: int) -> StandInRun:
    scene_path = tmp / "tiny.toml"
    scene_path.write_text(SCENE.format(frames=12))
    scene = load_scene(scene_path)
    cfg = merge(scene.cloud, plan="dedicated-2", region="us-east", output_dir=str(tmp / "out"))
    cloud = FaultyCloud(fake.master_token, fake.url, policy=FAST, poll_interval_s=0.05,
                        delete_timeout_s=10)
    checked = preflight(scene, cfg, cloud, cloud_firewall=True, ssh_from="203.0.113.1/32")
    spec = replace(build_spec(scene, scene_path, cfg, checked, ()), ssh_timeout_s=1,
                   ready_timeout_s=10)
    spec = replace(spec, guards=replace(spec.guards, lease_s=None))  # the lease needs SSH
    injector = Injector(fake, phase, fault)
    read_fd, write_fd = os.pipe()
    injector.pipe_read = read_fd
    holder: list[StandInRun] = []
    hooks = PhaseHooks(os.fdopen(write_fd, "w"), injector, holder)
    run_id = new_run_id()
    run = StandInRun(spec, cloud, hooks, nodes=nodes, state_dir=tmp / "state" / run_id,
                     run_id=run_id, label_grace_s=1.0)
    run.needs_private_ip = nodes > 1
    cloud.injector = injector
    injector.first_label = run.nodes[0].label
    run.injector = injector
    holder.append(run)
    if fault == "create response lost":
        fake.faults.server_error("POST", "linode/instances", status=502, count=1,
                                 after_effect=True)
    return run


def expected(fault: str) -> tuple[str, int]:
    if fault in SIGNALS:
        return "interrupted", 130
    if fault == "instance vanishes":
        return "failed", 1
    return "completed", 0  # output is best effort; bursts are retried; lost answers adopted


@pytest.mark.parametrize(("phase", "fault", "nodes"), cells(),
                         ids=[f"{p}-{f.replace(' ', '_')}-{n}node" for p, f, n in cells()])
def test_cell(fake_linode, tmp_path, phase: str, fault: str, nodes: int) -> None:
    fake = fake_linode
    run = make_run(fake, tmp_path, phase, fault, nodes)
    status, code = expected(fault)
    raised: BaseException | None = None
    try:
        run.run()
    except BaseException as exc:  # noqa: BLE001 - the cell's outcome
        raised = exc
    assert run.injector.fired, "the fault never fired: the cell tests nothing"
    got = 0 if raised is None else exit_code_for(raised)
    assert (run.record.status, got) == (status, code), repr(raised)
    assert fake.ledger.running() == [] and fake.instances() == []
    assert len(fake.ledger.entries()) == nodes  # exactly one instance per node, never two
    record = json.loads(run.record_path.read_text())
    assert record["deleted"] is True and record["status"] == status
    assert fake.firewalls() == [] and record["firewall_deleted"] is True
    assert record["billed_hours"] == nodes and len(record["instances"]) == nodes


@pytest.mark.parametrize("nodes", [1, 2])
def test_api_down_at_the_end_is_unconfirmed_until_down_finishes(fake_linode, tmp_path,
                                                                nodes: int) -> None:
    """The API goes down mid-render and stays down through cleanup: nothing can be confirmed,
    so the record says so, the firewall stays (it still guards), and the exit is 4. Once the
    API is back, `launcher down RUN` deletes everything and the record is corrected."""
    fake = fake_linode
    run = make_run(fake, tmp_path, "render", "none", nodes)
    original = run.injector.fire

    def api_down() -> None:
        fake.faults.server_error("*", ".*", status=503, count=100_000)

    run.injector.fire = api_down  # type: ignore[method-assign]
    run.injector.fault = "api down"
    with pytest.raises(DeleteUnconfirmed) as info:
        run.run()
    del original
    assert exit_code_for(info.value) == 4
    assert f"launcher down {run.run_id} --yes" in str(info.value)
    record = json.loads(run.record_path.read_text())
    assert record["deleted"] == "unconfirmed" and record["status"] == "failed"
    assert len(fake.instances()) == nodes and len(fake.firewalls()) == 1
    fake.faults.rules.clear()
    said: list[str] = []
    take_down(run.cloud, run.run_id, tmp_path / "state", say=said.append)
    assert fake.ledger.running() == [] and fake.instances() == [] and fake.firewalls() == []
    assert json.loads(run.record_path.read_text())["deleted"] is True
    assert json.loads(run.state_record_path.read_text())["deleted"] is True  # history's copy
    assert sum("deleted instance" in s for s in said) == nodes
