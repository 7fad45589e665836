"""Job control flow: whatever fails after the create, the instance is deleted and recorded.

The cloud here is an in-memory double of the `Cloud` protocol, so every failure point can be hit
exactly; tests/e2e runs the same Job against the local Linode cloud with real hosts.
"""

from __future__ import annotations

import json
import signal
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from launcher.errors import LauncherError
from launcher.job import Job, JobSpec, random_root_password
from provision.cloud import InstanceInfo, InstanceRequest
from provision.errors import CapacityError, DeleteError
from provision.plans import offline_plans, resolve_plan


class MemoryCloud:
    def __init__(self, *, fail_create: Exception | None = None,
                 fail_delete: bool = False, ghost_on_create_error: bool = False) -> None:
        self.instances: dict[int, InstanceInfo] = {}
        self.deleted: list[int] = []
        self.requests: list[InstanceRequest] = []
        self.fail_create = fail_create
        self.fail_delete = fail_delete
        self.ghost = ghost_on_create_error

    def _make(self, req: InstanceRequest) -> InstanceInfo:
        iid = 1000 + len(self.requests)
        info = InstanceInfo(iid, req.label, "provisioning", "203.0.113.50", None, req.type_id,
                            req.region, req.image, datetime.now(UTC), req.tags)
        self.instances[iid] = info
        return info

    def create_with_failover(self, req, regions):
        self.requests.append(req)
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

    def list_by_tag(self, tag):
        return [i for i in self.instances.values() if tag in i.tags]

    def check_access(self):
        return None

    def region_offers(self, region, type_id):
        return True

    def types(self):
        return []


@pytest.fixture
def spec(tmp_path: Path) -> JobSpec:
    plan = resolve_plan("dedicated-4", offline_plans())
    scene = tmp_path / "scene.toml"
    scene.write_text("")
    return JobSpec(scene_path=scene, scene_output_name="out.mp4", frames=10, render_args=(),
                   plan=plan, regions=("us-east", "us-central"), image="linode/debian12",
                   output_dir=tmp_path / "output", project_dir=tmp_path,
                   exclude_file=tmp_path / "exclude.txt")


def _job(spec: JobSpec, cloud: MemoryCloud, tmp_path: Path) -> Job:
    return Job(spec, cloud, state_dir=tmp_path / "state")


@pytest.mark.parametrize("failure", [
    LauncherError("ssh never came up"), KeyboardInterrupt(), RuntimeError("bug"),
])
def test_any_failure_after_create_deletes(spec, tmp_path, monkeypatch, failure) -> None:
    cloud = MemoryCloud()
    monkeypatch.setattr(Job, "_after_create", lambda self, inst: (_ for _ in ()).throw(failure))
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
    import os

    cloud = MemoryCloud()

    def boom(self, inst):
        os.kill(os.getpid(), signal.SIGTERM)
        raise AssertionError("the signal should have interrupted the phase")

    monkeypatch.setattr(Job, "_after_create", boom)
    job = _job(spec, cloud, tmp_path)
    with pytest.raises(BaseException) as info:
        job.run()
    assert not isinstance(info.value, AssertionError)
    assert cloud.deleted and job.record.status == "interrupted"


def test_success_deletes_and_records(spec, tmp_path, monkeypatch) -> None:
    cloud = MemoryCloud()
    monkeypatch.setattr(Job, "_after_create", lambda self, inst: None)
    record = _job(spec, cloud, tmp_path).run()
    assert record.status == "completed" and record.deleted and cloud.instances == {}
    req = cloud.requests[0]
    assert req.label == f"juliafarm-{record.run_id}"
    assert set(req.tags) == {"juliafarm", f"juliafarm-run-{record.run_id}"}
    saved = (spec.output_dir / "runs" / f"{record.run_id}.json").read_text()
    assert req.root_pass not in saved and "root_pass" not in saved


def test_create_error_with_a_ghost_instance_deletes_it(spec, tmp_path) -> None:
    cloud = MemoryCloud(fail_create=CapacityError("no capacity anywhere"),
                        ghost_on_create_error=True)
    job = _job(spec, cloud, tmp_path)
    with pytest.raises(CapacityError):
        job.run()
    assert cloud.instances == {} and len(cloud.deleted) == 1


def test_failed_delete_is_loud(spec, tmp_path, monkeypatch) -> None:
    cloud = MemoryCloud(fail_delete=True)
    monkeypatch.setattr(Job, "_after_create", lambda self, inst: None)
    job = _job(spec, cloud, tmp_path)
    with pytest.raises(DeleteError):
        job.run()
    assert job.record.deleted is False


def test_root_passwords_are_strong_and_random() -> None:
    a, b = random_root_password(), random_root_password()
    assert a != b and 11 <= len(a) <= 128
    assert any(c.isupper() for c in a) and any(c.isdigit() for c in a)
