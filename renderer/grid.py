"""Sample coordinates of a frame, antisymmetric about a zero centre so kernels can mirror."""

from __future__ import annotations

import numpy as np


def axis(centre: float, half_extent: float, n: int) -> np.ndarray:
    """Return n float64 points from centre-half_extent to centre+half_extent, ends included.

    Built as centre -/+ offsets from ONE half of the offsets, so with centre == 0.0 the axis is
    exactly antisymmetric: x[i] == -x[n-1-i] for every i (np.linspace is not: its two halves are
    rounded differently). For odd n the middle point is exactly the centre; n == 1 gives [centre].
    """
    if n < 1:
        raise ValueError(f"axis needs n >= 1, got {n}")
    centre = float(centre)
    half_extent = float(half_extent)
    out = np.empty(n, dtype=np.float64)
    if n == 1:
        out[0] = centre
        return out
    k = np.arange(n // 2, dtype=np.float64)
    # (n-1-2k)/(n-1) is a correctly rounded quotient of exact integers, so offsets[0] == half_extent
    # exactly and the offsets fall monotonically towards the middle.
    offsets = half_extent * ((n - 1 - 2.0 * k) / (n - 1))
    out[: n // 2] = centre - offsets
    out[n - n // 2 :] = (centre + offsets)[::-1]
    if n % 2:
        out[n // 2] = centre
    return out


def sample_grid(
    centre_x: float,
    centre_y: float,
    half_width: float,
    half_height: float,
    width: int,
    height: int,
    supersample: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Return (xs, ys): the sample coordinates of a width*k by height*k grid (k = supersample).

    Samples sit at the CENTRE of each sub-pixel: the frame covers exactly
    [centre-half, centre+half] on each axis, so the outermost samples lie half a sub-pixel inside
    the edge, and a k x k block of samples averages to one pixel with no bias across pixel borders.
    xs runs left to right; ys runs from the top row (+half_height side) down, so image row 0 is the
    top. With centre (0, 0) both arrays are exactly antisymmetric (xs == -xs[::-1]).
    """
    if width < 1 or height < 1 or supersample < 1:
        raise ValueError("sample_grid needs width, height, supersample >= 1, "
                         f"got {width}, {height}, {supersample}")
    nx = width * supersample
    ny = height * supersample
    # The sub-pixel centres span the extent minus half a sub-pixel at each end.
    xs = axis(centre_x, half_width - half_width / nx, nx)
    ys = axis(centre_y, half_height - half_height / ny, ny)[::-1].copy()
    return xs, ys
