/*
 * Filter responses for the star-cascade kernel (dpm/detection/_cascade.pyx): a
 * filter placed on a feature map, one placement or a run of adjacent ones, in
 * float64 (the full filters; the projected ones of double-precision pyramids)
 * and in float32 (the projected ones of single-precision pyramids).
 *
 * Summation order (the same in every build): the products a[i]*b[i] are
 * accumulated in 8 partial sums, sum (i mod 8), in increasing i (the last
 * n mod 8 products go to sums 0 .. n mod 8 - 1), then combined as
 * ((s0 + s4) + (s2 + s6)) + ((s1 + s5) + (s3 + s7)).  The vector code holds
 * the 8 sums in two vectors of 4; the scalar loop for other compilers does
 * the same arithmetic.  No fused multiply-add
 * (the builds use -ffp-contract=off and the AVX2 build -mno-fma).
 */
#ifndef DPM_CASCADE_DOT_H
#define DPM_CASCADE_DOT_H

#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define DPM_ALWAYS_INLINE static inline __attribute__((always_inline))
#else
#define DPM_ALWAYS_INLINE static inline
#endif

/* L responses at a, a + dx, ..., a + (L - 1) dx into out[0 .. L-1] (L >= 1; no placement clipped):
   groups of 4, then one of 3, 2 or 1, each sum formed exactly as one placement alone forms it (the
   same bits as one response at a time).  NAME is defined with the K-placement routine ROWSK. */
#define DPM_DEFINE_SPAN(NAME, T, ROWSK)                                                                 \
DPM_ALWAYS_INLINE void                                                                                  \
NAME(const T *a, long as, long dx, const T *b, long bs, int rows, int n, int L, double *out)            \
{                                                                                                       \
    int k = 0;                                                                                          \
    for (; k + 4 <= L; k += 4)                                                                          \
        ROWSK(a + k * dx, as, dx, b, bs, rows, n, 4, out + k);                                          \
    if (L - k == 3)                                                                                     \
        ROWSK(a + k * dx, as, dx, b, bs, rows, n, 3, out + k);                                          \
    else if (L - k == 2)                                                                                \
        ROWSK(a + k * dx, as, dx, b, bs, rows, n, 2, out + k);                                          \
    else if (L - k == 1)                                                                                \
        ROWSK(a + k * dx, as, dx, b, bs, rows, n, 1, out + k);                                          \
}

#if defined(__GNUC__) || defined(__clang__)
/* 4-double vectors: one AVX register, or two SSE2 registers the compiler pairs. */
typedef double dpm_cdv __attribute__((vector_size(32)));
#define DPM_CD_W 4
#define DPM_CD_NV 2

static inline double dpm_cascade_dot(const double *a, const double *b, int n)
{
    dpm_cdv s[DPM_CD_NV], va, vb;
    double t[8];
    int i = 0, v;
    for (v = 0; v < DPM_CD_NV; v++)
        s[v] = (dpm_cdv){0};
    for (; i + 8 <= n; i += 8)
        for (v = 0; v < DPM_CD_NV; v++) {
            memcpy(&va, a + i + v * DPM_CD_W, sizeof va);
            memcpy(&vb, b + i + v * DPM_CD_W, sizeof vb);
            s[v] += va * vb;
        }
    /* A tail of 4 or more: its first 4 products go to sums 0..3 in one vector (the scalar
       loop's arithmetic), the rest to sums 4.. one at a time. */
    v = 0;
    if (i + DPM_CD_W <= n) {
        memcpy(&va, a + i, sizeof va);
        memcpy(&vb, b + i, sizeof vb);
        s[0] += va * vb;
        i += DPM_CD_W;
        v = DPM_CD_W;
    }
    memcpy(t, s, sizeof t);
    for (; i < n; i++, v++)
        t[v] += a[i] * b[i];
    return ((t[0] + t[4]) + (t[2] + t[6])) + ((t[1] + t[5]) + (t[3] + t[7]));
}

/* The sum over rows r = 0 .. rows-1, in order from 0.0, of dpm_cascade_dot(a + r * as, b + r * bs, n):
   a filter of `rows` rows of n doubles (row stride bs) placed on a map (row stride as).  The same
   products, partial sums and combination order as dpm_cascade_dot, so the same bits; the 8 partial
   sums are combined in vector registers: (s0 + s4), (s1 + s5), (s2 + s6), (s3 + s7) in one vector,
   then (that[0] + that[2]) + (that[1] + that[3]). */
