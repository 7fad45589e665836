"""Colour straight to BT.709 limited-range Y'CbCr 4:2:0: against ffmpeg's own conversion."""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from renderer.colour import (
    C_OFFSET,
    CB709,
    CR709,
    MAX_DIRECT_LUT,
    Y709,
    Y_OFFSET,
    _index,
    colourise,
    colourise_yuv420,
    make_palette,
    yuv420_planes,
)
from renderer.encode import Encoder, direct_input, encoder_args, find_ffmpeg
from renderer.render import FrameRenderer, RenderOptions, render_animation
from renderer.scene import Encoding, load_scene, resized

ROOT = Path(__file__).resolve().parents[2]
# The issue's bar, per plane (Y' is exact; Cb and Cr reach 56-70 dB on these frames).
MIN_PSNR_DB = 50.0


def _ffmpeg_convert(rgba: np.ndarray, pix_fmt: str = "yuv420p") -> np.ndarray:
    """What the RGBA pipe makes of a frame: encoder_args' filter, the planes as raw bytes."""
    h, w, _ = rgba.shape
    vf = encoder_args(Encoding())[encoder_args(Encoding()).index("-vf") + 1]
    out = subprocess.run(
        [find_ffmpeg(), "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgba", "-s", f"{w}x{h}",
         "-i", "-", "-vf", vf, "-pix_fmt", pix_fmt, "-f", "rawvideo", "-"],
        input=rgba.tobytes(), capture_output=True, check=True).stdout
    return np.frombuffer(out, dtype=np.uint8)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def test_the_fixed_point_matrix_is_ffmpegs_for_every_colour_tried() -> None:
    rng = np.random.default_rng(7)
    rgba = np.empty((64, 64, 4), dtype=np.uint8)
    rgba[..., :3] = rng.integers(0, 256, (64, 64, 3))
    rgba[0, :8, :3] = [[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255],
                       [255, 255, 0], [0, 255, 255], [255, 0, 255]]
    rgba[..., 3] = 255
    want = _ffmpeg_convert(rgba, "yuv444p").reshape(3, 64, 64).astype(np.int64)
    c = rgba[..., :3].astype(np.int64)
    assert np.array_equal((c @ np.array(Y709) + Y_OFFSET) >> 15, want[0])
    assert np.array_equal((c @ np.array(CB709) + C_OFFSET + (1 << 14)) >> 15, want[1])
    assert np.array_equal((c @ np.array(CR709) + C_OFFSET + (1 << 14)) >> 15, want[2])


@pytest.mark.parametrize(("scene_file", "frame", "size", "ss"), [
    ("spiral.toml", 900, None, 1),             # the full 1080x1080 frame
    ("spiral.toml", 0, (360, 360), 1),
    ("dark-to-yellow.toml", 100, (480, 270), 1),
    ("quick.toml", 5, None, 1),
    ("4k-keyframes.toml", 600, (384, 216), 2),  # supersampled, smooth, inferno
    ("spiral.toml", 1500, (240, 240), 3),
])
def test_planes_match_ffmpegs_conversion_of_the_same_frame(scene_file: str, frame: int,
                                                           size: tuple[int, int] | None,
                                                           ss: int) -> None:
    scene = load_scene(ROOT / "examples" / scene_file)
    if size is not None:
        scene = resized(scene, *size)
    scene = replace(scene, supersample=ss)
    fr = FrameRenderer(scene)
    counts, fmod = fr.counts(frame)
    w, h = scene.width, scene.height
    ours = yuv420_planes(colourise_yuv420(fr.palette, counts, fmod, ss), w, h)
    theirs = yuv420_planes(_ffmpeg_convert(colourise(fr.palette, counts, fmod, ss)), w, h)
    assert np.array_equal(ours[0], theirs[0])  # Y' exactly
    for a, b in zip(ours[1:], theirs[1:], strict=True):
        assert np.abs(a.astype(int) - b).max() <= 1
        assert _psnr(a, b) >= MIN_PSNR_DB


def test_odd_sides_are_refused() -> None:
    pal = make_palette("magma", "escape", 10, 2.0)
    with pytest.raises(ValueError, match="even"):
        colourise_yuv420(pal, np.zeros((4, 5), dtype=np.int32), None)
    with pytest.raises(ValueError, match="even"):
        colourise_yuv420(pal, np.zeros((9, 6), dtype=np.int32), None, supersample=3)


