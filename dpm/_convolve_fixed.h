/*
 * Cell products of the fixed-order convolution (dpm/_convolve.pyx,
 * convolve_bank_fixed): the part of a filter response that BLAS computes in
 * the default path, here with one summation order on every machine.
 *
 * For n positions a[j*C .. j*C + C-1] (j < n, row-major, C = nchan) and the
 * bank rows bank[k*C .. k*C + C-1] (k < ncells):
 *
 *     p[k*ldp + j] = (...((0 + a[j,0]*b[k,0]) + a[j,1]*b[k,1]) + ...) + a[j,C-1]*b[k,C-1]
 *
 * every product rounded to double, then added in channel order, one rounding
 * per addition: no fused multiply-add (the builds use -ffp-contract=off, and
 * the AVX2 build -mno-fma), no reassociation.  The vector code computes
 * several positions and cells at once (lanes are positions: each lane does
 * exactly the scalar sequence above), so the portable build, the AVX2 build
 * and the scalar loop for other compilers give the same bits.
 *
 * at: scratch of (n + 8)*C doubles (the positions transposed to channel-major,
 * so that a vector load reads one channel of consecutive positions; zeros
 * fill the last block of positions, whose extra results are not stored).
 */
#ifndef DPM_CONVOLVE_FIXED_H
#define DPM_CONVOLVE_FIXED_H

#include <stddef.h>
#include <string.h>

/* One position, one cell: the reference sequence. */
static inline double dpm_cell_product(const double *at, ptrdiff_t ldat, ptrdiff_t j, const double *b,
                                      ptrdiff_t nchan)
{
    double s = 0.0;
    ptrdiff_t c;
    for (c = 0; c < nchan; c++)
        s += at[c * ldat + j] * b[c];
    return s;
}

#if defined(__GNUC__) || defined(__clang__)
#if defined(__AVX__)
/* 4-double vectors, two per block of 8 positions. */
typedef double dpm_cfv __attribute__((vector_size(32)));
#define DPM_CF_W 4
#else
/* 2-double vectors (SSE2 and other targets), two per block of 4 positions. */
typedef double dpm_cfv __attribute__((vector_size(16)));
#define DPM_CF_W 2
#endif
/* Blocks of DPM_CF_NC cells x DPM_CF_NV vectors of positions: 8 accumulators
 * (16 registers with SSE2).  The blocking does not change any result. */
#define DPM_CF_NV 2
#define DPM_CF_NC 4
#define DPM_CF_JB (DPM_CF_NV * DPM_CF_W)  /* positions per block */
#if DPM_CF_NV * DPM_CF_W > 8
#error "a block of positions must fit the 8 spare positions of the scratch (see above)"
#endif

/* Cells k .. k+NC-1 at positions j .. j+DPM_CF_JB-1 (at has ldat columns,
 * zero past n); the first `cnt` positions are stored. */
#define DPM_CF_BLOCK(NC)                                                        \
    do {                                                                        \
        dpm_cfv s[NC][DPM_CF_NV], av[DPM_CF_NV];                                \
        double res[DPM_CF_JB];                                                  \
        const double *pa = at + j, *pb = bank + k * nchan;                      \
        int q, v;                                                               \
        for (q = 0; q < NC; q++)                                                \
            for (v = 0; v < DPM_CF_NV; v++)                                     \
                s[q][v] = (dpm_cfv){0};                                         \
        for (c = 0; c < nchan; c++, pa += ldat, pb++) {                         \
            for (v = 0; v < DPM_CF_NV; v++)                                     \
                memcpy(&av[v], pa + v * DPM_CF_W, sizeof av[v]);                \
            for (q = 0; q < NC; q++) {                                          \
                double bq = pb[q * nchan];  /* broadcast */                     \
                for (v = 0; v < DPM_CF_NV; v++)                                 \
                    s[q][v] += av[v] * bq;                                      \
            }                                                                   \
        }                                                                       \
        for (q = 0; q < NC; q++) {                                              \
            double *pp = p + (k + q) * ldp + j;                                 \
            if (cnt == DPM_CF_JB) {                                             \
                for (v = 0; v < DPM_CF_NV; v++)                                 \
                    memcpy(pp + v * DPM_CF_W, &s[q][v], sizeof av[0]);          \
            } else {                                                            \
                memcpy(res, s[q], sizeof res);                                  \
                memcpy(pp, res, cnt * sizeof(double));                          \
            }                                                                   \
        }                                                                       \
    } while (0)
#endif

static void dpm_cell_products(int n_, int ncells_, int nchan_, const double *a, const double *bank,
                              double *at, double *p, int ldp_)
{
    /* ptrdiff_t indices: the extension is built with -fwrapv, under which
     * int index arithmetic costs a sign extension at every use. */
    ptrdiff_t n = n_, ncells = ncells_, nchan = nchan_, ldp = ldp_, j, k, c;
#if defined(DPM_CF_JB)
    ptrdiff_t cnt, ldat = (n + DPM_CF_JB - 1) / DPM_CF_JB * DPM_CF_JB;
    for (c = 0; c < nchan; c++) {
        for (j = 0; j < n; j++)
            at[c * ldat + j] = a[j * nchan + c];
        for (; j < ldat; j++)
            at[c * ldat + j] = 0.0;
    }
    for (j = 0; j < n; j += DPM_CF_JB) {
        cnt = n - j < DPM_CF_JB ? n - j : DPM_CF_JB;
        for (k = 0; k + DPM_CF_NC <= ncells; k += DPM_CF_NC)
            DPM_CF_BLOCK(DPM_CF_NC);
        for (; k < ncells; k++)
            DPM_CF_BLOCK(1);
    }
#else
    for (c = 0; c < nchan; c++)
        for (j = 0; j < n; j++)
            at[c * n + j] = a[j * nchan + c];
    for (j = 0; j < n; j++)
        for (k = 0; k < ncells; k++)
            p[k * ldp + j] = dpm_cell_product(at, n, j, bank + k * nchan, nchan);
#endif
}

#endif /* DPM_CONVOLVE_FIXED_H */
