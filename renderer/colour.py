"""Counts → colours: a colormap lookup table built once per render, applied on all cores.

Two colouring modes:
- ``escape``: value = count / max_iter (the classic look; the interior, count == max_iter, gets 1).
- ``smooth``: continuous escape time nu = n + 1 - log2(log|z_n| / log R), from the modulus of the
  first escaped z, so bands become gradients; the interior still gets 1.

Supersampled frames (k x k samples per pixel) are averaged in linear light, not in sRGB, so
anti-aliased edges keep their brightness.

Two outputs: RGBA (PNGs, stills, sheets, and the video for pixel formats other than yuv420p) and
BT.709 limited-range Y'CbCr 4:2:0 planes, what x264 consumes, computed from the same R'G'B' bytes
as ffmpeg's `scale=out_color_matrix=bt709:out_range=tv` + `-pix_fmt yuv420p` does (Y' exactly,
chroma within one level; see colourise_yuv420), so ffmpeg need not convert and the pipe carries
1.5 bytes a pixel instead of 4.
"""

from __future__ import annotations

import math
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numba
import numpy as np
from numba import njit, prange

from renderer.errors import SceneError

# Table entries for smooth colouring (and for escape colouring of very high iteration caps).
SMOOTH_LUT_SIZE = 4096
MAX_DIRECT_LUT = 65536
# Steps of the linear → sRGB table used after averaging supersamples; 2^14 keeps the darkest
# step below one 8-bit level.
LINEAR_STEPS = 16384
# The smooth term 1 - log2(log|z| / log R) tabulated over |z|^2 in [R^2, SMOOTH_SPAN * R^2] and
# interpolated linearly (two logs per pixel cost as much as the kernel; the table's error is below
# 1e-5 of a band, far under one colour step). Larger moduli (rare) are computed exactly.
SMOOTH_SPAN = 64.0
SMOOTH_TABLE_STEPS = 8192

# BT.709 limited range from 8-bit R'G'B', in ffmpeg's (swscale's) own fixed point at 2^15: value =
# (c_r R' + c_g G' + c_b B' + offset) >> 15. Found by converting all 2^24 colours with
# `scale=out_color_matrix=bt709:out_range=tv` (ffmpeg 5.1) to yuv444p: these integers reproduce
# every one of its Y', Cb and Cr values exactly (tests/renderer/test_yuv.py checks a sample).
Y709 = (5983, 20127, 2032)
CB709 = (-3298, -11094, 14392)
CR709 = (14392, -13073, -1320)
Y_OFFSET = 540928            # 16.5 * 2^15 + 2^8
# Cb/Cr before rounding: (c . rgb + C_OFFSET) / 2^15 (128 + 2^-7, swscale's bias); full-res
# chroma is that + 0.5, floored.
C_OFFSET = 4194560
# 4:2:0 chroma as swscale makes it from RGB: each row's horizontal pairs summed (into 7 fraction
# bits: (c0 + c1 + 2 C_OFFSET) >> 9), then rows halved by its default bicubic filter (B = 0,
# C = 0.6, 8 taps at scale 1/2, centred between rows 2i and 2i+1, edge rows repeated) in 12-bit
# weights. Not a 2x2 box: against ffmpeg's planes a box gives 51-58 dB on spiral frames (up to 14
# levels off at edges), these taps 66-70 dB (at most 1 level off).
CHROMA_TAPS = np.array([-58, -172, 492, 1786, 1786, 492, -172, -58], dtype=np.int64)
# Rounding of the vertical filter's sum (>> 19): exact rounding would add 2^18, but ffmpeg's results
# sit ~0.05 level lower on frames with detail (measured: the 50% point of its transition at
# fraction 0.55; its SIMD filter rounds in ways we did not pin down); rounding at 0.55 follows it.
CHROMA_ROUND = (1 << 18) - 26214