def test_only_yuv420p_video_takes_planes(tmp_path: Path) -> None:
    assert direct_input(Encoding()) == "yuv420p"
    for pix_fmt in ("yuv444p", "yuv422p", "nv12", "rgb24"):
        enc = replace(Encoding(), pix_fmt=pix_fmt)
        assert direct_input(enc) == "rgba"
        with pytest.raises(ValueError):
            Encoder(tmp_path / "x.mp4", 32, 32, 10, enc, input_format="yuv420p")
    with pytest.raises(ValueError):
        Encoder(tmp_path / "x.mp4", 32, 32, 10, Encoding(), input_format="rgb24")


def test_a_wrong_buffer_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        with Encoder(tmp_path / "c.mp4", 32, 32, 5, Encoding(), input_format="yuv420p") as enc:
            enc.write(np.zeros((32, 32, 4), dtype=np.uint8))
    assert list(tmp_path.iterdir()) == []


def _probe(path: Path) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_streams",
                          "-of", "json", str(path)], capture_output=True, check=True).stdout
    return json.loads(out)["streams"][0]


TAGS = ("codec_name", "profile", "pix_fmt", "color_range", "color_space", "color_transfer",
        "color_primaries", "chroma_location", "width", "height", "r_frame_rate")


def test_both_pipes_tag_the_stream_the_same(scene_factory, tmp_path: Path) -> None:
    if subprocess.run(["which", "ffprobe"], capture_output=True).returncode != 0:
        pytest.skip("ffprobe not installed")
    scene = scene_factory(w=64, h=48, frames=6, mode="smooth")
    fr = FrameRenderer(scene)
    tags = {}
    for fmt in ("rgba", "yuv420p"):
        out = tmp_path / f"{fmt}.mp4"
        with Encoder(out, 64, 48, scene.fps, scene.encoding, input_format=fmt) as enc:
            for k in range(scene.frames):
                enc.write(fr.video_frame(k, fmt)[0])
        tags[fmt] = {k: _probe(out).get(k) for k in TAGS}
    assert tags["rgba"] == tags["yuv420p"]
    assert tags["yuv420p"]["color_space"] == "bt709"
    assert tags["yuv420p"]["color_range"] == "tv"
    assert tags["yuv420p"]["color_primaries"] == "bt709"
    assert tags["yuv420p"]["color_transfer"] == "bt709"


