"""`--detach`: start the render in its own session, say loudly when to come back, and remember
where the run's record is so `launcher attach RUN` finds it."""

from __future__ import annotations

import subprocess
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from launcher.errors import LauncherError
from launcher.run.record import STATE_RECORD, RunRecord
from launcher.run.remote import DetachedFiles, detached_command

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
    if not pointer.is_file() and (state_dir / STATE_RECORD).is_file():
        return state_dir / STATE_RECORD, state_dir
    if not pointer.is_file():
        raise LauncherError(f"no run {run!r} here (looked in {state_root}); pass the run id "
                            "from `launcher run --detach`, or the path of its run record")
    return Path(pointer.read_text().strip()), state_dir
