"""Closed c paths play as seamless loops: a circle, or keyframes whose last c is the first with
`loop = true`. No frame is shown twice at the seam, the seam changes the picture like any other
step, retime keeps the loop, and bad input is one line naming the field, exit 2."""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from renderer.encode import count_frames
from renderer.errors import SceneError
from renderer.render import render_frame_rgb
from renderer.retime import frame_changes
from renderer.scene import parse_scene

BASE = """
[frame]
width = 48
height = 48
[view]
center = [0.0, 0.0]
half_height = 1.6
[iteration]
max_iterations = 120
[timing]
fps = 12
frames = {frames}
[colour]
colormap = "magma"
mode = "smooth"
[output]
path = "loop.mp4"
[c]
"""
CIRCLE = BASE + 'shape = "circle"\ncentre = [0.0, 0.0]\nradius = 0.7885\n'
KEYS = BASE + ("loop = true\nkeyframes = [{t = 0.0, c = [-0.8, 0.156]}, "
               "{t = 0.5, c = [-0.7, 0.3]}, {t = 1.0, c = [-0.8, 0.156]}]\n")


@pytest.mark.parametrize("text", [CIRCLE, KEYS], ids=["circle", "keyframes"])
def test_a_loop_shows_no_frame_twice_and_its_seam_is_an_ordinary_step(text: str) -> None:
    scene = parse_scene(text.replace("{frames}", "36"))
    assert scene.path.loop and scene.exact_frame_position(35) == Fraction(35, 36)
    first, last = render_frame_rgb(scene, 0), render_frame_rgb(scene, 35)
    assert not np.array_equal(first, last)  # the old k/(frames-1) showed frame 0 twice
    changes = frame_changes(scene)  # 36 steps: 35 inside, and the seam (35 -> 0)
    assert len(changes) == 36
    seam, neighbours = changes[-1], (changes[-2] + changes[0]) / 2
    assert 0 < seam <= 2 * neighbours and seam <= np.median(changes) * 3


def test_a_circle_closes_exactly() -> None:
    scene = parse_scene(CIRCLE.replace("{frames}", "10"))
    assert scene.path.at(Fraction(1)) == scene.path.at(Fraction(0)) == complex(0.7885, 0)


def test_render_and_retime_of_a_loop(tmp_path: Path) -> None:
    (tmp_path / "loop.toml").write_text(CIRCLE.replace("{frames}", "24"))
    run = [sys.executable, "-c", "from renderer.cli import main; main()"]
    done = subprocess.run([*run, "render", "loop.toml", "-q"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert count_frames(tmp_path / "loop.mp4") == 24
    done = subprocess.run([*run, "retime", "loop.toml", "-o", "even.toml", "--preview-size",
                           "32"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    even = parse_scene((tmp_path / "even.toml").read_text())
    assert even.path.loop and even.path.keyframes[0].c == even.path.keyframes[-1].c
    source = parse_scene(CIRCLE.replace("{frames}", "24"))
    assert np.array_equal(render_frame_rgb(source, 0), render_frame_rgb(even, 0))


@pytest.mark.parametrize(("change", "field"), [
    ("radius = 0.7885", "c.radius"),
    ("loop = true", "c.loop"),
])
def test_bad_loops_name_the_field(change: str, field: str) -> None:
    if field == "c.radius":
        text = CIRCLE.replace(change, "radius = 0.0")
    else:
        text = BASE + ("loop = true\nkeyframes = [{t = 0.0, c = [-0.8, 0.156]}, "
                       "{t = 0.5, c = [-0.7, 0.3]}, {t = 1.0, c = [-0.75, 0.2]}]\n")
    with pytest.raises(SceneError, match=field):
        parse_scene(text.replace("{frames}", "10"))


def test_bad_loop_on_the_command_line_is_exit_2_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text(CIRCLE.replace("radius = 0.7885", "radius = -1")
                                       .replace("{frames}", "10"))
    done = subprocess.run([sys.executable, "-c", "from renderer.cli import main; main()",
                           "render", "bad.toml"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 2 and "c.radius" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "loop.mp4").exists()
