"""Frames → segments → final MP4: the render pipeline, its progress, resume and timing summary.

The kernel (numba, all cores, GIL released) renders frame k+1 while a colour thread per encoder
turns frame k's counts into what ffmpeg takes and the encoder's writer thread feeds it to ffmpeg, so
on few cores the slower of the two sets the pace. On many cores several
segments are encoded at once (frames are rendered round-robin across them), because one x264
process cannot keep up with a 48-core kernel.
"""

from __future__ import annotations

import math
import os
import queue
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from renderer.colour import Palette, colourise, colourise_yuv420, make_palette, rgb
from renderer.cores import available_cores
from renderer.encode import (
    INPUT_FORMATS,
    Encoder,
    concat,
    direct_input,
    encoders_for,
    find_ffmpeg,
)
from renderer.errors import RenderError, RenderInterrupted, SceneError
from renderer.grid import sample_grid
from renderer.kernel import escape_counts, set_threads
from renderer.progress import Progress, fmt_duration
from renderer.scene import PIX_FMTS_EVEN, Scene, resized
from renderer.segments import PartsDir, Segment, default_segment_frames, plan_segments

# Frames of counts queued for each colour thread (one 1080² smooth frame is 14 MB of counts).
COLOUR_QUEUE_FRAMES = 2


@dataclass(frozen=True)
class RenderOptions:
    workers: int | None = None         # kernel threads; None = the CPUs this process may use
    preview: bool = False              # quarter size, a quarter of the frames
    output_given: bool = False         # -o named the file: a preview writes exactly there
    frames_dir: Path | None = None     # also write every rendered frame as PNG here
    segment_frames: int | None = None  # None = about SEGMENT_SECONDS of video
    progress: bool = True
    encoders: int | None = None        # segments encoded at once; None = from the core count
    # What ffmpeg is fed: None = planes it needs not convert where the pixel format allows
    # (yuv420p), else RGBA; "rgba" forces ffmpeg's own conversion (A/B benchmarks).
    encoder_input: str | None = None


@dataclass
class FrameStats:
    kernel_s: float = 0.0
    colour_s: float = 0.0
    useful_iterations: int = 0    # what a plain kernel would execute: the sum of counts
    executed_iterations: int = 0  # what ours executed after the exact savings


