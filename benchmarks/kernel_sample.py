"""The kernel's cost per scene: timed on the estimate's small sample frames, at the calibrated
rates, and on full-size frames, all on one core.

    python benchmarks/kernel_sample.py            # the accuracy benchmark's 11 scenes
    python benchmarks/kernel_sample.py spiral     # scenes whose name contains 'spiral'
    python benchmarks/kernel_sample.py --drift 30 # the kernel's speed, once a second for 30 s

For each scene of benchmarks/estimate.py: 8 of its frames at full size (the truth, best of 2
per frame), the 24 small frames `launcher estimate` samples (launcher.estimate.sampling, best
of 2), and the calibration's linear model (s per executed iteration + s per computed sample,
measured on one view), each per executed iteration: "sample/full" says whether the kernel timed
on the sample would price the scene better than "rates/full", the calibrated rates (1.00: the
scene's real cost). Tried as the estimate's kernel term in session 9 and dropped (RESULTS.md,
"The kernel timed on the scene's own sample").

--drift: the same 1080 x 1080 frame timed on one core (best of 3) once a second, each against
the fastest: how much this machine's speed moves on the scale of a render, which no calibration
or quick check made before a render can follow.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from estimate import CASES  # noqa: E402

from launcher.estimate.calibration import calibrate  # noqa: E402
from launcher.estimate.sampling import sample_frame_indices, sample_size  # noqa: E402
from renderer.grid import sample_grid  # noqa: E402
from renderer.kernel import escape_counts, set_threads  # noqa: E402
from renderer.scene import Overrides, Scene, load_scene  # noqa: E402


def timed(scene: Scene, ks: list[int], w: int, h: int, ss: int) -> tuple[float, int, int]:
    """(seconds, executed iterations, computed samples) of frames ks at w x h (x ss)."""
    v = scene.view
    xs, ys = sample_grid(v.center_x, v.center_y, v.half_width, v.half_height, w, h, ss)
    seconds, iterations = 0.0, 0
    for k in ks:
        st: dict[str, int] = {}
        best = float("inf")
        for _ in range(2):
            t0 = time.perf_counter()
            escape_counts(xs, ys, scene.c_at_frame(k), scene.max_iterations, scene.escape_radius,
                          want_final_modulus=scene.colour_mode == "smooth", stats=st)
            best = min(best, time.perf_counter() - t0)
        seconds += best
        iterations += st["iterations"]
    rows = h * ss
    computed = w * ss * ((rows + 1) // 2 if v.centred_on_origin else rows) * len(ks)
    return seconds, iterations, computed


def drift(seconds: int) -> None:
    v_xs, v_ys = sample_grid(0.0, 0.0, 1.8, 1.8, 1080, 1080, 1)
    c = complex(-0.62772, -0.42)
    times = []
    for _ in range(seconds):
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            escape_counts(v_xs, v_ys, c, 500, 2.0, want_final_modulus=True)
            best = min(best, time.perf_counter() - t0)
        times.append(best)
        time.sleep(max(0.0, 1.0 - 3 * best))
    fastest = min(times)
    rel = [t / fastest for t in times]
    print("# one core, 1080 x 1080 at 500 iterations, best of 3, once a second, / the fastest:")
    print(" ".join(f"{r:.2f}" for r in rel))
    print(f"DRIFT: {len(rel)} checks, median {statistics.median(rel):.2f}, worst {max(rel):.2f} "
          f"x the fastest; consecutive checks differ by up to "
          f"{100 * max(abs(b / a - 1) for a, b in zip(rel, rel[1:], strict=False)):.0f}%")


def main() -> None:
    if sys.argv[1:2] == ["--drift"]:
        set_threads(1)
        drift(int(sys.argv[2]) if len(sys.argv) > 2 else 30)
        return
    only = sys.argv[1:]
    cal = calibrate()
    set_threads(1)
    print(f"# one core; calibration {cal.measured_at}: {1 / cal.kernel_s_per_giter:.2f} G it/s, "
          f"{cal.kernel_s_per_msample * 1e3:.1f} ms per M samples")
    head = (f"{'case':<26}{'sample':>10}{'ns/it':>7}{'full ns/it':>11}{'rates ns/it':>12}"
            f"{'sample/full':>12}{'rates/full':>11}")
    print(head)
    print("-" * len(head))
    s_ratios, r_ratios = [], []
    for name, path, ov in CASES:
        if only and not any(o in name for o in only):
            continue
        scene = load_scene(path, Overrides(**{**ov.__dict__, "output": Path("unused.mp4")}))
        full_w, full_h = scene.width * scene.supersample, scene.height * scene.supersample
        w, h = sample_size(full_w, full_h)
        s_t, s_it, _ = timed(scene, sample_frame_indices(scene.frames, 24), w, h, 1)
        f_t, f_it, f_n = timed(scene, sample_frame_indices(scene.frames, 8), scene.width,
                               scene.height, scene.supersample)
        rates = f_it / 1e9 * cal.kernel_s_per_giter + f_n / 1e6 * cal.kernel_s_per_msample
        s_ns, f_ns, r_ns = s_t / s_it * 1e9, f_t / f_it * 1e9, rates / f_it * 1e9
        s_ratios.append(s_ns / f_ns)
        r_ratios.append(r_ns / f_ns)
        print(f"{name:<26}{f'{w}x{h}':>10}{s_ns:>7.3f}{f_ns:>11.3f}{r_ns:>12.3f}"
              f"{s_ns / f_ns:>12.2f}{r_ns / f_ns:>11.2f}", flush=True)
    if s_ratios:
        print(f"SUMMARY: sample/full {min(s_ratios):.2f}-{max(s_ratios):.2f} (mean "
              f"{statistics.fmean(s_ratios):.2f}); calibrated rates/full {min(r_ratios):.2f}-"
              f"{max(r_ratios):.2f} (mean {statistics.fmean(r_ratios):.2f})")


if __name__ == "__main__":
    main()
