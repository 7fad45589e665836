"""`renderer window`: a written window is exactly that stretch of the source, composes, and says
where it came from."""

from __future__ import annotations

import tomllib
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from renderer.errors import SceneError
from renderer.instants import parse_instant
from renderer.render import render_frame_rgb
from renderer.scene import Overrides, load_scene, parse_scene
from renderer.window import NewLength, cut_window

# Eased keyframes (every easing) and a window of its own: the hard case for exactness.
EASED = """
# an eased test scene
[frame]
width = 24
height = 16
[view]
center = [0.0, 0.0]
half_height = 1.5
[iteration]
max_iterations = 60
[c]
keyframes = [
  {{ t = 0.0, c = [-0.8, 0.156], easing = "ease-in-out" }},
  {{ t = 0.3, c = [-0.7269, 0.1889], easing = "ease-in" }},
  {{ t = 0.7, c = [-0.62772, -0.42193], easing = "ease-out" }},
  {{ t = 1.0, c = [-0.7, 0.3] }},
]
{window}
[timing]
fps = 10
frames = 41
[colour]
colormap = "magma"
mode = "smooth"
[output]
path = "eased.mp4"
[cloud]
plan = "dedicated-4"
"""


def _eased(tmp_path: Path, window: str = "", name: str = "eased.toml") -> Path:
    path = tmp_path / name
    path.write_text(EASED.format(window=window))
    return path


def cut(source: Path, start: str, end: str, name: str, **length) -> Path:
    target = source.with_name(name)
    cut_window(source, Overrides(), start, end, target, NewLength(**length))
    return target


@pytest.mark.parametrize("start, end", [("7f", "29f"), ("7", "29"), ("0.7s", "2.9s"),
                                        ("17.5%", "72.5%")])
def test_every_frame_of_a_window_on_frames_is_the_source_frame(tmp_path: Path, start: str,
                                                               end: str) -> None:
    src = _eased(tmp_path)
    s = load_scene(src)
    w = load_scene(cut(src, start, end, "w.toml"))
    assert w.frames == 29 - 7 + 1
    for j in range(w.frames):
        assert w.c_at_frame(j) == s.c_at_frame(7 + j), j
    assert np.array_equal(render_frame_rgb(w, 0), render_frame_rgb(s, 7))
    assert np.array_equal(render_frame_rgb(w, w.frames - 1), render_frame_rgb(s, 29))


@pytest.mark.parametrize("source_window", ["", 'window = [0.1, "17/20"]'])
@pytest.mark.parametrize("length", [{"duration_s": 3.3}, {"frames": 50}, {"frames": 2}])
def test_first_and_last_frames_equal_the_source_pixel_for_pixel(tmp_path: Path, length: dict,
                                                                source_window: str) -> None:
    src = _eased(tmp_path, source_window)
    s = load_scene(src)
    w = load_scene(cut(src, "1.2s", "3.5s", "w.toml", **length))
    assert w.frames == length.get("frames", 33)
    assert w.c_at_frame(0) == s.c_at_frame(12)
    assert w.c_at_frame(w.frames - 1) == s.c_at_frame(35)
    assert np.array_equal(render_frame_rgb(w, 0), render_frame_rgb(s, 12))
    assert np.array_equal(render_frame_rgb(w, w.frames - 1), render_frame_rgb(s, 35))


def test_window_of_a_window_is_the_composed_window(tmp_path: Path) -> None:
    src = _eased(tmp_path)
    outer = cut(src, "10f", "30f", "outer.toml")
    inner = cut(outer, "5f", "15f", "inner.toml")
    direct = cut(src, "15f", "25f", "direct.toml")
    a, b = load_scene(inner), load_scene(direct)
    assert a.path == b.path and a.frames == b.frames
    assert [a.c_at_frame(k) for k in range(a.frames)] == [b.c_at_frame(k)
                                                        for k in range(b.frames)]
    assert np.array_equal(render_frame_rgb(a, 4), render_frame_rgb(b, 4))


# Percentages compose exactly: q of the window p0..p1 is p0 + q * (p1 - p0) of the source.
@settings(max_examples=40, deadline=None)
@given(p=st.lists(st.integers(0, 100), min_size=2, max_size=2, unique=True).map(sorted),
       q=st.lists(st.integers(0, 1000), min_size=2, max_size=2, unique=True).map(sorted),
       duration=st.sampled_from([None, 1.7, 12.0]))
def test_windows_compose_exactly_for_any_stretch(tmp_path_factory, p: list[int], q: list[int],
                                                 duration: float | None) -> None:
    tmp = tmp_path_factory.mktemp("compose")
    src = _eased(tmp, 'window = ["1/7", "0.9"]')
    qs = [Fraction(x, 10) for x in q]  # percentages with one decimal
    outer = cut(src, f"{p[0]}%", f"{p[1]}%", "outer.toml", duration_s=duration)
    inner = cut(outer, f"{_dec(qs[0])}%", f"{_dec(qs[1])}%", "inner.toml")
    composed = [p[0] + x * (p[1] - p[0]) / 100 for x in qs]
    direct = cut(src, f"{_dec(composed[0])}%", f"{_dec(composed[1])}%", "direct.toml")
    assert load_scene(inner).path == load_scene(direct).path
    assert load_scene(inner).path.window == tuple(
        _window(src)[0] + x / 100 * (_window(src)[1] - _window(src)[0]) for x in composed)


