"""renderer.kernel equals the plain reference pixel for pixel; renderer.grid is antisymmetric."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit, prange

from renderer.grid import axis, sample_grid
from renderer.kernel import _take, escape_counts, set_threads
from tests.renderer.reference import escape_count
from tests.renderer.reference import escape_counts as reference_counts


def assert_matches_reference(xs: np.ndarray, ys: np.ndarray, c: complex, max_iter: int,
                             radius: float = 2.0) -> dict:
    """Kernel counts and final |z|^2 (where escaped) equal the reference's; returns the stats."""
    stats: dict = {}
    counts, mod2 = escape_counts(xs, ys, c, max_iter, radius, want_final_modulus=True,
                                 stats=stats)
    ref_c, ref_m = reference_counts(xs, ys, c, max_iter, radius)
    ref_counts = np.array(ref_c, dtype=np.int64).reshape(len(ys), len(xs))
    ref_mod2 = np.array(ref_m, dtype=np.float64).reshape(len(ys), len(xs))
    assert counts.dtype == np.int32
    assert counts.shape == (len(ys), len(xs))
    bad = np.argwhere(counts != ref_counts)
    assert bad.size == 0, (
        f"{len(bad)} pixels differ, first at {tuple(bad[0])}: "
        f"kernel {counts[tuple(bad[0])]} vs reference {ref_counts[tuple(bad[0])]}")
    assert mod2 is not None and mod2.dtype == np.float64 and mod2.shape == counts.shape
    escaped = ref_counts < max_iter
    np.testing.assert_array_equal(mod2[escaped], ref_mod2[escaped])
    return stats


# --- kernel: random scenes -------------------------------------------------------------------

centres = st.one_of(st.just(0.0), st.floats(-1.5, 1.5, allow_nan=False))


@settings(max_examples=60, deadline=None)
@given(
    width=st.integers(1, 40),
    height=st.integers(1, 40),
    cx=centres,
    cy=centres,
    half_w=st.floats(0.01, 2.0),
    half_h=st.floats(0.01, 2.0),
    c_abs=st.floats(0.0, 1.2),
    c_arg=st.floats(-np.pi, np.pi),
    max_iter=st.integers(1, 300),
    radius=st.floats(1.5, 10.0),
)
def test_random_scenes_match_reference(width: int, height: int, cx: float, cy: float,
                                       half_w: float, half_h: float, c_abs: float, c_arg: float,
                                       max_iter: int, radius: float) -> None:
    xs, ys = sample_grid(cx, cy, half_w, half_h, width, height)
    c = complex(c_abs * np.cos(c_arg), c_abs * np.sin(c_arg))
    assert_matches_reference(xs, ys, c, max_iter, radius)


@settings(max_examples=25, deadline=None)
@given(
    xs=st.lists(st.floats(-2.0, 2.0), min_size=1, max_size=30),
    ys=st.lists(st.floats(-2.0, 2.0), min_size=1, max_size=30),
    c_re=st.floats(-1.0, 0.5),
    c_im=st.floats(-1.0, 1.0),
    max_iter=st.integers(1, 200),
)
def test_arbitrary_unsorted_samples_match_reference(xs: list[float], ys: list[float],
                                                    c_re: float, c_im: float,
                                                    max_iter: int) -> None:
    # Arbitrary coordinates: the kernel must not assume a regular or symmetric grid.
    assert_matches_reference(np.array(xs), np.array(ys), complex(c_re, c_im), max_iter)


# --- kernel: hand-picked cases ---------------------------------------------------------------

@pytest.mark.parametrize("c", [complex(-0.62772, -0.4), complex(-0.8, 0.156), complex(0.285, 0.01)])
@pytest.mark.parametrize(("width", "height"), [(41, 41), (40, 40), (37, 22), (22, 37), (1, 9)])
def test_centred_view_uses_symmetry_and_matches(c: complex, width: int, height: int) -> None:
    xs, ys = sample_grid(0.0, 0.0, 1.8, 1.8, width, height)
    stats = assert_matches_reference(xs, ys, c, 200)
    # The mirrored half was not iterated: fewer iterations than the counts add up to.
    counts, _ = escape_counts(xs, ys, c, 200)
    if height > 1:
        assert stats["iterations"] < int(counts.sum())


