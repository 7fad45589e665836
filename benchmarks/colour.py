"""Colour benchmark: counts → RGBA (before and after the row-wise rewrite) and → yuv420p planes.

    python benchmarks/colour.py               # 3 spiral frames, 15 repeats
    python benchmarks/colour.py --repeats 31
    python benchmarks/colour.py --psnr        # only: yuv420p planes against ffmpeg's conversion

Times, side by side in one run and interleaved repeat by repeat (the machine is shared), the
colour step of spiral frames at 1080x1080 in escape and smooth mode and with 2x2 supersampling
(2160x2160 samples → 1080x1080), on 1 and 2 threads: "before" is the code as it was (kept below,
verbatim), "after" is renderer.colour.colourise, "yuv420" is renderer.colour.colourise_yuv420 (what
the video pipe now takes). Prints the median ms per frame and checks before == after pixel for
pixel. Target (issue 14): colour ≤ 3 ms per 1080² frame. With --psnr it compares instead the planes
of colourise_yuv420 with what ffmpeg's RGBA conversion (the encoder's old path) makes of the same
frames: PSNR per plane and overall (all samples of the three planes), largest difference.
"""

from __future__ import annotations

import argparse
import math
import platform
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import numba
import numpy as np
from numba import njit, prange

from renderer.colour import Palette, colourise, colourise_yuv420, yuv420_planes
from renderer.encode import encoder_args, find_ffmpeg
from renderer.kernel import set_threads
from renderer.render import FrameRenderer
from renderer.scene import Encoding, load_scene, resized

ROOT = Path(__file__).resolve().parents[1]
TARGET_MS = 3.0


# --- before: renderer/colour.py as of c099599, one _index call per sample --------------------

@njit(cache=True, nogil=True, inline="always")
def _index(n, m2, smooth, max_iter, log_r, table, r2, step, size):  # pragma: no cover
    if n >= max_iter:
        return size - 1
    if smooth:
        u = (m2 - r2) / step
        if 0.0 <= u < table.size - 1:
            t = int(u)
            term = table[t] + (u - t) * (table[t + 1] - table[t])
        else:
            term = 1.0 - math.log2(0.5 * math.log(m2) / log_r)
        nu = n + term
        if nu < 0.0:
            nu = 0.0
        return int(nu / max_iter * (size - 1) + 0.5)
    if size == max_iter + 1:
        return n
    return int(n * (size - 1) / max_iter + 0.5)


@njit(parallel=True, cache=True, nogil=True)
def _colour_direct(counts, fmod, smooth, max_iter, log_r, table, r2, step, lut,
                   out):  # pragma: no cover
    h, w = counts.shape
    size = lut.size
    for i in prange(h):
        for j in range(w):
            m2 = fmod[i, j] if smooth else 0.0
            e = _index(counts[i, j], m2, smooth, max_iter, log_r, table, r2, step, size)
            out[i, j] = lut[e]


@njit(parallel=True, cache=True, nogil=True)
def _colour_supersampled(counts, fmod, smooth, max_iter, log_r, table, r2, step, lin, enc, k,
                         out):  # pragma: no cover
    h, w = out.shape
    size = lin.shape[0]
    steps = enc.size - 1
    inv = 1.0 / (k * k)
    for i in prange(h):
        for j in range(w):
            r = 0.0
            g = 0.0
            b = 0.0
            for di in range(k):
                for dj in range(k):
                    y = i * k + di
                    x = j * k + dj
                    m2 = fmod[y, x] if smooth else 0.0
                    e = _index(counts[y, x], m2, smooth, max_iter, log_r, table, r2, step, size)
                    r += lin[e, 0]
                    g += lin[e, 1]
                    b += lin[e, 2]
            ri = enc[int(min(r * inv, 1.0) * steps + 0.5)]
            gi = enc[int(min(g * inv, 1.0) * steps + 0.5)]
            bi = enc[int(min(b * inv, 1.0) * steps + 0.5)]
            out[i, j] = np.uint32(ri) | (np.uint32(gi) << 8) | (np.uint32(bi) << 16) | \
                np.uint32(255 << 24)


