"""The `renderer` command as a user runs it: a real process, exit codes, one-line errors."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from renderer.encode import count_frames
from renderer.render import render_frame_rgb
from renderer.scene import load_scene
from tests.renderer.conftest import SMALL


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from renderer.cli import main; main()", *args],
                          cwd=cwd, capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)


def _scene_file(tmp_path: Path, **kw) -> Path:
    values = dict(w=40, h=30, frames=6, mode="escape", ss=1, cmap="magma", out="clip.mp4") | kw
    path = tmp_path / "scene.toml"
    path.write_text(SMALL.format(**values))
    return path


def test_default_renders_the_embedded_quick_scene(tmp_path: Path) -> None:
    proc = run("render", "--num-frames", "6", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert count_frames(tmp_path / "quick.mp4") == 6
    assert "frame 6/6" in proc.stderr and "cores:" in proc.stderr
    assert "G iterations/s" in proc.stdout


def test_overrides_and_output(tmp_path: Path) -> None:
    scene = _scene_file(tmp_path)
    proc = run("render", str(scene), "--num-steps", "24", "--num-frames", "4", "--framerate", "8",
               "--max-iterations", "30", "--c-imag-initial", "-0.3", "--c-imag-increment",
               "0.2", "-o", "x/y.mp4", "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert count_frames(tmp_path / "x" / "y.mp4") == 4
    assert proc.stderr == ""


def test_image_writes_the_frame(tmp_path: Path) -> None:
    scene = _scene_file(tmp_path)
    proc = run("image", str(scene), "--frame", "4", "-o", "f.png", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    want = render_frame_rgb(load_scene(scene), 4)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "f.png")), want)


def test_info_does_not_render(tmp_path: Path) -> None:
    proc = run("info", str(_scene_file(tmp_path)), "--duration", "3", cwd=tmp_path)
    assert proc.returncode == 0
    assert "30 at 10 fps = 3.00 s" in proc.stdout
    assert not (tmp_path / "clip.mp4").exists()


@pytest.mark.parametrize("args, field", [
    (["--num-steps", "0"], "frame.width"),
    (["--num-frames", "0"], "timing.frames"),
    (["--colormap", "magmaa"], "colormap"),
    (["--num-steps", "41"], "odd"),
    (["-o", "afile/out.mp4"], "output.path"),
    (["--workers", "0"], "--workers"),
])
def test_bad_input_is_one_line_exit_2_nothing_written(tmp_path: Path, args: list[str],
                                                      field: str) -> None:
    (tmp_path / "afile").write_text("not a directory")
    scene = _scene_file(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    proc = run("render", str(scene), *args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and field in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_unknown_key_suggests(tmp_path: Path) -> None:
    scene = tmp_path / "s.toml"
    scene.write_text(SMALL.format(w=40, h=30, frames=6, mode="escape", ss=1, cmap="magma",
                                  out="o.mp4").replace("max_iterations", "max_iteration"))
    proc = run("render", str(scene), cwd=tmp_path)
    assert proc.returncode == 2 and "max_iterations" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_preview_with_an_explicit_output_writes_exactly_there(tmp_path: Path) -> None:
    scene = _scene_file(tmp_path, frames=8)
    proc = run("render", str(scene), "--preview", "-o", "p.mp4", "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert count_frames(tmp_path / "p.mp4") == 2 and not (tmp_path / "p-preview.mp4").exists()
    proc = run("render", str(scene), "--preview", "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "clip-preview.mp4").exists()  # the default name says it is a preview


def test_version(tmp_path: Path) -> None:
    from importlib.metadata import version

    proc = run("--version", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip() == f"renderer {version('juliafarm')}"
    launcher = subprocess.run([sys.executable, "-c", "from launcher.cli import main; main()",
                               "--version"], capture_output=True, text=True, timeout=120)
    assert launcher.returncode == 0
    assert launcher.stdout.strip() == f"launcher {version('juliafarm')}"


@pytest.mark.parametrize(("prog", "command"), [
    ("renderer", "render"), ("renderer", "window"), ("launcher", "run"), ("launcher", "attach"),
    ("launcher", "estimate"), ("launcher", "cleanup"),
])
def test_help_has_placeholders_not_python_types(tmp_path: Path, prog: str,
                                                command: str) -> None:
    proc = subprocess.run([sys.executable, "-c", f"from {prog}.cli import main; main()",
                           command, "--help"], capture_output=True, text=True, timeout=120,
                          env={"COLUMNS": "100", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    for noise in ("<bool>", "<int", "<float>", "<str>", "<path>", "<list", "{RUN}"):
        assert noise not in proc.stdout, (noise, proc.stdout)
