"""Escape-time counts of a Julia set on a sample grid: numba, exact to the plain reference, pure."""

from __future__ import annotations

import os

# The kernel shares the cores with x264 and the colour thread. OpenMP's default wait policy lets
# a thread that finished its part of a parallel region spin for a while, on the CPU x264 needs;
# passive waiting yields it. Measured on 900 spiral frames (benchmarks/RESULTS.md, Pipeline):
# 22.3 -> 20.0 s wall and 40 -> 34 s of user CPU. libgomp reads this when numba first loads it
# (the first parallel call), so setting it at import is early enough; the user's own wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numba  # noqa: E402
import numpy as np  # noqa: E402
from numba import njit, prange, types  # noqa: E402
from numba.core import cgutils  # noqa: E402
from numba.extending import intrinsic  # noqa: E402

__all__ = ["escape_counts", "set_threads"]

# 32 lanes iterated in lock-step: a fixed-trip inner loop over lanes that LLVM turns into four
# AVX-512 registers per state variable, i.e. four independent dependency chains that hide the
# latency of one z-step.
_LANES = 32
# z-steps a lane takes in registers between loads and stores of its state, and between the
# periodicity and all-lanes-dead checks.
_GROUP = 4
# Save z for the periodicity check every this many steps (a power of two, multiple of _GROUP). A
# cycle whose period divides into the group ends within one interval is caught; a short fixed
# interval beats Brent's growing one here because the check is cheap next to the lanes it frees.
_SAVE_EVERY = 64
# A chunk, the unit a thread takes from the shared counter, is _ROWS x _CHUNK_COLS pixels,
# visited in 4 x 8 blocks so the 32 lanes hold neighbours of similar counts. A lane whose pixel
# is done takes the next pixel of the chunk (no stream compaction: the lanes stay where they
# are). The cost of a chunk varies ~100x across a frame (a few steps in the fast-escaping margin,
# max_iter in the interior), which is why chunks are handed out dynamically.
_ROWS = 4
_COLS = 8
_CHUNK_COLS = 64
# Refill dead lanes once at least this many are dead (a scalar pass over the lanes costs about
# as much as a few vector groups, so refilling after every escape would not pay).
_REFILL_MIN = 8

# Offsets of the state sections in one flat per-worker array each: constant offsets let LLVM see
# that the sections never overlap. They are unsigned, as is every hot index, because numba only
# skips its negative-index wraparound (which blocks vectorisation) for unsigned indices.
_ZR, _ZI, _SR, _SI, _X, _Y, _M2 = (np.uint64(k * _LANES) for k in range(7))
_N, _LIVE, _PIX, _FRESH, _NF, _IT = (np.uint64(k * _LANES) for k in range(6))
_F_SIZE = 7 * _LANES
_S_SIZE = 6 * _LANES


def set_threads(n: int) -> None:
    """Use n worker threads for the kernel (numba.set_num_threads; n is clamped to 1..max)."""
    numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))


@intrinsic
def _fetch_add(typingctx, counter, delta):
    """counter[0] += delta atomically; returns the old value (LLVM atomicrmw add, monotonic)."""
    if not (isinstance(counter, types.Array) and counter.dtype == types.int64
            and isinstance(delta, types.Integer)):
        return None
    sig = types.int64(counter, delta)

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, signature.args[0], ary,
                                       [context.get_constant(types.intp, 0)])
        val = context.cast(builder, args[1], signature.args[1], types.int64)
        return builder.atomic_rmw("add", ptr, val, "monotonic")

    return sig, codegen


@njit(cache=True, nogil=True, inline="always")
def _take(counter: np.ndarray) -> int:
    """The next chunk index from the shared counter (each index is handed out exactly once).

    Inlined, like every helper here: a call between numba functions increfs and decrefs its
    array arguments, atomic operations on reference counts shared by all threads.
    """
    return _fetch_add(counter, 1)


