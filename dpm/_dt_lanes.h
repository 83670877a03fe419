/*
 * Eight 1-D distance transforms at once, for dpm/_dt.pyx (see _dt1d_lanes
 * there for what is computed).  Plain C: with GCC or Clang the eight lines
 * are held in vector types (four 2-double vectors; two 4-double vectors in
 * the AVX2 build of the same code, which on x86 is chosen at run time when
 * the processor has it); other compilers get the scalar loop.
 * Every lane evaluates the cost with dt.cc's expression (src + quad) + lin
 * and compares with "<", so each line gets bit for bit the result of the
 * scalar scan.
 */
#ifndef DPM_DT_LANES_H
#define DPM_DT_LANES_H

#include "_simd.h"

#define DPM_LANES 8

/* Node d of the plan (see _plan in _dt.pyx) for 8 lines: scan sources
 * [s1_g, s2_g] of line g (argmins of the nodes lo and hi), keep the first
 * strict minimum of (src[p*8 + g] + quad[d - p]) + lin[d - p].  best starts
 * at the cost of s1_g (NaN included, as in the scalar scan); the loop runs
 * over the union of the ranges and a line takes p only inside its own. */

static void dpm_dt1d_lanes_scalar(const double *src, int n, const double *quad,
                                  const double *lin, int m, const int *order,
                                  const int *lo, const int *hi, const int *slot,
                                  double *argmin, double *dst, double *ptr)
{
    int i, g, p, d, k, s, s1, s2;
    double best, v;
    for (g = 0; g < DPM_LANES; g++) {
        argmin[n * DPM_LANES + g] = 0;
        argmin[(n + 1) * DPM_LANES + g] = n - 1;
    }
    for (i = 0; i < m; i++) {
        d = order[i];
        k = slot[i];
        for (g = 0; g < DPM_LANES; g++) {
            s1 = (int)argmin[lo[i] * DPM_LANES + g];
            s2 = (int)argmin[hi[i] * DPM_LANES + g];
            s = s1;
            best = (src[s1 * DPM_LANES + g] + quad[d - s1]) + lin[d - s1];
            for (p = s1 + 1; p <= s2; p++) {
                v = (src[p * DPM_LANES + g] + quad[d - p]) + lin[d - p];
                if (best > v) {
                    s = p;
                    best = v;
                }
            }
            argmin[d * DPM_LANES + g] = s;
            if (k >= 0) {
                dst[k * DPM_LANES + g] = best;
                ptr[k * DPM_LANES + g] = s;
            }
        }
    }
}

#if defined(__GNUC__) || defined(__clang__)

typedef double dpm_v2d __attribute__((vector_size(16)));
typedef long long dpm_v2l __attribute__((vector_size(16)));
typedef double dpm_v4d __attribute__((vector_size(32)));
typedef long long dpm_v4l __attribute__((vector_size(32)));

