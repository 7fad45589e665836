/* Exact hand-written AVX-512 reference kernels for benchmarks/kernel_c.py (not the renderer's):
 * julia_counts ("C plain", below) and julia_counts_best ("C best", further down, with the
 * tricks of renderer/kernel.py). Both have the same semantics and the same exact savings as
 * renderer/kernel.py, counts identical to the plain reference pixel for pixel:
 *   z0 = p*p + c as zr = x*x - y*y + cr, zi = (x*y + y*x) + ci;
 *   n counts z -> z*z + c steps while n < max_iter and not (zr*zr + zi*zi > R^2);
 *   new zr = (rr - ii) + cr, new zi = 2*(zr*zi) + ci  (2*t == t + t == zr*zi + zi*zr exactly).
 * Savings: the point mirror count(-p) == count(p) on antisymmetric grids (flat pixels below
 * mirror_below are also written to size - 1 - p), and exact periodicity (z returns exactly to a
 * value saved every SAVE_EVERY steps => the orbit never escapes => count = max_iter).
 *
 * A tile is 4 rows x 8 columns: one AVX-512 register of 8 doubles per row and state variable, four
 * independent dependency chains in lock-step (1 row x 32 columns measured 5-15% slower: less
 * coherent lanes). Dead lanes are frozen by masked adds. Threads take chunks (4 rows x CHUNK_TILES
 * tiles) from OpenMP's dynamic schedule (an atomic counter).
 *
 * Build: gcc -O3 -march=native -ffp-contract=off -fno-fast-math -fopenmp -shared -fPIC
 * Explicit _mm512_mul_pd / _mm512_add_pd never fuse, and -ffp-contract=off keeps the scalar code
 * unfused too.
 */
#include <immintrin.h>
#include <stdint.h>

#define ROWS 4        /* rows per tile = registers per state variable */
#define COLS 8        /* doubles per AVX-512 register */
#define GROUP 4       /* lock-step steps between all-dead and periodicity checks (8: 5-10% slower) */
#define SAVE_EVERY 64 /* steps between saves of z for the periodicity check (32: slower) */
#define CHUNK_TILES 8 /* tiles per scheduled chunk: 4 rows x 64 columns */

