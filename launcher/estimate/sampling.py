"""The scene's own work, measured on a sample: kernel iterations, and x264 at the scene's size.

- Kernel: `sample_work` renders a stratified sample of frames at reduced resolution with the real
  kernel (same exact symmetry and periodicity savings as the full render) and counts the
  iterations it executes; per-sample counts are resolution-independent to first order, so they
  scale by (full samples / sample samples). The error is half the spread between two interleaved
  halves of the frame sample (the standard error of their mean), combined with the change seen
  when the sample resolution is halved (resolution bias).
- Encoder: `probe_encoder` renders consecutive frames from the middle of the scene through the
  renderer's own frame path (supersampling, colour map, mode) at the scene's size, up to
  ENCODE_PROBE_PX, and encodes them with the scene's codec, preset and crf: ffmpeg CPU seconds
  per megapixel-frame and bytes of MP4 per pixel-frame (what the pull downloads).
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from renderer.scene import Scene, resized
from renderer.segments import default_segment_frames, plan_segments

SAMPLE_FRAMES = 24          # frames sampled, spread evenly over the animation (stratified)
SAMPLE_MAX_SAMPLES = 96_000  # samples per sampled frame (about 310 x 310): ~1 ms each here
# Encoder probe: x264's cost per pixel depends on the frame's size (its per-frame costs weigh
# more on small frames), so the probe encodes at the scene's own size up to about a 1080 x 1080
# frame's area, and at that area with the scene's aspect beyond it (4K).
ENCODE_PROBE_PX = 1_200_000
# Kernel samples the probe may render per frame (supersampled scenes shrink the probe's frame).
ENCODE_PROBE_SAMPLES = 4_200_000
# Consecutive frames encoded: a short run and a long one, whose difference takes out ffmpeg's
# start-up, the costly first key frame and x264's lookahead filling. Measured on 900 spiral
# frames, whose render's x264 took 22.6 ms per Mpx: 16 - 4 frames gave 40.5, 40 - 10 gave 27.5,
# 80 - 20 gave 24.5 and 80 - 40 gave 22.6 ms per Mpx; the short run must outlast the lookahead,
# and the difference be long enough that the CPU clock's noise on either run matters little.
ENCODE_PROBE_FRAMES = 72
ENCODE_PROBE_SHORT = 24
# ... at least: every probe encodes about ENCODE_PROBE_MPX megapixels (72 frames of
# 1080 x 1080, up to 720 of smaller ones). x264's CPU on 72 frames of 360 x 360 is a tenth of a
# second, within its clock's noise ("long: quick 360px" was estimated 25% apart in two runs; 3
# probes now say 0.0133-0.0137 s/Mpx where its render spent 0.0136). 168 Mpx was tried: no
# better on the benchmark (its run-to-run noise at 1080 x 1080, +/-12%, stayed) for twice the
# sampling time (up to 14 s a scene).
ENCODE_PROBE_MPX = 84.0
ENCODE_PROBE_MAX_FRAMES = 720
# The probe's frames come in this many runs spread over the animation (see probe_encoder_cost).
# Measured against the renders' own x264 CPU (dark-to-yellow 12.5, spiral 22.6 ms per Mpx): 3 runs
# said 20-24 and 18-19, 6 runs 9-11 and 24-26; dark-to-yellow's empty ends were missed by 3.
ENCODE_PROBE_STRETCHES = 6
# Each run is encoded this many times and its least CPU kept: one run's ffmpeg CPU scattered by
# 10-25% here (x264's threads against whatever else runs), and disturbance only ever adds.
ENCODE_PROBE_REPEATS = 2


# x264's cost per ffmpeg process (one per segment) beyond its frames' steady cost: its start,
# measured with benchmarks/segments.py (360 x 360, 2000 frames: 80 segments against 8 cost
# 4.8 s more ffmpeg CPU, 0.067 s a process) and by encoding 1 to 100 frames in one process (the
# intercept: 0.07 s at 360 x 360 and at 1080 x 1080). The encoder probe's per-frame cost comes
# from a long and a short run's difference, so it leaves this out.
X264_PROCESS_S = 0.07


@dataclass(frozen=True)
class EncodeProbe:
    """x264 on the scene's own frames, per megapixel-frame and per pixel-frame."""

    cpu_s_per_mpx: float
    bytes_per_px: float
    side_px: tuple[int, int]