static inline __attribute__((always_inline)) double
dpm_cascade_rows_n(const double *a, long as, const double *b, long bs, int rows, int n)
{
    double s = 0.0;
    int r;
    for (r = 0; r < rows; r++, a += as, b += bs) {
        dpm_cdv s0 = (dpm_cdv){0}, s1 = (dpm_cdv){0}, va, vb, u;
        double t[8];
        int i = 0, v;
        for (; i + 8 <= n; i += 8) {
            memcpy(&va, a + i, sizeof va);
            memcpy(&vb, b + i, sizeof vb);
            s0 += va * vb;
            memcpy(&va, a + i + DPM_CD_W, sizeof va);
            memcpy(&vb, b + i + DPM_CD_W, sizeof vb);
            s1 += va * vb;
        }
        if (i + DPM_CD_W <= n) {
            memcpy(&va, a + i, sizeof va);
            memcpy(&vb, b + i, sizeof vb);
            s0 += va * vb;
            i += DPM_CD_W;
        }
        if (i == n) {
            u = s0 + s1;
            s += (u[0] + u[2]) + (u[1] + u[3]);
        } else {
            memcpy(t, &s0, sizeof s0);
            memcpy(t + DPM_CD_W, &s1, sizeof s1);
            for (v = (n & 7) >= DPM_CD_W ? DPM_CD_W : 0; i < n; i++, v++)
                t[v] += a[i] * b[i];
            s += ((t[0] + t[4]) + (t[2] + t[6])) + ((t[1] + t[5]) + (t[3] + t[7]));
        }
    }
    return s;
}

/* The same, specialised for 6 x 6 filters of 6 (projected) and 32 channels. */
static inline double dpm_cascade_rows(const double *a, long as, const double *b, long bs, int rows, int n)
{
    if (rows == 6 && n == 36)
        return dpm_cascade_rows_n(a, as, b, bs, 6, 36);
    if (rows == 6 && n == 192)
        return dpm_cascade_rows_n(a, as, b, bs, 6, 192);
    return dpm_cascade_rows_n(a, as, b, bs, rows, n);
}
/* dpm_cascade_rows_n at a, a + dx, ..., a + (K - 1) dx (K placements of the filter, e.g. adjacent
   columns) into out[0 .. K-1]: each filter load serves the K sums; each sum is formed exactly as
   dpm_cascade_rows_n forms it. */
static inline __attribute__((always_inline)) void
dpm_cascade_rowsk_n(const double *a, long as, long dx, const double *b, long bs, int rows, int n, int K,
                    double *out)
{
    double s[4] = {0.0, 0.0, 0.0, 0.0};
    int r, k;
    for (r = 0; r < rows; r++, a += as, b += bs) {
        dpm_cdv s0[4], s1[4], va, vb, u;
        double t[8];
        int i = 0, v;
        for (k = 0; k < K; k++)
            s0[k] = s1[k] = (dpm_cdv){0};
        for (; i + 8 <= n; i += 8) {
            memcpy(&vb, b + i, sizeof vb);
            for (k = 0; k < K; k++) {
                memcpy(&va, a + k * dx + i, sizeof va);
                s0[k] += va * vb;
            }
            memcpy(&vb, b + i + DPM_CD_W, sizeof vb);
            for (k = 0; k < K; k++) {
                memcpy(&va, a + k * dx + i + DPM_CD_W, sizeof va);
                s1[k] += va * vb;
            }
        }
        if (i + DPM_CD_W <= n) {
            memcpy(&vb, b + i, sizeof vb);
            for (k = 0; k < K; k++) {
                memcpy(&va, a + k * dx + i, sizeof va);
                s0[k] += va * vb;
            }
            i += DPM_CD_W;
        }
        for (k = 0; k < K; k++) {
            if (i == n) {
                u = s0[k] + s1[k];
                s[k] += (u[0] + u[2]) + (u[1] + u[3]);
            } else {
                int j;
                memcpy(t, &s0[k], sizeof s0[k]);
                memcpy(t + DPM_CD_W, &s1[k], sizeof s1[k]);
                for (j = i, v = (n & 7) >= DPM_CD_W ? DPM_CD_W : 0; j < n; j++, v++)
                    t[v] += a[k * dx + j] * b[j];
                s[k] += ((t[0] + t[4]) + (t[2] + t[6])) + ((t[1] + t[5]) + (t[3] + t[7]));
            }
        }
    }
    for (k = 0; k < K; k++)
        out[k] = s[k];
}

DPM_DEFINE_SPAN(dpm_cascade_span_shaped, double, dpm_cascade_rowsk_n)