def _dec(x: Fraction) -> str:
    """An exact decimal string of a fraction whose denominator divides a power of ten."""
    return str(Decimal(x.numerator) / Decimal(x.denominator))


def _window(path: Path) -> tuple[Fraction, Fraction]:
    return load_scene(path).path.window


def test_written_scene_keeps_everything_else_and_says_where_it_came_from(tmp_path: Path) -> None:
    src = _eased(tmp_path)
    out = cut(src, "1s", "2s", "detail.toml")
    text = out.read_text()
    first = text.splitlines()[0]
    assert first.startswith("# ") and str(src) in first and "1s .. 2s" in first
    old, new = tomllib.loads(src.read_text()), tomllib.loads(text)
    for table in ("frame", "view", "iteration", "colour", "cloud"):
        assert new[table] == old[table]
    assert new["c"]["keyframes"] == old["c"]["keyframes"]
    assert new["timing"] == {"fps": 10, "frames": 11}
    assert new["output"] == {"path": "detail.mp4"}  # never the source's video
    assert sorted(p.name for p in tmp_path.iterdir()) == ["detail.toml", "eased.toml"]


def test_overrides_apply_to_the_source_and_are_kept(tmp_path: Path) -> None:
    src = _eased(tmp_path)
    target = tmp_path / "w.toml"
    ov = Overrides(num_steps=20, max_iterations=90, framerate=20)
    cut_window(src, ov, "1s", "1.5s", target, NewLength())
    w, s = load_scene(target), load_scene(src, ov)
    assert (w.width, w.height, w.max_iterations, w.fps, w.frames) == (20, 20, 90, 20, 11)
    assert w.c_at_frame(0) == s.c_at_frame(20) and w.c_at_frame(10) == s.c_at_frame(30)
    assert "--num-steps 20" in target.read_text().splitlines()[0]


@pytest.mark.parametrize("start, end, message", [
    ("2s", "1s", "--to: 1s is not after --from 2s"),
    ("1s", "1s", "not after"),
    ("1s", "5s", "--to: 5s is outside the animation"),
    ("-1f", "5f", "--from"),
    ("4.5", "5s", "needs a unit"),
    ("soon", "5s", "cannot read 'soon'"),
    ("0%", "101%", "--to"),
    ("0f", "41f", "frame 40"),
])
def test_bad_instants_write_nothing(tmp_path: Path, start: str, end: str, message: str) -> None:
    src = _eased(tmp_path)
    with pytest.raises(SceneError, match=message):
        cut(src, start, end, "w.toml")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eased.toml"]


def test_existing_target_is_untouched_by_a_failed_window(tmp_path: Path) -> None:
    src = _eased(tmp_path)
    (tmp_path / "w.toml").write_text("old")
    with pytest.raises(SceneError):
        cut(src, "1s", "2s", "w.toml", duration_s=0.01)
    assert (tmp_path / "w.toml").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eased.toml", "w.toml"]


@pytest.mark.parametrize("text, fps, frames, want", [
    ("4s", 30, 600, Fraction(120, 599)),
    ("4.1s", 10, 101, Fraction(41, 100)),
    ("3.3s", 29.97, 3000, Fraction("3.3") * Fraction("29.97") / 2999),
    ("120f", 30, 600, Fraction(120, 599)),
    ("120", 30, 600, Fraction(120, 599)),
    ("12.5%", 30, 600, Fraction(1, 8)),
    ("100%", 30, 600, Fraction(1)),
])
def test_instants_are_exact_positions(text: str, fps: float, frames: int, want: Fraction) -> None:
    scene = parse_scene(f"[timing]\nfps = {fps}\nframes = {frames}\n")
    assert parse_instant(text, scene, "--from") == want


def test_path_time_of_the_default_window_is_plain_division() -> None:
    # The exact evaluation must not move any frame of scenes without a window.
    scene = parse_scene("[timing]\nframes = 1001\n")
    for k in range(1001):
        assert scene.path.path_time(scene.exact_frame_position(k)) == k / 1000


def test_window_ends_may_be_exact_fraction_strings() -> None:
    s = parse_scene('[c]\nstart = [0.0, 0.0]\nend = [0.0, 1.0]\nwindow = ["0.4", "1/2"]\n'
                    "[timing]\nframes = 3\n")
    assert s.path.window == (Fraction(2, 5), Fraction(1, 2))  # "0.4" is exactly 2/5, not a double
    assert [s.c_at_frame(k).imag for k in range(3)] == [0.4, 0.45, 0.5]


@pytest.mark.parametrize("window", ['["1/0", 1]', '["half", 1]', '[0, "3/2"]', "[0.5]"])
def test_bad_window_names_the_field(window: str) -> None:
    with pytest.raises(SceneError, match="c.window"):
        parse_scene(f"[c]\nwindow = {window}\n")


def test_info_shows_the_window(tmp_path: Path) -> None:
    from renderer.cli import describe

    w = load_scene(cut(_eased(tmp_path), "10f", "30f", "w.toml"))
    assert "window [0.25, 0.75]" in describe(w)
