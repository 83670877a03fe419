# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
#
# Area-averaging image reduction: a port of voc-release3.1 ``resize.cc``
# (Felzenszwalb, Girshick, McAllester, Ramanan; MIT-style licence).
#
# Layout: C-ordered (H, W, C) float64 arrays indexed [y, x, channel] (the
# original's column-major H x W x C array has the same index meaning).  All
# indices are 0-based.
#
# The original resizes along columns into a transposed buffer and applies the
# same routine again.  Here both passes are fused row by row: each output row
# is first combined from its source rows (the original's first pass) into a
# one-row buffer, which is then reduced along x (the second pass).  Every
# output sample adds the same weighted taps in the same order, starting from
# 0, as the original, so the results are bit-identical (up to the sign of a
# zero; see _pad_taps).  The original's stack-allocated variable-length tap
# table is a heap buffer.  Kernels trust their caller; argument checks live in
# dpm/features/hog.py.
from libc.math cimport ceil, floor
from libc.stdlib cimport malloc, free


cdef struct Taps:
    # Destination d averages source samples first[d] .. first[d] + count[d] - 1
    # with weights weight[offset[d]] ..., in increasing source order.
    Py_ssize_t *first
    Py_ssize_t *count
    Py_ssize_t *offset
    double *weight


cdef int _build_taps(Py_ssize_t S, Py_ssize_t D, Taps *taps) noexcept nogil:
    # Destination sample d covers the source interval [d*S/D, (d+1)*S/D).  Full
    # pixels weigh D/S, the partial end pixels their covered fraction times D/S;
    # pieces of at most 1e-3 pixel are skipped.  Returns -1 if out of memory.
    cdef double scale = <double>D / <double>S
    cdef double invscale = <double>S / <double>D
    cdef Py_ssize_t k = 0, d, s1, s2, j
    cdef double f1, f2
    # At most one tap per source pixel plus two partial ones per destination.
    taps.first = <Py_ssize_t *>malloc(D * sizeof(Py_ssize_t))
    taps.count = <Py_ssize_t *>malloc(D * sizeof(Py_ssize_t))
    taps.offset = <Py_ssize_t *>malloc(D * sizeof(Py_ssize_t))
    taps.weight = <double *>malloc((S + 2 * D + 2) * sizeof(double))
    if taps.first == NULL or taps.count == NULL or taps.offset == NULL or taps.weight == NULL:
        _free_taps(taps)
        return -1
    for d in range(D):
        f1 = d * invscale
        f2 = f1 + invscale
        s1 = <Py_ssize_t>ceil(f1)
        s2 = <Py_ssize_t>floor(f2)
        taps.offset[d] = k
        taps.first[d] = s1
        if s1 - f1 > 1e-3:
            taps.first[d] = s1 - 1
            taps.weight[k] = (s1 - f1) * scale
            k += 1
        for j in range(s2 - s1):       # whole pixels s1 .. s2 - 1 (none if s2 <= s1)
            taps.weight[k + j] = scale
        if s2 > s1:
            k += s2 - s1
        if f2 - s2 > 1e-3:
            taps.weight[k] = (f2 - s2) * scale
            k += 1
        taps.count[d] = k - taps.offset[d]
    return 0


cdef void _free_taps(Taps *taps) noexcept nogil:
    free(taps.first)
    free(taps.count)
    free(taps.offset)
    free(taps.weight)
    taps.first = NULL
    taps.count = NULL
    taps.offset = NULL
    taps.weight = NULL


ctypedef fused pixel_t:
    # Source samples: double, or the 8-bit samples of a decoded image (each
    # converted to double exactly, so the results are the same; the first
    # octave of a pyramid reads its image without the float64 copy's memory
    # traffic).
    double
    unsigned char


