"""Segments against x264's per-process costs, rendered alternately in one run:

- "before": 5-second segments, each encoder closed in line (the kernel waits while x264 drains
  its lookahead and writes the MP4): the renderer before this change;
- "longer": the default segments (renderer.segments: at least MIN_SEGMENT_MPX megapixels a
  segment for small frames), closed in line;
- "now": the default segments, each group's encoders drained in the background while the next
  group renders (render._Drain).

    python benchmarks/segments.py                          # quick.toml at 360 x 360, 5 fps
    python benchmarks/segments.py --scene renderer/examples/spiral.toml --side 1080 \
        --frames 600 --max-iterations 500                   # 1080p: the drain alone

Prints, per round, each configuration's wall time and ffmpeg CPU, then medians and ratios.
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import tempfile
from dataclasses import replace
from pathlib import Path
from unittest import mock

from renderer import render
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
    five_s = max(1, min(scene.frames, math.ceil(scene.fps * SEGMENT_SECONDS)))
    configs = {"before": (five_s, True), "longer": (default_segment_frames(scene), True),
               "now": (default_segment_frames(scene), False)}
    print(f"# {scene.frames} frames of {scene.width}x{scene.height} at {scene.fps:g} fps, "
          f"{scene.max_iterations} it, {available_cores()} cores, {platform.machine()}")
    for name, (seg, inline) in configs.items():
        print(f"# {name}: {seg} frames a segment, {math.ceil(scene.frames / seg)} segments, "
              f"{'closed in line' if inline else 'drained in the background'}")
    walls: dict[str, list[float]] = {n: [] for n in configs}
    cpus: dict[str, list[float]] = {n: [] for n in configs}
    with tempfile.TemporaryDirectory() as d:
        for r in range(args.repeats):
            for name, (seg, inline) in configs.items():
                out = Path(d) / f"{r}-{name}.mp4"
                with mock.patch.object(render, "_Drain", InlineDrain if inline else render._Drain):
                    s = render_animation(replace(scene, output=out),
                                         RenderOptions(segment_frames=seg, progress=False))
                walls[name].append(s.total_s)
                cpus[name].append(s.encode_cpu_s)
                print(f"round {r + 1}  {name:>7}: {s.total_s:6.2f} s wall, ffmpeg CPU "
                      f"{s.encode_cpu_s:6.2f} s", flush=True)
    w0, c0 = statistics.median(walls["before"]), statistics.median(cpus["before"])
    for name in ("longer", "now"):
        w1, c1 = statistics.median(walls[name]), statistics.median(cpus[name])
        print(f"before -> {name}: median wall {w0:.2f} -> {w1:.2f} s ({w0 / w1:.2f}x faster); "
              f"ffmpeg CPU {c0:.2f} -> {c1:.2f} s ({c0 / c1:.2f}x less)")


class InlineDrain(render._Drain):
    """The renderer before the background drain: each group's encoders close in line."""

    def hand(self, stack, encoders) -> None:  # type: ignore[no-untyped-def]
        super().hand(stack, encoders)
        self.wait()


if __name__ == "__main__":
    main()
