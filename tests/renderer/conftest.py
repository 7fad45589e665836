"""Small scenes for pipeline tests: real kernel, real ffmpeg, a few frames."""

from __future__ import annotations

from pathlib import Path

import pytest

from renderer.scene import Scene, parse_scene

SMALL = """
[frame]
width = {w}
height = {h}
supersample = {ss}
[view]
center = [0.0, 0.0]
half_height = 1.6
[iteration]
max_iterations = 60
[c]
start = [-0.62772, -0.5]
end = [-0.62772, 0.4]
[timing]
fps = 10
frames = {frames}
[colour]
colormap = "{cmap}"
mode = "{mode}"
[output]
path = "{out}"
"""


def small_scene(tmp: Path, *, w: int = 48, h: int = 32, frames: int = 12, mode: str = "escape",
                ss: int = 1, cmap: str = "magma", name: str = "out.mp4") -> Scene:
    return parse_scene(SMALL.format(w=w, h=h, frames=frames, mode=mode, ss=ss, cmap=cmap,
                                    out=tmp / name))


@pytest.fixture
def scene_factory(tmp_path: Path):
    def make(**kw) -> Scene:
        return small_scene(tmp_path, **kw)
    return make