cdef void _combine_rows(const pixel_t *src, Py_ssize_t rowlen, const Taps *taps, Py_ssize_t d,
                        double *out) noexcept nogil:
    # out[i] = 0 + w0*row0[i] + w1*row1[i] + ..., rows of rowlen samples.
    cdef Py_ssize_t n = taps.count[d], j, i
    cdef const double *w = taps.weight + taps.offset[d]
    cdef const pixel_t *r0 = src + taps.first[d] * rowlen
    cdef const pixel_t *r1
    cdef const pixel_t *r2
    cdef double w0 = w[0], w1, w2
    if n == 2:
        r1 = r0 + rowlen
        w1 = w[1]
        for i in range(rowlen):
            out[i] = (0.0 + w0 * r0[i]) + w1 * r1[i]
    elif n == 3:
        r1 = r0 + rowlen
        r2 = r1 + rowlen
        w1 = w[1]
        w2 = w[2]
        for i in range(rowlen):
            out[i] = ((0.0 + w0 * r0[i]) + w1 * r1[i]) + w2 * r2[i]
    else:
        for i in range(rowlen):
            out[i] = 0.0 + w0 * r0[i]
        for j in range(1, n):
            r1 = r0 + j * rowlen
            w1 = w[j]
            for i in range(rowlen):
                out[i] = out[i] + w1 * r1[i]


cdef void _reduce_row(const double *row, Py_ssize_t C, const Taps *taps, Py_ssize_t D,
                      bint padded, double *out) noexcept nogil:
    # out[d, c] = 0 + sum_j w_j * row[first[d] + j, c], rows of C-channel pixels.
    cdef Py_ssize_t d, j, c, n
    cdef const double *w
    cdef const double *s
    cdef double a0, w0, w1, w2
    cdef double *o
    cdef double p0[4]
    cdef double p1[4]
    cdef double p2[4]
    cdef double q[4]
    if padded:
        # C == 3 and every destination padded to 3 taps (see _pad_taps): straight-line code.
        # Four lanes per destination pixel, its three channels and the next
        # pixel's first (rewritten by the next destination), so that the
        # compiler makes one vector operation of the four (four doubles with
        # AVX2); the row has one sample of padding for the fourth lane's
        # reads.  The last destination writes its three channels only.
        for d in range(D - 1):
            w = taps.weight + 3 * d
            s = row + 3 * taps.first[d]
            w0 = w[0]
            w1 = w[1]
            w2 = w[2]
            # Every load before the first store: the compiler cannot tell
            # that out and row do not overlap, and would keep the order.
            for c in range(4):
                p0[c] = s[c]
                p1[c] = s[3 + c]
                p2[c] = s[6 + c]
            for c in range(4):
                q[c] = ((0.0 + w0 * p0[c]) + w1 * p1[c]) + w2 * p2[c]
            o = out + 3 * d
            for c in range(4):
                o[c] = q[c]
        w = taps.weight + 3 * (D - 1)
        s = row + 3 * taps.first[D - 1]
        o = out + 3 * (D - 1)
        o[0] = ((0.0 + w[0] * s[0]) + w[1] * s[3]) + w[2] * s[6]
        o[1] = ((0.0 + w[0] * s[1]) + w[1] * s[4]) + w[2] * s[7]
        o[2] = ((0.0 + w[0] * s[2]) + w[1] * s[5]) + w[2] * s[8]
    else:
        for d in range(D):
            n = taps.count[d]
            w = taps.weight + taps.offset[d]
            s = row + C * taps.first[d]
            for c in range(C):
                a0 = 0.0 + w[0] * s[c]
                for j in range(1, n):
                    a0 = a0 + w[j] * s[C * j + c]
                out[C * d + c] = a0