def _decode(path: Path, w: int, h: int) -> np.ndarray:
    raw = subprocess.run([find_ffmpeg(), "-v", "error", "-i", str(path), "-f", "rawvideo",
                          "-pix_fmt", "yuv420p", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, w * h * 3 // 2)


@pytest.mark.parametrize("ss", [1, 2])
def test_the_video_is_the_same_through_either_pipe(scene_factory, tmp_path: Path,
                                                   ss: int) -> None:
    scene = scene_factory(w=64, h=48, frames=6, mode="smooth", ss=ss)
    decoded = {}
    for fmt in ("rgba", "yuv420p"):
        out = tmp_path / f"{fmt}.mp4"
        render_animation(replace(scene, output=out),
                         RenderOptions(progress=False, encoder_input=fmt))
        decoded[fmt] = _decode(out, 64, 48)
    assert decoded["rgba"].shape == decoded["yuv420p"].shape == (6, 64 * 48 * 3 // 2)
    # x264 sees inputs at most one chroma level apart; what it makes of them stays that close.
    assert _psnr(decoded["rgba"], decoded["yuv420p"]) >= 45


def test_yuv444p_video_still_goes_through_rgba(scene_factory, tmp_path: Path) -> None:
    scene = scene_factory(w=34, h=32, frames=4)  # odd sides are fine for yuv444p
    scene = replace(scene, width=33, height=31,
                    encoding=replace(scene.encoding, pix_fmt="yuv444p"))
    render_animation(scene, RenderOptions(progress=False, frames_dir=tmp_path / "png"))
    assert scene.output.exists()
    assert len(list((tmp_path / "png").iterdir())) == 4


def _reference_rgba(pal, counts: np.ndarray, fmod: np.ndarray | None) -> np.ndarray:
    """The per-sample _index of the code before the row-wise rewrite, one sample at a time."""
    smooth = pal.mode == "smooth"
    words = np.empty(counts.shape, dtype=np.uint32)
    for (i, j), n in np.ndenumerate(counts):
        m2 = float(fmod[i, j]) if smooth else 0.0
        e = _index(int(n), m2, smooth, pal.max_iter, pal.log_radius, pal.smooth_term,
                   pal.radius2, pal.smooth_step, pal.size)
        words[i, j] = pal.rgba[e]
    return words.view(np.uint8).reshape(*counts.shape, 4)


@pytest.mark.parametrize(("mode", "max_iter"), [("escape", 50), ("escape", MAX_DIRECT_LUT),
                                                ("smooth", 50), ("smooth", 700)])
def test_rgba_colours_are_what_they_were(mode: str, max_iter: int) -> None:
    rng = np.random.default_rng(3)
    pal = make_palette("viridis", mode, max_iter, 2.0)
    counts = rng.integers(0, max_iter + 1, (24, 40)).astype(np.int32)
    counts[0, :5] = max_iter
    fmod = rng.uniform(4.0, 300.0, counts.shape)   # inside and beyond the smooth table
    fmod[1, :3] = [np.nan, np.inf, 0.0]            # what interior samples may hold
    counts[1, :3] = max_iter
    fmod[2, :] = rng.uniform(4.0, 10.0, counts.shape[1])  # a row entirely inside the table
    assert np.array_equal(colourise(pal, counts, fmod), _reference_rgba(pal, counts, fmod))


def _reference_supersampled(pal, counts: np.ndarray, fmod: np.ndarray | None,
                            k: int) -> np.ndarray:
    """The supersampled colours as the code before the row-wise rewrite computed them."""
    smooth = pal.mode == "smooth"
    h, w = counts.shape[0] // k, counts.shape[1] // k
    steps = pal.encode_srgb.size - 1
    out = np.empty((h, w, 4), dtype=np.uint8)
    out[..., 3] = 255
    for i in range(h):
        for j in range(w):
            acc = [0.0, 0.0, 0.0]
            for di in range(k):
                for dj in range(k):
                    y, x = i * k + di, j * k + dj
                    m2 = float(fmod[y, x]) if smooth else 0.0
                    e = _index(int(counts[y, x]), m2, smooth, pal.max_iter, pal.log_radius,
                               pal.smooth_term, pal.radius2, pal.smooth_step, pal.size)
                    for c in range(3):
                        acc[c] += float(pal.linear[e, c])
            for c in range(3):
                level = min(acc[c] * (1.0 / (k * k)), 1.0)
                out[i, j, c] = pal.encode_srgb[int(level * steps + 0.5)]
    return out


@pytest.mark.parametrize(("mode", "k"), [("escape", 2), ("smooth", 2), ("smooth", 3)])
def test_supersampled_rgba_colours_are_what_they_were(mode: str, k: int) -> None:
    rng = np.random.default_rng(5)
    pal = make_palette("inferno", mode, 80, 2.0)
    counts = rng.integers(0, 81, (6 * k, 10 * k)).astype(np.int32)
    fmod = rng.uniform(4.0, 300.0, counts.shape)
    assert np.array_equal(colourise(pal, counts, fmod, k),
                          _reference_supersampled(pal, counts, fmod, k))


@pytest.mark.parametrize("layer", ["as is", "none chosen yet"])
def test_colour_on_the_calling_thread_alone_is_the_same(monkeypatch, layer: str) -> None:
    from renderer import colour

    if layer == "none chosen yet":  # forces the serially compiled twins
        def no_layer() -> str:
            raise ValueError("Threading layer is not initialized.")
        monkeypatch.setattr(colour.numba, "threading_layer", no_layer)
    rng = np.random.default_rng(11)
    for mode, k in (("smooth", 1), ("escape", 1), ("smooth", 2)):
        pal = make_palette("magma", mode, 90, 2.0)
        counts = rng.integers(0, 91, (8 * k, 12 * k)).astype(np.int32)
        fmod = rng.uniform(4.0, 300.0, counts.shape)
        assert np.array_equal(colourise(pal, counts, fmod, k, parallel=False),
                              colourise(pal, counts, fmod, k))
        assert np.array_equal(colourise_yuv420(pal, counts, fmod, k, parallel=False),
                              colourise_yuv420(pal, counts, fmod, k))