def colourise_before(palette: Palette, counts: np.ndarray, final_mod2: np.ndarray | None,
                     k: int = 1) -> np.ndarray:
    hs, ws = counts.shape
    smooth = palette.mode == "smooth"
    fmod = final_mod2 if smooth else np.empty((1, 1))
    words = np.empty((hs // k, ws // k), dtype=np.uint32)
    if k == 1:
        _colour_direct(counts, fmod, smooth, palette.max_iter, palette.log_radius,
                       palette.smooth_term, palette.radius2, palette.smooth_step,
                       palette.rgba, words)
    else:
        _colour_supersampled(counts, fmod, smooth, palette.max_iter, palette.log_radius,
                             palette.smooth_term, palette.radius2, palette.smooth_step,
                             palette.linear, palette.encode_srgb, k, words)
    return words.view(np.uint8).reshape(words.shape[0], words.shape[1], 4)


# --- the benchmark ------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=3, help="spiral frames, evenly spaced")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--psnr", action="store_true", help="compare planes with ffmpeg's instead")
    args = ap.parse_args()
    if args.psnr:
        psnr_table()
        return

    base = load_scene(ROOT / "examples" / "spiral.toml")
    print(f"# spiral frames at {base.width}x{base.height}, {base.max_iterations} iterations; "
          f"median ms per frame of {args.repeats} interleaved repeats")
    print(f"# {platform.processor() or platform.machine()}, numba {numba.__version__}, numpy "
          f"{np.__version__}, threading layer: set_threads(1|2)")
    print(f"{'case':<22}{'threads':>8}{'before':>9}{'after':>9}{'ratio':>8}{'yuv420':>9}"
          f"{'same':>6}")
    ks = np.linspace(0, base.frames - 1, args.frames).round().astype(int)
    for name, mode, ss in (("escape", "escape", 1), ("smooth", "smooth", 1),
                           ("smooth, supersample 2", "smooth", 2)):
        scene = replace(base, colour_mode=mode, supersample=ss)
        fr = FrameRenderer(scene)
        set_threads(2)
        inputs = [fr.counts(int(k)) for k in ks]
        for threads in (1, 2):
            set_threads(threads)
            pal = fr.palette
            fns = {"before": lambda c, f, pal=pal, ss=ss: colourise_before(pal, c, f, ss),
                   "after": lambda c, f, pal=pal, ss=ss: colourise(pal, c, f, ss),
                   "yuv420": lambda c, f, pal=pal, ss=ss: colourise_yuv420(pal, c, f, ss)}
            same = all(np.array_equal(fns["before"](c, f), fns["after"](c, f)) for c, f in inputs)
            times: dict[str, list[float]] = {key: [] for key in fns}
            for _ in range(args.repeats):
                for key, fn in fns.items():
                    t0 = time.perf_counter()
                    for c, f in inputs:
                        fn(c, f)
                    times[key].append((time.perf_counter() - t0) / len(inputs))
            ms = {key: float(np.median(v)) * 1e3 for key, v in times.items()}
            print(f"{name:<22}{threads:>8}{ms['before']:>9.2f}{ms['after']:>9.2f}"
                  f"{ms['before'] / ms['after']:>7.2f}x{ms['yuv420']:>9.2f}"
                  f"{'yes' if same else 'NO':>6}")
    print(f"target: colour ≤ {TARGET_MS:g} ms per 1080² frame (no supersampling)")


# (scene, frame, size or None for the scene's own, supersample)
PSNR_FRAMES = [("spiral.toml", 0, None, 1), ("spiral.toml", 900, None, 1),
               ("spiral.toml", 1799, None, 1), ("dark-to-yellow.toml", 10, None, 1),
               ("dark-to-yellow.toml", 100, None, 1), ("quick.toml", 60, None, 1),
               ("4k-keyframes.toml", 900, (1920, 1080), 2)]


def psnr_table() -> None:
    vf = encoder_args(Encoding())
    vf = vf[vf.index("-vf") + 1]
    print(f"# colourise_yuv420 vs ffmpeg -vf {vf} -pix_fmt yuv420p of colourise()'s RGBA")
    print(f"{'frame':<28}{'size':>11}{'Y dB':>8}{'Cb dB':>8}{'Cr dB':>8}{'all dB':>8}"
          f"{'max diff':>10}")
    for name, k, size, ss in PSNR_FRAMES:
        scene = load_scene(ROOT / "examples" / name)
        if size is not None:
            scene = resized(scene, *size)
        scene = replace(scene, supersample=ss)
        fr = FrameRenderer(scene)
        counts, fmod = fr.counts(k)
        w, h = scene.width, scene.height
        ours = colourise_yuv420(fr.palette, counts, fmod, ss)
        rgba = colourise(fr.palette, counts, fmod, ss)
        theirs = np.frombuffer(subprocess.run(
            [find_ffmpeg(), "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgba", "-s", f"{w}x{h}",
             "-i", "-", "-vf", vf, "-pix_fmt", "yuv420p", "-f", "rawvideo", "-"],
            input=rgba.tobytes(), capture_output=True, check=True).stdout, dtype=np.uint8)
        planes = [_psnr(a, b) for a, b in zip(yuv420_planes(ours, w, h),
                                               yuv420_planes(theirs, w, h), strict=True)]
        diff = int(np.abs(ours.astype(int) - theirs).max())
        label = f"{name.removesuffix('.toml')} {k}" + (f", ss {ss}" if ss > 1 else "")
        print(f"{label:<28}{f'{w}x{h}':>11}" + "".join(f"{v:>8.1f}" for v in planes)
              + f"{_psnr(ours, theirs):>8.1f}{diff:>10}")


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)


if __name__ == "__main__":
    main()
