"""Frames → MP4: ffmpeg as a subprocess fed raw frames on stdin from a writer thread; concat.

Frames arrive as RGBA (ffmpeg converts them to the scene's pixel format with the BT.709 matrix) or,
for yuv420p video, already as BT.709 limited-range I420 planes (renderer.colour.colourise_yuv420):
then ffmpeg converts nothing and the pipe carries 1.5 bytes a pixel instead of 4.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np

from renderer.errors import EncoderError
from renderer.scene import Encoding

# Frames queued between the renderer and ffmpeg's stdin: enough to keep both busy, and what bounds
# the renderer's memory whatever the frame count.
QUEUE_FRAMES = 3
_STOP = object()
# What Encoder.write accepts: RGBA words, or the I420 planes of the video itself.
INPUT_FORMATS = ("rgba", "yuv420p")
# The colour tags every video carries (what the planes are, and what HD players assume).
_COLOUR_TAGS = ["-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709"]



# Cores per concurrently running encoder: x264 at 1080p scales well to about this many threads.
CORES_PER_ENCODER = 8
MAX_ENCODERS = 8


def encoders_for(cores: int, segments: int) -> int:
    """Encoders (segments in flight) a render on `cores` cores runs at once."""
    return max(1, min(MAX_ENCODERS, cores // CORES_PER_ENCODER, segments))


def find_ffmpeg() -> str:
    """ffmpeg from PATH, else the one shipped by imageio-ffmpeg (a fresh machine needs no apt)."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as exc:  # noqa: BLE001 - any failure means "no ffmpeg"
        raise EncoderError(
            "ffmpeg not found: install it (apt install ffmpeg) or `pip install imageio-ffmpeg`"
        ) from exc


def direct_input(encoding: Encoding) -> str:
    """The input format that needs no conversion in ffmpeg for this encoding, else "rgba"."""
    return "yuv420p" if encoding.pix_fmt == "yuv420p" else "rgba"


