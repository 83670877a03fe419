/*
 * The star-cascade kernel's window passes over its memo planes (dpm/detection/_cascade_search.pxi):
 * which responses a hypothesis needs (dpm_claim), which ones a pass must compute (dpm_claimed_mask),
 * and a window row's column minima over the responses known to a hypothesis (dpm_col_min_known);
 * with two bit and cache helpers.  Comparisons and arithmetic only, the same results in every build.
 */
#ifndef DPM_CASCADE_MEMO_H
#define DPM_CASCADE_MEMO_H

/* A hint to fetch the cache line of p (no effect on results). */
static inline void dpm_prefetch(const void *p)
{
#if defined(__GNUC__) || defined(__clang__)
    __builtin_prefetch(p);
#else
    (void)p;
#endif
}

/* Index of the lowest set bit of v (v != 0). */
static inline int dpm_ctz64(unsigned long long v)
{
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_ctzll(v);
#else
    int i = 0;
    while (!(v & 1)) {
        v >>= 1;
        i++;
    }
    return i;
#endif
}

/* The star-cascade kernel's memo stamps hold, per response, the id of the first hypothesis that
   needed it (ids only grow, all below 2^31; ids base .. base + count - 1 belong to the current pass).
   AVX2 builds handle 4 columns per vector compare; the same comparisons and arithmetic, so the same
   results. */
#if defined(__AVX2__)
#include <immintrin.h>
#endif

/* For i < n: first[i] = id where first[i] < base (not needed yet in this pass) and not (drow[i] < thr)
   (the deformation test; NaN thr: passes). */
static inline void dpm_claim(unsigned int *first, const double *drow, unsigned int base, unsigned int id,
                             double thr, int n)
{
    int i = 0;
#if defined(__AVX2__)
    __m128i vb = _mm_set1_epi32((int)base), vid = _mm_set1_epi32((int)id);
    __m256d vt = _mm256_set1_pd(thr);
    for (; i + 4 <= n; i += 4) {
        __m128i f = _mm_loadu_si128((const __m128i *)(first + i));
        __m256d ok = _mm256_cmp_pd(_mm256_loadu_pd(drow + i), vt, _CMP_NLT_UQ);
        __m128 ok32 = _mm_shuffle_ps(_mm256_castps256_ps128(_mm256_castpd_ps(ok)),
                                     _mm256_extractf128_ps(_mm256_castpd_ps(ok), 1), _MM_SHUFFLE(2, 0, 2, 0));
        __m128i take = _mm_and_si128(_mm_cmpgt_epi32(vb, f), _mm_castps_si128(ok32));
        _mm_storeu_si128((__m128i *)(first + i), _mm_blendv_epi8(f, vid, take));
    }
#endif
    for (; i < n; i++)
        first[i] = (first[i] < base) & !(drow[i] < thr) ? id : first[i];
}

/* Bit i (i < n <= 64) set when first[i] >= base: needed in this pass. */
static inline unsigned long long dpm_claimed_mask(const unsigned int *first, unsigned int base, int n)
{
    unsigned long long need = 0;
    int i = 0;
#if defined(__AVX2__)
    __m256i vb = _mm256_set1_epi32((int)base - 1);
    for (; i + 8 <= n; i += 8) {
        __m256i gt = _mm256_cmpgt_epi32(_mm256_loadu_si256((const __m256i *)(first + i)), vb);
        need |= (unsigned long long)(unsigned int)_mm256_movemask_ps(_mm256_castsi256_ps(gt)) << i;
    }
#endif
    for (; i < n; i++)
        need |= (unsigned long long)(first[i] >= base) << i;
    return need;
}

/* One window row's responses known to hypothesis base + upto (first[i] - base <= upto, unsigned) compete
   for their column's minimum: v = (-val[i] + qy) + ly; when known and v < col[i]: col[i] = v,
   coly[i] = y. */
static inline void dpm_col_min_known(const double *val, const unsigned int *first, unsigned int base,
                                     unsigned int upto, double qy, double ly, int y, int n, double *col, int *coly)
{
    int i = 0;
#if defined(__AVX2__)
    __m128i vb = _mm_set1_epi32((int)base), vu = _mm_set1_epi32((int)upto), vy = _mm_set1_epi32(y);
    __m256d vq = _mm256_set1_pd(qy), vl = _mm256_set1_pd(ly);
    for (; i + 4 <= n; i += 4) {
        __m128i d = _mm_sub_epi32(_mm_loadu_si128((const __m128i *)(first + i)), vb);
        __m128i known = _mm_cmpeq_epi32(_mm_min_epu32(d, vu), d);
        __m256d v = _mm256_add_pd(_mm256_sub_pd(vq, _mm256_loadu_pd(val + i)), vl);
        __m256d c = _mm256_loadu_pd(col + i);
        __m256d take = _mm256_and_pd(_mm256_cmp_pd(v, c, _CMP_LT_OQ),
                                     _mm256_castsi256_pd(_mm256_cvtepi32_epi64(known)));
        __m128 t32 = _mm_shuffle_ps(_mm256_castps256_ps128(_mm256_castpd_ps(take)),
                                    _mm256_extractf128_ps(_mm256_castpd_ps(take), 1), _MM_SHUFFLE(2, 0, 2, 0));
        _mm256_storeu_pd(col + i, _mm256_blendv_pd(c, v, take));
        _mm_storeu_si128((__m128i *)(coly + i),
                         _mm_blendv_epi8(_mm_loadu_si128((const __m128i *)(coly + i)), vy, _mm_castps_si128(t32)));
    }
#endif
    for (; i < n; i++) {
        double v = (-val[i] + qy) + ly;
        int take = (first[i] - base <= upto) & (v < col[i]);
        col[i] = take ? v : col[i];
        coly[i] = take ? y : coly[i];
    }
}

#endif /* DPM_CASCADE_MEMO_H */