static int64_t run_tile(const double *xs, const double *ys, int64_t w, int64_t rows,
                        int64_t row0, int64_t col0, double cr, double ci, int64_t max_iter,
                        double r2, int32_t *counts, double *fmod, int want_fm,
                        int64_t mirror_below, int64_t size)
{
    int64_t ncol = w - col0 < COLS ? w - col0 : COLS;
    __mmask8 colmask = (__mmask8)((1u << ncol) - 1u);
    const __m512d vcr = _mm512_set1_pd(cr), vci = _mm512_set1_pd(ci), vr2 = _mm512_set1_pd(r2);
    const __m512i one = _mm512_set1_epi64(1);
    __m512d x = _mm512_maskz_loadu_pd(colmask, xs + col0);
    __m512d zr[ROWS], zi[ROWS], sr[ROWS], si[ROWS];
    __m512i n[ROWS];
    __mmask8 live[ROWS], per[ROWS];
    __mmask8 anylive = 0;
    for (int r = 0; r < ROWS; r++) {
        int valid = row0 + r < rows;
        __m512d y = _mm512_set1_pd(valid ? ys[row0 + r] : 0.0);
        zr[r] = _mm512_add_pd(_mm512_sub_pd(_mm512_mul_pd(x, x), _mm512_mul_pd(y, y)), vcr);
        zi[r] = _mm512_add_pd(_mm512_add_pd(_mm512_mul_pd(x, y), _mm512_mul_pd(y, x)), vci);
        sr[r] = zr[r];
        si[r] = zi[r];
        n[r] = _mm512_setzero_si512();
        live[r] = valid ? colmask : 0;
        per[r] = 0;
        anylive |= live[r];
    }
    int64_t step = 0;
    while (anylive && step < max_iter) {
        int64_t g = max_iter - step < GROUP ? max_iter - step : GROUP;
        for (int64_t s = 0; s < g; s++) {
            for (int r = 0; r < ROWS; r++) {
                __m512d rr = _mm512_mul_pd(zr[r], zr[r]);
                __m512d ii = _mm512_mul_pd(zi[r], zi[r]);
                __m512d t = _mm512_mul_pd(zr[r], zi[r]);
                /* continue while not (rr + ii > r2): NGT_UQ is true for NaN like Python's `not` */
                __mmask8 m = _mm512_mask_cmp_pd_mask(live[r], _mm512_add_pd(rr, ii), vr2,
                                                     _CMP_NGT_UQ);
                zr[r] = _mm512_mask_add_pd(zr[r], m, _mm512_sub_pd(rr, ii), vcr);
                zi[r] = _mm512_mask_add_pd(zi[r], m, _mm512_add_pd(t, t), vci);
                n[r] = _mm512_mask_add_epi64(n[r], m, n[r], one);
                live[r] = m;
            }
        }
        step += g;
        anylive = 0;
        int save = step % SAVE_EVERY == 0;
        for (int r = 0; r < ROWS; r++) {
            __mmask8 eq = _mm512_mask_cmp_pd_mask(live[r], zr[r], sr[r], _CMP_EQ_OQ)
                          & _mm512_mask_cmp_pd_mask(live[r], zi[r], si[r], _CMP_EQ_OQ);
            per[r] |= eq;
            live[r] &= (__mmask8)~eq;
            anylive |= live[r];
            if (save) {
                sr[r] = zr[r];
                si[r] = zi[r];
            }
        }
    }
    int64_t iters = 0;
    const __m512i vmax = _mm512_set1_epi64(max_iter);
    for (int r = 0; r < ROWS; r++) {
        if (row0 + r >= rows)
            break;
        int64_t nn[COLS];
        double m2[COLS];
        _mm512_storeu_si512(nn, n[r]);
        _mm512_storeu_pd(m2, _mm512_add_pd(_mm512_mul_pd(zr[r], zr[r]),
                                           _mm512_mul_pd(zi[r], zi[r])));
        int64_t cnt[COLS];
        _mm512_storeu_si512(cnt, _mm512_mask_mov_epi64(n[r], per[r], vmax));
        int64_t p0 = (row0 + r) * w + col0;
        for (int64_t j = 0; j < ncol; j++) {
            int64_t p = p0 + j;
            iters += nn[j];
            counts[p] = (int32_t)cnt[j];
            if (want_fm)
                fmod[p] = m2[j];
            if (p < mirror_below) {
                counts[size - 1 - p] = (int32_t)cnt[j];
                if (want_fm)
                    fmod[size - 1 - p] = m2[j];
            }
        }
    }
    return iters;
}

/* Counts (and |z|^2 of the escaped z if want_fm) for rows [0, rows) of the (h, w) grid; returns the
 * z-iterations executed. counts and fmod are flat arrays of h * w. */
int64_t julia_counts(const double *xs, const double *ys, int64_t w, int64_t h, int64_t rows,
                     double cr, double ci, int64_t max_iter, double r2, int32_t *counts,
                     double *fmod, int want_fm, int64_t mirror_below, int nthreads)
{
    int64_t tiles_per_band = (w + COLS - 1) / COLS;
    int64_t chunks_per_band = (tiles_per_band + CHUNK_TILES - 1) / CHUNK_TILES;
    int64_t bands = (rows + ROWS - 1) / ROWS;
    int64_t nchunks = bands * chunks_per_band;
    int64_t size = w * h;
    int64_t total = 0;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nthreads) reduction(+ : total)
    for (int64_t ch = 0; ch < nchunks; ch++) {
        int64_t band = ch / chunks_per_band;
        int64_t t0 = (ch - band * chunks_per_band) * CHUNK_TILES;
        for (int64_t t = t0; t < t0 + CHUNK_TILES && t < tiles_per_band; t++)
            total += run_tile(xs, ys, w, rows, band * ROWS, t * COLS, cr, ci, max_iter, r2,
                              counts, fmod, want_fm, mirror_below, size);
    }
    return total;
}