@dataclass(frozen=True, eq=False)
class Palette:
    """A colormap sampled once per render: packed RGBA words and the same colours, linear light."""

    rgba: np.ndarray          # uint32 (L,), bytes R, G, B, 255 in memory order
    linear: np.ndarray        # float32 (L, 3), linear-light RGB of the same entries
    encode_srgb: np.ndarray   # uint8 (LINEAR_STEPS + 1,), linear level → sRGB byte
    smooth_term: np.ndarray   # float64 (SMOOTH_TABLE_STEPS + 1,), see SMOOTH_SPAN
    mode: str
    max_iter: int
    log_radius: float
    radius2: float
    # int64 (L,), each entry's Y' << 48 | (CB709 . rgb + C_OFFSET) << 24 | CR709 . rgb + C_OFFSET:
    # one gather per sample; the two 24-bit fields of a sum of two words are each pair's sums.
    yuv709: np.ndarray

    @property
    def smooth_step(self) -> float:
        return (SMOOTH_SPAN - 1.0) * self.radius2 / SMOOTH_TABLE_STEPS

    @property
    def size(self) -> int:
        return int(self.rgba.size)


def make_palette(colormap: str, mode: str, max_iter: int, escape_radius: float,
                 reverse: bool = False) -> Palette:
    """Sample the matplotlib colormap into a lookup table suited to the mode and iteration cap."""
    import matplotlib

    try:
        cmap = matplotlib.colormaps[colormap]
    except KeyError:
        raise SceneError(f"colour.colormap: unknown colormap {colormap!r}") from None
    if reverse:
        cmap = cmap.reversed()
    if mode == "escape" and max_iter + 1 <= MAX_DIRECT_LUT:
        size = max_iter + 1  # one entry per possible count: exact value count / max_iter
    else:
        size = SMOOTH_LUT_SIZE
    srgb = np.asarray(cmap(np.linspace(0.0, 1.0, size)), dtype=np.float64)[:, :3]
    bytes_ = np.clip(np.rint(srgb * 255.0), 0, 255).astype(np.uint32)
    rgba = bytes_[:, 0] | (bytes_[:, 1] << 8) | (bytes_[:, 2] << 16) | np.uint32(255 << 24)
    # Linear light of the colour actually shown (the rounded byte), so k=1 and k>1 agree.
    linear = srgb_to_linear(bytes_.astype(np.float64) / 255.0).astype(np.float32)
    levels = np.linspace(0.0, 1.0, LINEAR_STEPS + 1)
    encode = np.clip(np.rint(linear_to_srgb(levels) * 255.0), 0, 255).astype(np.uint8)
    if not np.little_endian:  # pragma: no cover - every platform we ship to is little-endian
        rgba = rgba.byteswap()
    r2 = escape_radius * escape_radius
    m2 = np.linspace(r2, SMOOTH_SPAN * r2, SMOOTH_TABLE_STEPS + 1)
    term = 1.0 - np.log2(0.5 * np.log(m2) / math.log(escape_radius))
    b = bytes_.astype(np.int64)
    yuv709 = ((b @ np.array(Y709) + Y_OFFSET) >> 15) << 48 \
        | (b @ np.array(CB709) + C_OFFSET) << 24 | (b @ np.array(CR709) + C_OFFSET)
    return Palette(rgba=rgba, linear=linear, encode_srgb=encode, smooth_term=term, mode=mode,
                   max_iter=max_iter, log_radius=math.log(escape_radius), radius2=r2,
                   yuv709=yuv709)


def srgb_to_linear(v: np.ndarray) -> np.ndarray:
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(v: np.ndarray) -> np.ndarray:
    return np.where(v <= 0.0031308, v * 12.92, 1.055 * np.power(v, 1 / 2.4) - 0.055)