def encoder_args(encoding: Encoding, input_format: str = "rgba") -> list[str]:
    """ffmpeg output options for the scene's codec settings (identical for every segment).

    From "rgba" ffmpeg converts with the BT.709 matrix to limited range; from "yuv420p" (only for
    yuv420p video) the planes already are that, so they pass through with the same tags.
    """
    args = ["-c:v", encoding.codec]
    if encoding.codec in ("libx264", "libx265", "h264", "hevc"):
        args += ["-crf", str(encoding.crf), "-preset", encoding.preset]
    elif encoding.codec == "libvpx-vp9":
        args += ["-crf", str(encoding.crf), "-b:v", "0"]
    else:  # mpeg4: quality scale instead of crf (2 best .. 31 worst)
        args += ["-q:v", str(max(2, min(31, encoding.crf // 2)))]
    if input_format == "rgba":
        # RGB → YUV with the BT.709 matrix every HD player assumes, and say so in the stream.
        args += ["-vf", "scale=out_color_matrix=bt709:out_range=tv"]
    elif input_format != direct_input(encoding):
        raise ValueError(f"cannot encode {encoding.pix_fmt} video from {input_format} frames")
    else:
        args += ["-color_range", "tv"]
    return [*args, "-pix_fmt", encoding.pix_fmt, *_COLOUR_TAGS]


def _input_args(input_format: str) -> list[str]:
    if input_format == "rgba":
        return ["-pix_fmt", "rgba"]
    # Tag the raw planes as what they are, so no filter thinks it must convert them.
    return ["-pix_fmt", input_format, "-color_range", "tv", *_COLOUR_TAGS]


@dataclass
class EncoderStats:
    frames: int = 0
    blocked_s: float = 0.0  # time the renderer waited for room in the queue (encoder-bound)
    cpu_s: float = 0.0      # ffmpeg's user + system CPU time


class Encoder:
    """One MP4 written by one ffmpeg process; the file appears at `path` only when complete.

    Use as a context manager: a clean exit closes stdin, waits for ffmpeg and renames the temp file;
    an exception (Ctrl-C included) kills ffmpeg and removes the temp file.

    `input_format` says what write() gets: "rgba" (H, W, 4) uint8 frames, or "yuv420p" I420
    buffers of W*H*3/2 bytes from renderer.colour.colourise_yuv420 (yuv420p video only).
    """

    def __init__(self, path: Path, width: int, height: int, fps: float, encoding: Encoding,
                 *, ffmpeg: str | None = None, threads: int | None = None,
                 input_format: str = "rgba") -> None:
        if input_format not in INPUT_FORMATS:
            raise ValueError(f"input_format must be one of {INPUT_FORMATS}, got {input_format!r}")
        self.path = Path(path)
        self.width, self.height, self.fps = width, height, fps
        self.encoding = encoding
        self.input_format = input_format
        self._args = encoder_args(encoding, input_format)  # refuses a mismatched pair up front
        self.ffmpeg = ffmpeg or find_ffmpeg()
        self.threads = threads
        self.stats = EncoderStats()
        self._queue: queue.Queue[object] = queue.Queue(maxsize=QUEUE_FRAMES)
        self._proc: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        self._log = tempfile.TemporaryFile()

    def __enter__(self) -> Encoder:
        argv = [self.ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
                "-f", "rawvideo", *_input_args(self.input_format),
                "-s", f"{self.width}x{self.height}", "-framerate", f"{self.fps:g}", "-i", "-",
                "-an"]
        if self.threads:
            argv += ["-threads", str(self.threads)]
        argv += [*self._args, "-f", "mp4", str(self._tmp)]
        try:
            self._proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                          stderr=self._log)
        except OSError as exc:
            raise EncoderError(f"cannot start ffmpeg ({self.ffmpeg}): {exc}") from exc
        self._thread = threading.Thread(target=self._pump, name="encoder", daemon=True)
        self._thread.start()
        return self

    def write(self, frame: np.ndarray) -> None:
        """Queue one frame in the input format; blocks while the queue is full."""
        if self.input_format == "rgba":
            shape: tuple[int, ...] = (self.height, self.width, 4)
        else:
            shape = (self.width * self.height * 3 // 2,)
        if frame.shape != shape or frame.dtype != np.uint8 or not frame.flags.c_contiguous:
            raise ValueError(f"frame {frame.shape} {frame.dtype} != {shape} uint8 contiguous "
                             f"({self.input_format})")
        t0 = time.perf_counter()
        while True:
            if self._error is not None:
                raise self._failure()
            try:
                self._queue.put(frame, timeout=0.2)
                break
            except queue.Full:
                continue
        self.stats.blocked_s += time.perf_counter() - t0
        self.stats.frames += 1

    def _pump(self) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        try:
            while (item := self._queue.get()) is not _STOP:
                self._proc.stdin.write(memoryview(item).cast("B"))  # type: ignore[arg-type]
        except BaseException as exc:  # noqa: BLE001 - reported to the renderer thread
            self._error = exc
            # Keep draining so a blocked put() in the renderer wakes up and sees the error.
            while self._queue.get() is not _STOP:
                pass

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        assert self._proc is not None and self._thread is not None
        try:
            if exc_type is None:
                self._finish()
            else:
                self._abort()
        finally:
            self._log.close()

    def _finish(self) -> None:
        assert self._proc is not None and self._thread is not None
        self._queue.put(_STOP)
        self._thread.join()
        try:
            self._proc.stdin.close()  # type: ignore[union-attr]
        except OSError:
            pass
        code = self._wait()
        if self._error is not None or code != 0:
            self._tmp.unlink(missing_ok=True)
            raise self._failure()
        os.replace(self._tmp, self.path)

    def _abort(self) -> None:
        assert self._proc is not None and self._thread is not None
        self._proc.kill()
        try:
            self._queue.put_nowait(_STOP)
        except queue.Full:
            pass
        self._thread.join(timeout=5)
        self._wait()
        self._tmp.unlink(missing_ok=True)

    def _wait(self) -> int:
        """Reap ffmpeg and record its CPU time (os.wait4 gives the child's own rusage)."""
        assert self._proc is not None
        if self._proc.returncode is not None:
            return self._proc.returncode
        try:
            _, status, usage = os.wait4(self._proc.pid, 0)
            self._proc.returncode = os.waitstatus_to_exitcode(status)
            self.stats.cpu_s += usage.ru_utime + usage.ru_stime
        except ChildProcessError:
            self._proc.wait()
        return int(self._proc.returncode)

    def _failure(self) -> EncoderError:
        self._log.seek(0)
        tail = self._log.read().decode(errors="replace").strip().splitlines()
        detail = tail[-1] if tail else (repr(self._error) if self._error else "no output")
        return EncoderError(f"ffmpeg failed encoding {self.path.name}: {detail}")


def concat(segments: list[Path], output: Path, *, ffmpeg: str | None = None) -> None:
    """Join MP4 segments with identical settings into `output` without re-encoding (atomic)."""
    ffmpeg = ffmpeg or find_ffmpeg()
    output = Path(output)
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as listing:
        for seg in segments:
            quoted = str(Path(seg).resolve()).replace("'", r"'\''")
            listing.write(f"file '{quoted}'\n")
    try:
        proc = subprocess.run(
            [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-f", "concat",
             "-safe", "0", "-i", listing.name, "-c", "copy", "-movflags", "+faststart",
             "-f", "mp4", str(tmp)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
        if proc.returncode != 0:
            tmp.unlink(missing_ok=True)
            last = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["?"]
            raise EncoderError(f"ffmpeg could not join the segments: {last[0]}")
        os.replace(tmp, output)
    finally:
        os.unlink(listing.name)


_FRAME = re.compile(rb"frame=\s*(\d+)")


def count_frames(path: Path, *, ffmpeg: str | None = None) -> int:
    """Video frames in a file, counted by demuxing it (no decode)."""
    proc = subprocess.run(
        [ffmpeg or find_ffmpeg(), "-hide_banner", "-nostdin", "-i", str(path), "-map", "0:v:0",
         "-c", "copy", "-f", "null", "-"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    found = _FRAME.findall(proc.stderr)
    if proc.returncode != 0 or not found:
        raise EncoderError(f"cannot read {path}")
    return int(found[-1])
