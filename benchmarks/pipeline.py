"""Whole-animation benchmark: render examples/spiral.toml to MP4 and show where the time goes.

    python benchmarks/pipeline.py            # the full 1800-frame spiral (about 1 min on 2 cores)
    python benchmarks/pipeline.py --frames 300
    python benchmarks/pipeline.py --frames 300 --pipes rgba,yuv420p --repeats 3   # A/B

Prints the pipeline's wall time and frames/s, then, measured side by side in the same run on
frames sampled evenly from the same scene, each stage alone (kernel, colour, x264 encode) per frame,
so the ratio "sum of stages / pipeline" shows what overlapping the kernel with the encoder buys.
With several --pipes (what ffmpeg is fed: RGBA it converts, or the yuv420p planes themselves; a
":inline" suffix colours on the kernel's thread with all cores between two kernels, as before
colour got a thread per encoder), the renders alternate pipe by pipe for --repeats rounds and the
medians are compared.
Targets: the whole spiral in at most 120 s on a 2-core machine (issue 2), 45 s (issue 14).
"""

from __future__ import annotations

import argparse
import platform
import resource
import tempfile
import time
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from unittest import mock

import numba
import numpy as np

from renderer import render
from renderer.colour import colourise, colourise_yuv420
from renderer.cores import available_cores
from renderer.encode import Encoder, count_frames
from renderer.kernel import set_threads
from renderer.render import FrameRenderer, RenderOptions, render_animation
from renderer.scene import load_scene

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 45.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scene", type=Path, default=ROOT / "examples" / "spiral.toml")
    ap.add_argument("--frames", type=int, default=None, help="render only this many frames")
    ap.add_argument("--stage-frames", type=int, default=60, help="frames for the stage timings")
    ap.add_argument("--pipes", default="yuv420p",
                    help="comma-separated encoder inputs to compare: rgba, yuv420p")
    ap.add_argument("--repeats", type=int, default=1, help="rounds of renders (one per pipe)")
    args = ap.parse_args()
    pipes = [p.strip() for p in args.pipes.split(",") if p.strip()]

    scene = load_scene(args.scene)
    if args.frames:
        # Same c range, fewer frames: the work per frame stays representative.
        scene = replace(scene, frames=args.frames)
    cores = available_cores()
    print(f"# {scene.frames} frames of {scene.width}x{scene.height}, {scene.max_iterations} "
          f"iterations, {scene.colour_mode} colouring, {scene.encoding.codec} "
          f"{scene.encoding.preset} crf {scene.encoding.crf}")
    print(f"# {platform.processor() or platform.machine()}, {cores} cores, numba "
          f"{numba.__version__}, numpy {np.__version__}")

    walls: dict[str, list[float]] = {p: [] for p in pipes}
    cpus: dict[str, list[float]] = {p: [] for p in pipes}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.mp4"
        for r in range(args.repeats):
            for pipe in pipes:
                fmt, _, how = pipe.partition(":")
                inline = mock.patch.object(render, "_ColourFeed", _InlineFeed) \
                    if how == "inline" else nullcontext()
                cpu0 = _cpu_s()
                with inline:
                    summary = render_animation(replace(scene, output=out),
                                               RenderOptions(progress=False, encoder_input=fmt))
                cpu = _cpu_s() - cpu0
                assert count_frames(out) == scene.frames
                print(f"\n[round {r + 1}, {pipe} pipe, load {_load()}]")
                print(summary.report())
                print(f"CPU (this process + ffmpeg) {cpu:.1f} s = "
                      f"{cpu / scene.frames * 1e3:.1f} ms/frame")
                walls[pipe].append(summary.total_s)
                cpus[pipe].append(cpu)
        print()
        for pipe, ws in walls.items():
            wall = float(np.median(ws))
            verdict = "meets" if scene.frames == 1800 and wall <= TARGET_S else "see"
            print(f"pipeline ({pipe} pipe): median {wall:.1f} s of {len(ws)} "
                  f"({', '.join(f'{w:.1f}' for w in ws)}) for {scene.frames} frames = "
                  f"{scene.frames / wall:.1f} frames/s ({verdict} the {TARGET_S:.0f} s target "
                  f"for the 1800-frame spiral); CPU median "
                  f"{float(np.median(cpus[pipe])) / scene.frames * 1e3:.1f} ms/frame")
        if len(pipes) == 2:
            a, b = (float(np.median(walls[p])) for p in pipes)
            ca, cb = (float(np.median(cpus[p])) for p in pipes)
            print(f"{pipes[0]} / {pipes[1]}: wall time {a / b:.3f}x, CPU {ca / cb:.3f}x")

        stage = _stages(scene, args.stage_frames, Path(tmp), cores)
    last = pipes[-1].partition(":")[0]
    per_frame_pipeline = float(np.median(walls[pipes[-1]])) / scene.frames
    total_stages = sum(v for k, v in stage.items() if k in _PATH[last])
    print()
    print(f"{'stage alone (ms/frame)':<34}{'ms':>8}{'share':>8}")
    for name, s in stage.items():
        share = f"{s / total_stages:>8.0%}" if name in _PATH[last] else f"{'':>8}"
        print(f"{name:<34}{s * 1e3:>8.2f}{share}")
    print(f"{'sum of stages (' + pipes[-1] + ')':<34}{total_stages * 1e3:>8.2f}")
    print(f"{'pipeline (overlapped)':<34}{per_frame_pipeline * 1e3:>8.2f}")
    print(f"ratio sum-of-stages / pipeline: {total_stages / per_frame_pipeline:.2f}x")


