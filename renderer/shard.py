"""One segment of a scene rendered to its own MP4: the task a cluster worker runs.

The frames, the encoder settings and the file name are exactly those of `render_animation`'s
segments (same `FrameRenderer`, same `Encoder`, same `plan_segments`), so segments rendered on
different machines concatenate without re-encoding, and equal the single-machine render's bytes
when the encoder runs with the same thread count (see `render_segment`).
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from renderer.cores import available_cores
from renderer.encode import Encoder, direct_input, find_ffmpeg
from renderer.errors import SceneError
from renderer.kernel import set_threads
from renderer.render import FrameRenderer, encode_frames
from renderer.scene import Overrides, Scene, parse_scene
from renderer.segments import Segment, plan_segments

__all__ = ["SegmentResult", "find_segment", "render_segment", "render_segment_of", "sha256_file"]

HASH_BLOCK_BYTES = 1 << 20


@dataclass(frozen=True)
class SegmentResult:
    """What one rendered segment is, where it was written, and what it cost."""

    index: int
    first: int  # first frame number
    stop: int   # one past the last frame
    path: str   # on the machine that rendered it
    host: str   # that machine's hostname
    size_bytes: int
    sha256: str
    kernel_threads: int
    total_s: float
    kernel_s: float
    colour_s: float
    encode_wait_s: float  # the renderer blocked on a full encoder queue
    encode_cpu_s: float   # ffmpeg's own CPU time

    @property
    def frames(self) -> int:
        return self.stop - self.first


def find_segment(scene: Scene, index: int, segment_frames: int) -> Segment:
    """Segment `index` of the scene's plan (as render_animation plans it), or SceneError."""
    if segment_frames < 1:
        raise SceneError(f"--segment-frames: must be at least 1, got {segment_frames}")
    segments = plan_segments(scene.frames, segment_frames)
    if not 0 <= index < len(segments):
        raise SceneError(f"--index: the scene has segments 0..{len(segments) - 1} of "
                         f"{segment_frames} frames, got {index}")
    return segments[index]


def render_segment(
    scene_toml: str, index: int, segment_frames: int, output: Path, *,
    overrides: Overrides | None = None, frames_dir: Path | None = None,
    kernel_threads: int | None = None, encoder_threads: int | None = None,
) -> SegmentResult:
    """Render segment `index` of the scene given as TOML text (plus CLI overrides) to `output`.

    kernel_threads sizes the numba kernel for the calling thread only (numba's thread count is
    thread-local), so several tasks in one worker process can each take their share of the cores;
    None means every core this process may use. encoder_threads is passed to ffmpeg as `-threads`;
    None lets x264 choose from the core count, as render_animation does when it runs one encoder,
    which is what makes the bytes equal to a local render's on a machine of the same size (x264
    writes its thread count into the stream, so the bytes differ across thread counts even when
    the pixels do not).
    """
    scene = parse_scene(scene_toml, overrides=overrides)
    return render_segment_of(scene, index, segment_frames, output, frames_dir=frames_dir,
                             kernel_threads=kernel_threads, encoder_threads=encoder_threads)


def render_segment_of(
    scene: Scene, index: int, segment_frames: int, output: Path, *,
    frames_dir: Path | None = None, kernel_threads: int | None = None,
    encoder_threads: int | None = None,
) -> SegmentResult:
    """render_segment for an already parsed Scene."""
    segment = find_segment(scene, index, segment_frames)
    if kernel_threads is not None and kernel_threads < 1:
        raise SceneError(f"--workers: must be at least 1, got {kernel_threads}")
    output = Path(output)
    _make_dir(output.parent, "-o/--output")
    if frames_dir is not None:
        _make_dir(Path(frames_dir), "--frames-dir")
    threads = kernel_threads or available_cores()
    set_threads(threads)
    renderer = FrameRenderer(scene)
    t0 = time.perf_counter()
    fmt = direct_input(scene.encoding)  # as render_animation, so segments join seamlessly
    with Encoder(output, scene.width, scene.height, scene.fps, scene.encoding,
                 ffmpeg=find_ffmpeg(), threads=encoder_threads, input_format=fmt) as encoder:
        # The same frame loop as a local render's (colour on its own thread; the same PNGs).
        waited = encode_frames(renderer, range(segment.first, segment.stop), encoder, fmt,
                               Path(frames_dir) if frames_dir is not None else None)
    total_s = time.perf_counter() - t0
    return SegmentResult(
        index=segment.index, first=segment.first, stop=segment.stop, path=str(output),
        host=socket.gethostname(), size_bytes=output.stat().st_size, sha256=sha256_file(output),
        kernel_threads=threads, total_s=total_s, kernel_s=renderer.stats.kernel_s,
        colour_s=renderer.stats.colour_s, encode_wait_s=waited,
        encode_cpu_s=encoder.stats.cpu_s)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(HASH_BLOCK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def _make_dir(directory: Path, what: str) -> None:
    directory = directory if str(directory) else Path(".")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SceneError(f"{what}: cannot create {directory}: {exc.strerror}") from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise SceneError(f"{what}: {directory} is not writable")
