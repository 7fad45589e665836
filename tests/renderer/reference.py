"""Plain pure-Python reference for the escape-time count: slow and obviously right."""

from __future__ import annotations

from collections.abc import Sequence


def escape_count(x: float, y: float, c: complex, max_iter: int, escape_radius: float = 2.0
                 ) -> tuple[int, float]:
    """Return (n, |z|^2 at the escape test that stopped the loop) for the sample point x + iy.

    Python complex arithmetic fixes the operation order: p*p is (x*x - y*y) + (x*y + y*x)i, and
    abs() is avoided so the test is exactly zr*zr + zi*zi > R*R with R*R computed once.
    """
    r2 = escape_radius * escape_radius
    p = complex(x, y)
    z = p * p + c
    n = 0
    while n < max_iter and not (z.real * z.real + z.imag * z.imag > r2):
        z = z * z + c
        n += 1
    return n, z.real * z.real + z.imag * z.imag


def escape_counts(xs: Sequence[float], ys: Sequence[float], c: complex, max_iter: int,
                  escape_radius: float = 2.0) -> tuple[list[list[int]], list[list[float]]]:
    """Counts and final |z|^2 as nested lists: row i is ys[i], column j is xs[j]."""
    counts: list[list[int]] = []
    mods: list[list[float]] = []
    for y in ys:
        row_c: list[int] = []
        row_m: list[float] = []
        for x in xs:
            n, m = escape_count(float(x), float(y), complex(c), max_iter, escape_radius)
            row_c.append(n)
            row_m.append(m)
        counts.append(row_c)
        mods.append(row_m)
    return counts, mods
