"""`--detach` and `launcher attach RUN`: leave a render to its lease, come back for the results."""

from __future__ import annotations

import subprocess
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from launcher.errors import LauncherError
from launcher.record import RunRecord
from launcher.remote import DetachedFiles, detached_command

RECORD_POINTER = "record-path"  # in the run's state dir: where its record is


def start_detached(host: Any, user: str, command: str, output_name: str,
                   keep_frames: bool) -> dict[str, Any]:
    """Start the render in its own session; return what `attach` needs (no secret in it)."""
    from provision import ssh

    files = DetachedFiles.under(host.layout)
    argv = [*ssh.ssh_command(host.keys, user, host.address), detached_command(command, files)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, check=False)
    if done.returncode != 0:
        raise LauncherError(f"could not start the detached render (exit {done.returncode}): "
                            f"{' '.join(done.stderr.split())[:200]}")
    return {"home": str(host.layout.home), "files": asdict(files), "output_name": output_name,
            "keep_frames": keep_frames}


def detach_warning(run_id: str, instance_id: int | None, deadline: datetime | None) -> str:
    """Said loudly when the launcher leaves: the lease deletes the instance, results or not."""
    from provision.lease import fmt_deadline

    if deadline is None:
        return (f"DETACHED: instance {instance_id} renders on and costs money until you run "
                f"`launcher attach {run_id}` (or `launcher cleanup`).")
    return (
        f"DETACHED: instance {instance_id} renders on without this launcher.\n"
        f"    !!! Run `launcher attach {run_id}` before {fmt_deadline(deadline)}. At that time "
        "the server DELETES ITSELF whether or not you came back, and any results still on it "
        "are LOST. !!!")


def remember_record(state_dir: Path, record_path: Path) -> None:
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    (state_dir / RECORD_POINTER).write_text(str(record_path.resolve()) + "\n")


def locate(run: str, state_root: Path) -> tuple[Path, Path]:
    """(record path, state dir) of RUN: a run id, or the path of its record."""
    given = Path(run).expanduser()
    if given.suffix == ".json" and given.is_file():
        record = RunRecord.load(given)
        return given, state_root / record.run_id
    state_dir = state_root / run
    pointer = state_dir / RECORD_POINTER
    if not pointer.is_file():
        raise LauncherError(f"no run {run!r} here (looked in {state_root}); pass the run id "
                            "from `launcher run --detach`, or the path of its run record")
    return Path(pointer.read_text().strip()), state_dir


def attach(run: str, cloud: Any, hooks: Any, state_root: Path | None = None,
           server_api_url: str | None = None) -> RunRecord:
    """Reconnect to a detached run with its own key and known_hosts, heartbeat, wait for the
    render, pull, delete (confirmed), revoke the lease token and delete the firewall."""
    from launcher.guards import GuardSpec
    from launcher.job import Job, JobSpec, default_state_dir
    from provision.keys import RunKeys
    from provision.plans import Plan

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
        output_dir=record_path.parent.parent, project_dir=Path("."), exclude_file=Path("."),
        user=record.user or "juliafarm", keep_frames=bool(det.get("keep_frames")),
        guards=GuardSpec(lease_s=lease.get("lease_s"),
                         server_api_url=server_api_url or lease.get("server_api_url")
                         or GuardSpec().server_api_url,
                         ssh_from=tuple(record.ssh_from) if record.ssh_from else None),
    )
    job = Job(spec, cloud, hooks, state_dir=state_dir, run_id=record.run_id)
    job.record = record
    job.guards.record = record
    job.record_path = record_path
    record.status = "attached"
    return job.resume(RunKeys.existing(state_dir))
