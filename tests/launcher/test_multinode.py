"""launcher.cluster.job without real hosts: the parallel creates and the delete of every node,
against the local Linode API emulator (no machines behind its instances, so SSH never comes up:
a failure after the creates), and what the nodes' venv gets. tests/e2e/test_run_nodes.py renders
for real."""

from __future__ import annotations

import json
from dataclasses import replace
from importlib import metadata
from pathlib import Path

import pytest

from launcher.cluster.job import ClusterJob, ClusterSpec, cluster_spec, node_requirements
from launcher.config import merge
from launcher.errors import DeleteUnconfirmed
from launcher.preflight import build_spec, preflight
from launcher.run.hooks import Hooks
from provision.cloud import LinodeCloud
from provision.errors import CloudError, SshError
from provision.retry import RetryPolicy
from provision.wheelhouse import project_requirements
from renderer.scene import Overrides, load_scene
from tests.e2e.test_launcher_run import SCENE

FAST = RetryPolicy(attempts=3, base_delay_s=0.01, max_delay_s=0.05, total_sleep_s=1.0)


def make_job(fake, tmp: Path, nodes: int, hooks: Hooks | None = None) -> ClusterJob:
    scene_path = tmp / "tiny.toml"
    scene_path.write_text(SCENE.format(frames=12))
    scene = load_scene(scene_path)
    cfg = merge(scene.cloud, plan="dedicated-2", region="us-east", output_dir=str(tmp / "out"))
    cloud = LinodeCloud(fake.master_token, fake.url, policy=FAST, poll_interval_s=0.05,
                        delete_timeout_s=10)
    checked = preflight(scene, cfg, cloud)
    job = replace(build_spec(scene, scene_path, cfg, checked, ()), ssh_timeout_s=1,
                  ready_timeout_s=10)
    return ClusterJob(cluster_spec(job, scene, Overrides(), nodes), cloud, hooks,
                      state_dir=tmp / "state")


def record_of(job: ClusterJob) -> dict:
    return json.loads(job.record_path.read_text())


def test_every_node_is_created_tagged_with_a_private_address_and_deleted(fake_linode,
                                                                         tmp_path) -> None:
    fake = fake_linode
    job = make_job(fake, tmp_path, nodes=3)
    with pytest.raises(SshError):  # no machines behind the emulator's instances
        job.run()
    entries = fake.ledger.entries()
    assert len(entries) == 3 and all(e.deleted is not None for e in entries)
    assert fake.instances() == [] and fake.ledger.running() == []
    record = record_of(job)
    assert record["status"] == "failed" and record["deleted"] is True and record["nodes"] == 3
    assert sorted(i["node"] for i in record["instances"]) == ["node-1", "node-2", "node-3"]
    assert {i["id"] for i in record["instances"]} == {e.instance_id for e in entries}
    assert all(i["deleted"] and i["billed_hours"] == 1 for i in record["instances"])
    assert record["billed_hours"] == 3  # node-hours
    labels = sorted(i["label"] for i in record["instances"])
    assert labels == [f"{job.label}-{n}" for n in (1, 2, 3)]
    assert all(n.instance is not None and n.instance.private_ipv4 for n in job.nodes)
    assert all(job.run_tag in n.instance.tags for n in job.nodes)  # type: ignore[union-attr]


def test_a_refused_create_deletes_the_nodes_already_made(fake_linode, tmp_path) -> None:
    fake = fake_linode
    fake.faults.server_error("POST", "linode/instances", status=400)
    job = make_job(fake, tmp_path, nodes=3)
    with pytest.raises(CloudError):
        job.run()
    assert len(fake.ledger.entries()) == 2  # one of three creates was refused
    assert fake.instances() == [] and fake.ledger.running() == []
    assert record_of(job)["deleted"] is True


def test_lost_create_responses_never_leave_a_node(fake_linode, tmp_path) -> None:
    fake = fake_linode
    # Instances made whose answers were lost, and lookups failing too: whether a create adopts
    # its instance or gives up, the run tag finds every node for the delete.
    fake.faults.server_error("POST", "linode/instances", status=502, count=3, after_effect=True)
    fake.faults.server_error("GET", "linode/instances", status=502, count=3)
    job = make_job(fake, tmp_path, nodes=2)
    with pytest.raises((CloudError, SshError)):
        job.run()
    assert fake.instances() == [] and fake.ledger.running() == []
    assert all(e.deleted is not None for e in fake.ledger.entries())


def test_a_failed_delete_still_deletes_the_others_and_is_loud(fake_linode, tmp_path) -> None:
    fake = fake_linode
    job = make_job(fake, tmp_path, nodes=2)
    fake.faults.server_error("DELETE", r"linode/instances/\d+", status=500, count=50)
    with pytest.raises(DeleteUnconfirmed, match="may still exist") as info:
        job.run()
    assert info.value.exit_code == 4 and f"launcher down {job.run_id} --yes" in str(info.value)
    record = record_of(job)
    assert record["deleted"] == "unconfirmed"
    assert all(not i["deleted"] for i in record["instances"])
    fake.faults.rules.clear()
    for e in fake.ledger.entries():
        job.cloud.delete(e.instance_id)


def test_the_nodes_get_the_cluster_extra_and_the_launchers_dask() -> None:
    base = project_requirements()
    assert not any(r.startswith("dask") for r in base)
    assert any(r.startswith("dask[distributed]") for r in project_requirements(
        extras=("cluster",)))
    reqs = node_requirements()
    assert f"distributed=={metadata.version('distributed')}" in reqs
    assert f"dask=={metadata.version('dask')}" in reqs
    assert set(base) <= set(reqs)
    assert not any(r.split("=")[0].split(">")[0] in ("linode_api4", "fabric") for r in reqs)


def test_one_node_is_not_a_cluster(tmp_path) -> None:
    with pytest.raises(ValueError):
        ClusterSpec(job=None, nodes=1, scene_toml="", overrides=Overrides(),  # type: ignore
                    segment_frames=1)


def test_the_cluster_cost_cap_uses_the_region_price(tmp_path) -> None:
    """dedicated-48 in br-gru is $1.814/h: the cluster's --max-cost guard prices each node at it
    (it used the base $1.296/h, the twin of the one-node defect)."""
    from launcher.run.spec import JobSpec
    from provision.plans import offline_plans, resolve_plan

    job = JobSpec(scene_path=tmp_path / "s.toml", scene_output_name="o.mp4", frames=10,
                  render_args=(), plan=resolve_plan("dedicated-48", offline_plans()),
                  regions=("br-gru",), image="linode/debian12", output_dir=tmp_path / "out",
                  project_dir=tmp_path, exclude_file=tmp_path / "x", max_cost_usd=6.0)
    cj = ClusterJob(ClusterSpec(job=job, nodes=2, scene_toml="", overrides=Overrides(),
                                segment_frames=1), None, state_dir=tmp_path / "st")  # type: ignore
    guard = cj._cost_guard()
    assert guard is not None and guard.plan.price_hourly_usd == 1.814
    assert guard.allowed_hours == 1  # $3 per node buys one hour at $1.814, two at $1.296
