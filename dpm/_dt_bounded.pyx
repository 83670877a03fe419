# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
#
# Bounded generalised distance transform: a port of voc-release5
# ``gdetect/fast_bounded_dt.cc`` (Ross Girshick, 2013, after Yang and Ramanan's
# pose code and Felzenszwalb and Huttenlocher's dt; ideas from Dubout's ffld;
# MIT-style licence, see the release's COPYING).
#
# A maximisation (release 5 calls it with the part scores, not their
# negation): for every destination q of a 1-D signal f of n samples,
#     M(q) = max_{|q - s| <= range} f(s) - a*(q - s)^2 - b*(q - s)
# by the lower envelope of parabolas (linear time), with each intersection
# clamped to [q - range - eps, v + range + eps] so that no parabola reaches
# further than ``range`` samples.  The expressions below are the original's,
# term for term and in its order (reciprocals of -a*k cached in ``t``, the
# products a*square(d) and b*d with an integer d), so the values and the
# argmaxes are bit for bit fast_bounded_dt's.
#
# 2-D: a y-pass down every column with (ay, by), then an x-pass along every row
# of its result with (ax, bx); Iy is the y-pass argmax at the column chosen by
# the x-pass.  Arrays are row-major (H, W) indexed [y, x]; argmaxes are 0-based
# (the original returns them 1-based).

from libc.math cimport INFINITY
from libc.stdlib cimport malloc, free

cdef double _EPS = 0.00001


cdef inline double _dmin(double x, double y) noexcept nogil:
    # std::min(x, y): (y < x) ? y : x
    return y if y < x else x


cdef inline double _dmax(double x, double y) noexcept nogil:
    # std::max(x, y): (x < y) ? y : x
    return y if x < y else x


cdef void _dt1d(const double* src, double* dst, int* ptr, Py_ssize_t step, int n, double a, double b,
                double rng, int* v, double* z, const double* t) noexcept nogil:
    cdef int k = 0, q
    cdef double s
    cdef double a_inv = 1 / a
    v[0] = 0
    z[0] = -INFINITY
    z[1] = INFINITY
    for q in range(1, n):
        s = 0.5 * ((src[q * step] - src[v[k] * step]) * t[q - v[k]] + <double>q + <double>v[k] - b * a_inv)
        s = _dmin(<double>v[k] + rng + _EPS, _dmax(<double>q - rng - _EPS, s))
        while s <= z[k]:
            k -= 1
            s = 0.5 * ((src[q * step] - src[v[k] * step]) * t[q - v[k]] + <double>q + <double>v[k] - b * a_inv)
            s = _dmin(<double>v[k] + rng + _EPS, _dmax(<double>q - rng - _EPS, s))
        k += 1
        v[k] = q
        z[k] = s
    z[k + 1] = INFINITY
    k = 0
    for q in range(n):
        while z[k + 1] < <double>q:
            k += 1
        dst[q * step] = a * <double>((q - v[k]) * (q - v[k])) + b * <double>(q - v[k]) + src[v[k] * step]
        ptr[q * step] = v[k]


def bounded_dt(const double[:, ::1] vals, double ax, double bx, double ay, double by, double rng,
               double[:, ::1] out, int[:, ::1] ix, int[:, ::1] iy):
    """Kernel of :func:`dpm.dt_bounded.bounded_distance_transform` (arguments checked there;
    ``out``, ``ix``, ``iy`` the shape of ``vals``)."""
    cdef int h = vals.shape[0], w = vals.shape[1], n = h if h > w else w
    cdef int x, y
    cdef double* tmp = <double*>malloc(h * w * sizeof(double))
    cdef int* tix = <int*>malloc(h * w * sizeof(int))
    cdef int* tiy = <int*>malloc(h * w * sizeof(int))
    cdef int* v = <int*>malloc(n * sizeof(int))
    cdef double* z = <double*>malloc((n + 1) * sizeof(double))
    cdef double* t = <double*>malloc(n * sizeof(double))
    if not (tmp and tix and tiy and v and z and t):
        free(tmp); free(tix); free(tiy); free(v); free(z); free(t)
        raise MemoryError()
    with nogil:
        t[0] = INFINITY
        for y in range(1, h):
            t[y] = 1 / (-ay * <double>y)
        for x in range(w):
            _dt1d(&vals[0, x], tmp + x, tiy + x, w, h, -ay, -by, rng, v, z, t)
        for x in range(1, w):
            t[x] = 1 / (-ax * <double>x)
        for y in range(h):
            _dt1d(tmp + y * w, &out[y, 0], tix + y * w, 1, w, -ax, -bx, rng, v, z, t)
        for y in range(h):
            for x in range(w):
                ix[y, x] = tix[y * w + x]
                iy[y, x] = tiy[y * w + tix[y * w + x]]
    free(tmp); free(tix); free(tiy); free(v); free(z); free(t)