def colourise(palette: Palette, counts: np.ndarray, final_mod2: np.ndarray | None,
              supersample: int = 1, *, parallel: bool = True) -> np.ndarray:
    """RGBA frame (uint8, (H, W, 4), alpha 255) from sample counts of shape (H*k, W*k).

    parallel=False runs on the calling thread alone (for a caller that is one of several threads;
    the same values either way).
    """
    k = int(supersample)
    hs, ws = counts.shape
    if hs % k or ws % k:
        raise ValueError(f"counts shape {counts.shape} is not a multiple of supersample {k}")
    smooth = palette.mode == "smooth"
    if smooth and final_mod2 is None:
        raise ValueError("smooth colouring needs the final modulus")
    fmod = final_mod2 if smooth else np.empty((1, 1))
    with _functions(parallel) as fns:
        if k == 1:
            words = np.empty((hs, ws), dtype=np.uint32)
            fns["_colour_direct"](counts, fmod, smooth, palette.max_iter, palette.log_radius,
                                  palette.smooth_term, palette.radius2, palette.smooth_step,
                                  palette.rgba, words)
        else:
            words = np.empty((hs // k, ws // k), dtype=np.uint32)
            fns["_colour_supersampled"](counts, fmod, smooth, palette.max_iter,
                                        palette.log_radius, palette.smooth_term, palette.radius2,
                                        palette.smooth_step, palette.linear, palette.encode_srgb,
                                        k, words)
    return words.view(np.uint8).reshape(words.shape[0], words.shape[1], 4)


def colourise_yuv420(palette: Palette, counts: np.ndarray, final_mod2: np.ndarray | None,
                     supersample: int = 1, *, parallel: bool = True) -> np.ndarray:
    """The frame colourise() draws, as BT.709 limited-range Y'CbCr 4:2:0 in one uint8 buffer.

    The buffer holds the I420 planes one after the other (Y' H x W, then Cb and Cr (H/2) x (W/2),
    see yuv420_planes), ready for `ffmpeg -f rawvideo -pix_fmt yuv420p`. The values are what
    ffmpeg's `scale=out_color_matrix=bt709:out_range=tv` makes of colourise()'s RGB: Y' exactly,
    Cb and Cr within one level (see CHROMA_TAPS). Width and height must be even. parallel as
    for colourise().
    """
    k = int(supersample)
    hs, ws = counts.shape
    if hs % k or ws % k:
        raise ValueError(f"counts shape {counts.shape} is not a multiple of supersample {k}")
    h, w = hs // k, ws // k
    if h % 2 or w % 2:
        raise ValueError(f"yuv420p needs even sides, got {w}x{h}")
    smooth = palette.mode == "smooth"
    if smooth and final_mod2 is None:
        raise ValueError("smooth colouring needs the final modulus")
    fmod = final_mod2 if smooth else np.empty((1, 1))
    buf = np.empty(w * h * 3 // 2, dtype=np.uint8)
    y, cb, cr = yuv420_planes(buf, w, h)
    # Row-pair sums of Cb and Cr (7 fraction bits) at full height, filtered down afterwards.
    sums = np.empty((2, h, w // 2), dtype=np.int32)
    with _functions(parallel) as fns:
        if k == 1:
            fns["_yuv_direct"](counts, fmod, smooth, palette.max_iter, palette.log_radius,
                               palette.smooth_term, palette.radius2, palette.smooth_step,
                               palette.yuv709, y, sums)
        else:
            fns["_yuv_supersampled"](counts, fmod, smooth, palette.max_iter, palette.log_radius,
                                     palette.smooth_term, palette.radius2, palette.smooth_step,
                                     palette.linear, palette.encode_srgb, k, y, sums)
        fns["_chroma_rows"](sums, CHROMA_TAPS, cb, cr)
    return buf


def yuv420_planes(buf: np.ndarray, width: int, height: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views of the Y', Cb and Cr planes of an I420 buffer (no copies)."""
    n = width * height
    return (buf[:n].reshape(height, width),
            buf[n:n + n // 4].reshape(height // 2, width // 2),
            buf[n + n // 4:n + n // 2].reshape(height // 2, width // 2))


def rgb(rgba: np.ndarray) -> np.ndarray:
    """The contiguous (H, W, 3) RGB copy of an RGBA frame (for PNGs)."""
    return np.ascontiguousarray(rgba[:, :, :3])


@njit(cache=True, nogil=True, inline="always")
def _index(n: int, m2: float, smooth: bool, max_iter: int, log_r: float, table: np.ndarray,
           r2: float, step: float, size: int) -> int:
    """Lookup-table entry of one sample."""
    if n >= max_iter:
        return size - 1
    if smooth:
        # |z| > R at escape, so log|z| / log R > 1 and nu <= n + 1.
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


@njit(cache=True, nogil=True, inline="always")
def _row_indices(counts, fmod, i, smooth, max_iter, log_r, table, r2, step, size,
                 e):  # pragma: no cover - numba
    """_index of every sample of row i into e, in two loops: a branch-free one over the table
    (LLVM vectorises it, gathers included; 2-3x faster than _index per pixel) and a scalar
    fix-up of the rare samples beyond the table. Same float operations as _index, same result."""
    w = e.size
    if not smooth:
        for j in range(w):
            n = counts[i, j]
            if size == max_iter + 1:
                e[j] = min(n, max_iter)
            else:
                e[j] = size - 1 if n >= max_iter else int(n * (size - 1) / max_iter + 0.5)
        return
    top = table.size - 1
    beyond = 0
    for j in range(w):
        n = counts[i, j]
        u = (fmod[i, j] - r2) / step
        inside = (u >= 0.0) & (u < top)
        uu = u if inside else 0.0
        t = int(uu)
        nu = n + (table[t] + (uu - t) * (table[t + 1] - table[t]))
        nu = nu if nu >= 0.0 else 0.0
        k = int(nu / max_iter * (size - 1) + 0.5)
        escaped = n < max_iter
        e[j] = k if escaped else size - 1
        beyond += np.int32(escaped & (not inside))
    if beyond:
        for j in range(w):
            e[j] = _index(counts[i, j], fmod[i, j], smooth, max_iter, log_r, table, r2, step,
                          size)


@njit(parallel=True, cache=True, nogil=True)
def _colour_direct(counts, fmod, smooth, max_iter, log_r, table, r2, step, lut,
                   out):  # pragma: no cover - numba
    h, w = counts.shape
    size = lut.size
    for i in prange(h):
        if not smooth:  # a plain gather already; the row buffer only costs here
            for j in range(w):
                out[i, j] = lut[_index(counts[i, j], 0.0, smooth, max_iter, log_r, table, r2,
                                       step, size)]
            continue
        e = np.empty(w, dtype=np.int32)
        _row_indices(counts, fmod, i, smooth, max_iter, log_r, table, r2, step, size, e)
        for j in range(w):
            out[i, j] = lut[e[j]]


@njit(cache=True, nogil=True, inline="always")
def _supersampled_row(counts, fmod, i, smooth, max_iter, log_r, table, r2, step, lin, enc, k, e,
                      out):  # pragma: no cover - numba
    """sRGB bytes of output row i (out: (W, 3)): each pixel's k x k samples averaged in linear
    light. e is scratch for the k sample rows' table entries (k, W*k)."""
    size = lin.shape[0]
    steps = enc.size - 1
    inv = 1.0 / (k * k)
    for di in range(k):
        _row_indices(counts, fmod, i * k + di, smooth, max_iter, log_r, table, r2, step, size,
                     e[di])
    for j in range(out.shape[0]):
        r = 0.0
        g = 0.0
        b = 0.0
        for di in range(k):
            for dj in range(k):
                x = e[di, j * k + dj]
                r += lin[x, 0]
                g += lin[x, 1]
                b += lin[x, 2]
        out[j, 0] = enc[int(min(r * inv, 1.0) * steps + 0.5)]
        out[j, 1] = enc[int(min(g * inv, 1.0) * steps + 0.5)]
        out[j, 2] = enc[int(min(b * inv, 1.0) * steps + 0.5)]


@njit(parallel=True, cache=True, nogil=True)
def _colour_supersampled(counts, fmod, smooth, max_iter, log_r, table, r2, step, lin, enc, k,
                         out):  # pragma: no cover - numba
    h, w = out.shape
    for i in prange(h):
        e = np.empty((k, w * k), dtype=np.int32)
        px = np.empty((w, 3), dtype=np.int32)
        _supersampled_row(counts, fmod, i, smooth, max_iter, log_r, table, r2, step, lin, enc,
                          k, e, px)
        for j in range(w):
            out[i, j] = np.uint32(px[j, 0]) | (np.uint32(px[j, 1]) << 8) | \
                (np.uint32(px[j, 2]) << 16) | np.uint32(255 << 24)


# The fixed-point constants as numba sees them (globals are frozen at compile time).
_YR, _YG, _YB = Y709
_UR, _UG, _UB = CB709
_VR, _VG, _VB = CR709
_PAIR_OFFSET = 2 * C_OFFSET


@njit(parallel=True, cache=True, nogil=True)
def _yuv_direct(counts, fmod, smooth, max_iter, log_r, table, r2, step, lut, y,
                sums):  # pragma: no cover - numba
    h, w = y.shape
    size = lut.size
    for i in prange(h):
        e = np.empty(w, dtype=np.int32)
        _row_indices(counts, fmod, i, smooth, max_iter, log_r, table, r2, step, size, e)
        for j in range(w // 2):
            w0 = lut[e[2 * j]]
            w1 = lut[e[2 * j + 1]]
            y[i, 2 * j] = w0 >> 48
            y[i, 2 * j + 1] = w1 >> 48
            pair = w0 + w1
            sums[0, i, j] = ((pair >> 24) & 0xFFFFFF) >> 9
            sums[1, i, j] = (pair & 0xFFFFFF) >> 9


@njit(parallel=True, cache=True, nogil=True)
def _yuv_supersampled(counts, fmod, smooth, max_iter, log_r, table, r2, step, lin, enc, k, y,
                      sums):  # pragma: no cover - numba
    h, w = y.shape
    for i in prange(h):
        e = np.empty((k, w * k), dtype=np.int32)
        px = np.empty((w, 3), dtype=np.int32)
        _supersampled_row(counts, fmod, i, smooth, max_iter, log_r, table, r2, step, lin, enc,
                          k, e, px)
        for j in range(w):
            y[i, j] = (_YR * px[j, 0] + _YG * px[j, 1] + _YB * px[j, 2] + Y_OFFSET) >> 15
        for j in range(w // 2):
            r = px[2 * j, 0] + px[2 * j + 1, 0]
            g = px[2 * j, 1] + px[2 * j + 1, 1]
            b = px[2 * j, 2] + px[2 * j + 1, 2]
            sums[0, i, j] = (_UR * r + _UG * g + _UB * b + _PAIR_OFFSET) >> 9
            sums[1, i, j] = (_VR * r + _VG * g + _VB * b + _PAIR_OFFSET) >> 9


@njit(parallel=True, cache=True, nogil=True)
def _chroma_rows(sums, taps, cb, cr):  # pragma: no cover - numba
    """Halve the rows of the pair sums with the 8-tap filter (edge rows repeated) → Cb, Cr."""
    h = sums.shape[1]
    hc, wc = cb.shape
    ntaps = taps.size
    for i in prange(hc):
        acc_b = np.zeros(wc, dtype=np.int32)
        acc_r = np.zeros(wc, dtype=np.int32)
        for t in range(ntaps):
            row = min(max(2 * i - ntaps // 2 + 1 + t, 0), h - 1)
            wt = np.int32(taps[t])
            for j in range(wc):
                acc_b[j] += wt * sums[0, row, j]
                acc_r[j] += wt * sums[1, row, j]
        for j in range(wc):
            cb[i, j] = min(max((acc_b[j] + CHROMA_ROUND) >> 19, 0), 255)
            cr[i, j] = min(max((acc_r[j] + CHROMA_ROUND) >> 19, 0), 255)


def _serial(parallel_fn):  # noqa: ANN001, ANN202 - numba dispatchers
    """The same function compiled without threads. It gets a name of its own because numba's
    cache keys entries by the function's name and signature, not by the parallel flag."""
    f = parallel_fn.py_func
    g = types.FunctionType(f.__code__, f.__globals__, f.__name__ + "_serial", f.__defaults__,
                           f.__closure__)
    g.__qualname__ = f.__qualname__ + "_serial"
    return njit(cache=True, nogil=True)(g)


_PARALLEL = {f.py_func.__name__: f for f in (_colour_direct, _colour_supersampled, _yuv_direct,
                                              _yuv_supersampled, _chroma_rows)}
_SERIAL = {name: _serial(f) for name, f in _PARALLEL.items()}
# Threading layers that allow parallel code to be launched from several threads at once.
_THREAD_SAFE_LAYERS = ("omp", "tbb")


@contextmanager
def _functions(parallel: bool) -> Iterator[dict]:
    """The colour functions to call: with all of numba's threads, or on the calling thread alone.

    Alone, the parallel builds still run 2x faster than the serial ones (measured at 1080² smooth
    on one thread: 1.9 vs 4.3 ms; numba's parfor lowering vectorises the row loops, its plain
    lowering does not), so they are used with this thread's numba thread count at 1 (a
    thread-local setting) where the threading layer allows concurrent launches; the serial builds
    otherwise, e.g. before any parallel code has chosen a layer, or with "workqueue".
    """
    if parallel:
        yield _PARALLEL
        return
    try:
        safe = numba.threading_layer() in _THREAD_SAFE_LAYERS
    except ValueError:  # no parallel code has run yet, so no layer is chosen
        safe = False
    if not safe:
        yield _SERIAL
        return
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield _PARALLEL
    finally:
        numba.set_num_threads(before)