/* ------------------------------------------------------------------------------------------------
 * The stronger variant, julia_counts_best: the same semantics, savings and counts, plus the lane
 * refill of renderer/kernel.py, with the tile's state held in registers between refills:
 *
 * - Lane refill: once >= REFILL_MIN of the 32 lanes are dead (and the chunk has pixels left), the
 *   dead lanes are written and take the next pixels of the chunk (4 rows x BEST_CHUNK_COLS,
 *   visited in 4 x 8 blocks), the survivors staying in place; lanes then run out of phase, so
 *   each keeps its own count and start step, and the tile one step clock. When all 32 lanes die
 *   together holding a whole 4 x 8 block in order, the block is written and the next loaded with
 *   vector stores and loads, without the per-lane pass.
 * - The step is julia_counts's: masked adds freeze a lane at its exact escape. renderer/kernel.py
 *   instead drops the per-step count and select (a lane that escapes runs on; at the group end it
 *   is restored from the group start and its last <= GROUP steps redone exactly). That was
 *   written here too, with the same refill, and measured (1 thread, the five issue-14 frames,
 *   against this): 3-8% faster on the two heavy interior frames, 13-27% slower on the other
 *   three. With AVX-512 a masked add costs what an add costs and the count add runs on an
 *   integer port, so there is little per step to save, while the restore (a masked move and a
 *   stored death step per row and group), the redone steps and the steps a dead lane runs on
 *   until its group ends cost extra. 8 steps per group: 6-32% slower; refill at >= 4 dead lanes
 *   1-7% slower, at >= 16 within 2% (3% faster only at c.imag -0.399); counts added once per
 *   group from the step masks: within noise.
 * - Periodicity: z is saved for every lane when the tile's clock is a multiple of SAVE_EVERY (and
 *   z0 when a lane starts); an exact return to a saved value of a lane alive through the group
 *   means a cycle of tested values, so count = max_iter. The group loop stops when a lane could
 *   pass max_iter in the next group; such lanes are finished by the exact reference loop.
 * ------------------------------------------------------------------------------------------------
 */
#define LANES (ROWS * COLS)
#ifndef BEST_CHUNK_COLS
#define BEST_CHUNK_COLS 64 /* 4 x 64 pixels per scheduled chunk, as renderer/kernel.py */
#endif
#ifndef REFILL_MIN
#define REFILL_MIN 8 /* refill once this many lanes are dead, as renderer/kernel.py */
#endif
#ifndef BEST_GROUP
#define BEST_GROUP 4 /* steps per group */
#endif

typedef struct {
    double zr[LANES], zi[LANES], sr[LANES], si[LANES]; /* z and the saved z of each lane */
    double x[LANES], y[LANES];                         /* the lane's pixel's sample */
    int64_t start[LANES]; /* tile clock when the lane's pixel started */
    int64_t n[LANES];     /* steps taken by the lane's pixel */
    int64_t pix[LANES];   /* flat pixel index, -1 for none */
    int64_t cnt[LANES], it[LANES];
    double m2[LANES];
    __mmask8 live[ROWS], per[ROWS];
} tile_t;

/* Groups of BEST_GROUP steps for all lanes, state in registers, until fewer than stop_below lanes
 * are alive or the clock passes deadline (then a lane might pass max_iter in the next group).
 * Returns the new clock. */
static inline __attribute__((always_inline)) int64_t
run_groups(tile_t *t, int64_t clock, int64_t deadline, int stop_below, double cr, double ci,
           double r2)
{
    const __m512d vcr = _mm512_set1_pd(cr), vci = _mm512_set1_pd(ci), vr2 = _mm512_set1_pd(r2);
    const __m512i one = _mm512_set1_epi64(1);
    __m512d zr[ROWS], zi[ROWS], sr[ROWS], si[ROWS];
    __m512i n[ROWS];
    __mmask8 live[ROWS], per[ROWS];
    for (int r = 0; r < ROWS; r++) {
        zr[r] = _mm512_load_pd(t->zr + COLS * r);
        zi[r] = _mm512_load_pd(t->zi + COLS * r);
        sr[r] = _mm512_load_pd(t->sr + COLS * r);
        si[r] = _mm512_load_pd(t->si + COLS * r);
        n[r] = _mm512_load_si512(t->n + COLS * r);
        live[r] = t->live[r];
        per[r] = t->per[r];
    }
    for (;;) {
        for (int s = 0; s < BEST_GROUP; s++) {
            for (int r = 0; r < ROWS; r++) {
                __m512d rr = _mm512_mul_pd(zr[r], zr[r]);
                __m512d ii = _mm512_mul_pd(zi[r], zi[r]);
                __m512d tt = _mm512_mul_pd(zr[r], zi[r]);
                /* continue while not (rr + ii > r2); a lane that escapes freezes exactly */
                __mmask8 m = _mm512_mask_cmp_pd_mask(live[r], _mm512_add_pd(rr, ii), vr2,
                                                     _CMP_NGT_UQ);
                zi[r] = _mm512_mask_add_pd(zi[r], m, _mm512_add_pd(tt, tt), vci);
                zr[r] = _mm512_mask_add_pd(zr[r], m, _mm512_sub_pd(rr, ii), vcr);
                n[r] = _mm512_mask_add_epi64(n[r], m, n[r], one);
                live[r] = m;
            }
        }
        clock += BEST_GROUP;
        int nal = 0;
        for (int r = 0; r < ROWS; r++) {
            __mmask8 cyc = _mm512_mask_cmp_pd_mask(live[r], zr[r], sr[r], _CMP_EQ_OQ)
                           & _mm512_mask_cmp_pd_mask(live[r], zi[r], si[r], _CMP_EQ_OQ);
            per[r] |= cyc;
            live[r] &= (__mmask8)~cyc;
            nal += __builtin_popcount(live[r]);
        }
        if (clock % SAVE_EVERY == 0) {
            for (int r = 0; r < ROWS; r++) {
                sr[r] = zr[r];
                si[r] = zi[r];
            }
        }
        if (nal < stop_below || clock > deadline)
            break;
    }
    for (int r = 0; r < ROWS; r++) {
        _mm512_store_pd(t->zr + COLS * r, zr[r]);
        _mm512_store_pd(t->zi + COLS * r, zi[r]);
        _mm512_store_pd(t->sr + COLS * r, sr[r]);
        _mm512_store_pd(t->si + COLS * r, si[r]);
        _mm512_store_si512(t->n + COLS * r, n[r]);
        t->live[r] = live[r];
        t->per[r] = per[r];
    }
    return clock;
}

