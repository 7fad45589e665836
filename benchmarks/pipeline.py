"""Whole-animation benchmark: render examples/spiral.toml to MP4 and show where the time goes.

    python benchmarks/pipeline.py            # the full 1800-frame spiral (about 1.5 min on 2 cores)
    python benchmarks/pipeline.py --frames 300

Prints the pipeline's wall time and frames/s, then, measured side by side in the same run on
frames sampled evenly from the same scene, each stage alone (kernel, colour, x264 encode) per frame,
so the ratio "sum of stages / pipeline" shows what overlapping the kernel with the encoder buys.
Target (issue 2): the whole spiral in at most 120 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numba
import numpy as np

from renderer.colour import colourise
from renderer.cores import available_cores
from renderer.encode import Encoder, count_frames
from renderer.kernel import set_threads
from renderer.render import FrameRenderer, RenderOptions, render_animation
from renderer.scene import load_scene

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 120.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scene", type=Path, default=ROOT / "examples" / "spiral.toml")
    ap.add_argument("--frames", type=int, default=None, help="render only this many frames")
    ap.add_argument("--stage-frames", type=int, default=60, help="frames for the stage timings")
    args = ap.parse_args()

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

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.mp4"
        summary = render_animation(replace(scene, output=out), RenderOptions(progress=False))
        assert count_frames(out) == scene.frames
        print()
        print(summary.report())
        wall = summary.total_s
        verdict = "meets" if scene.frames == 1800 and wall <= TARGET_S else "see"
        print(f"pipeline: {wall:.1f} s for {scene.frames} frames = {scene.frames / wall:.1f} "
              f"frames/s ({verdict} the {TARGET_S:.0f} s target for the 1800-frame spiral)")

        stage = _stages(scene, args.stage_frames, Path(tmp), cores)
    per_frame_pipeline = wall / scene.frames
    total_stages = sum(stage.values())
    print()
    print(f"{'stage alone (ms/frame)':<28}{'ms':>8}{'share':>8}")
    for name, s in stage.items():
        print(f"{name:<28}{s * 1e3:>8.2f}{s / total_stages:>8.0%}")
    print(f"{'sum of stages':<28}{total_stages * 1e3:>8.2f}")
    print(f"{'pipeline (overlapped)':<28}{per_frame_pipeline * 1e3:>8.2f}")
    print(f"ratio sum-of-stages / pipeline: {total_stages / per_frame_pipeline:.2f}x")


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
    with Encoder(tmp / "stage.mp4", scene.width, scene.height, scene.fps, scene.encoding) as enc:
        for frame in frames:
            enc.write(frame)
    encode = (time.perf_counter() - t0) / n
    return {"kernel": kernel, "colour": colour, "encode (x264, all cores)": encode}


if __name__ == "__main__":
    main()