@njit(fastmath=False, cache=True, nogil=True, inline="always")
def _group(f: np.ndarray, s: np.ndarray, i: np.uint64, cr: float, ci: float, r2: float,
           max_iter: int) -> int:
    """_GROUP z-steps of lane i in registers, then the periodicity check; returns the lane's alive.

    The steps carry no count and no per-step select: a lane that escapes inside the group runs on
    (to inf or NaN, harmlessly), and only its alive flag drops. At the group end a lane still
    alive stores its new z and count + _GROUP; a lane that died keeps the z and count of the group
    start, from which _finish redoes its last few steps exactly. Per step that is 3 multiplies,
    5 adds and a masked compare, against 2 more selects and a count add when every step froze
    dead lanes. A lane also leaves (for _finish) when another group could pass max_iter.
    """
    zr0 = f[_ZR + i]
    zi0 = f[_ZI + i]
    a = s[_LIVE + i]
    zr = zr0
    zi = zi0
    for _ in range(_GROUP):
        rr = zr * zr
        ii = zi * zi
        # The escape test exactly as the reference: continue while not (|z|^2 > R^2).
        a &= np.int64(not (rr + ii > r2))
        # zr*zi + zi*zr == 2*(zr*zi) exactly in IEEE.
        zi = 2.0 * (zr * zi) + ci
        zr = rr - ii + cr
    sr = f[_SR + i]
    si = f[_SI + i]
    # An exact return to a saved value closes a cycle of values already tested, so the orbit
    # never escapes and the reference would also run to max_iter.
    per = a & np.int64(zr == sr) & np.int64(zi == si)
    k = s[_N + i] + _GROUP * a
    # Saving into a dead lane is harmless: its saved value is never compared again.
    save = (k & (_SAVE_EVERY - 1)) == 0
    f[_ZR + i] = zr if a != 0 else zr0
    f[_ZI + i] = zi if a != 0 else zi0
    f[_SR + i] = zr if save else sr
    f[_SI + i] = zi if save else si
    # A periodic lane's count is stored complemented (negative): one select, no flag array.
    s[_N + i] = ~k if per != 0 else k
    a = (a - per) & np.int64(k <= max_iter - _GROUP)
    s[_LIVE + i] = a
    return a


@njit(fastmath=False, cache=True, nogil=True, inline="always")
def _groups(f: np.ndarray, s: np.ndarray, cr: float, ci: float, max_iter: int, r2: float,
            stop_below: int) -> int:
    """Lock-step groups of all lanes until fewer than stop_below are alive; returns how many are.

    Branch-free lane loop (dead lanes compute garbage that is never stored), so it vectorises.
    """
    while True:
        nal = 0
        for lane in range(_LANES):
            nal += _group(f, s, np.uint64(lane), cr, ci, r2, max_iter)
        if nal < stop_below:
            return nal


@njit(fastmath=False, cache=True, nogil=True, inline="always")
def _finish(f: np.ndarray, s: np.ndarray, cr: float, ci: float, max_iter: int, r2: float
            ) -> None:
    """Every lane's count and final |z|^2 if it were done now (used for the dead ones).

    The reference loop from the lane's z after n steps, for the at most _GROUP steps _groups left:
    a fixed number of steps with selects over all lanes, so it vectorises like a group (a loop
    with an exit per lane would cost a mispredicted branch per pixel). A periodic lane counts
    max_iter. _IT gets the iterations the lane really executed.
    """
    for lane in range(_LANES):
        i = np.uint64(lane)
        zr = f[_ZR + i]
        zi = f[_ZI + i]
        nraw = s[_N + i]
        per = nraw < 0
        n = ~nraw if per else nraw
        k = n
        for _ in range(_GROUP):
            rr = zr * zr
            ii = zi * zi
            go = (k < max_iter) & (not (rr + ii > r2))
            nr = rr - ii + cr
            ni = 2.0 * (zr * zi) + ci
            zr = nr if go else zr
            zi = ni if go else zi
            k += np.int64(go)
        s[_NF + i] = max_iter if per else k
        s[_IT + i] = n if per else k
        f[_M2 + i] = zr * zr + zi * zi