@dataclass(frozen=True)
class WorkSample:
    """The scene's work, scaled from a reduced sample to the full render."""

    frames: int
    samples_per_frame: int
    executed_giter: float        # z-steps the real kernel executes (after exact savings)
    useful_giter: float          # sum of counts: what run records' throughput is measured in
    computed_msamples: float     # samples actually iterated (the mirror computes about half)
    rel_error: float             # expected relative error of executed_giter (1 sigma)
    sampled_frames: int
    sample_side_px: tuple[int, int]
    encode_cpu_s_per_mpx: float  # ffmpeg CPU s per megapixel-frame, probed on this scene
    sample_s: float              # wall time the sampling took
    output_bytes_per_px: float | None = None  # MP4 bytes per pixel-frame, probed (None: not)


def sample_frame_indices(frames: int, n: int = SAMPLE_FRAMES) -> list[int]:
    """n frame numbers, one from the middle of each of n equal stretches (all if frames <= n)."""
    if frames <= n:
        return list(range(frames))
    return [min(frames - 1, int((i + 0.5) * frames / n)) for i in range(n)]


def sample_size(width: int, height: int, max_samples: int = SAMPLE_MAX_SAMPLES
                ) -> tuple[int, int]:
    """A reduced (w, h) with the frame's aspect, at most max_samples, parity kept (so a centred
    view stays mirror-symmetric in the same way)."""
    f = min(1.0, math.sqrt(max_samples / (width * height)))
    w, h = max(8, round(width * f)), max(8, round(height * f))
    w += (w - width) % 2
    h += (h - height) % 2
    return min(w, width), min(h, height)


def _frame_work(scene: Scene, ks: Sequence[int], w: int, h: int) -> list[tuple[int, int]]:
    """(executed, useful) iterations of frames ks rendered at w x h with the real kernel."""
    from renderer.grid import sample_grid
    from renderer.kernel import escape_counts

    v = scene.view
    xs, ys = sample_grid(v.center_x, v.center_y, v.half_width, v.half_height, w, h, 1)
    out = []
    for k in ks:
        st: dict[str, int] = {}
        counts, _ = escape_counts(xs, ys, scene.c_at_frame(k), scene.max_iterations,
                                  scene.escape_radius, stats=st)
        out.append((st["iterations"], int(counts.sum(dtype="int64"))))
    return out