def test_off_centre_view_does_not_mirror() -> None:
    # Almost centred (one ulp off): the mirror trick must not apply, counts must still match.
    xs, ys = sample_grid(np.nextafter(0.0, 1.0), 0.0, 1.8, 1.8, 31, 31)
    assert not np.array_equal(xs, -xs[::-1])
    assert_matches_reference(xs, ys, complex(-0.62772, -0.4), 150)


@pytest.mark.parametrize("c", [complex(-1.0, 0.0), complex(0.0, 0.0), complex(-0.12, 0.75)])
def test_periodic_interiors_save_iterations_and_stay_exact(c: complex) -> None:
    # c = -1: the orbit of 0 cycles 0, -1, 0 exactly; c = 0: |z| < 1 collapses to 0 exactly;
    # c = -0.12+0.75i (Douady rabbit): an attracting 3-cycle. Large max_iter so cycles are found.
    xs, ys = sample_grid(0.05, -0.03, 1.0, 1.0, 13, 11)
    max_iter = 3000
    stats = assert_matches_reference(xs, ys, c, max_iter)
    counts, _ = escape_counts(xs, ys, c, max_iter)
    interior = int(np.count_nonzero(counts == max_iter))
    assert interior > 0
    assert stats["iterations"] < int(counts.sum(dtype=np.int64)) - interior * (max_iter // 2)


def test_orbit_of_zero_for_c_minus_one_is_exactly_periodic() -> None:
    xs = np.array([0.0])
    ys = np.array([0.0])
    stats: dict = {}
    counts, _ = escape_counts(xs, ys, -1.0, 100_000, stats=stats)
    assert counts[0, 0] == 100_000 == escape_count(0.0, 0.0, -1.0, 100_000)[0]
    assert stats["iterations"] < 100


def test_orbit_lingering_at_a_repelling_fixed_point_is_not_called_periodic() -> None:
    # c = 0: z = 1 is a repelling fixed point. From 1 + 2^-52 the orbit stays within ~1e-11 of it
    # for dozens of steps, then escapes; only an EXACT return may count as a cycle. z = 1 itself
    # is a true fixed point and must be detected (and still equal the reference).
    one_up = np.nextafter(1.0, 2.0)
    xs = np.array([1.0, one_up, np.nextafter(one_up, 2.0), -one_up, -1.0])
    ys = np.array([0.0])
    stats = assert_matches_reference(xs, ys, 0.0, 2000)
    counts, _ = escape_counts(xs, ys, 0.0, 2000)
    assert counts[0, 0] == counts[0, 4] == 2000
    assert 40 < counts[0, 1] < 2000 and 40 < counts[0, 3] < 2000
    assert stats["iterations"] < int(counts.sum()) - 1000


def test_large_max_iter_matches_reference() -> None:
    xs, ys = sample_grid(-0.3, 0.2, 0.05, 0.05, 6, 5)
    assert_matches_reference(xs, ys, complex(-0.62772, -0.42), 20_000)


def test_max_iter_one() -> None:
    xs, ys = sample_grid(0.0, 0.0, 2.0, 2.0, 17, 17)
    assert_matches_reference(xs, ys, complex(-0.5, 0.3), 1)
    counts, _ = escape_counts(xs, ys, complex(-0.5, 0.3), 1)
    assert set(np.unique(counts)) == {0, 1}


@pytest.mark.parametrize(("width", "height"), [(1, 1), (1, 25), (25, 1), (1, 2), (2, 1), (600, 1),
                                               (1, 600)])
def test_degenerate_shapes(width: int, height: int) -> None:
    xs, ys = sample_grid(0.0, 0.0, 1.5, 1.5, width, height)
    assert_matches_reference(xs, ys, complex(-0.62772, -0.4), 120)


def test_row_wider_than_a_chunk_and_many_chunks() -> None:
    # Rows longer than the kernel's chunk and more chunks than threads exercise the work split.
    xs, ys = sample_grid(0.0, 0.0, 1.8, 1.8, 1100, 7)
    assert_matches_reference(xs, ys, complex(-0.62772, -0.4), 60)


def test_final_modulus_is_first_escaped_value() -> None:
    xs = np.array([0.3, 1.0, 3.0])
    ys = np.array([0.1])
    c = complex(-0.62772, 0.3)
    counts, mod2 = escape_counts(xs, ys, c, 50, 2.0, want_final_modulus=True)
    assert mod2 is not None
    for j, x in enumerate(xs):
        n, m = escape_count(float(x), 0.1, c, 50)
        assert counts[0, j] == n
        if n < 50:
            assert mod2[0, j] == m and m > 4.0
    counts2, none = escape_counts(xs, ys, c, 50)
    assert none is None
    np.testing.assert_array_equal(counts, counts2)


def test_counts_independent_of_thread_count() -> None:
    xs, ys = sample_grid(0.0, 0.0, 1.8, 1.8, 300, 200)
    c = complex(-0.62772, -0.4)
    set_threads(1)
    one, _ = escape_counts(xs, ys, c, 300)
    set_threads(2)
    two, _ = escape_counts(xs, ys, c, 300)
    np.testing.assert_array_equal(one, two)
    # Spot-check the big frame against the reference on a few rows.
    rows = [0, 57, 100, 199]
    ref, _ = reference_counts(xs, ys[rows], c, 300)
    np.testing.assert_array_equal(one[rows], np.array(ref))


@pytest.mark.parametrize(("width", "height"), [(3, 2), (7, 3), (9, 5), (63, 5), (65, 9),
                                               (129, 13), (8, 4), (64, 8), (200, 3)])
@pytest.mark.parametrize("centred", [True, False])
def test_sizes_off_the_tile_and_chunk_grid(width: int, height: int, centred: bool) -> None:
    # Tiles are 4 x 8 pixels and chunks 4 x 64: partial tiles and chunks, grids smaller than
    # one tile, a middle row inside a tile (odd heights), with and without the mirror.
    cx = 0.0 if centred else 0.013
    xs, ys = sample_grid(cx, 0.0, 1.6, 1.2, width, height)
    for max_iter in (1, 3, 4, 5, 150):
        assert_matches_reference(xs, ys, complex(-0.62772, -0.399), max_iter)


def test_mixed_escape_times_refill_lanes() -> None:
    # A spiral frame where neighbouring pixels escape at very different counts, so lanes are
    # refilled one by one, and a frame where whole blocks escape together.
    xs, ys = sample_grid(0.0, 0.0, 1.8, 1.8, 150, 90)
    assert_matches_reference(xs, ys, complex(-0.62772, -0.399), 400)
    xs, ys = sample_grid(0.0, 0.0, 3.0, 3.0, 70, 40)
    assert_matches_reference(xs, ys, complex(0.4, 0.3), 30)


def test_stats_and_counts_independent_of_thread_count() -> None:
    xs, ys = sample_grid(0.0, 0.0, 1.8, 1.8, 260, 130)
    c = complex(-0.62772, -0.42)
    results = []
    for t in (1, 2):
        set_threads(t)
        stats: dict = {}
        counts, mod2 = escape_counts(xs, ys, c, 300, want_final_modulus=True, stats=stats)
        results.append((counts, mod2, stats["iterations"]))
    assert results[0][2] == results[1][2]
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])


