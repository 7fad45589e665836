"""Kernel benchmark: renderer.kernel against two exact hand-written AVX-512 C kernels, side by side.

    python benchmarks/kernel_c.py [--quick] [--repeats R] [--compare PATH]
    python benchmarks/kernel_c.py --scene examples/4k-keyframes.toml [--scene-frames N]

Builds benchmarks/c/julia_avx512.c with the system gcc (-O3 -march=native -ffp-contract=off
-fno-fast-math -fopenmp) into a cache directory and loads its two kernels with ctypes: "C plain"
(julia_counts: lock-step 4 x 8 tiles with a masked count and masked z updates every step) and
"C best" (julia_counts_best: renderer.kernel's tricks in intrinsics, state in registers: no count
or select per step, the last steps of lanes that died in a group redone exactly, dead lanes
refilled with the next pixels of the chunk). Checks that the counts of both (C best first) equal
renderer.kernel's and the plain pure-Python reference's on small grids (and each other's on every
timed frame), then times the kernels on the issue-14 frames (1080x1080 unless noted, 500
iterations, view [-1.8, 1.8]^2 through renderer.grid.sample_grid, c.real -0.62772) at 1 and 2
threads. Repeats are interleaved (ours, C plain, C best, ours, ...) and the median is reported,
because the machine is shared and noisy. ratio = C time / our time (1.0 = parity, higher = ours
faster), against each C kernel; scaling = 1-thread time / 2-thread time. --compare PATH also times
another copy of the kernel module (e.g. the version before a change) in the same run.

--scene times the kernels on N evenly spaced frames of a scene instead (its grid with
supersampling, c, iterations, escape radius, and final moduli if it colours smoothly) and reports
kernel frames/s per core at 1 and 2 threads.
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import importlib.util
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "renderer"))

from reference import escape_counts as reference_counts  # noqa: E402

from renderer import kernel  # noqa: E402
from renderer.grid import sample_grid  # noqa: E402

C_SOURCE = Path(__file__).resolve().parent / "c" / "julia_avx512.c"
CFLAGS = ["-O3", "-march=native", "-ffp-contract=off", "-fno-fast-math", "-fopenmp",
          "-shared", "-fPIC"]
MAX_ITER = 500
HALF = 1.8
C_REAL = -0.62772
# (label, c.imag, size px): the frames of issue 14.
FRAMES: list[tuple[str, float, int]] = [
    ("original test frame", -0.42193, 800),
    ("15% interior, slow", -0.3498, 1080),
    ("heaviest dark-to-yellow", 0.0, 1080),
    ("spiral start", -0.42, 1080),
    ("spiral, long escapes", -0.399, 1080),
]
THREADS = (1, 2)
# The C kernels: benchmark name -> exported function of julia_avx512.c.
C_KERNELS = {"C best": "julia_counts_best", "C plain": "julia_counts"}


def build_c(cache_dir: Path | None = None) -> Path:
    """Compile the C kernel once per source and flags; returns the shared library's path."""
    src = C_SOURCE.read_bytes()
    key = hashlib.sha256(src + " ".join(CFLAGS).encode()).hexdigest()[:16]
    xdg = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    cache = cache_dir or xdg / "juliafarm"
    lib = cache / f"julia_avx512-{key}.so"
    if not lib.exists():
        cache.mkdir(parents=True, exist_ok=True)
        tmp = lib.with_suffix(f".{os.getpid()}.tmp")
        subprocess.run(["gcc", *CFLAGS, "-o", str(tmp), str(C_SOURCE)], check=True)
        os.replace(tmp, lib)
    return lib