def sample_work(scene: Scene, n_frames: int = SAMPLE_FRAMES,
                max_samples: int = SAMPLE_MAX_SAMPLES, probe_encoder: bool = True) -> WorkSample:
    """Count the scene's iterations on a sparse, reduced sample and scale to the full render."""
    t0 = time.perf_counter()
    full_w, full_h = scene.width * scene.supersample, scene.height * scene.supersample
    w, h = sample_size(full_w, full_h, max_samples)
    ks = sample_frame_indices(scene.frames, n_frames)
    work = _frame_work(scene, ks, w, h)
    # Resolution bias: every other sampled frame again at half the sample's side.
    hw, hh = sample_size(full_w, full_h, max_samples // 4)
    coarse = _frame_work(scene, ks[::2], hw, hh) if (hw, hh) != (w, h) else []
    scale = (full_w * full_h) / (w * h)
    executed = [e for e, _ in work]
    mean_exec = statistics.fmean(executed)
    rel_sampling = 0.0
    if len(executed) >= 4 and mean_exec > 0:
        a, b = statistics.fmean(executed[0::2]), statistics.fmean(executed[1::2])
        rel_sampling = abs(a - b) / 2 / mean_exec
    rel_resolution = 0.0
    if coarse and mean_exec > 0:
        fine_px = statistics.fmean(executed[0::2]) / (w * h)
        coarse_px = statistics.fmean(e for e, _ in coarse) / (hw * hh)
        # Halving the side moved the per-sample work by d; the sample is assumed to sit within
        # about half that of the full resolution (first-order convergence in the pixel size).
        rel_resolution = abs(coarse_px - fine_px) / fine_px / 2 if fine_px > 0 else 0.0
    mirrored = scene.view.centred_on_origin
    computed_per_frame = (full_w * ((full_h + 1) // 2) if mirrored else full_w * full_h)
    probe = probe_encoder_cost(scene) if probe_encoder else None
    return WorkSample(
        frames=scene.frames,
        samples_per_frame=full_w * full_h,
        executed_giter=mean_exec * scale * scene.frames / 1e9,
        useful_giter=statistics.fmean(u for _, u in work) * scale * scene.frames / 1e9,
        computed_msamples=computed_per_frame * scene.frames / 1e6,
        rel_error=math.hypot(rel_sampling, rel_resolution),
        sampled_frames=len(ks),
        sample_side_px=(w, h),
        encode_cpu_s_per_mpx=probe.cpu_s_per_mpx if probe else 0.0,
        sample_s=time.perf_counter() - t0,
        output_bytes_per_px=probe.bytes_per_px if probe else None,
    )


def probe_size(scene: Scene, max_px: int = ENCODE_PROBE_PX,
               max_samples: int = ENCODE_PROBE_SAMPLES) -> tuple[int, int]:
    """The probe's frame: the scene's size, shrunk (aspect kept) to at most max_px pixels and
    max_samples kernel samples; even sides, as x264's 4:2:0 needs."""
    ss2 = scene.supersample * scene.supersample
    f = min(1.0, math.sqrt(min(max_px, max_samples // ss2) / (scene.width * scene.height)))
    return max(2, int(scene.width * f) // 2 * 2), max(2, int(scene.height * f) // 2 * 2)


def _encoded(frames: Sequence[object], scene: Scene, w: int, h: int, input_format: str
             ) -> tuple[float, int]:
    """(ffmpeg CPU s, MP4 bytes) of encoding `frames` with the scene's settings."""
    from renderer.encode import Encoder

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "probe.mp4"
        e = Encoder(path, w, h, scene.fps, scene.encoding, input_format=input_format)
        with e:
            for f in frames:
                e.write(f)
        return e.stats.cpu_s, path.stat().st_size


def _least_cpu(frames: Sequence[object], scene: Scene, w: int, h: int, input_format: str,
               repeats: int = ENCODE_PROBE_REPEATS) -> tuple[float, int]:
    """_encoded, repeated: the least ffmpeg CPU (the bytes are the same every time)."""
    runs = [_encoded(frames, scene, w, h, input_format) for _ in range(max(1, repeats))]
    return min(cpu for cpu, _ in runs), runs[0][1]


def probe_stretches(frames: int, n: int, stretches: int) -> list[list[int]]:
    """`stretches` runs of n // stretches consecutive frame numbers, centred in equal parts of
    the animation (fewer, shorter ones for a short scene)."""
    per = max(2, n // stretches)
    count = max(1, min(stretches, frames // per))
    out = []
    for i in range(count):
        centre = int((i + 0.5) * frames / count)
        k0 = min(max(0, centre - per // 2), max(0, frames - per))
        out.append(list(range(k0, min(frames, k0 + per))))
    return out


def probe_encoder_cost(scene: Scene, frames: int = ENCODE_PROBE_FRAMES,
                       short: int = ENCODE_PROBE_SHORT, max_px: int = ENCODE_PROBE_PX,
                       stretches: int = ENCODE_PROBE_STRETCHES) -> EncodeProbe:
    """ffmpeg CPU seconds per megapixel-frame and MP4 bytes per pixel-frame for this scene.

    x264's cost depends on how much consecutive frames differ, and that changes along an
    animation (a quiet stretch may cost a third of a busy one), so the probe encodes runs of
    consecutive frames from several parts of the scene, one after the other, rendered as the
    render renders them. Its start-up, each run's first (key) frame and x264's lookahead filling
    are taken out by encoding the first half of every run alone too, and keeping the difference:
    what a long render pays per frame.
    """
    from renderer.encode import direct_input
    from renderer.render import FrameRenderer

    w, h = probe_size(scene, max_px)
    fr = FrameRenderer(resized(scene, w, h))
    by_pixels = math.ceil(ENCODE_PROBE_MPX * 1e6 / (w * h))
    wanted = max(frames, min(ENCODE_PROBE_MAX_FRAMES, by_pixels))
    short = short * wanted // frames
    frames = wanted
    runs = probe_stretches(scene.frames, max(2, min(frames, scene.frames)), stretches)
    # What the render hands ffmpeg (planes it need not convert, where the pixel format allows).
    fmt = direct_input(scene.encoding)
    imgs = [[fr.video_frame(k, fmt)[0] for k in run] for run in runs]
    halves = [run[: max(1, len(run) * short // frames)] for run in imgs]
    long_frames = [f for run in imgs for f in run]
    short_frames = [f for run in halves for f in run]
    long_cpu, long_bytes = _least_cpu(long_frames, scene, w, h, fmt)
    short_cpu, short_bytes = _least_cpu(short_frames, scene, w, h, fmt)
    extra = len(long_frames) - len(short_frames)
    per_frame = max(long_cpu - short_cpu, 0.0) / extra if extra else 0.0
    if per_frame <= 0.0:  # a clock too coarse for the probe: fall back to the plain average
        per_frame = long_cpu / len(long_frames)
    per_frame_bytes = ((max(long_bytes - short_bytes, 0) / extra if extra else 0)
                       or long_bytes / len(long_frames))
    return EncodeProbe(cpu_s_per_mpx=per_frame / (w * h / 1e6),
                       bytes_per_px=per_frame_bytes / (w * h), side_px=(w, h))


def encoder_processes_cpu_s(scene: Scene) -> float:
    """x264 CPU seconds the render's ffmpeg processes (one per segment) cost to start."""
    return X264_PROCESS_S * len(plan_segments(scene.frames, default_segment_frames(scene)))
