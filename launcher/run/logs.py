"""`launcher logs RUN [--follow]`: print a run's kept render output; follow a detached run's
log on its server (read only: the lease stays `launcher attach`'s business), or a run still
going in another terminal through its local log."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from launcher.errors import LauncherError
from launcher.run.detach import locate
from launcher.run.record import RunRecord
from launcher.run.remote import DetachedFiles, watch_command
from launcher.run.runlog import RunLog
from provision import ssh
from provision.keys import RunKeys

FINISHED = ("completed", "failed", "interrupted")


def print_log(run: str, state_root: Path, say: Callable[[str], None]) -> None:
    _, state_dir = locate(run, state_root)
    log = RunLog(state_dir)
    if not log.path.is_file():
        raise LauncherError(f"no render output kept for run {run} yet ({log.path})")
    with open(log.path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            say(line.rstrip("\n"))


def follow_detached(run: str, state_root: Path, say: Callable[[str], None]) -> bool:
    """Stream a detached run's log from its server to its end; False if the run is not
    detached. The lines are kept here too."""
    record_path, state_dir = locate(run, state_root)
    record = RunRecord.load(record_path)
    if record.status != "detached" or not record.detached or not record.address:
        return False
    keys = RunKeys.existing(state_dir)
    log = RunLog(state_dir)
    files = DetachedFiles(**record.detached["files"])
    argv = [*ssh.ssh_command(keys, record.user or "juliafarm", record.address),
            watch_command(files)]
    kept = set(log.tail(10_000))
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          stdin=subprocess.DEVNULL) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            if line not in kept:
                log.write(line)
            say(line)
        code = proc.wait()
    if code != 0:
        raise LauncherError(f"the render on the server ended with exit {code} (or its server "
                            "could not be reached); `launcher attach` still pulls what is done")
    return True


def follow_local(run: str, state_root: Path, say: Callable[[str], None],
                 poll_s: float = 0.5) -> None:
    """Print the local log and what is appended to it until the run's record says it ended."""
    record_path, state_dir = locate(run, state_root)
    log = RunLog(state_dir)
    offset = 0
    while True:
        finished = RunRecord.load(record_path).status in FINISHED
        try:
            with open(log.path, encoding="utf-8", errors="replace") as fh:
                fh.seek(offset)
                chunk = fh.read()
                offset = fh.tell()
        except FileNotFoundError:
            chunk = ""
        for line in chunk.splitlines():
            say(line)
        if finished:
            return
        time.sleep(poll_s)
