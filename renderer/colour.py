"""Counts → RGB: a colormap lookup table built once per render, applied on all cores.

Two colouring modes:
- ``escape``: value = count / max_iter (the classic look; the interior, count == max_iter, gets 1).
- ``smooth``: continuous escape time nu = n + 1 - log2(log|z_n| / log R), from the modulus of the
  first escaped z, so bands become gradients; the interior still gets 1.

Supersampled frames (k x k samples per pixel) are averaged in linear light, not in sRGB, so
anti-aliased edges keep their brightness.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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
    return Palette(rgba=rgba, linear=linear, encode_srgb=encode, smooth_term=term, mode=mode,
                   max_iter=max_iter, log_radius=math.log(escape_radius), radius2=r2)


def srgb_to_linear(v: np.ndarray) -> np.ndarray:
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(v: np.ndarray) -> np.ndarray:
    return np.where(v <= 0.0031308, v * 12.92, 1.055 * np.power(v, 1 / 2.4) - 0.055)


def colourise(palette: Palette, counts: np.ndarray, final_mod2: np.ndarray | None,
              supersample: int = 1) -> np.ndarray:
    """RGBA frame (uint8, (H, W, 4), alpha 255) from sample counts of shape (H*k, W*k)."""
    k = int(supersample)
    hs, ws = counts.shape
    if hs % k or ws % k:
        raise ValueError(f"counts shape {counts.shape} is not a multiple of supersample {k}")
    smooth = palette.mode == "smooth"
    if smooth and final_mod2 is None:
        raise ValueError("smooth colouring needs the final modulus")
    fmod = final_mod2 if smooth else np.empty((1, 1))
    if k == 1:
        words = np.empty((hs, ws), dtype=np.uint32)
        _colour_direct(counts, fmod, smooth, palette.max_iter, palette.log_radius,
                       palette.smooth_term, palette.radius2, palette.smooth_step,
                       palette.rgba, words)
    else:
        words = np.empty((hs // k, ws // k), dtype=np.uint32)
        _colour_supersampled(counts, fmod, smooth, palette.max_iter, palette.log_radius,
                             palette.smooth_term, palette.radius2, palette.smooth_step,
                             palette.linear, palette.encode_srgb, k, words)
    return words.view(np.uint8).reshape(words.shape[0], words.shape[1], 4)


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


@njit(parallel=True, cache=True, nogil=True)
def _colour_direct(counts, fmod, smooth, max_iter, log_r, table, r2, step, lut,
                   out):  # pragma: no cover - numba
    h, w = counts.shape
    size = lut.size
    for i in prange(h):
        for j in range(w):
            m2 = fmod[i, j] if smooth else 0.0
            e = _index(counts[i, j], m2, smooth, max_iter, log_r, table, r2, step, size)
            out[i, j] = lut[e]


@njit(parallel=True, cache=True, nogil=True)
def _colour_supersampled(counts, fmod, smooth, max_iter, log_r, table, r2, step, lin, enc, k,
                         out):  # pragma: no cover - numba
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
