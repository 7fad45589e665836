"""The server-side render: build the remote command, stream its progress lines, parse them."""

from __future__ import annotations

import re
import shlex
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

# Plain progress lines printed by `renderer render` when stderr is not a terminal, e.g.
#   "frame 120/1800  14.2 fps  ETA 1m58s"  and  "cores: 48 (...)".
PROGRESS = re.compile(r"frame\s+(\d+)\s*/\s*(\d+)\s+([\d.]+)\s*fps")
CORES = re.compile(r"\bcores?\b\W{0,3}(\d+)|(\d+)\s+cores?\b", re.IGNORECASE)


@dataclass(frozen=True)
class RemoteLayout:
    """Where things live on the server, all under the non-root user's home."""

    home: PurePosixPath

    @property
    def root(self) -> PurePosixPath:
        return self.home / "juliafarm"

    @property
    def project(self) -> PurePosixPath:
        return self.root / "project"

    @property
    def job(self) -> PurePosixPath:
        return self.root / "job"

    @property
    def output(self) -> PurePosixPath:
        return self.job / "output"

    @property
    def venv_python(self) -> PurePosixPath:
        return self.root / "venv" / "bin" / "python"


@dataclass(frozen=True)
class Progress:
    frames_done: int
    frames_total: int
    fps: float


def render_command(
    layout: RemoteLayout, scene_name: str, output_name: str, render_args: Sequence[str],
    keep_frames: bool, python: str | None = None,
) -> str:
    """The shell command run on the server (quoted; no secret ever goes into it)."""
    py = python or str(layout.venv_python)
    args = [
        py, "-m", "renderer.cli", "render", str(layout.job / scene_name),
        "-o", str(layout.output / output_name), *render_args,
    ]
    if keep_frames:
        args += ["--frames-dir", str(layout.output / "frames")]
    inner = " ".join(shlex.quote(a) for a in args)
    return (
        f"mkdir -p {shlex.quote(str(layout.output))} && cd {shlex.quote(str(layout.project))} "
        f"&& PYTHONUNBUFFERED=1 {inner}"
    )


def parse_progress(line: str) -> Progress | None:
    m = PROGRESS.search(line)
    if not m:
        return None
    return Progress(int(m.group(1)), int(m.group(2)), float(m.group(3)))


def parse_cores(line: str) -> int | None:
    if "cores" not in line.lower():
        return None
    m = CORES.search(line)
    if not m:
        return None
    return int(m.group(1) or m.group(2))


def stream(
    argv: Sequence[str], on_line: Callable[[str], None], *, timeout_s: float | None = None,
    popen: Callable[..., subprocess.Popen[str]] = subprocess.Popen,
) -> int:
    """Run argv (an ssh command), hand every output line to on_line, return the exit code.

    stdout and stderr are merged: the renderer writes progress to stderr. If an exception
    (Interrupted, say) arrives while waiting, the child is killed before it propagates.
    """
    proc = popen(
        list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        text=True, bufsize=1, start_new_session=True,
    )
    timer = None
    if timeout_s is not None:
        timer = threading.Timer(timeout_s, proc.kill)
        timer.daemon = True
        timer.start()
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            on_line(raw.rstrip("\r\n"))
        return proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        if timer is not None:
            timer.cancel()


@dataclass(frozen=True)
class DetachedFiles:
    """Where a detached render leaves its output, pid and exit status on the server."""

    log: str
    pid: str
    exit: str

    @classmethod
    def under(cls, layout: RemoteLayout) -> DetachedFiles:
        return cls(str(layout.job / "render.log"), str(layout.job / "render.pid"),
                   str(layout.job / "render.exit"))


def detached_command(command: str, files: DetachedFiles) -> str:
    """Start `command` in its own session, immune to the SSH session ending (nohup + setsid):
    output to the log, its status to the exit file once it ends; prints nothing, returns at once.
    """
    inner = f"( {command} ); echo $? > {shlex.quote(files.exit)}"
    return (f"rm -f {shlex.quote(files.exit)}; nohup setsid sh -c {shlex.quote(inner)} "
            f"> {shlex.quote(files.log)} 2>&1 < /dev/null & echo $! > {shlex.quote(files.pid)}")


def watch_command(files: DetachedFiles) -> str:
    """Follow a detached render's log from the start until it ends; exit with its status
    (99 if it died without writing one). The end is the exit file, or the process gone or a
    zombie (an init that does not reap must not keep us waiting)."""
    log, pid, status = (shlex.quote(x) for x in (files.log, files.pid, files.exit))
    return (f"p=\"$(cat {pid})\"; tail -n +1 -f {log} & t=$!; "
            f"while [ ! -s {status} ] && [ -r /proc/$p/stat ] && "
            "[ \"$(cut -d' ' -f3 /proc/$p/stat)\" != Z ]; do sleep 1; done; "
            f"sleep 1; kill $t 2>/dev/null; wait $t 2>/dev/null; "
            f"if [ -s {status} ]; then exit \"$(cat {status})\"; fi; "
            "echo 'the render ended without an exit status' >&2; exit 99")