@njit(parallel=True)
def _tickets(counter: np.ndarray, n: int, workers: int) -> np.ndarray:
    """Every worker takes tickets from the shared counter until they run out."""
    owner = np.full(n, -1, dtype=np.int64)
    for wk in prange(workers):
        t = _take(counter)
        while t < n:
            owner[t] = wk
            t = _take(counter)
    return owner


def test_atomic_counter_hands_out_every_chunk_exactly_once() -> None:
    assert _take(np.zeros(1, dtype=np.int64)) == 0
    counter = np.array([5], dtype=np.int64)
    assert _take(counter) == 5 and _take(counter) == 6 and counter[0] == 7
    set_threads(2)
    counter = np.zeros(1, dtype=np.int64)
    owner = _tickets(counter, 100_000, 2)
    assert np.all(owner >= 0)
    # Each worker took the next ticket when it finished; the counter ends one past per worker.
    assert counter[0] == 100_000 + 2


MANY_THREADS = """
import numpy as np
from renderer.grid import sample_grid
from renderer.kernel import escape_counts, set_threads
xs, ys = sample_grid(0.0, 0.0, 1.8, 1.8, 333, 211)
c = complex(-0.62772, -0.399)
set_threads(1)
one, m1 = escape_counts(xs, ys, c, 200, want_final_modulus=True)
set_threads(48)
many, m48 = escape_counts(xs, ys, c, 200, want_final_modulus=True)
assert np.array_equal(one, many)
assert np.array_equal(m1, m48)
print("ok")
"""


