from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from renderer.encode import count_frames
from renderer.errors import RenderInterrupted, SceneError
from renderer.render import (
    FrameRenderer,
    RenderOptions,
    preview_scene,
    render_animation,
    render_frame_rgb,
    render_still,
)
from tests.renderer.reference import escape_counts as reference_counts


def test_render_writes_every_frame_and_cleans_up(scene_factory, tmp_path: Path) -> None:
    scene = scene_factory(frames=12)
    summary = render_animation(scene, RenderOptions(segment_frames=5, progress=False))
    assert count_frames(scene.output) == 12
    assert summary.rendered_frames == 12 and summary.resumed_frames == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]  # no parts, no temp files
    text = summary.report()
    assert "12 frames of 48x32" in text and "G iterations/s" in text


def test_frames_dir_pngs_are_the_frames(scene_factory, tmp_path: Path) -> None:
    scene = scene_factory(frames=4, mode="smooth", ss=2)
    render_animation(scene, RenderOptions(frames_dir=tmp_path / "png", progress=False))
    pngs = sorted((tmp_path / "png").iterdir())
    assert [p.name for p in pngs] == [f"frame-{k:06d}.png" for k in range(4)]
    for k, p in enumerate(pngs):
        assert np.array_equal(np.asarray(Image.open(p)), render_frame_rgb(scene, k))


def test_frame_counts_equal_the_plain_reference(scene_factory) -> None:
    from renderer.grid import sample_grid

    scene = scene_factory(frames=3)
    v = scene.view
    xs, ys = sample_grid(v.center_x, v.center_y, v.half_width, v.half_height, 48, 32)
    counts, _ = FrameRenderer(scene).counts(2)
    want, _ = reference_counts(xs, ys, scene.c_at_frame(2), scene.max_iterations)
    assert np.array_equal(counts, np.asarray(want))


class _Boom(KeyboardInterrupt):
    pass


def test_interrupted_render_resumes_from_finished_segments(scene_factory, monkeypatch,
                                                           tmp_path: Path) -> None:
    scene = scene_factory(frames=14)
    real = FrameRenderer.counts
    calls: list[int] = []

    def flaky(self, k):
        calls.append(k)
        if k == 11:
            raise _Boom
        return real(self, k)

    monkeypatch.setattr(FrameRenderer, "counts", flaky)
    with pytest.raises(RenderInterrupted, match="2 of 3 segments"):
        render_animation(scene, RenderOptions(segment_frames=5, progress=False))
    assert not scene.output.exists()
    parts = tmp_path / ".out.mp4.parts"
    assert sorted(p.name for p in parts.glob("*.mp4")) == ["seg-00000.mp4", "seg-00001.mp4"]
    assert not list(parts.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))

    calls.clear()
    monkeypatch.setattr(FrameRenderer, "counts", real)
    monkeypatch.setattr(FrameRenderer, "counts", lambda self, k: calls.append(k) or real(self, k))
    summary = render_animation(scene, RenderOptions(segment_frames=5, progress=False))
    assert calls == list(range(10, 14))  # only the unfinished segment was rendered
    assert summary.resumed_frames == 10
    assert count_frames(scene.output) == 14
    assert not parts.exists()


def test_changed_scene_does_not_reuse_old_segments(scene_factory, monkeypatch) -> None:
    scene = scene_factory(frames=10)
    real = FrameRenderer.counts

    def flaky(self, k):
        if k == 7:
            raise KeyboardInterrupt
        return real(self, k)

    monkeypatch.setattr(FrameRenderer, "counts", flaky)
    with pytest.raises(RenderInterrupted):
        render_animation(scene, RenderOptions(segment_frames=5, progress=False))
    monkeypatch.setattr(FrameRenderer, "counts", real)
    other = replace(scene, max_iterations=61)
    summary = render_animation(other, RenderOptions(segment_frames=5, progress=False))
    assert summary.resumed_frames == 0 and summary.rendered_frames == 10


def test_several_encoders_give_the_same_frames(scene_factory, tmp_path: Path) -> None:
    one = scene_factory(frames=9, name="one.mp4")
    two = replace(one, output=tmp_path / "two.mp4")
    render_animation(one, RenderOptions(segment_frames=3, progress=False, encoders=1))
    render_animation(two, RenderOptions(segment_frames=3, progress=False, encoders=3))
    assert count_frames(one.output) == count_frames(two.output) == 9
    assert _decoded(one.output) == _decoded(two.output)


def _decoded(path: Path) -> bytes:
    import subprocess

    from renderer.encode import find_ffmpeg
    return subprocess.run([find_ffmpeg(), "-v", "error", "-i", str(path), "-f", "rawvideo",
                           "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout


def test_existing_output_is_untouched_until_the_new_one_is_complete(scene_factory,
                                                                     monkeypatch) -> None:
    scene = scene_factory(frames=6)
    scene.output.write_bytes(b"old video")

    def boom(self, k):
        raise KeyboardInterrupt

    monkeypatch.setattr(FrameRenderer, "counts", boom)
    with pytest.raises(RenderInterrupted):
        render_animation(scene, RenderOptions(progress=False))
    assert scene.output.read_bytes() == b"old video"


def test_unwritable_output_fails_before_any_work(scene_factory, tmp_path: Path,
                                                 monkeypatch) -> None:
    (tmp_path / "afile").write_text("x")
    scene = replace(scene_factory(), output=tmp_path / "afile" / "out.mp4")
    monkeypatch.setattr(FrameRenderer, "__init__", lambda *a: pytest.fail("rendered"))
    with pytest.raises(SceneError, match="output.path"):
        render_animation(scene, RenderOptions(progress=False))


def test_preview_is_quarter_size_same_duration(scene_factory) -> None:
    scene = replace(scene_factory(frames=40), width=200, height=120)
    p = preview_scene(scene)
    assert (p.width, p.height) == (50, 30)
    assert p.frames == 10 and p.duration_s == pytest.approx(scene.duration_s)
    assert p.output.name == "out-preview.mp4"
    assert preview_scene(scene, keep_output=True).output == scene.output  # -o is honoured
    assert p.c_at_frame(p.frames - 1) == scene.c_at_frame(scene.frames - 1)


def test_still_is_the_video_frame(scene_factory, tmp_path: Path) -> None:
    scene = scene_factory(frames=5)
    render_still(scene, 3, tmp_path / "f.png")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "f.png")), render_frame_rgb(scene, 3))


def test_4k_60fps_supersampled_just_works(tmp_path: Path) -> None:
    from renderer.cli_common import resolve_scene_path  # noqa: F401  (same loader as the CLI)
    from renderer.scene import Overrides, load_scene

    root = Path(__file__).resolve().parents[2]
    scene = load_scene(root / "examples" / "4k-keyframes.toml",
                       Overrides(num_frames=2, output=tmp_path / "4k.mp4"))
    assert (scene.width, scene.height, scene.fps, scene.supersample) == (3840, 2160, 60, 2)
    render_animation(scene, RenderOptions(progress=False))
    assert count_frames(scene.output) == 2