/* The kernel for vectors VD of W doubles (masks VL): 8/W vectors per row. */
#define DPM_DT1D_LANES_BODY(VD, VL, W)                                           \
    enum { NV = DPM_LANES / W };                                                 \
    int i, j, g, p, d, k, plo, phi;                                              \
    VD s1[NV], s2[NV], best[NV], s[NV], v, pd, qq, ll;                           \
    VL f;                                                                        \
    double b8[DPM_LANES];                                                        \
    for (g = 0; g < DPM_LANES; g++) {                                            \
        argmin[n * DPM_LANES + g] = 0;                                           \
        argmin[(n + 1) * DPM_LANES + g] = n - 1;                                 \
    }                                                                            \
    for (i = 0; i < m; i++) {                                                    \
        const double *a1 = argmin + lo[i] * DPM_LANES;                           \
        const double *a2 = argmin + hi[i] * DPM_LANES;                           \
        d = order[i];                                                            \
        plo = (int)a1[0];                                                        \
        phi = (int)a2[0];                                                        \
        for (g = 0; g < DPM_LANES; g++) {                                        \
            int q = (int)a1[g];                                                  \
            if (q < plo) plo = q;                                                \
            if ((int)a2[g] > phi) phi = (int)a2[g];                              \
            b8[g] = (src[q * DPM_LANES + g] + quad[d - q]) + lin[d - q];         \
        }                                                                        \
        for (j = 0; j < NV; j++) {                                               \
            __builtin_memcpy(&s1[j], a1 + j * W, sizeof(VD));                    \
            __builtin_memcpy(&s2[j], a2 + j * W, sizeof(VD));                    \
            __builtin_memcpy(&best[j], b8 + j * W, sizeof(VD));                  \
            s[j] = s1[j];                                                        \
        }                                                                        \
        for (p = plo + 1; p <= phi; p++) {                                       \
            const double *row = src + p * DPM_LANES;                             \
            pd = (VD){0} + (double)p;                                            \
            qq = (VD){0} + quad[d - p];                                          \
            ll = (VD){0} + lin[d - p];                                           \
            for (j = 0; j < NV; j++) {                                           \
                __builtin_memcpy(&v, row + j * W, sizeof(VD));                   \
                v = (v + qq) + ll;                                               \
                f = (pd > s1[j]) & (pd <= s2[j]) & (v < best[j]);                \
                best[j] = (VD)((f & (VL)v) | (~f & (VL)best[j]));                \
                s[j] = (VD)((f & (VL)pd) | (~f & (VL)s[j]));                     \
            }                                                                    \
        }                                                                        \
        k = slot[i];                                                             \
        for (j = 0; j < NV; j++) {                                               \
            __builtin_memcpy(argmin + d * DPM_LANES + j * W, &s[j], sizeof(VD)); \
            if (k >= 0) {                                                        \
                __builtin_memcpy(dst + k * DPM_LANES + j * W, &best[j], sizeof(VD)); \
                __builtin_memcpy(ptr + k * DPM_LANES + j * W, &s[j], sizeof(VD)); \
            }                                                                    \
        }                                                                        \
    }

static void dpm_dt1d_lanes_vec(const double *src, int n, const double *quad,
                               const double *lin, int m, const int *order,
                               const int *lo, const int *hi, const int *slot,
                               double *argmin, double *dst, double *ptr)
{
    DPM_DT1D_LANES_BODY(dpm_v2d, dpm_v2l, 2)
}

#if defined(DPM_HAVE_AVX2)
DPM_AVX2_TARGET
static void dpm_dt1d_lanes_avx2(const double *src, int n, const double *quad,
                                const double *lin, int m, const int *order,
                                const int *lo, const int *hi, const int *slot,
                                double *argmin, double *dst, double *ptr)
{
    DPM_DT1D_LANES_BODY(dpm_v4d, dpm_v4l, 4)
}
#endif

#endif /* GCC or Clang */

typedef void (*dpm_dt1d_lanes_fn)(const double *, int, const double *, const double *, int,
                                  const int *, const int *, const int *, const int *,
                                  double *, double *, double *);

/* Variant `which`: 0 the scalar loop, 1 the portable vector code (the scalar
 * loop without GCC/Clang), anything else the best for this processor. */
static dpm_dt1d_lanes_fn dpm_dt1d_lanes_get(int which)
{
    if (which == 0)
        return dpm_dt1d_lanes_scalar;
#if defined(__GNUC__) || defined(__clang__)
    if (which == 1)
        return dpm_dt1d_lanes_vec;
#if defined(DPM_HAVE_AVX2)
    if (dpm_have_avx2())
        return dpm_dt1d_lanes_avx2;
#endif
    return dpm_dt1d_lanes_vec;
#else
    return dpm_dt1d_lanes_scalar;
#endif
}

/* Name of the variant a pointer from dpm_dt1d_lanes_get is. */
static const char *dpm_dt1d_lanes_name(dpm_dt1d_lanes_fn f)
{
#if defined(DPM_HAVE_AVX2)
    if (f == dpm_dt1d_lanes_avx2)
        return "avx2";
#endif
#if defined(__GNUC__) || defined(__clang__)
    if (f == dpm_dt1d_lanes_vec)
        return "vector";
#endif
    return "scalar";
}

#endif /* DPM_DT_LANES_H */