cdef int _pad_taps(Py_ssize_t S, Py_ssize_t D, Taps *taps) noexcept nogil:
    # Rewrite a table whose destinations have at most 3 taps so that every
    # destination has exactly 3 (offset 3*d), the extra ones with weight 0.
    # Adding 0 * x leaves a sum unchanged (up to the sign of a zero).  Taps that
    # would fall past the last source sample start earlier instead (weight 0
    # first), so that reads stay inside the row.  Returns -1 if out of memory.
    cdef double *weight = <double *>malloc(3 * D * sizeof(double))
    cdef Py_ssize_t d, j, n, shift
    if weight == NULL:
        return -1
    for d in range(D):
        n = taps.count[d]
        shift = 0
        if taps.first[d] + 3 > S:
            shift = taps.first[d] + 3 - S
        for j in range(3):
            weight[3 * d + j] = 0.0
        for j in range(n):
            weight[3 * d + shift + j] = taps.weight[taps.offset[d] + j]
        taps.first[d] -= shift
        taps.offset[d] = 3 * d
        taps.count[d] = 3
    free(taps.weight)
    taps.weight = weight
    return 0


def source_rows(Py_ssize_t H, Py_ssize_t DH, Py_ssize_t y0, Py_ssize_t y1):
    """``(lo, hi)``: the source rows ``[lo, hi)`` that destination rows ``[y0, y1)`` of an
    ``H -> DH`` reduction read (``1 <= DH <= H``, ``0 <= y0 < y1 <= DH``)."""
    cdef Taps ty
    cdef Py_ssize_t lo, hi
    if _build_taps(H, DH, &ty) != 0:
        raise MemoryError()
    lo = ty.first[y0]
    hi = ty.first[y1 - 1] + ty.count[y1 - 1]
    _free_taps(&ty)
    return lo, hi


def resize_image(const pixel_t[:, :, ::1] src, double[:, :, ::1] dst):
    """Area-averaging reduction ``(H, W, C) -> (DH, DW, C)``, ``1 <= DH <= H``, ``1 <= DW <= W``.

    The output size fixes the effective scale of each axis (``DH / H`` and
    ``DW / W``).  ``dst`` need not be initialised.  ``src`` is float64 or
    uint8 (the same results as its float64 copy).
    """
    resize_rows(src, dst, src.shape[0], dst.shape[0], 0, 0)


def resize_rows(const pixel_t[:, :, ::1] src, double[:, :, ::1] dst, Py_ssize_t H, Py_ssize_t DH,
                Py_ssize_t y0, Py_ssize_t s0):
    """Rows ``[y0, y0 + dst.shape[0])`` of the ``(H, W, C) -> (DH, DW, C)`` reduction.

    ``src`` holds source rows ``s0 ..`` (at least those :func:`source_rows` names);
    every row is bit-identical to the same row of the whole reduction.
    """
    cdef Py_ssize_t W = src.shape[1], C = src.shape[2]
    cdef Py_ssize_t DW = dst.shape[1], n = dst.shape[0]
    cdef Py_ssize_t y, maxcount
    cdef bint padded
    cdef Taps ty, tx
    cdef double *buffer
    cdef int failed = 0
    with nogil:
        # One more sample: the padding _reduce_row's fourth lane reads.
        buffer = <double *>malloc((W * C + 1) * sizeof(double))
        if buffer == NULL:
            failed = 1
        elif _build_taps(H, DH, &ty) != 0:
            free(buffer)
            failed = 1
        elif _build_taps(W, DW, &tx) != 0:
            _free_taps(&ty)
            free(buffer)
            failed = 1
        else:
            maxcount = 0
            for y in range(DW):
                maxcount = max(maxcount, tx.count[y])
            padded = C == 3 and maxcount <= 3 and W >= 3
            if padded and _pad_taps(W, DW, &tx) != 0:
                failed = 1
            if not failed:
                buffer[W * C] = 0.0
                for y in range(y0, y0 + n):
                    _combine_rows(&src[0, 0, 0] - s0 * W * C, W * C, &ty, y, buffer)
                    _reduce_row(buffer, C, &tx, DW, padded, &dst[y - y0, 0, 0])
            _free_taps(&tx)
            _free_taps(&ty)
            free(buffer)
    if failed:
        raise MemoryError()