class FrameRenderer:
    """Renders frames of one scene: the sample grid and the colour table are built once."""

    def __init__(self, scene: Scene) -> None:
        self.scene = scene
        v = scene.view
        self.xs, self.ys = sample_grid(v.center_x, v.center_y, v.half_width, v.half_height,
                                       scene.width, scene.height, scene.supersample)
        self.palette: Palette = make_palette(scene.colormap, scene.colour_mode,
                                             scene.max_iterations, scene.escape_radius,
                                             scene.reverse_colormap)
        self.stats = FrameStats()
        self._colour_lock = threading.Lock()  # colour threads (one per encoder) add to stats

    def counts(self, k: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Exact escape counts (and final moduli for smooth colouring) of frame k's samples."""
        s = self.scene
        it: dict[str, int] = {}
        t0 = time.perf_counter()
        counts, fmod = escape_counts(self.xs, self.ys, s.c_at_frame(k), s.max_iterations,
                                     s.escape_radius, want_final_modulus=s.colour_mode == "smooth",
                                     stats=it)
        self.stats.kernel_s += time.perf_counter() - t0
        self.stats.executed_iterations += it["iterations"]
        self.stats.useful_iterations += int(counts.sum(dtype=np.int64))
        return counts, fmod

    def rgba(self, k: int) -> np.ndarray:
        return self.video_frame(k, "rgba")[0]

    def video_frame(self, k: int, input_format: str, *, want_rgba: bool = False
                    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Frame k as the encoder takes it (see encode.INPUT_FORMATS), and its RGBA too if asked
        (for PNGs) or if that is the encoder's format."""
        counts, fmod = self.counts(k)
        return self.colour(counts, fmod, input_format, want_rgba=want_rgba)

    def colour(self, counts: np.ndarray, fmod: np.ndarray | None, input_format: str, *,
               want_rgba: bool = False, parallel: bool = True
               ) -> tuple[np.ndarray, np.ndarray | None]:
        """video_frame from counts(); parallel=False colours on the calling thread alone."""
        t0 = time.perf_counter()
        k_ss = self.scene.supersample
        rgba = colourise(self.palette, counts, fmod, k_ss, parallel=parallel) \
            if want_rgba or input_format == "rgba" else None
        if input_format == "yuv420p":
            frame = colourise_yuv420(self.palette, counts, fmod, k_ss, parallel=parallel)
        else:
            assert rgba is not None
            frame = rgba
        with self._colour_lock:
            self.stats.colour_s += time.perf_counter() - t0
        return frame, rgba


def render_frame_rgb(scene: Scene, k: int) -> np.ndarray:
    """Frame k of the scene as (H, W, 3) uint8 RGB, exactly as it appears in the video."""
    return rgb(FrameRenderer(scene).rgba(k))


def render_still(scene: Scene, k: int, path: Path, *, workers: int | None = None) -> None:
    """Write frame k as a PNG (atomically)."""
    _check_writable(Path(path), "-o/--output")
    set_threads(workers or available_cores())
    save_png(render_frame_rgb(scene, k), Path(path))


def preview_scene(scene: Scene, keep_output: bool = False) -> Scene:
    """Quarter size, a quarter of the frames over the same duration, no supersampling; the
    output gets a '-preview' suffix unless `keep_output` (the user named the file)."""
    even = scene.encoding.pix_fmt in PIX_FMTS_EVEN

    def side(n: int) -> int:
        q = max(16, n // 4)
        return q - (q % 2) if even else q

    frames = max(2, math.ceil(scene.frames / 4)) if scene.frames > 1 else 1
    out = scene.output if keep_output else \
        scene.output.with_name(f"{scene.output.stem}-preview{scene.output.suffix}")
    return replace(resized(scene, side(scene.width), side(scene.height)), supersample=1,
                   frames=frames, fps=scene.fps * frames / scene.frames, output=out)


@dataclass
class RenderSummary:
    output: Path
    frames: int
    width: int
    height: int
    rendered_frames: int
    resumed_frames: int
    cores: int
    encoders: int
    total_s: float
    encode_wait_s: float
    encode_cpu_s: float
    join_s: float
    frame_stats: FrameStats = field(default_factory=FrameStats)
    scene: Scene | None = None  # as rendered (a preview's is smaller than the file's)

    def report(self) -> str:
        fs = self.frame_stats
        size = self.output.stat().st_size if self.output.exists() else 0
        fps = self.rendered_frames / self.total_s if self.total_s > 0 else 0.0
        useful = fs.useful_iterations / fs.kernel_s / 1e9 if fs.kernel_s > 0 else 0.0
        executed = fs.executed_iterations / fs.kernel_s / 1e9 if fs.kernel_s > 0 else 0.0
        resumed = f", {self.resumed_frames} resumed" if self.resumed_frames else ""
        return "\n".join([
            f"wrote {self.output} ({size / 1e6:.1f} MB): {self.frames} frames of "
            f"{self.width}x{self.height} ({self.rendered_frames} rendered{resumed})",
            f"time  total {self.total_s:.1f} s = kernel {fs.kernel_s:.1f} s + waiting for "
            f"colour and encoder {self.encode_wait_s:.1f} s + joining {self.join_s:.1f} s; "
            f"alongside: colour {fs.colour_s:.1f} s (one thread per encoder), encoder CPU "
            f"{self.encode_cpu_s:.1f} s",
            f"speed {fps:.1f} frames/s, {useful:.3g} G iterations/s ({executed:.3g} G/s executed "
            f"after exact savings) on {self.cores} cores, {self.encoders} encoder(s)",
        ])


def render_animation(scene: Scene, options: RenderOptions | None = None) -> RenderSummary:
    """Render every frame to segments and join them into scene.output (resuming if possible)."""
    options = options or RenderOptions()
    if options.preview:
        scene = preview_scene(scene, keep_output=options.output_given)
    output = Path(scene.output)
    _check_writable(output, "output.path")
    if options.frames_dir is not None:
        _check_dir(options.frames_dir, "--frames-dir")
    if options.workers is not None and options.workers < 1:
        raise SceneError(f"--workers: must be at least 1, got {options.workers}")
    ffmpeg = find_ffmpeg()
    cores = options.workers or available_cores()
    set_threads(cores)
    seg_frames = options.segment_frames or default_segment_frames(scene)
    if seg_frames < 1:
        raise SceneError(f"--segment-frames: must be at least 1, got {seg_frames}")
    segments = plan_segments(scene.frames, seg_frames)
    parts = PartsDir(output, scene, seg_frames)
    resumed = parts.prepare()
    done = parts.finished(segments) if resumed else set()
    todo = [s for s in segments if s.index not in done]
    n_enc = options.encoders or encoders_for(cores, len(todo))
    fmt = options.encoder_input or direct_input(scene.encoding)
    if fmt not in INPUT_FORMATS:
        raise SceneError(f"encoder input: must be one of {', '.join(INPUT_FORMATS)}, got {fmt}")
    renderer = FrameRenderer(scene)
    t0 = time.perf_counter()
    wait_s = 0.0
    resumed_frames = sum(s.frames for s in segments if s.index in done)
    progress = Progress(scene.frames, already_done=resumed_frames, enabled=options.progress)
    drain = _Drain()
    try:
        with _terminate_as_interrupt(), progress, _png_writer(options.frames_dir) as png:
            progress.note(f"cores: {cores} (kernel threads), {n_enc} encoder(s), "
                          f"{len(segments)} segment(s) of {seg_frames} frames"
                          + (f", resuming: {len(done)} done" if done else ""))
            for group in _chunks(todo, n_enc):
                wait_s += _render_group(group, renderer, parts, scene, ffmpeg,
                                        cores // n_enc or 1, progress, png, fmt, drain)
            drain.wait()
    except KeyboardInterrupt:
        drain.settle()
        kept = len(parts.finished(segments))
        raise RenderInterrupted(
            f"interrupted: {kept} of {len(segments)} segments are finished and kept in "
            f"{parts.path}; run the same command again to resume") from None
    except BaseException:
        drain.settle()
        raise
    cpu_s = drain.cpu_s
    t_join = time.perf_counter()
    concat([parts.file(s) for s in segments], output, ffmpeg=ffmpeg)
    parts.remove()
    end = time.perf_counter()
    return RenderSummary(
        output=output, frames=scene.frames, width=scene.width, height=scene.height,
        rendered_frames=scene.frames - resumed_frames, resumed_frames=resumed_frames,
        cores=cores, encoders=n_enc, total_s=end - t0, encode_wait_s=wait_s,
        encode_cpu_s=cpu_s, join_s=end - t_join, frame_stats=renderer.stats, scene=scene)


def _render_group(group: list[Segment], renderer: FrameRenderer, parts: PartsDir, scene: Scene,
                  ffmpeg: str, threads: int, progress: Progress,
                  png: _PngWriter | None, fmt: str, drain: _Drain) -> float:
    """Render the segments of a group round-robin into one encoder each, then hand the encoders
    to `drain` to finish while the next group renders; returns the seconds the kernel waited."""
    stack = ExitStack()
    try:
        encoders = [stack.enter_context(Encoder(parts.file(s), scene.width, scene.height,
                                                scene.fps, scene.encoding, ffmpeg=ffmpeg,
                                                threads=threads if len(group) > 1 else None,
                                                input_format=fmt))
                    for s in group]
        # Entered after the encoders, so they stop (and flush) before their encoder closes.
        feeds = [stack.enter_context(_ColourFeed(renderer, enc, fmt, png)) for enc in encoders]
        for j in range(max(s.frames for s in group)):
            for seg, feed in zip(group, feeds, strict=True):
                if j < seg.frames:
                    k = seg.first + j
                    feed.put(k, *renderer.counts(k))
                    progress.advance()
    except BaseException as exc:
        stack.__exit__(type(exc), exc, exc.__traceback__)  # kills the encoders, removes temps
        raise
    drain.hand(stack, encoders)
    return sum(f.blocked_s for f in feeds)


class _Drain:
    """Finishes one group's encoders in the background while the next group renders.

    Closing an encoder waits for x264 to encode what it still holds (its lookahead, some 40
    frames at preset medium) and to write the MP4; done in line, the kernel idled meanwhile, a
    serial tail at every segment (80 segments of 25 frames took 2.2x the time of 8 of 250,
    benchmarks/segments.py). At most one group drains at a time, so two rounds of ffmpeg are
    alive at most; an encoder's failure is raised when the next group is handed over, or by
    wait().
    """

    def __init__(self) -> None:
        self.cpu_s = 0.0  # the drained encoders' ffmpeg CPU
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def hand(self, stack: ExitStack, encoders: list[Encoder]) -> None:
        try:
            self.wait()
        except BaseException as exc:
            stack.__exit__(type(exc), exc, exc.__traceback__)
            raise
        self._thread = threading.Thread(target=self._close, args=(stack, encoders),
                                        name="encoder-drain", daemon=True)
        self._thread.start()

    def _close(self, stack: ExitStack, encoders: list[Encoder]) -> None:
        try:
            stack.close()  # the colour feeds finish, then each encoder flushes and renames
        except BaseException as exc:  # noqa: BLE001 - raised in the render's thread
            self._error = exc
        finally:
            self.cpu_s += sum(e.stats.cpu_s for e in encoders)

    def wait(self) -> None:
        """Until the group draining now is finished; its error, if it failed."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def settle(self) -> None:
        """wait(), its error dropped: the render is failing or interrupted already (a segment
        that finished is kept for the resume, one that did not is rendered again)."""
        try:
            self.wait()
        except Exception:  # noqa: BLE001 - the failure under way is the one to report
            pass


def encode_frames(renderer: FrameRenderer, frames: range, encoder: Encoder, fmt: str,
                  frames_dir: Path | None = None) -> float:
    """Frames `frames` into one open encoder as render_animation's segments are made: the kernel
    on this thread, colour on a thread of its own (_ColourFeed), PNGs (if frames_dir) written in
    the background. A cluster worker's segment goes through here. Returns the seconds the
    kernel's thread waited for colour and the encoder."""
    with _png_writer(frames_dir) as png, _ColourFeed(renderer, encoder, fmt, png) as feed:
        for k in frames:
            feed.put(k, *renderer.counts(k))
    return feed.blocked_s


class _ColourFeed:
    """Colours one encoder's frames on a thread of its own and writes them to it.

    Colour then overlaps the next frame's kernel on one core instead of running as one more
    parallel region between two kernels: on a few cores shared with x264, every parallel region
    waits until all its threads get a core (measured on the 2-core spiral: colour took 14 ms a frame
    inside the pipeline against 1.8 ms alone). With one feed per encoder, colour scales with them.
    """

    def __init__(self, renderer: FrameRenderer, encoder: Encoder, fmt: str,
                 png: _PngWriter | None) -> None:
        self.renderer, self.encoder, self.fmt, self.png = renderer, encoder, fmt, png
        self.blocked_s = 0.0  # time the kernel's thread waited for room in the queue
        self._queue: queue.Queue[tuple[int, np.ndarray, np.ndarray | None] | None] = \
            queue.Queue(maxsize=COLOUR_QUEUE_FRAMES)
        self._error: BaseException | None = None
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="colour", daemon=True)

    def __enter__(self) -> _ColourFeed:
        self._thread.start()
        return self

    def put(self, k: int, counts: np.ndarray, fmod: np.ndarray | None) -> None:
        t0 = time.perf_counter()
        while True:
            if self._error is not None:
                raise self._error
            try:
                self._queue.put((k, counts, fmod), timeout=0.2)
                break
            except queue.Full:
                continue
        self.blocked_s += time.perf_counter() - t0

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is not None or self._stop:
                continue  # drain, so a blocked put() wakes up and sees the error
            k, counts, fmod = item
            try:
                frame, rgba = self.renderer.colour(counts, fmod, self.fmt,
                                                   want_rgba=self.png is not None, parallel=False)
                self.encoder.write(frame)
                if self.png is not None:
                    assert rgba is not None
                    self.png.put(k, rgba)
            except BaseException as exc:  # noqa: BLE001 - re-raised on the kernel's thread
                self._error = exc

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> None:
        if exc_type is not None:
            self._stop = True  # skip what is queued: the encoder is about to be killed
        try:
            self._queue.put(None, timeout=None if exc_type is None else 5)
        except queue.Full:  # the thread is stuck in a dying encoder; it is a daemon
            return
        self._thread.join(timeout=None if exc_type is None else 5)
        if exc_type is None and self._error is not None:
            raise self._error


def _chunks(items: list[Segment], n: int) -> Iterator[list[Segment]]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


class _PngWriter:
    """Writes PNG frames from a background thread (bounded queue, atomic files)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._queue: queue.Queue[tuple[int, np.ndarray] | None] = queue.Queue(maxsize=4)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="png", daemon=True)
        self._thread.start()

    def put(self, k: int, rgba: np.ndarray) -> None:
        if self._error is not None:
            raise RenderError(f"--frames-dir: cannot write frames: {self._error}")
        self._queue.put((k, rgba))

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is None:
                try:
                    save_png(rgb(item[1]), self.directory / f"frame-{item[0]:06d}.png")
                except OSError as exc:
                    self._error = exc

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise RenderError(f"--frames-dir: cannot write frames: {self._error}")


@contextmanager
def _png_writer(directory: Path | None) -> Iterator[_PngWriter | None]:
    if directory is None:
        yield None
        return
    writer = _PngWriter(directory)
    try:
        yield writer
    finally:
        writer.close()


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (the launcher stopping a remote render) unwinds like Ctrl-C: segments are kept."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def save_png(rgb_frame: np.ndarray, path: Path) -> None:
    from PIL import Image

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        Image.fromarray(rgb_frame, "RGB").save(tmp, format="PNG")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _check_writable(path: Path, what: str) -> None:
    """Fail before any work if the file cannot be created where asked."""
    if path.is_dir():
        raise SceneError(f"{what}: {path} is a directory")
    parent = path.parent if str(path.parent) else Path(".")
    _check_dir(parent, what)


def _check_dir(directory: Path, what: str) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SceneError(f"{what}: cannot create {directory}: {exc.strerror}") from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise SceneError(f"{what}: {directory} is not writable")


__all__ = ["FrameRenderer", "RenderOptions", "RenderSummary", "fmt_duration",
           "preview_scene", "render_animation", "render_frame_rgb", "render_still"]