class CKernel:
    """ctypes wrapper with escape_counts' signature, semantics and symmetry decision."""

    def __init__(self, lib_path: Path, symbol: str) -> None:
        lib = ctypes.CDLL(str(lib_path))
        f = getattr(lib, symbol)
        dp = ctypes.POINTER(ctypes.c_double)
        f.argtypes = [dp, dp, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, ctypes.c_double,
                      ctypes.c_double, ctypes.c_int64, ctypes.c_double,
                      ctypes.POINTER(ctypes.c_int32), dp, ctypes.c_int, ctypes.c_int64,
                      ctypes.c_int]
        f.restype = ctypes.c_int64
        self._f = f
        self.threads = 1

    def escape_counts(self, xs: np.ndarray, ys: np.ndarray, c: complex, max_iter: int,
                      escape_radius: float = 2.0, *, want_final_modulus: bool = False,
                      stats: dict | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        xs = np.ascontiguousarray(xs, dtype=np.float64)
        ys = np.ascontiguousarray(ys, dtype=np.float64)
        h, w = ys.size, xs.size
        counts = np.empty((h, w), dtype=np.int32)
        fmod = np.empty((h, w) if want_final_modulus else (1, 1), dtype=np.float64)
        symmetric = (np.array_equal(xs, -xs[::-1]) and np.array_equal(ys, -ys[::-1]))
        rows = (h + 1) // 2 if symmetric else h
        mirror_below = (h // 2) * w if symmetric else 0
        dp = ctypes.POINTER(ctypes.c_double)
        it = self._f(xs.ctypes.data_as(dp), ys.ctypes.data_as(dp), w, h, rows, c.real, c.imag,
                     max_iter, escape_radius * escape_radius,
                     counts.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)),
                     fmod.ctypes.data_as(dp), int(want_final_modulus), mirror_below,
                     self.threads)
        if stats is not None:
            stats["iterations"] = int(it)
        return counts, (fmod if want_final_modulus else None)


def load_module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"compare_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # numba's cache pickles references to the module by name
    spec.loader.exec_module(mod)
    return mod


def set_threads(cks: list[CKernel], threads: int) -> None:
    """Run renderer.kernel and every C kernel on this many threads."""
    kernel.set_threads(threads)
    for ck in cks:
        ck.threads = threads


def check_small(kernels: dict[str, Callable], cks: list[CKernel]) -> int:
    """Every kernel's counts and final |z|^2 == the plain reference's on small grids (in the order
    of kernels, so the first mismatch names it); returns grids checked."""
    cases = [
        (sample_grid(0.0, 0.0, 1.8, 1.8, 41, 37), complex(C_REAL, -0.42193), 300),
        (sample_grid(0.0, 0.0, 1.8, 1.8, 40, 40), complex(C_REAL, -0.3498), 500),
        (sample_grid(0.0, 0.0, 1.8, 1.8, 33, 20), complex(C_REAL, 0.0), 500),
        (sample_grid(0.1, -0.05, 1.0, 1.0, 13, 11), complex(-1.0, 0.0), 3000),
        (sample_grid(0.05, -0.03, 1.0, 1.0, 17, 9), complex(-0.12, 0.75), 2000),
        (sample_grid(0.0, 0.0, 1.5, 1.5, 1, 25), complex(C_REAL, -0.4), 120),
        (sample_grid(0.0, 0.0, 1.5, 1.5, 70, 3), complex(C_REAL, -0.399), 500),
    ]
    for threads in THREADS:
        set_threads(cks, threads)
        for (xs, ys), c, max_iter in cases:
            ref_c, ref_m = reference_counts(xs, ys, c, max_iter)
            ref = np.array(ref_c, dtype=np.int32)
            escaped = ref < max_iter
            for name, fn in kernels.items():
                counts, mod2 = fn(xs, ys, c, max_iter, want_final_modulus=True)
                if not np.array_equal(counts, ref):
                    raise SystemExit(f"MISMATCH: {name} vs reference, c={c}, grid "
                                     f"{xs.size}x{ys.size}, {int((counts != ref).sum())} pixels")
                if not np.array_equal(mod2[escaped], np.array(ref_m)[escaped]):
                    raise SystemExit(f"MISMATCH: {name} final |z|^2 vs reference, c={c}")
    return len(cases) * len(THREADS)