@njit(fastmath=False, cache=True, nogil=True, inline="always")
def _start(f: np.ndarray, s: np.ndarray, cr: float, ci: float, max_iter: int) -> int:
    """Start the fresh lanes at z0 of their pixel (_X, _Y); returns how many lanes are alive.

    Branch-free over all lanes, so it vectorises.
    """
    nal = 0
    for lane in range(_LANES):
        i = np.uint64(lane)
        fr = s[_FRESH + i] != 0
        x = f[_X + i]
        y = f[_Y + i]
        # z0 = p*p + c in CPython's complex operation order.
        zr = x * x - y * y + cr
        zi = (x * y + y * x) + ci
        f[_ZR + i] = zr if fr else f[_ZR + i]
        f[_ZI + i] = zi if fr else f[_ZI + i]
        f[_SR + i] = zr if fr else f[_SR + i]
        f[_SI + i] = zi if fr else f[_SI + i]
        a = np.int64(max_iter >= _GROUP) if fr else s[_LIVE + i]
        s[_N + i] = 0 if fr else s[_N + i]
        s[_LIVE + i] = a
        s[_FRESH + i] = 0
        nal += a
    return nal


@njit(fastmath=False, cache=True, nogil=True, inline="always")
def _write_block(counts: np.ndarray, fmod: np.ndarray, want_fm: bool, f: np.ndarray,
                 s: np.ndarray, block: int, w: int, last: int, mirror_below: int) -> int:
    """Write the results of lanes holding a whole 4 x 8 block in order; returns its iterations.

    Row by row, 8 contiguous pixels and (rows above the middle) their 8 reversed mirrors, with
    no per-pixel branch. Every lane's _PIX is cleared.
    """
    iters = 0
    for lane in range(_LANES):
        iters += s[_IT + np.uint64(lane)]
        s[_PIX + np.uint64(lane)] = -1
    for r in range(_ROWS):
        base = np.uint64(block + r * w)
        lb = np.uint64(r * _COLS)
        mirrored = block + r * w < mirror_below
        for j in range(_COLS):
            counts[base + np.uint64(j)] = s[_NF + lb + np.uint64(j)]
        if mirrored:
            top = np.uint64(last) - base
            for j in range(_COLS):
                counts[top - np.uint64(j)] = s[_NF + lb + np.uint64(j)]
        if want_fm:
            for j in range(_COLS):
                fmod[base + np.uint64(j)] = f[_M2 + lb + np.uint64(j)]
            if mirrored:
                top = np.uint64(last) - base
                for j in range(_COLS):
                    fmod[top - np.uint64(j)] = f[_M2 + lb + np.uint64(j)]
    return iters


@njit(fastmath=False, cache=True, nogil=True, inline="always")
def _load_block(xs: np.ndarray, ys: np.ndarray, row0: int, col0: int, w: int, f: np.ndarray,
                s: np.ndarray) -> None:
    """Give lane k pixel k of the 4 x 8 block at (row0, col0), all inside the grid."""
    for lane in range(_LANES):
        i = np.uint64(lane)
        r = row0 + lane // _COLS
        col = col0 + lane % _COLS
        f[_X + i] = xs[np.uint64(col)]
        f[_Y + i] = ys[np.uint64(r)]
        s[_PIX + i] = r * w + col
        s[_FRESH + i] = 1


