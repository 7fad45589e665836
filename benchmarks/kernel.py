"""Kernel benchmark: renderer.kernel vs a straightforward numba kernel vs the pure-Python reference.

    python benchmarks/kernel.py [--quick] [--frames N] [--repeats R]

Frames are sampled evenly from the two example scenes (spiral: c.imag -0.42 -> -0.378; dark-to-
yellow: c.imag -0.7 -> +0.7; c.real = -0.62772), 1080x1080, 500 iterations, view [-1.8, 1.8]^2
through renderer.grid.sample_grid, so the symmetry applies as in a real render.

"Useful iterations" of a frame = the straightforward kernel's iteration total for the full frame
(the sum of its counts). Every rate below is useful iterations / wall time / threads, so the work
our kernel skips (mirrored half, detected cycles) shows up as a higher effective rate. Times are the
best of R repeats; ratios are measured side by side in the same run because the machine is noisy.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numba import njit, prange

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "renderer"))

from reference import escape_count  # noqa: E402

from renderer.grid import sample_grid  # noqa: E402
from renderer.kernel import escape_counts, set_threads  # noqa: E402

SIZE_PX = 1080
MAX_ITER = 500
HALF = 1.8
C_REAL = -0.62772
SCENES: dict[str, tuple[float, float]] = {
    "spiral": (-0.42, -0.378),
    "dark-to-yellow": (-0.7, 0.7),
}
PY_GRID_PX = 48  # the pure-Python reference runs on this small grid and is extrapolated


@njit(parallel=True)
def straightforward(xs: np.ndarray, ys: np.ndarray, cr: float, ci: float, max_iter: int,
                    out: np.ndarray) -> None:
    """The obvious numba kernel: prange over rows, one pixel at a time, early exit."""
    for i in prange(ys.size):
        y = ys[i]
        for j in range(xs.size):
            x = xs[j]
            zr = x * x - y * y + cr
            zi = (x * y + y * x) + ci
            n = 0
            while n < max_iter and not (zr * zr + zi * zi > 4):
                zr, zi = zr * zr - zi * zi + cr, (zr * zi + zi * zr) + ci
                n += 1
            out[i, j] = n


@dataclass(frozen=True)
class FrameResult:
    scene: str
    c: complex
    useful_iters: int
    executed_iters: int
    naive_s: dict[int, float]
    ours_s: dict[int, float]
    python_rate_per_s: float


def best_time(fn: Callable[[], object], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def python_rate(c: complex) -> float:
    """Pure-Python reference iterations per second on a small grid of the same view."""
    xs, ys = sample_grid(0.0, 0.0, HALF, HALF, PY_GRID_PX, PY_GRID_PX)
    t0 = time.perf_counter()
    total = 0
    for y in ys:
        for x in xs:
            total += escape_count(float(x), float(y), c, MAX_ITER)[0]
    # Count each point's z0 too, so a grid that escapes at once does not divide by zero.
    return (total + xs.size * ys.size) / (time.perf_counter() - t0)


def bench_frame(scene: str, c: complex, threads: list[int], repeats: int) -> FrameResult:
    xs, ys = sample_grid(0.0, 0.0, HALF, HALF, SIZE_PX, SIZE_PX)
    naive = np.empty((ys.size, xs.size), dtype=np.int32)
    naive_s: dict[int, float] = {}
    ours_s: dict[int, float] = {}
    stats: dict = {}
    for t in threads:
        set_threads(t)
        naive_s[t] = best_time(
            lambda: straightforward(xs, ys, c.real, c.imag, MAX_ITER, naive), repeats)
        ours_s[t] = best_time(lambda: escape_counts(xs, ys, c, MAX_ITER, stats=stats), repeats)
        ours, _ = escape_counts(xs, ys, c, MAX_ITER)
        if not np.array_equal(ours, naive):
            bad = int(np.count_nonzero(ours != naive))
            raise SystemExit(
                f"MISMATCH: {scene} c={c}: {bad} pixels differ between renderer.kernel and the "
                f"straightforward kernel ({t} threads)")
    return FrameResult(scene, c, int(naive.sum(dtype=np.int64)), int(stats["iterations"]),
                       naive_s, ours_s, python_rate(c))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 frames per scene, 2 repeats")
    ap.add_argument("--frames", type=int, default=None, help="frames per scene (default 8)")
    ap.add_argument("--repeats", type=int, default=None, help="best of R timings (default 3)")
    args = ap.parse_args()
    frames = args.frames or (3 if args.quick else 8)
    repeats = args.repeats or (2 if args.quick else 3)
    threads = [1, 2]

    # Warm up: compile (or load from cache) both kernels before any timing.
    wx, wy = sample_grid(0.0, 0.0, HALF, HALF, 16, 16)
    straightforward(wx, wy, C_REAL, 0.1, 10, np.empty((16, 16), dtype=np.int32))
    escape_counts(wx, wy, complex(C_REAL, 0.1), 10, want_final_modulus=True)

    print(f"# {SIZE_PX}x{SIZE_PX} px, {MAX_ITER} iterations, view [-{HALF}, {HALF}]^2, "
          f"best of {repeats}; rates = useful G iterations/s per core")
    head = (f"{'scene':<15}{'c.imag':>9}{'useful G':>9}{'exec %':>7}{'py G/s':>8}"
            + "".join(f"{'naive' + str(t) + ' s':>10}{'ours' + str(t) + ' s':>10}"
                      f"{'naive G/s':>10}{'ours G/s':>10}{'ratio':>7}" for t in threads))
    print(head)
    print("-" * len(head))
    results: list[FrameResult] = []
    for scene, (lo, hi) in SCENES.items():
        for ci in np.linspace(lo, hi, frames):
            r = bench_frame(scene, complex(C_REAL, float(ci)), threads, repeats)
            results.append(r)
            g = r.useful_iters / 1e9
            line = (f"{scene:<15}{r.c.imag:>9.4f}{g:>9.3f}"
                    f"{100 * r.executed_iters / max(1, r.useful_iters):>6.1f}%"
                    f"{r.python_rate_per_s / 1e9:>8.4f}")
            for t in threads:
                line += (f"{r.naive_s[t]:>10.4f}{r.ours_s[t]:>10.4f}"
                         f"{g / r.naive_s[t] / t:>10.3f}{g / r.ours_s[t] / t:>10.3f}"
                         f"{r.naive_s[t] / r.ours_s[t]:>6.1f}x")
            print(line, flush=True)

    print()
    useful = sum(r.useful_iters for r in results)
    py_s = sum(r.useful_iters / r.python_rate_per_s for r in results)
    summary = []
    for scene in [*SCENES, "all"]:
        sel = [r for r in results if scene in ("all", r.scene)]
        for t in threads:
            naive_t = sum(r.naive_s[t] for r in sel)
            ours_t = sum(r.ours_s[t] for r in sel)
            u = sum(r.useful_iters for r in sel) / 1e9
            print(f"{scene:<15} {t} thread(s): naive {naive_t:7.3f} s  ours {ours_t:7.3f} s  "
                  f"naive {u / naive_t / t:6.3f} G/s/core  ours {u / ours_t / t:6.3f} G/s/core  "
                  f"ratio {naive_t / ours_t:5.2f}x")
            if scene == "all":
                summary.append((t, naive_t / ours_t, py_s / ours_t))
    print(f"pure-Python reference (extrapolated, 1 core): {useful / py_s / 1e9:.4f} G/s, "
          f"{py_s:.0f} s for these frames")
    parts = [f"{t} thread(s): ours/naive {ratio:.2f}x, ours/python {py:.0f}x"
             for t, ratio, py in summary]
    print("SUMMARY: " + "; ".join(parts) + f"  ({len(results)} frames, counts identical)")


if __name__ == "__main__":
    main()
