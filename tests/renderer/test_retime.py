"""`renderer retime`: even visual speed along the c path. The retimed scene is an ordinary scene
whose first and last frames equal the source's pixel for pixel, its busiest transitions carry
less of the change, it is deterministic, and bad input writes nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from renderer.render import render_frame_rgb
from renderer.retime import busiest_share, even_knots, srgb_to_lab
from renderer.scene import Overrides, load_scene

SOURCE = Path(__file__).resolve().parents[2] / "examples" / "dark-to-yellow.toml"
SMALL = ("--num-steps", "48", "--num-frames", "40", "--max-iterations", "200")


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from renderer.cli import main; main()", *args],
                          cwd=cwd, capture_output=True, text=True, timeout=600,
                          stdin=subprocess.DEVNULL)


def test_retimed_scene_keeps_the_ends_and_evens_the_change(tmp_path: Path) -> None:
    proc = run("retime", str(SOURCE), *SMALL, "-o", "even.toml", "--preview-size", "48",
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "busiest 10% of transitions" in proc.stdout
    ov = Overrides(num_steps=48, num_frames=40, max_iterations=200)
    source = load_scene(SOURCE, ov)
    new = load_scene(tmp_path / "even.toml")
    assert new.frames == source.frames and new.width == source.width
    for k_src, k_new in ((0, 0), (source.frames - 1, new.frames - 1)):
        assert np.array_equal(render_frame_rgb(source, k_src), render_frame_rgb(new, k_new))
    text = (tmp_path / "even.toml").read_text()
    assert text.startswith("# Written by `renderer retime`")
    import re

    m = re.search(r"carry (\d+)% of the visual change before and (\d+)% after", proc.stdout)
    assert m, proc.stdout
    before, after = int(m.group(1)), int(m.group(2))
    assert after < before / 2, proc.stdout
    again = run("retime", str(SOURCE), *SMALL, "-o", "again.toml", "--preview-size", "48",
                cwd=tmp_path)
    assert again.returncode == 0
    def strip(s: str) -> str:  # the file names differ, nothing else may
        for name in ("again.toml", "again.mp4", "even.toml", "even.mp4"):
            s = s.replace(name, "X")
        return s

    assert strip((tmp_path / "again.toml").read_text()) == strip(text)  # deterministic


def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path: Path) -> None:
    (tmp_path / "keep.toml").write_text("untouched")
    for args in (("--max-speedup", "0"), ("--max-speedup", "1"), ("--preview-size", "0")):
        proc = run("retime", str(SOURCE), *SMALL, "-o", "keep.toml", *args, cwd=tmp_path)
        assert proc.returncode == 2, (args, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert (tmp_path / "keep.toml").read_text() == "untouched"
    proc = run("retime", str(SOURCE), *SMALL, cwd=tmp_path)
    assert proc.returncode == 2 and "-o/--output" in proc.stderr


def test_knots_follow_the_change_within_the_speed_limit() -> None:
    changes = np.array([0.0] * 50 + [10.0] * 10 + [0.0] * 40)
    knots = even_knots(changes, max_speedup=20, knots=101)
    times = np.array([float(t) for t in knots.times])
    pos = np.array(knots.positions)
    assert pos[0] == 0.0 and pos[-1] == 1.0 and np.all(np.diff(pos) > 0)
    busy = (pos >= 0.5) & (pos <= 0.6)
    assert busy.mean() > 0.5  # the busy tenth of the path gets most of the time
    speed = np.diff(pos) / np.diff(times)
    assert speed.max() <= 20 * (1 + 1e-6)  # never faster than 20x constant speed
    assert busiest_share(np.array([1.0] * 100)) == 0.1


def test_lab_of_black_and_white() -> None:
    lab = srgb_to_lab(np.array([[0, 0, 0], [255, 255, 255]], dtype=np.uint8))
    assert abs(lab[0, 0]) < 1e-3 and abs(lab[1, 0] - 100) < 0.05
    assert np.all(np.abs(lab[:, 1:]) < 0.05)


def test_activity_shows_the_change_evened_out(tmp_path: Path) -> None:
    """`renderer activity` measures the per-frame change: its spread shrinks after retime."""
    from renderer.activity import measure_activity

    proc = run("retime", str(SOURCE), *SMALL, "-o", "even.toml", "--preview-size", "48",
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    source = load_scene(SOURCE, Overrides(num_steps=48, num_frames=40, max_iterations=200))
    before = [f.change for f in measure_activity(source, 40, 48).frames]
    after = [f.change for f in measure_activity(load_scene(tmp_path / "even.toml"), 40,
                                                48).frames]
    cv = [float(np.std(x) / np.mean(x)) for x in (before, after)]
    assert cv[1] < cv[0] / 2, cv  # much more even
