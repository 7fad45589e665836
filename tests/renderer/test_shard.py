"""renderer.shard: one segment at a time gives exactly what a whole local render gives."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import numba
import pytest
from typer.testing import CliRunner

from renderer.cli import app
from renderer.encode import concat, count_frames, find_ffmpeg
from renderer.errors import SceneError
from renderer.scene import Overrides
from renderer.segments import plan_segments
from renderer.shard import render_segment, sha256_file
from tests.renderer.conftest import SMALL

FRAMES = 7
SEG = 3  # 3 + 3 + 1: a short last segment too


def scene_text(tmp: Path, frames: int = FRAMES) -> str:
    return SMALL.format(w=48, h=32, frames=frames, mode="smooth", ss=1, cmap="viridis",
                        out=tmp / "local.mp4")


def decode_rgb(path: Path) -> bytes:
    return subprocess.run([find_ffmpeg(), "-v", "error", "-i", str(path), "-f", "rawvideo",
                           "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout


def local_render(tmp: Path, text: str) -> tuple[Path, Path]:
    """`renderer render --frames-dir` of the scene, as a user would run it."""
    scene_file = tmp / "scene.toml"
    scene_file.write_text(text)
    frames = tmp / "local-frames"
    # --workers 2 keeps one encoder whatever this machine's size, as on the 2-core reference.
    res = CliRunner().invoke(app, ["render", str(scene_file), "--frames-dir", str(frames),
                                   "--segment-frames", str(SEG), "--workers", "2", "--quiet"])
    assert res.exit_code == 0, res.output
    return tmp / "local.mp4", frames


def test_segments_joined_equal_the_local_render_bytes_pixels_and_pngs(tmp_path: Path) -> None:
    text = scene_text(tmp_path)
    local_mp4, local_frames = local_render(tmp_path, text)
    parts, frames = tmp_path / "parts", tmp_path / "shard-frames"
    results = [render_segment(text, s.index, SEG, parts / s.name, frames_dir=frames,
                              kernel_threads=1)
               for s in reversed(plan_segments(FRAMES, SEG))]  # order must not matter
    joined = tmp_path / "joined.mp4"
    concat([Path(r.path) for r in sorted(results, key=lambda r: r.index)], joined)

    assert count_frames(joined) == FRAMES
    assert decode_rgb(joined) == decode_rgb(local_mp4)
    assert joined.read_bytes() == local_mp4.read_bytes()
    names = sorted(p.name for p in local_frames.iterdir())
    assert names == sorted(p.name for p in frames.iterdir()) and len(names) == FRAMES
    for name in names:
        assert (frames / name).read_bytes() == (local_frames / name).read_bytes(), name


def test_result_describes_the_file(tmp_path: Path) -> None:
    out = tmp_path / "deep" / "seg.mp4"
    r = render_segment(scene_text(tmp_path), 2, SEG, out, kernel_threads=1)
    assert (r.index, r.first, r.stop, r.frames) == (2, 6, 7, 1)
    assert r.path == str(out) and r.size_bytes == out.stat().st_size
    assert r.sha256 == sha256_file(out)
    assert r.kernel_threads == 1 and r.total_s >= r.kernel_s > 0
    assert count_frames(out) == 1


def test_overrides_apply_like_the_cli(tmp_path: Path) -> None:
    text = scene_text(tmp_path)
    r = render_segment(text, 3, SEG, tmp_path / "s.mp4", kernel_threads=1,
                       overrides=Overrides(num_frames=12))
    assert (r.first, r.stop) == (9, 12)  # segment 3 exists only with the override
    with pytest.raises(SceneError, match="--index"):
        render_segment(text, 3, SEG, tmp_path / "t.mp4", kernel_threads=1)


@pytest.mark.parametrize("index, seg, match", [(-1, SEG, "--index"), (3, SEG, "segments 0..2"),
                                               (0, 0, "--segment-frames")])
def test_bad_segment_is_a_scene_error_and_writes_nothing(tmp_path: Path, index: int, seg: int,
                                                         match: str) -> None:
    with pytest.raises(SceneError, match=match):
        render_segment(scene_text(tmp_path), index, seg, tmp_path / "x.mp4", kernel_threads=1)
    assert not (tmp_path / "x.mp4").exists()


def test_kernel_threads_are_set_for_the_calling_thread_only(tmp_path: Path) -> None:
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs numba to allow 2 threads")
    numba.set_num_threads(2)
    seen: list[int] = []

    def task() -> None:
        render_segment(scene_text(tmp_path), 0, SEG, tmp_path / "a.mp4", kernel_threads=1)
        seen.append(numba.get_num_threads())

    t = threading.Thread(target=task)
    t.start()
    t.join()
    assert seen == [1] and numba.get_num_threads() == 2


def test_cli_segment_writes_the_file_it_reports(tmp_path: Path) -> None:
    scene_file = tmp_path / "scene.toml"
    scene_file.write_text(scene_text(tmp_path))
    out = tmp_path / "seg-00001.mp4"
    res = CliRunner().invoke(app, ["segment", str(scene_file), "--index", "1",
                                   "--segment-frames", str(SEG), "-o", str(out),
                                   "--workers", "1"])
    assert res.exit_code == 0, res.output
    assert f"sha256 {sha256_file(out)}" in res.output and "frames 3..5" in res.output
    bad = CliRunner().invoke(app, ["segment", str(scene_file), "--index", "9",
                                   "--segment-frames", str(SEG), "-o", str(out)])
    assert bad.exit_code == 2 and "segments 0..2" in bad.output


def test_segment_command_is_hidden_from_help() -> None:
    res = CliRunner().invoke(app, ["--help"])
    assert res.exit_code == 0 and "render" in res.output and "segment" not in res.output
