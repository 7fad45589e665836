"""The scene schema: defaults, examples, overrides, paths of c and every kind of bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from renderer.errors import SceneError
from renderer.scene import (
    CPath,
    Keyframe,
    Overrides,
    check_memory,
    load_scene,
    parse_scene,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_quick_example_is_the_classic_default() -> None:
    s = load_scene(EXAMPLES / "quick.toml")
    assert (s.width, s.height, s.max_iterations, s.frames, s.fps) == (200, 200, 20, 20, 5.0)
    assert s.c_at_frame(0) == complex(-0.62772, -0.42193)
    assert s.c_at_frame(19) == pytest.approx(complex(-0.62772, -0.42193 + 1.5), abs=1e-12)
    assert s.view.half_width == s.view.half_height == 1.8
    assert s.view.centred_on_origin


def test_spiral_and_dark_to_yellow() -> None:
    spiral = load_scene(EXAMPLES / "spiral.toml")
    assert (spiral.width, spiral.frames, spiral.max_iterations) == (1080, 1800, 500)
    assert spiral.c_at_frame(0) == complex(-0.62772, -0.42)
    assert spiral.c_at_frame(1799) == complex(-0.62772, -0.378)
    assert spiral.cloud["plan"] == "dedicated-48"
    d2y = load_scene(EXAMPLES / "dark-to-yellow.toml")
    assert d2y.c_at_frame(0).imag == -0.7 and d2y.c_at_frame(d2y.frames - 1).imag == 0.7


def test_every_example_loads() -> None:
    names = sorted(p.name for p in EXAMPLES.glob("*.toml"))
    assert len(names) >= 3
    for name in names:
        load_scene(EXAMPLES / name)


def test_non_square_frame_keeps_aspect() -> None:
    s = parse_scene("[frame]\nwidth = 320\nheight = 180\n[view]\nhalf_height = 1.0\n")
    assert s.view.half_width == pytest.approx(320 / 180)


def test_bounds_view_centre_is_exact_zero_when_symmetric() -> None:
    s = parse_scene("[frame]\nwidth=100\nheight=100\n[view]\nbounds=[-1.8,1.8,-1.8,1.8]\n")
    assert s.view.center_x == 0.0 and s.view.center_y == 0.0 and s.view.half_height == 1.8


def test_duration_gives_frames() -> None:
    s = parse_scene("[timing]\nfps = 30\nduration_s = 2.5\n")
    assert s.frames == 75 and s.duration_s == 2.5


def test_overrides_of_the_old_script() -> None:
    ov = Overrides(num_steps=64, max_iterations=77, num_frames=9, framerate=12,
                   c_imag_initial=-0.5, c_imag_increment=0.25)
    s = load_scene(EXAMPLES / "spiral.toml", ov)
    assert (s.width, s.height, s.max_iterations, s.frames, s.fps) == (64, 64, 77, 9, 12.0)
    assert s.c_at_frame(0) == complex(-0.62772, -0.5)
    assert s.c_at_frame(8) == complex(-0.62772, -0.25)


def test_duration_override_replaces_frames() -> None:
    s = load_scene(EXAMPLES / "quick.toml", Overrides(duration=2.0))
    assert s.frames == 10


def test_keyframes_with_easing() -> None:
    path = CPath((Keyframe(0.0, 0j, "ease-in-out"), Keyframe(1.0, 1 + 1j)))
    assert path.at(0.0) == 0j and path.at(1.0) == 1 + 1j
    assert path.at(0.5) == pytest.approx(0.5 + 0.5j)
    assert path.at(0.25).real < 0.25  # eased: slow start
    lin = CPath((Keyframe(0.0, 0j), Keyframe(0.5, 2j), Keyframe(1.0, 0j)))
    assert lin.at(0.25) == pytest.approx(1j) and lin.at(0.5) == 2j and lin.at(0.75) == 1j


def test_window_plays_part_of_the_path() -> None:
    s = parse_scene("[c]\nstart=[0.0,0.0]\nend=[0.0,1.0]\nwindow=[0.25,0.75]\n[timing]\nframes=3\n")
    assert s.c_at_frame(0) == 0.25j and s.c_at_frame(1) == 0.5j and s.c_at_frame(2) == 0.75j


def test_complex_as_string() -> None:
    s = parse_scene('[c]\nstart = "-0.62772-0.42193j"\nend = "-0.62772+0.1i"\n')
    assert s.c_at_frame(0) == complex(-0.62772, -0.42193)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[frame\nwidth=2", "malformed TOML"),
        ("[frame]\nwidht = 10\n", "frame.widht: unknown key; did you mean 'width'?"),
        ("[colour]\ncolormap = 'viridiss'\n", "did you mean 'viridis'"),
        ("[colour]\ncolormap = 'nosuchmap'\n", "colour.colormap: unknown colormap"),
        ("[frame]\nwidth = 0\n", "frame.width: must be between 1"),
        ("[frame]\nwidth = -4\n", "frame.width"),
        ("[frame]\nwidth = 99999\n", "frame.width"),
        ("[frame]\nwidth = 201\nheight = 200\n", "frame.width: 201 is odd"),
        ("[timing]\nframes = 0\n", "timing.frames"),
        ("[timing]\nduration_s = 0.01\nfps = 5\n", "zero frames"),
        ("[timing]\nframes = 3\nduration_s = 1\n", "either frames or duration_s"),
        ("[iteration]\nmax_iterations = 0\n", "iteration.max_iterations"),
        ("[iteration]\nescape_radius = -1\n", "iteration.escape_radius"),
        ("[frame]\nsupersample = 5\n", "frame.supersample"),
        ("[encode]\npreset = 'fastest'\n", "encode.preset"),
        ("[encode]\npix_fmt = 'yuv420'\n", "did you mean 'yuv420p'"),
        ("[c]\nstart = [1]\n", "c.start"),
        ("[c]\nkeyframes = [{t = 0.5, c = [0, 0]}, {t = 0.2, c = [0, 1]}]\n", "must increase"),
        ("[c]\nwindow = [0, 2]\n", "c.window"),
        ("[view]\nbounds = [-2, 2, -1, 1]\n", "stretched"),
        ("[views]\n", "views: unknown key; did you mean 'view'?"),
        ("frame = 3\n", "frame: must be a table"),
    ],
)
def test_bad_input_is_one_line_naming_the_field(text: str, expected: str) -> None:
    with pytest.raises(SceneError) as info:
        parse_scene(text)
    message = str(info.value)
    assert expected in message
    assert "\n" not in message


def test_memory_limit_names_the_frame() -> None:
    s = parse_scene("[frame]\nwidth = 1000\nheight = 1000\n")
    check_memory(s, available_bytes=1 << 40)
    with pytest.raises(SceneError, match="GiB per frame"):
        check_memory(s, available_bytes=1 << 20)


def test_missing_file() -> None:
    with pytest.raises(SceneError, match="not found"):
        load_scene("/nonexistent/scene.toml")