static inline void dpm_cascade_span(const double *a, long as, long dx, const double *b, long bs, int rows, int n,
                                    int L, double *out)
{
    if (rows == 6 && n == 36)
        dpm_cascade_span_shaped(a, as, dx, b, bs, 6, 36, L, out);
    else if (rows == 6 && n == 192)
        dpm_cascade_span_shaped(a, as, dx, b, bs, 6, 192, L, out);
    else
        dpm_cascade_span_shaped(a, as, dx, b, bs, rows, n, L, out);
}
#else
static inline double dpm_cascade_dot(const double *a, const double *b, int n)
{
    double t[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int i = 0, v;
    for (; i + 8 <= n; i += 8)
        for (v = 0; v < 8; v++)
            t[v] += a[i + v] * b[i + v];
    for (v = 0; i < n; i++, v++)
        t[v] += a[i] * b[i];
    return ((t[0] + t[4]) + (t[2] + t[6])) + ((t[1] + t[5]) + (t[3] + t[7]));
}

static inline double dpm_cascade_rows(const double *a, long as, const double *b, long bs, int rows, int n)
{
    double s = 0.0;
    int r;
    for (r = 0; r < rows; r++)
        s += dpm_cascade_dot(a + r * as, b + r * bs, n);
    return s;
}

static inline void dpm_cascade_rowsk(const double *a, long as, long dx, const double *b, long bs, int rows, int n,
                                     int K, double *out)
{
    int k;
    for (k = 0; k < K; k++)
        out[k] = dpm_cascade_rows(a + k * dx, as, b, bs, rows, n);
}

static inline void dpm_cascade_span(const double *a, long as, long dx, const double *b, long bs, int rows, int n,
                                    int L, double *out)
{
    dpm_cascade_rowsk(a, as, dx, b, bs, rows, n, L, out);
}

#endif

/* Single precision (the projected responses): a filter of `rows` rows of n floats (row stride bs)
   placed at a (row stride as), K placements at a, a + dx, ... (K = 1 .. 4).  Summation order (the same
   in every build): the products of each row are accumulated, in increasing index, in 8 partial sums,
   sum (i mod 8) (the last n mod 8 products to sums 0 .. n mod 8 - 1), carried from row to row; at the
   end ((s0 + s4) + (s2 + s6)) + ((s1 + s5) + (s3 + s7)), in float. */
#if defined(__GNUC__) || defined(__clang__)
typedef float dpm_cfv __attribute__((vector_size(32)));
#if defined(__AVX__)
#include <immintrin.h>
#endif

static inline __attribute__((always_inline)) void
dpm_cascade_rowsk32_n(const float *a, long as, long dx, const float *b, long bs, int rows, int n, int K,
                      double *out)
{
    dpm_cfv s[4], va, vb;
    int r, k, i;
    for (k = 0; k < K; k++)
        s[k] = (dpm_cfv){0};
    for (r = 0; r < rows; r++, a += as, b += bs) {
        for (i = 0; i + 8 <= n; i += 8) {
            memcpy(&vb, b + i, sizeof vb);
            for (k = 0; k < K; k++) {
                memcpy(&va, a + k * dx + i, sizeof va);
                s[k] += va * vb;
            }
        }
#if defined(__AVX__)
        /* A tail of 4 or more: its first 4 products to sums 0..3 (the low half, in registers). */
        if (i + 4 <= n) {
            __m128 wb = _mm_loadu_ps(b + i);
            for (k = 0; k < K; k++) {
                __m256 sk;
                memcpy(&sk, &s[k], sizeof sk);
                sk = _mm256_insertf128_ps(sk, _mm_add_ps(_mm256_castps256_ps128(sk),
                                                         _mm_mul_ps(_mm_loadu_ps(a + k * dx + i), wb)), 0);
                memcpy(&s[k], &sk, sizeof sk);
            }
            i += 4;
        }
#endif
        for (; i < n; i++)
            for (k = 0; k < K; k++)
                s[k][i & 7] += a[k * dx + i] * b[i];
    }
    for (k = 0; k < K; k++)
        out[k] = (double)(((s[k][0] + s[k][4]) + (s[k][2] + s[k][6])) + ((s[k][1] + s[k][5]) + (s[k][3] + s[k][7])));
}
#else
static inline void dpm_cascade_rowsk32_n(const float *a, long as, long dx, const float *b, long bs, int rows,
                                         int n, int K, double *out)
{
    int r, k, i;
    for (k = 0; k < K; k++) {
        float t[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        const float *ar = a + k * dx, *br = b;
        for (r = 0; r < rows; r++, ar += as, br += bs) {
            for (i = 0; i + 8 <= n; i += 8) {
                int v;
                for (v = 0; v < 8; v++)
                    t[v] += ar[i + v] * br[i + v];
            }
            for (; i < n; i++)
                t[i & 7] += ar[i] * br[i];
        }
        out[k] = (double)(((t[0] + t[4]) + (t[2] + t[6])) + ((t[1] + t[5]) + (t[3] + t[7])));
    }
}
#endif

/* L single-precision responses at a, a + dx, ... (no placement clipped), 4 at a time. */
DPM_DEFINE_SPAN(dpm_cascade_span32_shaped, float, dpm_cascade_rowsk32_n)

static inline void dpm_cascade_span32(const float *a, long as, long dx, const float *b, long bs, int rows, int n,
                                      int L, double *out)
{
    if (rows == 6 && n == 36)
        dpm_cascade_span32_shaped(a, as, dx, b, bs, 6, 36, L, out);
    else if (rows == 6 && n == 30)
        dpm_cascade_span32_shaped(a, as, dx, b, bs, 6, 30, L, out);
    else
        dpm_cascade_span32_shaped(a, as, dx, b, bs, rows, n, L, out);
}

#endif /* DPM_CASCADE_DOT_H */