@dataclass
class Row:
    label: str
    c: complex
    size: int
    times: dict[tuple[str, int], float]  # (kernel, threads) -> median wall seconds
    cpu: dict[tuple[str, int], float]    # (kernel, threads) -> median process CPU seconds
    exec_share: float                    # executed / useful iterations of ours


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall, process CPU) seconds of one call. CPU time is what the call cost the cores; on a
    shared machine it is not inflated by waiting for a core, so 1-thread ratios by CPU time are
    the robust ones (at 2 threads only wall time shows the scaling)."""
    c0 = time.process_time()
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def time_frame(label: str, ci: float, size: int, kernels: dict[str, Callable],
               cks: list[CKernel], repeats: int) -> Row:
    xs, ys = sample_grid(0.0, 0.0, HALF, HALF, size, size)
    c = complex(C_REAL, ci)
    samples: dict[tuple[str, int], list[tuple[float, float]]] = {}
    ours_counts = None
    stats: dict = {}
    for threads in THREADS:
        set_threads(cks, threads)
        results = {}
        for name, fn in kernels.items():  # warm up, and check counts on the full frame
            results[name] = fn(xs, ys, c, MAX_ITER)[0]
        ref = results["C plain"]
        for name, counts in results.items():
            if not np.array_equal(counts, ref):
                raise SystemExit(f"MISMATCH on frame c={c}: {name} vs C plain, "
                                 f"{int((counts != ref).sum())} pixels ({threads} threads)")
        ours_counts = results["ours"]
        for _ in range(repeats):
            for name, fn in kernels.items():
                st = stats if name == "ours" else None
                samples.setdefault((name, threads), []).append(
                    timed(lambda fn=fn, st=st: fn(xs, ys, c, MAX_ITER, stats=st)))
    assert ours_counts is not None
    useful = int(ours_counts.sum(dtype=np.int64))
    return Row(label, c, size,
               {k: statistics.median(w for w, _ in v) for k, v in samples.items()},
               {k: statistics.median(u for _, u in v) for k, v in samples.items()},
               stats["iterations"] / max(1, useful))


def bench_scene(path: Path, nframes: int, kernels: dict[str, Callable], cks: list[CKernel],
                repeats: int) -> None:
    """Kernel frames/s per core on nframes evenly spaced frames of a scene, at 1 and 2 threads."""
    from renderer.scene import load_scene

    scene = load_scene(path)
    v = scene.view
    xs, ys = sample_grid(v.center_x, v.center_y, v.half_width, v.half_height, scene.width,
                         scene.height, scene.supersample)
    fm = scene.colour_mode == "smooth"
    frames = sorted({round(k) for k in np.linspace(0, scene.frames - 1, nframes)})
    print(f"# {path}: {xs.size}x{ys.size} samples, {scene.max_iterations} iterations, frames "
          f"{frames}; median of {repeats} interleaved repeats; frames/s per core")
    totals: dict[tuple[str, int], float] = {}
    cpu_totals: dict[tuple[str, int], float] = {}
    for threads in THREADS:
        set_threads(cks, threads)
        for k in frames:
            c = scene.c_at_frame(k)
            ref = None
            for name, fn in kernels.items():
                counts = fn(xs, ys, c, scene.max_iterations, scene.escape_radius,
                            want_final_modulus=fm)[0]
                if ref is None:
                    ref = counts
                elif not np.array_equal(counts, ref):
                    raise SystemExit(f"MISMATCH on {path} frame {k}: {name}")
            samples: dict[str, list[tuple[float, float]]] = {name: [] for name in kernels}
            for _ in range(repeats):
                for name, fn in kernels.items():
                    samples[name].append(timed(
                        lambda fn=fn, c=c: fn(xs, ys, c, scene.max_iterations,
                                              scene.escape_radius, want_final_modulus=fm)))
            line = f"frame {k:>5} c={c:.5f} {threads}T:"
            for name, ts in samples.items():
                wall = statistics.median(w for w, _ in ts)
                cpu = statistics.median(u for _, u in ts)
                totals[name, threads] = totals.get((name, threads), 0.0) + wall
                cpu_totals[name, threads] = cpu_totals.get((name, threads), 0.0) + cpu
                line += f"  {name} {1e3 * wall:8.1f} ms (cpu {1e3 * cpu:8.1f})"
            print(line, flush=True)
    parts = [f"{name} {threads}T {len(frames) / total / threads:.3f}"
             for (name, threads), total in totals.items()]
    print("SUMMARY (kernel frames/s per core, wall): " + "; ".join(parts))
    parts = [f"{name} {threads}T {len(frames) / total:.3f}"
             for (name, threads), total in cpu_totals.items()]
    print("SUMMARY (kernel frames per CPU-second): " + "; ".join(parts))


def short(name: str) -> str:
    """Column name of a kernel: "C plain" -> "plain", "C best" -> "best"."""
    return name.removeprefix("C ")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="5 repeats instead of 15")
    ap.add_argument("--repeats", type=int, default=None, help="interleaved repeats per frame")
    ap.add_argument("--compare", type=Path, default=None,
                    help="also time escape_counts from this copy of renderer/kernel.py")
    ap.add_argument("--scene", type=Path, default=None,
                    help="time frames of this scene instead of the issue-14 frames")
    ap.add_argument("--scene-frames", type=int, default=3, help="frames of --scene to time")
    args = ap.parse_args()
    repeats = args.repeats or (5 if args.quick else 15)

    lib = build_c()
    cks = {name: CKernel(lib, symbol) for name, symbol in C_KERNELS.items()}
    # The new C kernel first, so a mismatch of its counts is the first thing reported.
    kernels: dict[str, Callable] = {name: ck.escape_counts for name, ck in cks.items()}
    kernels["ours"] = kernel.escape_counts
    if args.compare:
        kernels["before"] = load_module(args.compare).escape_counts
    n = check_small(kernels, list(cks.values()))
    print(f"# counts identical to the plain reference on {n} small grids/thread counts: "
          + ", ".join(kernels))
    # Timing order: ours, then the C kernels (plain, best), then before.
    order = ["ours", *reversed(C_KERNELS), *(["before"] if args.compare else [])]
    kernels = {k: kernels[k] for k in order}
    if args.scene:
        bench_scene(args.scene, args.scene_frames, kernels, list(cks.values()), args.repeats or 3)
        return
    print(f"# {MAX_ITER} iterations, view [-{HALF}, {HALF}]^2, c.real {C_REAL}; median of "
          f"{repeats} interleaved repeats; ratio k/C = C time / k time (1.0 = parity); "
          "best<<plain = C plain time / C best time")
    cnames = list(reversed(C_KERNELS))
    names = [k for k in kernels if k not in C_KERNELS]
    pairs = [(k, cn) for k in names for cn in cnames]
    head = f"{'frame':<26}{'c.imag':>9}{'px':>6}{'exec%':>6}"
    for t in THREADS:
        head += "".join(f"{short(k) + str(t) + ' ms':>11}" for k in kernels)
        head += "".join(f"{k + '/' + short(cn) + ' ' + str(t):>15}" for k, cn in pairs)
        head += f"{'best<<plain ' + str(t):>15}"
    head += "".join(f"{short(k) + ' scal':>12}" for k in kernels)
    print(head)
    print("-" * len(head))
    rows: list[Row] = []
    for label, ci, size in FRAMES:
        r = time_frame(label, ci, size, kernels, list(cks.values()), repeats)
        rows.append(r)
        line = f"{label:<26}{ci:>9.5f}{size:>6}{100 * r.exec_share:>5.1f}%"
        for t in THREADS:
            line += "".join(f"{1e3 * r.times[k, t]:>11.2f}" for k in kernels)
            line += "".join(f"{r.times[cn, t] / r.times[k, t]:>14.2f}x" for k, cn in pairs)
            line += f"{r.times['C plain', t] / r.times['C best', t]:>14.2f}x"
        line += "".join(f"{r.times[k, 1] / r.times[k, 2]:>11.2f}x" for k in kernels)
        print(line, flush=True)
    parts = []
    for k, cn in pairs:
        for t in THREADS:
            ratios = [r.times[cn, t] / r.times[k, t] for r in rows]
            parts.append(f"{k}/{short(cn)} {t}T min {min(ratios):.2f}x "
                         f"median {statistics.median(ratios):.2f}x")
    for t in THREADS:
        ratios = [r.times["C plain", t] / r.times["C best", t] for r in rows]
        parts.append(f"C best faster than C plain {t}T min {min(ratios):.2f}x "
                     f"median {statistics.median(ratios):.2f}x")
    for k in kernels:
        scal = [r.times[k, 1] / r.times[k, 2] for r in rows]
        parts.append(f"{short(k)} scaling min {min(scal):.2f}x")
    for k, cn in pairs:
        ratios = [r.cpu[cn, 1] / r.cpu[k, 1] for r in rows]
        parts.append(f"{k}/{short(cn)} 1T by CPU time min {min(ratios):.2f}x "
                     f"median {statistics.median(ratios):.2f}x")
    print("SUMMARY: " + "; ".join(parts) + f"  ({len(rows)} frames, counts identical)")


if __name__ == "__main__":
    main()