class _InlineFeed(render._ColourFeed):
    """Colour as it was before the colour threads: on the kernel's thread, all cores."""

    def __enter__(self) -> _InlineFeed:
        return self

    def put(self, k: int, counts: np.ndarray, fmod: np.ndarray | None) -> None:
        frame, rgba = self.renderer.colour(counts, fmod, self.fmt, want_rgba=self.png is not None)
        t0 = time.perf_counter()
        self.encoder.write(frame)
        self.blocked_s += time.perf_counter() - t0
        if self.png is not None:
            self.png.put(k, rgba)

    def __exit__(self, *exc: object) -> None:
        return None


def _cpu_s() -> float:
    """User + system CPU seconds of this process and its reaped children (ffmpeg)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _load() -> str:
    """The 1-minute load average: how much else was running (the machine is shared)."""
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


# The stages each pipe's frames go through.
_PATH = {"rgba": ("kernel", "colour → RGBA", "encode (RGBA pipe, all cores)"),
         "yuv420p": ("kernel", "colour → yuv420p", "encode (yuv420p pipe, all cores)")}


def _stages(scene, n: int, tmp: Path, cores: int) -> dict[str, float]:
    """Per-frame seconds of each stage run alone on n frames sampled evenly through the scene."""
    set_threads(cores)
    fr = FrameRenderer(scene)
    ks = np.linspace(0, scene.frames - 1, n).round().astype(int)
    fr.counts(0)  # compile / load the cache outside the timing
    t0 = time.perf_counter()
    results = [fr.counts(int(k)) for k in ks]
    kernel = (time.perf_counter() - t0) / n
    t0 = time.perf_counter()
    frames = [colourise(fr.palette, c, f, scene.supersample) for c, f in results]
    colour = (time.perf_counter() - t0) / n
    t0 = time.perf_counter()
    planes = [colourise_yuv420(fr.palette, c, f, scene.supersample) for c, f in results]
    colour_yuv = (time.perf_counter() - t0) / n
    encode = {}
    for fmt, imgs in (("rgba", frames), ("yuv420p", planes)):
        t0 = time.perf_counter()
        with Encoder(tmp / "stage.mp4", scene.width, scene.height, scene.fps, scene.encoding,
                     input_format=fmt) as enc:
            for img in imgs:
                enc.write(img)
        encode[fmt] = (time.perf_counter() - t0) / n
    return {"kernel": kernel, "colour → RGBA": colour, "colour → yuv420p": colour_yuv,
            "encode (RGBA pipe, all cores)": encode["rgba"],
            "encode (yuv420p pipe, all cores)": encode["yuv420p"]}


if __name__ == "__main__":
    main()
