"""The run lifecycle's control flow against an in-memory double of the `Cloud` protocol, so every
failure point can be hit exactly: whatever fails, the instance is deleted, and "deleted" is only
recorded when the API confirmed it. tests/launcher/test_fault_matrix.py runs the same lifecycle
against the local Linode API; tests/e2e against real hosts.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from launcher.console import ConsoleHooks
from launcher.errors import DeleteUnconfirmed, Interrupted, LauncherError
from launcher.run.hooks import Hooks
from launcher.run.single import Job
from launcher.run.spec import JobSpec, random_root_password
from provision.cloud import InstanceInfo, InstanceRequest
from provision.errors import CapacityError, CloudError, DeleteError
from provision.plans import offline_plans, resolve_plan


class MemoryCloud:
    """The Cloud protocol in memory. `visible_after_s`: a new instance shows in lists and label
    lookups only that long after its create (an API recording it late)."""

    def __init__(self, *, fail_create: BaseException | None = None,
                 fail_delete: bool = False, ghost_on_create_error: bool = False,
                 fail_lists: bool = False, visible_after_s: float = 0.0,
                 create_delay_s: float = 0.0) -> None:
        self.instances: dict[int, InstanceInfo] = {}
        self.born: dict[int, float] = {}
        self.deleted: list[int] = []
        self.requests: list[InstanceRequest] = []
        self.fail_create = fail_create
        self.fail_delete = fail_delete
        self.ghost = ghost_on_create_error
        self.fail_lists = fail_lists
        self.visible_after_s = visible_after_s
        self.create_delay_s = create_delay_s
        self.lookups = 0

    def _make(self, req: InstanceRequest) -> InstanceInfo:
        iid = 999 + len(self.requests)  # the first is 1000
        info = InstanceInfo(iid, req.label, "provisioning", "203.0.113.50", "192.168.130.5",
                            req.type_id, req.region, req.image, datetime.now(UTC), req.tags)
        self.instances[iid] = info
        self.born[iid] = time.monotonic()
        return info

    def create_with_failover(self, req, regions):
        self.requests.append(req)
        if self.create_delay_s:
            time.sleep(self.create_delay_s)
        if self.fail_create is not None:
            if self.ghost:  # the API made it, but the response never arrived
                self._make(req)
            raise self.fail_create
        return self._make(req)

    def create(self, req):
        return self.create_with_failover(req, [req.region])

    def get(self, iid):
        return self.instances.get(iid)

    def wait_running(self, iid, timeout_s, on_tick=None):
        return replace(self.instances[iid], status="running")

    def delete(self, iid):
        if self.fail_delete:
            raise DeleteError(iid, f"instance {iid} could not be deleted")
        self.instances.pop(iid, None)
        self.deleted.append(iid)

    def _visible(self):
        now = time.monotonic()
        return [i for i in self.instances.values()
                if now - self.born[i.id] >= self.visible_after_s]

    def list_by_tag(self, tag):
        self.lookups += 1
        if self.fail_lists:
            raise CloudError("list instances: HTTP 503")
        return [i for i in self._visible() if tag in i.tags]

    def find_by_label(self, label):
        self.lookups += 1
        if self.fail_lists:
            raise CloudError("look up: HTTP 503")
        return next((i for i in self._visible() if i.label == label), None)

    def check_access(self):
        return None

    def region_offers(self, region, type_id):
        return True

    def types(self):
        return []


class Raising(Hooks):
    """Every output call fails, like a console whose terminal is gone."""

    def __init__(self, exc: type[BaseException] = BrokenPipeError) -> None:
        self.exc = exc

    def _boom(self, *args):
        raise self.exc(32, "Broken pipe")

    phase_started = phase_finished = message = progress = render_line = _boom
    before_delete = created = _boom


@pytest.fixture
def spec(tmp_path: Path) -> JobSpec:
    plan = resolve_plan("dedicated-4", offline_plans())
    scene = tmp_path / "scene.toml"
    scene.write_text("")
    return JobSpec(scene_path=scene, scene_output_name="out.mp4", frames=10, render_args=(),
                   plan=plan, regions=("us-east", "us-central"), image="linode/debian12",
                   output_dir=tmp_path / "output", project_dir=tmp_path,
                   exclude_file=tmp_path / "exclude.txt")


def capped_in_br_gru(tmp_path: Path, **changes) -> JobSpec:
    """dedicated-48 in br-gru ($1.814/h, not $1.296/h) under --max-cost 3: one billed hour."""
    scene = tmp_path / "scene.toml"
    scene.write_text("")
    return JobSpec(scene_path=scene, scene_output_name="out.mp4", frames=10, render_args=(),
                   plan=resolve_plan("dedicated-48", offline_plans()), regions=("br-gru",),
                   image="linode/debian12", output_dir=tmp_path / "output",
                   project_dir=tmp_path, exclude_file=tmp_path / "exclude.txt",
                   max_cost_usd=3.0, **changes)


def _job(spec: JobSpec, cloud: MemoryCloud, tmp_path: Path, hooks: Hooks | None = None,
         **kw) -> Job:
    return Job(spec, cloud, hooks, state_dir=tmp_path / "state", **kw)


def _after_create(monkeypatch, fn) -> None:
    """Replace everything between the create and the delete."""
    monkeypatch.setattr(Job, "set_up", lambda self: fn(self))
    monkeypatch.setattr(Job, "render_and_pull", lambda self: None)


@pytest.mark.parametrize("failure", [
    LauncherError("ssh never came up"), KeyboardInterrupt(), RuntimeError("bug"),
])
def test_any_failure_after_create_deletes(spec, tmp_path, monkeypatch, failure) -> None:
    cloud = MemoryCloud()
    _after_create(monkeypatch, lambda self: (_ for _ in ()).throw(failure))
    job = _job(spec, cloud, tmp_path)
    with pytest.raises(type(failure)):
        job.run()
    assert cloud.instances == {} and len(cloud.deleted) == 1
    data = job.record
    assert data.deleted is True and data.status in ("failed", "interrupted")
    assert data.billed_hours == 1 and data.cost_usd == pytest.approx(spec.plan.price_hourly_usd)
    saved = json.loads(job.record_path.read_text())
    assert saved["deleted"] is True and saved["status"] == data.status


def test_sigterm_during_a_phase_still_deletes(spec, tmp_path, monkeypatch) -> None:
    cloud = MemoryCloud()

    def boom(self):
        os.kill(os.getpid(), signal.SIGTERM)
        raise AssertionError("the signal should have interrupted the phase")

    _after_create(monkeypatch, boom)
    job = _job(spec, cloud, tmp_path)
    with pytest.raises(Interrupted):
        job.run()
    assert cloud.deleted and job.record.status == "interrupted"


def test_an_interrupt_is_not_swallowed_by_except_exception(spec, tmp_path, monkeypatch) -> None:
    """A probe that survives its own failures (`except Exception`) must not survive SIGTERM:
    the run stops, is recorded interrupted, and deletes (old: Interrupted was an Exception)."""
    cloud = MemoryCloud()
    probes = []

    def tolerant_probe_loop(self):
        for _ in range(50):
            try:
                probes.append(1)
                if len(probes) == 3:
                    os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.01)
            except Exception:  # noqa: BLE001 - what failover's probes do
                continue

    _after_create(monkeypatch, tolerant_probe_loop)
    job = _job(spec, cloud, tmp_path)
    with pytest.raises(Interrupted):
        job.run()
    assert len(probes) < 10
    assert job.record.status == "interrupted" and cloud.deleted and job.record.deleted is True
    assert not isinstance(Interrupted(15, "SIGTERM"), Exception)


def test_success_deletes_and_records(spec, tmp_path, monkeypatch) -> None:
    cloud = MemoryCloud()
    _after_create(monkeypatch, lambda self: None)
    record = _job(spec, cloud, tmp_path).run()
    assert record.status == "completed" and record.deleted is True and cloud.instances == {}
    req = cloud.requests[0]
    assert req.label == f"juliafarm-{record.run_id}"
    assert set(req.tags) == {"juliafarm", f"juliafarm-run-{record.run_id}"}
    saved = (spec.output_dir / "runs" / f"{record.run_id}.json").read_text()
    assert req.root_pass not in saved and "root_pass" not in saved
    assert record.instances[0]["deleted"] is True and record.instances[0]["node"] == "node-1"


def test_create_error_with_a_ghost_instance_deletes_it(spec, tmp_path) -> None:
    cloud = MemoryCloud(fail_create=CapacityError("no capacity anywhere"),
                        ghost_on_create_error=True)
    job = _job(spec, cloud, tmp_path)
    with pytest.raises(CapacityError):
        job.run()
    assert cloud.instances == {} and len(cloud.deleted) == 1


def test_a_console_that_cannot_write_never_skips_the_delete(spec, tmp_path, monkeypatch) -> None:
    """Every hook raises (EPIPE: `| tee` killed by the same Ctrl-C; EIO: terminal closed): the
    run still deletes, records it, and raises the body's own error (old: the delete phase's
    `phase_started` raised before `cloud.delete`)."""
    cloud = MemoryCloud()
    _after_create(monkeypatch, lambda self: (_ for _ in ()).throw(LauncherError("boom")))
    job = _job(spec, cloud, tmp_path, hooks=Raising())
    with pytest.raises(LauncherError, match="boom"):
        job.run()
    assert cloud.instances == {} and job.record.deleted is True


def test_a_real_broken_pipe_on_the_console(spec, tmp_path, monkeypatch) -> None:
    read_fd, write_fd = os.pipe()
    os.close(read_fd)  # the reader (tee, head) is gone
    out = os.fdopen(write_fd, "w")
    cloud = MemoryCloud()
    _after_create(monkeypatch, lambda self: os.kill(os.getpid(), signal.SIGINT))
    job = _job(spec, cloud, tmp_path, hooks=ConsoleHooks(out=out))
    with pytest.raises(Interrupted):
        job.run()
    assert cloud.instances == {} and job.record.deleted is True
    assert job.hooks.dropped > 0  # type: ignore[attr-defined] - it did try to print
    try:
        out.close()
    except BrokenPipeError:
        pass


def test_a_record_that_cannot_be_written_never_skips_the_delete(spec, tmp_path,
                                                                monkeypatch) -> None:
    cloud = MemoryCloud()

    def disk_full(self):
        from launcher.run import record

        monkeypatch.setattr(record.RunRecord, "save",
                            lambda *a: (_ for _ in ()).throw(OSError(28, "No space left")))
        raise LauncherError("render failed")

    _after_create(monkeypatch, disk_full)
    job = _job(spec, cloud, tmp_path)
    with pytest.raises(LauncherError, match="render failed"):
        job.run()
    assert cloud.instances == {} and job.record.deleted is True


def test_a_second_signal_during_cleanup_says_what_is_left(spec, tmp_path, monkeypatch,
                                                          capfd) -> None:
    cloud = MemoryCloud()
    real_delete = cloud.delete

    def slow_delete(iid):
        os.kill(os.getpid(), signal.SIGINT)  # the impatient second Ctrl-C
        time.sleep(0.05)
        real_delete(iid)

    cloud.delete = slow_delete  # type: ignore[method-assign]
    _after_create(monkeypatch, lambda self: os.kill(os.getpid(), signal.SIGINT))
    job = _job(spec, cloud, tmp_path)
    with pytest.raises(Interrupted):
        job.run()
    assert cloud.instances == {} and job.record.deleted is True
    err = capfd.readouterr().err
    assert "SIGINT received: still deleting 1000, up to" in err


def test_an_unconfirmed_lookup_is_not_recorded_deleted(spec, tmp_path) -> None:
    """The create's answer was lost and the API cannot be asked: the instance may exist.
    Old code recorded deleted: true. Now: unconfirmed, exit 4, the command that finishes."""
    cloud = MemoryCloud(fail_create=CloudError("create: HTTP 502"), ghost_on_create_error=True,
                        fail_lists=True)
    job = _job(spec, cloud, tmp_path, label_grace_s=0.2)
    with pytest.raises(DeleteUnconfirmed) as info:
        job.run()
    assert info.value.exit_code == 4
    assert f"launcher down {job.run_id} --yes" in str(info.value)
    assert job.record.deleted == "unconfirmed"
    assert json.loads(job.record_path.read_text())["deleted"] == "unconfirmed"
    assert len(cloud.instances) == 1  # it really is still there: the record tells the truth


def test_a_failed_delete_is_unconfirmed_and_keeps_the_guards(spec, tmp_path,
                                                             monkeypatch) -> None:
    cloud = MemoryCloud(fail_delete=True)
    finished = []
    _after_create(monkeypatch, lambda self: None)
    monkeypatch.setattr("launcher.run.guards.RunGuards.finish",
                        lambda self, deleted: finished.append(deleted))
    job = _job(spec, cloud, tmp_path)
    with pytest.raises(DeleteUnconfirmed, match="may still exist"):
        job.run()
    assert job.record.deleted == "unconfirmed" and finished == [False]
    assert job.record.instances[0]["deleted"] is False


def test_an_interrupted_create_is_watched_for_and_deleted(spec, tmp_path) -> None:
    """Ctrl-C while the POST is in flight, and the API records the instance only 0.5 s after
    the create: the label is watched until it shows, then deleted (old: one immediate tag
    lookup missed it and the record said deleted)."""
    cloud = MemoryCloud(fail_create=CloudError("create: connection reset"),
                        ghost_on_create_error=True, visible_after_s=0.5, create_delay_s=0.3)
    threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGINT)).start()
    job = _job(spec, cloud, tmp_path, label_grace_s=5)
    with pytest.raises(Interrupted):
        job.run()
    assert cloud.instances == {} and cloud.deleted == [1000]
    assert job.record.deleted is True and job.record.status == "interrupted"
    assert job.record.instances[0]["id"] == 1000  # billed too


def test_a_clear_refusal_is_not_watched_for(spec, tmp_path) -> None:
    cloud = MemoryCloud(fail_create=CloudError("create: HTTP 400 bad image", ambiguous=False))
    job = _job(spec, cloud, tmp_path, label_grace_s=30)
    t0 = time.monotonic()
    with pytest.raises(CloudError):
        job.run()
    assert time.monotonic() - t0 < 5 and job.record.deleted is True


def test_the_region_price_is_used_for_the_record_and_the_cap(tmp_path, monkeypatch) -> None:
    """dedicated-48 in br-gru is $1.814/h, not the default $1.296/h: the record, the bill and
    the --max-cost arithmetic use the region's price (old: the base plan's after preflight)."""
    spec = capped_in_br_gru(tmp_path)
    caps = []
    _after_create(monkeypatch, lambda self: caps.append(self.lease_cap_s()))
    record = _job(spec, MemoryCloud(), tmp_path).run()
    assert record.price_hourly_usd == pytest.approx(1.814)
    assert record.cost_usd == pytest.approx(1.814)
    assert record.instances[0]["price_hourly_usd"] == pytest.approx(1.814)
    # $3 buys one billed hour at $1.814 (two at $1.296): the lease ends within the first hour.
    assert 3000 < caps[0] < 3600


def test_root_passwords_are_strong_and_random() -> None:
    a, b = random_root_password(), random_root_password()
    assert a != b and 11 <= len(a) <= 128
    assert any(c.isupper() for c in a) and any(c.isdigit() for c in a)


class Said(Hooks):
    def __init__(self) -> None:
        self.lines: list[str] = []

    def message(self, text: str) -> None:
        self.lines.append(text)


def test_a_failed_run_shows_the_last_lines_of_its_render_log(spec, tmp_path, monkeypatch) -> None:
    def render_then_fail(self):
        for k in range(8):
            self.log.write(f"frame {k}/10  1.0 fps")
        self.log.write("Traceback: the renderer fell over")
        raise LauncherError("render failed on the server (exit 1)")

    _after_create(monkeypatch, render_then_fail)
    hooks = Said()
    job = _job(spec, MemoryCloud(), tmp_path, hooks=hooks)
    with pytest.raises(LauncherError):
        job.run()
    text = "\n".join(hooks.lines)
    assert "the render's last lines" in text and str(job.log.path) in text
    assert "Traceback: the renderer fell over" in text and "frame 7/10" in text
    assert "frame 2/10" not in text  # the last five only


def test_progress_says_what_was_spent_and_lines_are_stamped_when_piped(spec, tmp_path,
                                                                      monkeypatch) -> None:
    import io

    out = io.StringIO()  # not a terminal: every line gets its time
    hooks = ConsoleHooks(out=out, progress_every_s=0)

    def render(self):
        self.hooks.progress(5, 10, 2.0)

    _after_create(monkeypatch, render)
    _job(spec, MemoryCloud(), tmp_path, hooks=hooks).run()
    lines = out.getvalue().splitlines()
    line = next(x for x in lines if "render 5/10 frames" in x)
    assert "(billed so far $0.11 at $0.108/h)" in line
    assert all(x[:2].isdigit() and x[2] == ":" and x[5] == ":" for x in lines)


def test_a_detached_run_leaves_a_lease_that_ends_within_the_cost_cap(tmp_path,
                                                                     monkeypatch) -> None:
    """--detach --max-cost 3 on dedicated-48 in br-gru ($1.814/h: one billed hour): the lease's
    last extension before the launcher leaves ends the server within that hour (old: a full
    lease, whatever the cap)."""
    from launcher.run import single
    from launcher.run.guards import RunGuards

    spec = capped_in_br_gru(tmp_path, detach=True)
    asked: list[float | None] = []
    monkeypatch.setattr(single, "start_detached", lambda *a: {"home": "/home/juliafarm",
                                                            "files": {}, "output_name": "o"})
    monkeypatch.setattr(RunGuards, "detach", lambda self, at_most_s=None: asked.append(at_most_s))

    def set_up(self):
        from launcher.run.spec import Host

        node = self.nodes[0]
        node.host = Host(node.instance, "203.0.113.50", None, self.layout)

    monkeypatch.setattr(Job, "set_up", set_up)
    record = _job(spec, MemoryCloud(), tmp_path).run()
    assert record.status == "detached" and record.max_cost_usd == 3.0
    assert asked and 3000 < asked[0] <= 3600 - 180  # the watchdog's delete lands in hour one


def test_attach_keeps_the_cost_cap(tmp_path, monkeypatch) -> None:
    from launcher import attach as attach_mod
    from launcher.run.record import RunRecord

    state = tmp_path / "state" / "r1"
    record = RunRecord("r1", "2026-11-30T00:00:00Z", {"path": "s.toml"}, "dedicated-48",
                       "g6-dedicated-48", 1.814, region="br-gru", instance_id=7,
                       status="detached", max_cost_usd=3.0, output_dir=str(tmp_path / "out"),
                       detached={"home": "/home/juliafarm", "files": {}, "output_name": "o"})
    record.save(state / "record.json")
    seen = {}
    monkeypatch.setattr(attach_mod.RunKeys, "existing", classmethod(lambda cls, d: None))
    monkeypatch.setattr(attach_mod.Job, "resume",
                        lambda self, rec, path, keys: seen.setdefault("spec", self.spec))
    attach_mod.attach("r1", MemoryCloud(), None, state_root=tmp_path / "state")
    assert seen["spec"].max_cost_usd == 3.0
    assert seen["spec"].plan.in_region("br-gru").price_hourly_usd == pytest.approx(1.814)


def test_a_completed_run_records_what_it_teaches_the_estimates(spec, tmp_path,
                                                               monkeypatch) -> None:
    monkeypatch.setattr(Job, "set_up", lambda self: None)
    monkeypatch.setattr(Job, "render_and_pull",
                        lambda self: self.record.phases_s.__setitem__("render", 16.5))
    record = _job(replace(spec, model_render_s=31.5), MemoryCloud(), tmp_path).run()
    assert record.model_render_s == 31.5
    assert record.plan_speed_factor == pytest.approx((31.5 - 1.5) / (16.5 - 1.5))
    saved = json.loads((tmp_path / "state" / "record.json").read_text())
    assert saved["plan_speed_factor"] == pytest.approx(2.0)  # in the state directory's record


def test_on_a_terminal_the_render_gets_a_bar_with_the_money_and_lines_above_it(
        spec, tmp_path, monkeypatch) -> None:
    import io

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Tty()
    hooks = ConsoleHooks(out=out)
    assert hooks.rich and not hooks.timestamps

    def render(self):
        with self.phase("render"):
            for k in (1, 5, 10):
                self.hooks.progress(k, 10, 2.0)
            self.hooks.message("server renders on 2 cores")

    _after_create(monkeypatch, render)
    _job(spec, MemoryCloud(), tmp_path, hooks=hooks).run()
    text = out.getvalue()
    assert "billed so far $0.11 at $0.108/h" in text  # in the bar's status column
    assert "server renders on 2 cores" in text and "render done in" in text
    assert hooks._bar is None  # stopped with its phase