@pytest.mark.slow
def test_48_threads_on_a_small_machine_give_the_same_counts() -> None:
    # 48 workers (oversubscribed here) race for ~160 chunks: the 48-core server's schedule.
    env = {**os.environ, "NUMBA_NUM_THREADS": "48"}
    out = subprocess.run([sys.executable, "-c", MANY_THREADS], env=env, capture_output=True,
                         text=True, timeout=600, cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_bad_arguments_raise() -> None:
    xs, ys = sample_grid(0.0, 0.0, 1.0, 1.0, 3, 3)
    with pytest.raises(ValueError):
        escape_counts(xs, ys, 0.0, 0)
    with pytest.raises(ValueError):
        escape_counts(xs, ys, 0.0, 10, 0.0)


# --- grid -------------------------------------------------------------------------------------

@pytest.mark.parametrize("half", [1.8, 1.0, 0.1, 2.5, 1e-3, 3.7])
def test_axis_exactly_antisymmetric(half: float) -> None:
    for n in list(range(1, 300)) + [997, 1000, 1079, 1080, 1081, 1920, 1999, 2000]:
        x = axis(0.0, half, n)
        assert x.dtype == np.float64 and x.shape == (n,)
        assert np.array_equal(x, -x[::-1]), f"n={n}"
        # Bit for bit apart from the sign of an exact zero in the middle.
        bits = x.view(np.int64) ^ (-x[::-1]).view(np.int64)
        assert np.all((bits == 0) | (x == 0.0))
        if n > 1:
            assert x[0] == -half and x[-1] == half
            assert np.all(np.diff(x) > 0)
        if n % 2:
            assert x[n // 2] == 0.0


def test_linspace_is_not_antisymmetric_so_the_test_can_fail() -> None:
    x = np.linspace(-1.8, 1.8, 1080)
    assert not np.array_equal(x, -x[::-1])


def test_axis_off_centre() -> None:
    x = axis(-0.5, 0.25, 11)
    assert x[0] == -0.75 and x[-1] == -0.25 and x[5] == -0.5
    np.testing.assert_allclose(x, np.linspace(-0.75, -0.25, 11), rtol=0, atol=1e-15)
    assert np.all(np.diff(x) > 0)
    np.testing.assert_allclose(axis(3.0, 1.0, 1001), np.linspace(2.0, 4.0, 1001), atol=1e-14)


def test_axis_rejects_empty() -> None:
    with pytest.raises(ValueError):
        axis(0.0, 1.0, 0)


@pytest.mark.parametrize(("width", "height", "k"), [(1080, 1080, 1), (33, 20, 3), (1, 1, 1),
                                                    (640, 360, 2), (7, 1, 4)])
def test_sample_grid_centres_and_orientation(width: int, height: int, k: int) -> None:
    xs, ys = sample_grid(0.0, 0.0, 1.6, 0.9, width, height, k)
    assert xs.shape == (width * k,) and ys.shape == (height * k,)
    assert np.array_equal(xs, -xs[::-1]) and np.array_equal(ys, -ys[::-1])
    # Sub-pixel centres: half a sub-pixel inside the edges, evenly spaced; row 0 is the top.
    np.testing.assert_allclose(xs, -1.6 + 3.2 * (np.arange(width * k) + 0.5) / (width * k),
                               rtol=0, atol=1e-14)
    np.testing.assert_allclose(ys, 0.9 - 1.8 * (np.arange(height * k) + 0.5) / (height * k),
                               rtol=0, atol=1e-14)
    if height * k > 1:
        assert ys[0] > 0 > ys[-1] and np.all(np.diff(ys) < 0)


def test_sample_grid_off_centre() -> None:
    xs, ys = sample_grid(-0.5, 0.25, 1.0, 0.5, 4, 2)
    np.testing.assert_allclose(xs, [-1.25, -0.75, -0.25, 0.25], atol=1e-15)
    np.testing.assert_allclose(ys, [0.5, 0.0], atol=1e-15)
