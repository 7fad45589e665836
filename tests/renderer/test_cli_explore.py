"""`renderer sheet`, `activity` and `window` as a user runs them: real processes, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from renderer.activity import measure_activity
from renderer.scene import load_scene
from tests.renderer.test_cli import _scene_file, run


def test_sheet_writes_the_grid(tmp_path: Path) -> None:
    scene = _scene_file(tmp_path, frames=12)
    proc = run("sheet", str(scene), "--cols", "4", "--rows", "2", "--thumb-width", "24",
               "--max-iterations", "40", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    with Image.open(tmp_path / "clip-sheet.png") as img:  # named after the scene's video
        w, h = img.size
    assert w == 4 * (24 + 4) and "8 of 12 frames as 4x2 thumbnails of 24x18" in proc.stdout
    assert h > 2 * 18


def test_activity_json_is_the_measurement(tmp_path: Path) -> None:
    scene = _scene_file(tmp_path, frames=9)
    proc = run("activity", str(scene), "--json", "--samples", "5", "--sample-width", "16",
               "--num-steps", "32", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)  # stdout is the JSON alone
    from renderer.scene import Overrides

    want = measure_activity(load_scene(scene, Overrides(num_steps=32)), 5, 16)
    assert rows == [json.loads(json.dumps(f.as_json())) for f in want.frames]
    assert sorted(rows[0]) == ["c", "change", "edge_density", "frame", "interior_fraction",
                               "mean_count", "std_count", "time_s"]
    assert not list(tmp_path.glob("*.png"))  # --json alone plots nothing


def test_activity_plot(tmp_path: Path) -> None:
    scene = _scene_file(tmp_path, frames=9)
    proc = run("activity", str(scene), "-o", "plots/a.png", "--sample-width", "16",
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    with Image.open(tmp_path / "plots" / "a.png") as img:
        assert img.format == "PNG" and img.size[0] > 300


def test_window_as_module_and_script(tmp_path: Path) -> None:
    """Registered also when the CLI runs as `python -m renderer.cli` (how servers start it)."""
    scene = _scene_file(tmp_path, frames=20)
    proc = subprocess.run([sys.executable, "-m", "renderer.cli", "window", str(scene),
                           "--from", "0.5s", "--to", "80%", "-o", "w.toml"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    w, s = load_scene(tmp_path / "w.toml"), load_scene(scene)
    assert w.c_at_frame(0) == s.c_at_frame(5)
    assert "frames 5 .. 15.2" in proc.stdout


def _bad(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "afile").write_text("not a directory")
    scene = _scene_file(tmp_path, frames=30)  # 3 s at 10 fps
    before = sorted(p.name for p in tmp_path.iterdir())
    proc = run(*[str(scene) if a == "SCENE" else a for a in args], cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written
    return proc


@pytest.mark.parametrize("args, field", [
    (["sheet", "SCENE", "--cols", "0"], "--cols"),
    (["sheet", "SCENE", "--thumb-width", "0", "-o", "new/s.png"], "--thumb-width"),
    (["sheet", "SCENE", "--cols", "3", "--thumb-width", "9000", "-o", "new/s.png"], "pixels"),
    (["sheet", "SCENE", "-o", "s.jpg"], ".png"),
    (["sheet", "SCENE", "-o", "afile/s.png"], "-o/--output"),
    (["sheet", "SCENE", "--num-steps", "41"], "odd"),
    (["sheet", "nosuch.toml"], "not found"),
    (["activity", "SCENE", "--samples", "0"], "--samples"),
    (["activity", "SCENE", "--sample-width", "0", "-o", "new/a.png"], "--sample-width"),
    (["activity", "SCENE", "--workers", "0"], "--workers"),
    (["window", "SCENE", "--from", "1s", "-o", "w.toml"], "--from and --to"),
    (["window", "SCENE", "--from", "1s", "--to", "2s"], "-o/--output"),
    (["window", "SCENE", "--from", "1s", "--to", "0.5s", "-o", "w.toml"], "not after"),
    (["window", "SCENE", "--from", "1s", "--to", "9s", "-o", "w.toml"], "outside"),
    (["window", "SCENE", "--from", "later", "--to", "2s", "-o", "w.toml"], "--from"),
    (["window", "SCENE", "--from", "1s", "--to", "2s", "-o", "w.mp4"], "TOML"),
    (["window", "SCENE", "--from", "1s", "--to", "2s", "-o", "SCENE"], "source scene"),
    (["window", "SCENE", "--from", "1s", "--to", "2s", "-o", "w.toml", "--duration", "0"],
     "--duration"),
    (["window", "SCENE", "--from", "0", "--to", "2s", "-o", "w.toml", "--duration", "2",
      "--num-frames", "5"], "choose one"),
    (["window", "SCENE", "--from", "0", "--to", "2s", "-o", "afile/w.toml"], "-o/--output"),
])
def test_bad_input_is_one_line_exit_2_nothing_written(tmp_path: Path, args: list[str],
                                                      field: str) -> None:
    proc = _bad(tmp_path, *args)
    assert field in proc.stderr and "Traceback" not in proc.stderr
