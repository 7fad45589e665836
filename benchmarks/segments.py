"""Segment length against x264's per-process cost: 5-second segments against the renderer's
default (renderer.segments: at least MIN_SEGMENT_MPX megapixels a segment), rendered alternately.

    python benchmarks/segments.py                          # quick.toml at 360 x 360, 5 fps
    python benchmarks/segments.py --side 1080 --frames 600 --fps 30   # where nothing changes

Prints, per round, each rule's wall time and ffmpeg CPU, then the medians and their ratios.
Each segment is an ffmpeg process, and x264 pays for its start and lookahead ramp; small frames
at a low frame rate paid it every few dozen frames.
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import tempfile
from dataclasses import replace
from pathlib import Path

from renderer.cores import available_cores
from renderer.render import RenderOptions, render_animation
from renderer.scene import Overrides, load_scene
from renderer.segments import SEGMENT_SECONDS, default_segment_frames

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scene", type=Path, default=ROOT / "renderer" / "examples" / "quick.toml")
    ap.add_argument("--side", type=int, default=360)
    ap.add_argument("--frames", type=int, default=2000)
    ap.add_argument("--fps", type=float, default=None, help="default: the scene's")
    ap.add_argument("--max-iterations", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    scene = load_scene(args.scene, Overrides(num_steps=args.side, num_frames=args.frames,
                                             max_iterations=args.max_iterations))
    if args.fps:
        scene = replace(scene, fps=args.fps)
    rules = {"5 s of video": max(1, min(scene.frames, math.ceil(scene.fps * SEGMENT_SECONDS))),
             "default": default_segment_frames(scene)}
    print(f"# {scene.frames} frames of {scene.width}x{scene.height} at {scene.fps:g} fps, "
          f"{scene.max_iterations} it, {available_cores()} cores, {platform.machine()}")
    for name, seg in rules.items():
        print(f"# {name}: {seg} frames a segment, {math.ceil(scene.frames / seg)} segments")
    walls: dict[str, list[float]] = {n: [] for n in rules}
    cpus: dict[str, list[float]] = {n: [] for n in rules}
    with tempfile.TemporaryDirectory() as d:
        for r in range(args.repeats):
            for name, seg in rules.items():
                out = Path(d) / f"{r}-{seg}.mp4"
                s = render_animation(replace(scene, output=out),
                                     RenderOptions(segment_frames=seg, progress=False))
                walls[name].append(s.total_s)
                cpus[name].append(s.encode_cpu_s)
                print(f"round {r + 1}  {name:>13}: {s.total_s:6.2f} s wall, ffmpeg CPU "
                      f"{s.encode_cpu_s:6.2f} s")
    old, new = "5 s of video", "default"
    w0, w1 = statistics.median(walls[old]), statistics.median(walls[new])
    c0, c1 = statistics.median(cpus[old]), statistics.median(cpus[new])
    print(f"median wall {w0:.2f} -> {w1:.2f} s ({w0 / w1:.2f}x faster); ffmpeg CPU {c0:.2f} -> "
          f"{c1:.2f} s ({c0 / c1:.2f}x less)")


if __name__ == "__main__":
    main()
