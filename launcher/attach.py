"""`launcher attach RUN`: take over a detached run (one node or a cluster), follow its render,
pull, and delete."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from launcher.cluster.job import ClusterJob, ClusterSpec
from launcher.errors import LauncherError
from launcher.run.detach import locate
from launcher.run.guards import GuardSpec
from launcher.run.record import RunRecord
from launcher.run.single import Job
from launcher.run.spec import JobSpec, default_state_dir
from provision.keys import RunKeys
from provision.plans import Plan
from renderer.scene import Overrides


def attach(run: str, cloud: Any, hooks: Any, state_root: Path | None = None,
           server_api_url: str | None = None) -> RunRecord:
    """Reconnect to a detached run with its own key and known_hosts, heartbeat, wait for the
    render, pull, delete (confirmed), revoke the lease token and delete the firewall."""
    record_path, state_dir = locate(run, state_root or default_state_dir())
    record = RunRecord.load(record_path)
    # "attached": an earlier attach was killed before it could finish; take over again.
    if record.status not in ("detached", "attached") or record.detached is None \
            or record.instance_id is None:
        raise LauncherError(f"run {record.run_id} is not a detached run (status "
                            f"{record.status}); nothing to attach to")
    lease = record.lease or {}
    det = record.detached
    plan = Plan(alias=record.plan, type_id=record.type_id, vcpus=record.cores or 0,
                memory_mb=0, price_hourly_usd=record.price_hourly_usd, price_monthly_usd=None,
                source="run record")
    spec = JobSpec(
        scene_path=Path(record.scene.get("path", "scene.toml")),
        scene_output_name=det["output_name"], frames=record.frames or 0, render_args=(),
        plan=plan, regions=(record.region or "",), image=record.image or "",
        output_dir=Path(record.output_dir) if record.output_dir else record_path.parent.parent,
        project_dir=Path("."), exclude_file=Path("."),
        user=record.user or "juliafarm", keep_frames=bool(det.get("keep_frames")),
        max_cost_usd=record.max_cost_usd, model_render_s=record.model_render_s,
        guards=GuardSpec(lease_s=lease.get("lease_s"),
                         server_api_url=server_api_url or lease.get("server_api_url")
                         or GuardSpec().server_api_url,
                         ssh_from=tuple(record.ssh_from) if record.ssh_from else None),
    )
    record.status = "attached"
    keys = RunKeys.existing(state_dir)
    if record.nodes > 1:
        cluster = ClusterSpec(job=spec, nodes=record.nodes, scene_toml="",
                              overrides=Overrides(),
                              segment_frames=int(det["cluster"]["segment_frames"]))
        return ClusterJob(cluster, cloud, hooks, state_dir=state_dir,
                          run_id=record.run_id).resume(record, record_path, keys)
    job = Job(spec, cloud, hooks, state_dir=state_dir, run_id=record.run_id)
    return job.resume(record, record_path, keys)