/* Expire the live lanes that could pass max_iter in another group and finish them exactly (the
 * reference loop for at most BEST_GROUP - 1 steps; an escaped lane is frozen at its exact count
 * and z, so the loop leaves it as it is). Fills cnt, it (iterations executed) and m2 for the dead
 * lanes; returns the number of dead lanes. */
static inline __attribute__((always_inline)) int
finish_dead(tile_t *t, double cr, double ci, int64_t max_iter, double r2, __mmask8 dead[ROWS])
{
    const __m512d vcr = _mm512_set1_pd(cr), vci = _mm512_set1_pd(ci), vr2 = _mm512_set1_pd(r2);
    const __m512i vmax = _mm512_set1_epi64(max_iter);
    const __m512i vlim = _mm512_set1_epi64(max_iter - BEST_GROUP), one = _mm512_set1_epi64(1);
    int nd = 0;
    for (int r = 0; r < ROWS; r++) {
        __m512i n = _mm512_load_si512(t->n + COLS * r);
        __mmask8 exp = _mm512_mask_cmpgt_epi64_mask(t->live[r], n, vlim);
        t->live[r] &= (__mmask8)~exp;
        dead[r] = (__mmask8)~t->live[r];
        nd += __builtin_popcount(dead[r]);
        if (!dead[r])
            continue;
        __m512i k = n;
        __m512d zr = _mm512_load_pd(t->zr + COLS * r), zi = _mm512_load_pd(t->zi + COLS * r);
        for (int s = 0; s < BEST_GROUP; s++) {
            __m512d rr = _mm512_mul_pd(zr, zr);
            __m512d ii = _mm512_mul_pd(zi, zi);
            __m512d tt = _mm512_mul_pd(zr, zi);
            __mmask8 go = _mm512_mask_cmp_pd_mask(_mm512_cmplt_epi64_mask(k, vmax),
                                                  _mm512_add_pd(rr, ii), vr2, _CMP_NGT_UQ);
            zr = _mm512_mask_add_pd(zr, go, _mm512_sub_pd(rr, ii), vcr);
            zi = _mm512_mask_add_pd(zi, go, _mm512_add_pd(tt, tt), vci);
            k = _mm512_mask_add_epi64(k, go, k, one);
        }
        _mm512_store_si512(t->cnt + COLS * r, _mm512_mask_mov_epi64(k, t->per[r], vmax));
        _mm512_store_si512(t->it + COLS * r, _mm512_mask_mov_epi64(k, t->per[r], n));
        _mm512_store_pd(t->m2 + COLS * r,
                        _mm512_add_pd(_mm512_mul_pd(zr, zr), _mm512_mul_pd(zi, zi)));
    }
    return nd;
}

