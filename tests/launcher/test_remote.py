"""The server-side render command and the parsing of its streamed progress."""

from __future__ import annotations

import shlex
import sys
from pathlib import PurePosixPath

import pytest

from launcher.run.remote import RemoteLayout, parse_cores, parse_progress, render_command, stream


def test_progress_lines_of_the_renderer_are_parsed() -> None:
    p = parse_progress("frame 120/1800  14.2 fps  ETA 1m58s")
    assert p is not None and (p.frames_done, p.frames_total, p.fps) == (120, 1800, 14.2)
    assert parse_progress("encoding segment 3") is None


def test_cores_line() -> None:
    assert parse_cores("cores: 48 (affinity 48, cgroup quota none)") == 48
    assert parse_cores("rendering on 2 cores") == 2
    assert parse_cores("frame 1/2 3.0 fps") is None


def test_render_command_quotes_everything() -> None:
    layout = RemoteLayout(PurePosixPath("/home/juliafarm"))
    cmd = render_command(layout, "scene.toml", "my clip.mp4", ("--num-frames", "5"),
                         keep_frames=True)
    assert "'/home/juliafarm/juliafarm/job/output/my clip.mp4'" in cmd
    assert "--frames-dir /home/juliafarm/juliafarm/job/output/frames" in cmd
    assert "--num-frames 5" in cmd
    # The whole thing is valid shell: it splits without error.
    shlex.split(cmd)


def test_stream_hands_over_lines_and_exit_code() -> None:
    lines: list[str] = []
    code = stream([sys.executable, "-c", "import sys; print('a'); print('b', file=sys.stderr);"
                   " sys.exit(3)"], lines.append)
    assert code == 3 and sorted(lines) == ["a", "b"]


def test_stream_kills_the_child_when_interrupted() -> None:
    started: list[str] = []

    def on_line(line: str) -> None:
        started.append(line)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        stream([sys.executable, "-c", "import time; print('go', flush=True); time.sleep(30)"],
               on_line)
    assert started == ["go"]


def test_detached_render_survives_its_shell_and_the_watcher_returns_its_status(tmp_path) -> None:
    """The commands `--detach` and `launcher attach` run on the server, run here with sh."""
    import subprocess

    from launcher.run.remote import DetachedFiles, detached_command, watch_command

    files = DetachedFiles(str(tmp_path / "log"), str(tmp_path / "pid"), str(tmp_path / "exit"))
    work = "for i in 1 2 3; do echo line $i; sleep 0.5; done; exit 3"
    started = subprocess.run(["sh", "-c", detached_command(work, files)], timeout=10,
                             capture_output=True, text=True)
    assert started.returncode == 0 and started.stdout == ""  # returned at once, silent
    watched = subprocess.run(["sh", "-c", watch_command(files)], timeout=30,
                             capture_output=True, text=True)
    assert watched.returncode == 3
    assert watched.stdout.splitlines() == ["line 1", "line 2", "line 3"]
    again = subprocess.run(["sh", "-c", watch_command(files)], timeout=30,
                           capture_output=True, text=True)
    assert again.returncode == 3 and "line 3" in again.stdout  # attaching after the end
    (tmp_path / "exit").unlink()
    died = subprocess.run(["sh", "-c", watch_command(files)], timeout=30,
                          capture_output=True, text=True)
    assert died.returncode == 99 and "without an exit status" in died.stderr
