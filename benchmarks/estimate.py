"""Accuracy of `launcher estimate` on this machine: estimated vs measured render time per scene.

    python benchmarks/estimate.py              # every case, each 10-60 s of rendering
    python benchmarks/estimate.py --quick      # a quarter of the frames
    python benchmarks/estimate.py --only 4k    # cases whose name contains '4k'
    python benchmarks/estimate.py --twice      # each case twice: estimates' and renders' scatter

Each case is a scene (the examples, plus benchmarks/scenes/) with CLI-style overrides, chosen to
differ in what the model must get right: the mirror on and off (an off-centre view), colour mode
and colormap, supersampling, 4K, 100 and 5000 iterations, x264 presets, and a short and a long
render. Each is estimated with launcher.estimate (the "this machine" row: the scene's sampled
work, its encoder probe at its own size, the cached calibration), then rendered for real by
`renderer render` in a fresh process (start-up included, as the user sees it), and the two
compared. Targets (issue 12): median |error| <= 10%, worst <= 20%, and the printed 80% interval
covers the measured time in >= 80% of the cases.

The "learnt" columns show what the user's own renders teach (launcher.estimate.learning): each
case's estimate corrected by the renders of the cases before it, through the real files (the
prediction each estimate leaves, the record each `renderer render` leaves, in a temporary state
directory), as a user's next estimate would be after rendering those scenes.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from launcher.estimate.calibration import calibrate  # noqa: E402
from launcher.estimate.learning import (  # noqa: E402
    local_learning,
    local_ratios,
    save_prediction,
)
from launcher.estimate.model import (  # noqa: E402
    MODEL_REL_ERROR,
    core_seconds,
    local_row,
    pipeline_terms,
)
from launcher.estimate.sampling import sample_work  # noqa: E402
from launcher.run.spec import render_args_from  # noqa: E402
from renderer.local_record import load_local_renders  # noqa: E402
from renderer.scene import Overrides, load_scene  # noqa: E402

EXAMPLES = ROOT / "renderer" / "examples"
SCENES = ROOT / "benchmarks" / "scenes"
MEDIAN_TARGET, WORST_TARGET, COVERAGE_TARGET = 0.10, 0.20, 0.80
# name, scene file, overrides: sizes chosen so each render takes 10-60 s on 2 cores.
CASES: list[tuple[str, Path, Overrides]] = [
    ("quick 720px", EXAMPLES / "quick.toml",
     Overrides(num_steps=720, max_iterations=300, num_frames=600)),
    ("spiral", EXAMPLES / "spiral.toml", Overrides(num_frames=900)),
    ("dark-to-yellow", EXAMPLES / "dark-to-yellow.toml",
     Overrides(num_frames=1200, max_iterations=800)),
    ("4k-keyframes 720p ss2", EXAMPLES / "4k-keyframes.toml",
     Overrides(width=1280, height=720, num_frames=240)),
    ("off-centre (no mirror)", SCENES / "offcentre.toml", Overrides(num_frames=600)),
    ("spiral ss2 720px", EXAMPLES / "spiral.toml",
     Overrides(num_steps=720, supersample=2, num_frames=300)),
    ("spiral 4K", EXAMPLES / "spiral.toml",
     Overrides(width=3840, height=2160, num_frames=120)),
    ("spiral 100 it", EXAMPLES / "spiral.toml", Overrides(max_iterations=100, num_frames=900)),
    ("spiral 5000 it", EXAMPLES / "spiral.toml", Overrides(max_iterations=5000, num_frames=200)),
    ("short: spiral 30 frames", EXAMPLES / "spiral.toml", Overrides(num_frames=30)),
    ("long: quick 360px", EXAMPLES / "quick.toml",
     Overrides(num_steps=360, max_iterations=200, num_frames=4000)),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a quarter of the frames")
    ap.add_argument("--only", default="", help="only cases whose name contains this")
    ap.add_argument("--recalibrate", action="store_true", help="measure, ignoring the cache")
    ap.add_argument("--twice", action="store_true",
                    help="estimate and render every case twice: the estimate's and the "
                         "render's own scatter")
    ap.add_argument("--stages", action="store_true",
                    help="after each case, the model's CPU by stage against the render's")
    args = ap.parse_args()
    cal = calibrate(refresh=args.recalibrate)
    print(f"# {platform.processor() or platform.machine()}, {cal.local_cores} cores, "
          f"calibration {cal.measured_at}: {1 / cal.kernel_s_per_giter:.2f} G exec it/s/core, "
          f"{cal.kernel_s_per_msample * 1e3:.1f} ms/M samples, local efficiency "
          f"{cal.local_efficiency:.2f}, start {cal.start_s:.2f} s (+{cal.compile_s:.1f} s cold)")
    head = (f"{'case':<26}{'size':>14}{'frames':>7}{'iter':>6}{'est s':>8}{'80% +/-':>9}"
            f"{'meas s':>8}{'error':>8}{'in':>4}{'sample s':>10}{'learnt s':>10}{'+/-':>7}"
            f"{'error':>8}{'in':>4}")
    print(head)
    print("-" * len(head))
    errors: list[float] = []
    learnt_errors: list[float] = []
    covered = learnt_covered = 0
    pairs: list[tuple[str, float, float, float, float]] = []  # --twice: name, est, meas x 2
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "state"
        env = {**os.environ, "XDG_STATE_HOME": str(state)}
        for name, path, ov in CASES:
            if args.only not in name:
                continue
            if args.quick and ov.num_frames:
                ov = Overrides(**{**ov.__dict__, "num_frames": max(2, ov.num_frames // 4)})
            out = Path(tmp) / "out.mp4"
            scene = load_scene(path, Overrides(**{**ov.__dict__, "output": out}))
            argv = [sys.executable, "-m", "renderer.cli", "render", str(path), "-o", str(out),
                    *render_args_from(asdict(ov))]
            runs = []
            for attempt in range(2 if args.twice else 1):
                work = sample_work(scene)
                row = local_row(work, scene, cal)
                taught = local_learning(local_ratios(cal, root=state / "juliafarm"),
                                        MODEL_REL_ERROR)
                learnt = local_row(work, scene, cal, taught)
                save_prediction(scene, cal, row.render_s, root=state / "juliafarm")
                cpu0 = _children_cpu_s()
                t0 = time.perf_counter()
                subprocess.run(argv, check=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env=env)
                measured = time.perf_counter() - t0
                cpu = _children_cpu_s() - cpu0
                runs.append((row.render_s, measured))
                err = row.render_s / measured - 1.0
                inside = abs(row.render_s - measured) <= row.render_error_s
                errors.append(err)
                covered += inside
                l_err = learnt.render_s / measured - 1.0
                l_inside = abs(learnt.render_s - measured) <= learnt.render_error_s
                learnt_errors.append(l_err)
                learnt_covered += l_inside
                size = f"{scene.width}x{scene.height}" + (f"x{scene.supersample}"
                                                          if scene.supersample > 1 else "")
                label = name if attempt == 0 else "  (again)"
                print(f"{label:<26}{size:>14}{scene.frames:>7}{scene.max_iterations:>6}"
                      f"{row.render_s:>8.1f}{row.render_error_s:>9.1f}{measured:>8.1f}"
                      f"{100 * err:>+7.1f}%{'yes' if inside else 'NO':>4}{work.sample_s:>10.2f}"
                      f"{learnt.render_s:>10.1f}{learnt.render_error_s:>7.1f}"
                      f"{100 * l_err:>+7.1f}%{'yes' if l_inside else 'NO':>4}", flush=True)
                if args.stages:
                    print(_stages(work, scene, cal, cpu, measured, state / "juliafarm"),
                          flush=True)
            if args.twice:
                (e1, m1), (e2, m2) = runs
                pairs.append((name, e1, e2, m1, m2))
    if not errors:
        sys.exit("no case matched --only")
    summary("SUMMARY", errors, covered)
    summary("LEARNT (each case taught by the renders before it)", learnt_errors, learnt_covered)
    if pairs:
        repeatability(pairs)


def repeatability(pairs: list[tuple[str, float, float, float, float]]) -> None:
    """The estimate's and the render's own scatter: each case estimated and rendered twice.
    An estimate can be no closer to every render than the renders are to each other."""
    est = [abs(e2 / e1 - 1) for _, e1, e2, _, _ in pairs]
    meas = [abs(m2 / m1 - 1) for _, _, _, m1, m2 in pairs]
    for (name, e1, e2, m1, m2), de, dm in zip(pairs, est, meas, strict=True):
        print(f"# {name:<26} estimates {e1:6.1f} {e2:6.1f} ({100 * de:4.1f}% apart)  renders "
              f"{m1:6.1f} {m2:6.1f} ({100 * dm:4.1f}% apart)")
    print(f"REPEATABILITY: the same scene estimated twice differs by median "
          f"{100 * statistics.median(est):.1f}%, worst {100 * max(est):.1f}%; rendered twice by "
          f"median {100 * statistics.median(meas):.1f}%, worst {100 * max(meas):.1f}%")


def _children_cpu_s() -> float:
    """User + system CPU of every finished child (and, through it, its ffmpegs)."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _stages(work, scene, cal, cpu: float, wall: float, state: Path) -> str:
    """The model's single-core seconds by stage against what the render's record measured, and
    how busy the render kept the cores (CPU / cores / wall) against what the model assumed: a
    stage cost off, or the overlap."""
    kernel, colour, encode = core_seconds(work, scene, cal)
    _, factor = pipeline_terms(cal)
    rec = load_local_renders(state)[-1]
    model_cpu = kernel + colour + encode
    return (f"    model cpu: kernel {kernel:.1f} colour {colour:.1f} x264 {encode:.1f} = "
            f"{model_cpu:.1f} s (factor {factor:.2f}); render: kernel wall "
            f"{rec['kernel_s']:.1f} colour {rec['colour_s']:.1f} x264 {rec['encode_cpu_s']:.1f}"
            f", all cpu {cpu:.1f} s, busy {cpu / cal.local_cores / wall:.2f}")


def summary(title: str, errors: list[float], covered: int) -> None:
    med = statistics.median(abs(e) for e in errors)
    worst = max(abs(e) for e in errors)
    cov = covered / len(errors)
    ok = med <= MEDIAN_TARGET and worst <= WORST_TARGET and cov >= COVERAGE_TARGET
    print(f"{title}: {len(errors)} cases, median |error| {100 * med:.1f}% (target "
          f"<= {100 * MEDIAN_TARGET:.0f}%), worst {100 * worst:.1f}% (<= "
          f"{100 * WORST_TARGET:.0f}%), interval coverage {100 * cov:.0f}% (>= "
          f"{100 * COVERAGE_TARGET:.0f}%): {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