/* Start the lanes in fresh at z0 of their pixel (t->x, t->y) at the given clock. */
static inline __attribute__((always_inline)) void
start_fresh(tile_t *t, const __mmask8 fresh[ROWS], int64_t clock, double cr, double ci,
            int64_t max_iter)
{
    const __m512d vcr = _mm512_set1_pd(cr), vci = _mm512_set1_pd(ci);
    const __m512i vclock = _mm512_set1_epi64(clock);
    for (int r = 0; r < ROWS; r++) {
        if (!fresh[r])
            continue;
        __m512d x = _mm512_load_pd(t->x + COLS * r), y = _mm512_load_pd(t->y + COLS * r);
        __m512d zr = _mm512_add_pd(_mm512_sub_pd(_mm512_mul_pd(x, x), _mm512_mul_pd(y, y)), vcr);
        __m512d zi = _mm512_add_pd(_mm512_add_pd(_mm512_mul_pd(x, y), _mm512_mul_pd(y, x)), vci);
        /* blends and whole stores (masked stores measured no faster) */
        __mmask8 f = fresh[r];
        double *zrp = t->zr + COLS * r, *zip = t->zi + COLS * r;
        double *srp = t->sr + COLS * r, *sip = t->si + COLS * r;
        int64_t *stp = t->start + COLS * r, *np = t->n + COLS * r;
        _mm512_store_pd(zrp, _mm512_mask_mov_pd(_mm512_load_pd(zrp), f, zr));
        _mm512_store_pd(zip, _mm512_mask_mov_pd(_mm512_load_pd(zip), f, zi));
        _mm512_store_pd(srp, _mm512_mask_mov_pd(_mm512_load_pd(srp), f, zr));
        _mm512_store_pd(sip, _mm512_mask_mov_pd(_mm512_load_pd(sip), f, zi));
        _mm512_store_si512(stp, _mm512_mask_mov_epi64(_mm512_load_si512(stp), f, vclock));
        _mm512_store_si512(np, _mm512_maskz_mov_epi64((__mmask8)~f, _mm512_load_si512(np)));
        t->per[r] &= (__mmask8)~fresh[r];
        /* max_iter < BEST_GROUP: the lane goes straight to the exact tail */
        if (max_iter >= BEST_GROUP)
            t->live[r] |= fresh[r];
    }
}

static inline void write_pixel(int32_t *counts, double *fmod, int want_fm, int64_t p,
                               int64_t mirror_below, int64_t last, int32_t n, double m2)
{
    counts[p] = n;
    if (want_fm)
        fmod[p] = m2;
    if (p < mirror_below) {
        counts[last - p] = n;
        if (want_fm)
            fmod[last - p] = m2;
    }
}

