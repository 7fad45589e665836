"""Accuracy of `launcher estimate` on this machine: estimated vs measured render time per scene.

    python benchmarks/estimate.py            # every example scene, each about a minute
    python benchmarks/estimate.py --quick    # a quarter of the frames (about 15 s each)

Each example scene is scaled (CLI-style overrides) to a size that renders in about a minute here,
estimated with launcher.estimate.model (the local row: sampled kernel work x cached calibration x
probed encoder cost), then rendered for real by `renderer render` (a fresh process, all cores,
so start-up counts as it does for the user), and the two times compared. Target (issue 5):
every scene within +/-20%.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import fields
from pathlib import Path

from launcher.estimate.model import calibrate, local_row, sample_work
from renderer.scene import Overrides, load_scene

ROOT = Path(__file__).resolve().parents[1]
TARGET = 0.20
# scene file, overrides: sizes chosen so each render takes about a minute on 2 cores.
CASES: list[tuple[str, Overrides]] = [
    ("quick.toml", Overrides(num_steps=720, max_iterations=300, num_frames=600)),
    ("spiral.toml", Overrides(num_frames=900)),
    ("dark-to-yellow.toml", Overrides(num_frames=1200, max_iterations=800)),
    ("4k-keyframes.toml", Overrides(width=1280, height=720, num_frames=240)),
]


def cli_args(ov: Overrides) -> list[str]:
    """The same overrides as `renderer render` flags (--num-frames 900, ...)."""
    out: list[str] = []
    for f in fields(ov):
        v = getattr(ov, f.name)
        if v is not None and f.name != "output":
            out += ["--" + f.name.replace("_", "-"), str(v)]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a quarter of the frames")
    ap.add_argument("--recalibrate", action="store_true", help="measure, ignoring the cache")
    args = ap.parse_args()
    cal = calibrate(refresh=args.recalibrate)
    print(f"# {platform.processor() or platform.machine()}, {cal.local_cores} cores, "
          f"calibration {cal.measured_at}: {1 / cal.kernel_s_per_giter:.2f} G exec it/s/core, "
          f"{cal.kernel_s_per_msample * 1e3:.1f} ms/M samples, local efficiency "
          f"{cal.local_efficiency:.2f}")
    head = (f"{'scene':<22}{'size':>16}{'frames':>8}{'iter':>6}{'est s':>9}{'+/-%':>6}"
            f"{'meas s':>9}{'error':>8}{'sample s':>10}")
    print(head)
    print("-" * len(head))
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for name, ov in CASES:
            if args.quick and ov.num_frames:
                ov = Overrides(**{**ov.__dict__, "num_frames": ov.num_frames // 4})
            scene = load_scene(ROOT / "examples" / name,
                               Overrides(**{**ov.__dict__, "output": Path(tmp) / f"{name}.mp4"}))
            work = sample_work(scene)
            est = local_row(work, scene, cal).render_s
            argv = [sys.executable, "-m", "renderer.cli", "render", str(ROOT / "examples" / name),
                    "-o", str(scene.output), *cli_args(ov)]
            t0 = time.perf_counter()
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            measured = time.perf_counter() - t0
            err = est / measured - 1.0
            worst = max(worst, abs(err))
            size = f"{scene.width}x{scene.height}" + (f"x{scene.supersample}"
                                                      if scene.supersample > 1 else "")
            print(f"{name:<22}{size:>16}{scene.frames:>8}{scene.max_iterations:>6}{est:>9.1f}"
                  f"{100 * work.rel_error:>6.1f}{measured:>9.1f}{100 * err:>+7.1f}%"
                  f"{work.sample_s:>10.2f}", flush=True)
    verdict = "met" if worst <= TARGET else "NOT met"
    print(f"SUMMARY: worst error {100 * worst:.1f}% (target +/-{100 * TARGET:.0f}%: {verdict})")


if __name__ == "__main__":
    main()