@njit(fastmath=False, cache=True, nogil=True, inline="always")
def _run_chunk(xs: np.ndarray, ys: np.ndarray, row0: int, col0: int, rows: int, cr: float,
               ci: float, max_iter: int, r2: float, counts: np.ndarray, fmod: np.ndarray,
               want_fm: bool, mirror_below: int, f: np.ndarray, s: np.ndarray,
               dead: np.ndarray) -> int:
    """Counts for the chunk at (row0, col0) of rows [0, rows); returns the iterations executed.

    Rounds of: finish all lanes (vector), write the dead lanes' pixels and give each the next
    pixel of the chunk (scalar, only the dead lanes), start the fresh lanes (vector), run groups
    until enough lanes are dead. When all lanes are dead at once (common where pixels escape
    fast), a whole 4 x 8 block is written and loaded without the per-lane scalar pass. A flat
    pixel p < mirror_below is also written to its point mirror, flat index size - 1 - p.
    """
    w = xs.size
    last = counts.size - 1
    nq = _ROWS * _CHUNK_COLS
    # Columns [col0, full_cols) of this chunk hold whole 4 x 8 blocks inside the grid.
    full_cols = col0 + ((min(w, col0 + _CHUNK_COLS) - col0) // _COLS) * _COLS
    if row0 + _ROWS > rows:
        full_cols = col0
    q = 0  # next pixel of the chunk, in 4 x 8 blocks
    block = -1  # flat index of the top-left pixel if lane k holds pixel k of that block
    iters = 0
    for lane in range(_LANES):
        i = np.uint64(lane)
        s[_PIX + i] = -1
        s[_LIVE + i] = 0
        s[_N + i] = 0
        s[_FRESH + i] = 0
        f[_ZR + i] = 0.0
        f[_ZI + i] = 0.0
    nal = 0
    while True:
        _finish(f, s, cr, ci, max_iter, r2)
        # The dead lanes, gathered without a branch per lane (all of them when none is alive).
        nd = 0
        if nal == 0:
            for lane in range(_LANES):
                dead[lane] = lane
            nd = _LANES
        else:
            for lane in range(_LANES):
                dead[nd] = lane
                nd += s[_LIVE + np.uint64(lane)] == 0
        if nd == _LANES and block >= 0:
            iters += _write_block(counts, fmod, want_fm, f, s, block, w, last, mirror_below)
        else:
            for d in range(nd):
                i = np.uint64(dead[d])
                p = s[_PIX + i]
                if p >= 0:
                    n = s[_NF + i]
                    iters += s[_IT + i]
                    counts[np.uint64(p)] = n
                    if p < mirror_below:
                        counts[np.uint64(last - p)] = n
                    if want_fm:
                        m2 = f[_M2 + i]
                        fmod[np.uint64(p)] = m2
                        if p < mirror_below:
                            fmod[np.uint64(last - p)] = m2
        block = -1
        bcol = col0 + (q // (_ROWS * _COLS)) * _COLS
        pending = 0
        if nd == _LANES and q % _LANES == 0 and q < nq and bcol < full_cols:
            block = row0 * w + bcol
            _load_block(xs, ys, row0, bcol, w, f, s)
            q += _LANES
            pending = _LANES
            nd = 0
        for d in range(nd):
            i = np.uint64(dead[d])
            # The next pixel of the chunk inside the grid, if any.
            p = -1
            while q < nq:
                r = row0 + (q // _COLS) % _ROWS
                col = col0 + (q // (_ROWS * _COLS)) * _COLS + q % _COLS
                q += 1
                if r < rows and col < w:
                    p = r * w + col
                    f[_X + i] = xs[col]
                    f[_Y + i] = ys[r]
                    s[_FRESH + i] = 1
                    pending += 1
                    break
            s[_PIX + i] = p
        nal = _start(f, s, cr, ci, max_iter)
        if nal == 0:
            if pending == 0:
                return iters
            continue  # max_iter < _GROUP: the fresh lanes are finished by the next round
        # Refill when enough lanes are dead, while the chunk has pixels left; then only when all
        # lanes are done.
        nal = _groups(f, s, cr, ci, max_iter, r2, _LANES - _REFILL_MIN + 1 if q < nq else 1)


@njit(parallel=True, fastmath=False, cache=True, nogil=True)
def _escape_rows(xs: np.ndarray, ys: np.ndarray, rows: int, cr: float, ci: float, max_iter: int,
                 r2: float, counts: np.ndarray, fmod: np.ndarray, want_fm: bool,
                 mirror_below: int, counter: np.ndarray, iters: np.ndarray) -> None:
    """Fill counts (and fmod) for rows [0, rows) of the row-major (len(ys), len(xs)) grid.

    Flat pixels below mirror_below are also written to their point mirror (symmetric grids).
    """
    w = xs.size
    chunks_per_band = -(-w // _CHUNK_COLS)
    nchunks = -(-rows // _ROWS) * chunks_per_band
    nworkers = iters.size
    # One worker per thread; each takes the next chunk from a shared atomic counter whenever it
    # finishes one (dynamic scheduling). This is what keeps scaling at 48 threads: a chunk costs
    # from a few steps per pixel (fast-escaping margin) to max_iter (interior), ~100x apart, and
    # heavy chunks cluster, so any fixed split (static ranges, or a shuffled order dealt out
    # round-robin: measured only 1.4-1.75x on 2 threads) leaves threads idle while one finishes
    # its unlucky share. With the counter no thread idles until the last chunk is handed out, and
    # the end-of-frame imbalance is at most one chunk (4 x 64 px: at 500 iterations <= 128k
    # lane-steps, tens of microseconds). The counter costs one atomic add per chunk (its cache
    # line moves between cores: ~100 ns, against a chunk's microseconds of work); at 48 threads a
    # mirrored 1080^2 frame still has ~2,300 chunks (~50 per thread), a 4K frame ~10x more.
    for wk in prange(nworkers):
        f = np.empty(_F_SIZE, dtype=np.float64)
        s = np.empty(_S_SIZE, dtype=np.int64)
        dead = np.empty(_LANES, dtype=np.int64)
        done = 0
        ch = _take(counter)
        while ch < nchunks:
            band = ch // chunks_per_band
            col0 = (ch - band * chunks_per_band) * _CHUNK_COLS
            done += _run_chunk(xs, ys, band * _ROWS, col0, rows, cr, ci, max_iter, r2, counts,
                               fmod, want_fm, mirror_below, f, s, dead)
            ch = _take(counter)
        iters[wk] = done


def _antisymmetric(a: np.ndarray) -> bool:
    """a == -a[::-1] element for element (by value: an odd axis's middle may be -0.0 vs 0.0)."""
    return bool(np.array_equal(a, -a[::-1]))


def escape_counts(
    xs: np.ndarray,
    ys: np.ndarray,
    c: complex,
    max_iter: int,
    escape_radius: float = 2.0,
    *,
    want_final_modulus: bool = False,
    stats: dict | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Escape-time counts for every sample x + iy; row i is ys[i], column j is xs[j].

    counts (int32, shape (len(ys), len(xs))) equal the plain reference's pixel for pixel: z0 =
    p*p + c, n counts z -> z*z + c steps while n < max_iter and not |z|^2 > R^2. If
    want_final_modulus, also returns |z|^2 of the first z that escaped (float64; meaningless where
    counts == max_iter). If stats is given, stats["iterations"] is set to the z-iterations actually
    executed, after the symmetry and periodicity savings.
    """
    xs = np.ascontiguousarray(xs, dtype=np.float64)
    ys = np.ascontiguousarray(ys, dtype=np.float64)
    if xs.ndim != 1 or ys.ndim != 1:
        raise ValueError("escape_counts needs 1-D xs and ys")
    max_iter = int(max_iter)
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter}")
    escape_radius = float(escape_radius)
    if not escape_radius > 0.0:
        raise ValueError(f"escape_radius must be > 0, got {escape_radius}")
    c = complex(c)
    h, w = ys.size, xs.size
    # Every element is written by the kernel (directly or as a mirror), so no zero fill.
    counts = np.empty((h, w), dtype=np.int32)
    fmod = np.empty((h, w), dtype=np.float64) if want_final_modulus else np.empty((1, 1))
    if h == 0 or w == 0:
        if stats is not None:
            stats["iterations"] = 0
        return counts, (fmod if want_final_modulus else None)

    # count(-p) == count(p) exactly (z0 depends on p only through p*p), so on a grid mirrored in
    # both axes the bottom rows are the top rows turned half a turn.
    symmetric = _antisymmetric(xs) and _antisymmetric(ys)
    rows = (h + 1) // 2 if symmetric else h
    # Rows strictly above the middle are mirrored; a middle row (odd h) is computed in full.
    mirror_below = (h // 2) * w if symmetric else 0
    nchunks = -(-rows // _ROWS) * -(-w // _CHUNK_COLS)
    iters = np.zeros(max(1, min(numba.get_num_threads(), nchunks)), dtype=np.int64)
    _escape_rows(xs, ys, rows, c.real, c.imag, max_iter, escape_radius * escape_radius,
                 counts.reshape(-1), fmod.reshape(-1), want_final_modulus, mirror_below,
                 np.zeros(1, dtype=np.int64), iters)
    if stats is not None:
        stats["iterations"] = int(iters.sum())
    return counts, (fmod if want_final_modulus else None)