static int64_t run_chunk_best(tile_t *t, const double *xs, const double *ys, int64_t w,
                              int64_t rows, int64_t row0, int64_t col0, double cr, double ci,
                              int64_t max_iter, double r2, int32_t *counts, double *fmod,
                              int want_fm, int64_t mirror_below, int64_t last)
{
    const int64_t nq = ROWS * BEST_CHUNK_COLS;
    const __m256i rev32 = _mm256_set_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m512i rev64 = _mm512_set_epi64(0, 1, 2, 3, 4, 5, 6, 7);
    /* columns [col0, full_cols) of this chunk hold whole 4 x 8 blocks inside the grid */
    int64_t full_cols = col0 + (((w < col0 + BEST_CHUNK_COLS ? w : col0 + BEST_CHUNK_COLS) - col0)
                                / COLS) * COLS;
    if (row0 + ROWS > rows)
        full_cols = col0;
    int64_t q = 0, clock = 0, iters = 0;
    int64_t block = -1; /* flat index of the top-left pixel if lane k holds pixel k of it */
    for (int i = 0; i < LANES; i++) {
        t->pix[i] = -1;
        t->zr[i] = t->zi[i] = t->sr[i] = t->si[i] = 0.0;
        t->start[i] = t->n[i] = 0;
    }
    for (int r = 0; r < ROWS; r++)
        t->live[r] = t->per[r] = 0;
    for (;;) {
        __mmask8 dead[ROWS], fresh[ROWS];
        int nd = finish_dead(t, cr, ci, max_iter, r2, dead);
        if (nd == LANES && block >= 0) {
            for (int r = 0; r < ROWS; r++) {
                int64_t base = block + r * w;
                __m512i cnt = _mm512_load_si512(t->cnt + COLS * r);
                __m256i c32 = _mm512_cvtepi64_epi32(cnt);
                __m512d m2 = _mm512_load_pd(t->m2 + COLS * r);
                _mm256_storeu_si256((__m256i *)(counts + base), c32);
                if (want_fm)
                    _mm512_storeu_pd(fmod + base, m2);
                if (base < mirror_below) {
                    _mm256_storeu_si256((__m256i *)(counts + last - base - (COLS - 1)),
                                        _mm256_permutevar8x32_epi32(c32, rev32));
                    if (want_fm)
                        _mm512_storeu_pd(fmod + last - base - (COLS - 1),
                                         _mm512_permutexvar_pd(rev64, m2));
                }
                iters += _mm512_reduce_add_epi64(_mm512_load_si512(t->it + COLS * r));
            }
        } else {
            for (int r = 0; r < ROWS; r++) {
                for (unsigned m = dead[r]; m; m &= m - 1) {
                    int i = COLS * r + __builtin_ctz(m);
                    if (t->pix[i] >= 0) {
                        iters += t->it[i];
                        write_pixel(counts, fmod, want_fm, t->pix[i], mirror_below, last,
                                    (int32_t)t->cnt[i], t->m2[i]);
                        t->pix[i] = -1;
                    }
                }
            }
        }
        block = -1;
        int pending = 0;
        int64_t bcol = col0 + (q / LANES) * COLS;
        if (nd == LANES && q % LANES == 0 && q < nq && bcol < full_cols) {
            block = row0 * w + bcol;
            for (int r = 0; r < ROWS; r++) {
                _mm512_store_pd(t->x + COLS * r, _mm512_loadu_pd(xs + bcol));
                _mm512_store_pd(t->y + COLS * r, _mm512_set1_pd(ys[row0 + r]));
                _mm512_store_si512(t->pix + COLS * r,
                                   _mm512_add_epi64(_mm512_set1_epi64(block + r * w),
                                                    _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0)));
                fresh[r] = 0xff;
            }
            q += LANES;
            pending = LANES;
        } else {
            for (int r = 0; r < ROWS; r++) {
                fresh[r] = 0;
                for (unsigned m = dead[r]; m; m &= m - 1) {
                    int b = __builtin_ctz(m), i = COLS * r + b;
                    while (q < nq) {
                        int64_t pr = row0 + (q / COLS) % ROWS;
                        int64_t col = col0 + (q / LANES) * COLS + q % COLS;
                        q++;
                        if (pr < rows && col < w) {
                            t->x[i] = xs[col];
                            t->y[i] = ys[pr];
                            t->pix[i] = pr * w + col;
                            fresh[r] |= (__mmask8)(1u << b);
                            pending++;
                            break;
                        }
                    }
                }
            }
        }
        start_fresh(t, fresh, clock, cr, ci, max_iter);
        int nal = 0;
        int64_t minstart = INT64_MAX;
        for (int r = 0; r < ROWS; r++) {
            nal += __builtin_popcount(t->live[r]);
            if (t->live[r]) {
                int64_t m = _mm512_mask_reduce_min_epi64(
                    t->live[r], _mm512_load_si512(t->start + COLS * r));
                minstart = m < minstart ? m : minstart;
            }
        }
        if (nal == 0) {
            if (pending == 0)
                return iters;
            continue; /* max_iter < BEST_GROUP: the fresh lanes are finished by the next round */
        }
        /* every live lane can take a group while clock - start <= max_iter - BEST_GROUP */
        clock = run_groups(t, clock, minstart + max_iter - BEST_GROUP,
                           q < nq ? LANES - REFILL_MIN + 1 : 1, cr, ci, r2);
    }
}

/* julia_counts with the stronger kernel: same arguments, counts, moduli and iteration total. */
int64_t julia_counts_best(const double *xs, const double *ys, int64_t w, int64_t h, int64_t rows,
                          double cr, double ci, int64_t max_iter, double r2, int32_t *counts,
                          double *fmod, int want_fm, int64_t mirror_below, int nthreads)
{
    int64_t chunks_per_band = (w + BEST_CHUNK_COLS - 1) / BEST_CHUNK_COLS;
    int64_t nchunks = (rows + ROWS - 1) / ROWS * chunks_per_band;
    int64_t last = w * h - 1;
    int64_t total = 0;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nthreads) reduction(+ : total)
    for (int64_t ch = 0; ch < nchunks; ch++) {
        tile_t t __attribute__((aligned(64))); /* on the stack, initialised per chunk */
        int64_t band = ch / chunks_per_band;
        total += run_chunk_best(&t, xs, ys, w, rows, band * ROWS,
                                (ch - band * chunks_per_band) * BEST_CHUNK_COLS, cr, ci,
                                max_iter, r2, counts, fmod, want_fm, mirror_below, last);
    }
    return total;
}
