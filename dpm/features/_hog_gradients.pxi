# The gradients of the double-precision HOG kernels (included by _hog.pyx, which
# documents the algorithm): the original's orientation rule and its vectorised
# form, the gradient of each row (strongest channel, squared magnitude,
# orientation bin) and gradient_bins, the whole gradient maps of an image.

cdef int _orientation_reference(double dx, double dy) noexcept nogil:
    # The original's loop: the first direction whose |dot| is strictly the
    # largest, bin o for a positive dot and o + 9 for a negative one.
    cdef double best_dot = 0.0, dot
    cdef int best_o = 0, o
    for o in range(9):
        dot = UU[o] * dx + VV[o] * dy
        if dot > best_dot:
            best_dot = dot
            best_o = o
        elif -dot > best_dot:
            best_dot = -dot
            best_o = o + 9
    return best_o


cdef enum:
    CHUNK = 128     # pixels per block of the gradient kernel's scratch arrays

include "_channels.pxi"

# Bin from the code k + 5*lo + 10*negative computed by _orientation_block
# (codes 0 and 10 cannot occur: k = 0 implies lo).
cdef unsigned char BIN_OF_CODE[20]
BIN_OF_CODE[:] = [9, 8, 7, 6, 5, 0, 1, 2, 3, 4, 9, 17, 16, 15, 14, 9, 10, 11, 12, 13]


cdef inline void _orientation_block(const double *gx, const double *gy, Py_ssize_t n,
                                    double *code, double *special) noexcept nogil:
    # Orientation bins of n gradients, with the result of _orientation_reference
    # but 4 instead of 9 dot products and no data-dependent branches (the bins
    # of neighbouring pixels are not predictable).  code[i] indexes BIN_OF_CODE;
    # special[i] != 0 marks the rare inputs left to the reference loop.
    #
    # * The rounded table is mirror-symmetric (UU[9-p] = -UU[p], VV[9-p] =
    #   VV[p]) and rounding is sign-symmetric, so for p = 1..4 the larger of
    #   |dot_p| and |dot_{9-p}| is exactly m_p = UU[p]*|dx| + VV[p]*|dy|, and
    #   |dot_0| = m_0 = |dx|.  The largest |dot| is the largest m_p.
    # * m_0..m_4 rise strictly up to the pair of directions that straddles the
    #   gradient and fall strictly after it (adjacent directions away from the
    #   gradient differ by at least 1 - cos 20deg = 6%, far above the 1e-4
    #   rounding of the table), so k = the number of rises is the first
    #   maximiser, also when the straddling pair ties.  Subnormal-range
    #   gradients, where rounding is coarser, are special.
    # * If dx and dy do not have opposite signs, |dot_p| = m_p for every p, so
    #   the original's first maximiser is k.  Otherwise |dot_p| < m_p and the
    #   partner 9 - k wins -- unless k = 0 (no partner), or |dx| is negligible
    #   next to |dy| (|dot_4| and |dot_5| then round to the same value; special
    #   when |dx| < 1e-12 |dy|), or m_k ties with a neighbour (special).
    # * Sign of the winner's dot product: that of dx if k = 0, of dy if the
    #   signs are opposite, of min(dx, dy) otherwise.  A zero gradient is bin 0.
    #
    # Written for the compiler's vectoriser (SSE2 suffices): flags are 0.0/1.0
    # doubles combined with max (or) and min (and), and conditional
    # expressions select between values computed unconditionally beforehand.
    # Floating-point arithmetic or ordered comparisons whose result is only
    # needed on one side of a select would be moved into a branch by the
    # compiler, which then refuses to vectorise (they could trap).
    cdef Py_ssize_t i
    cdef double dx, dy, a, b, m1, m2, m3, m4, k, t, f1, f2, f3, f4, lo, hi, mixed, spec, w
    for i in range(n):
        dx = gx[i]
        dy = gy[i]
        a = fabs(dx)
        b = fabs(dy)
        m1 = 0.9397 * a + 0.3420 * b
        m2 = 0.7660 * a + 0.6428 * b
        m3 = 0.500 * a + 0.8660 * b
        m4 = 0.1736 * a + 0.9848 * b
        # k = number of rises.
        f1 = 1.0 if m1 > a else 0.0
        f2 = 1.0 if m2 > m1 else 0.0
        f3 = 1.0 if m3 > m2 else 0.0
        f4 = 1.0 if m4 > m3 else 0.0
        k = (f1 + f2) + (f3 + f4)
        # Opposite signs: min(dx, dy) < 0 < max(dx, dy).
        lo = dx if dx < dy else dy
        hi = dx if dx > dy else dy
        f1 = 1.0 if lo < 0.0 else 0.0
        f2 = 1.0 if hi > 0.0 else 0.0
        mixed = f1 if f1 < f2 else f2
        # Special: with opposite signs, an exact tie m_p == m_{p+1} (p >= 1) or
        # |dx| < 1e-12 |dy|; or a subnormal-range gradient, 0 < |dx| + |dy| <
        # 1e-280.  (Without opposite signs the lower member k of the pair wins
        # and the first maximiser k is right even on a tie.)
        f1 = 1.0 if m1 == m2 else 0.0
        f2 = 1.0 if m2 == m3 else 0.0
        f1 = f1 if f1 > f2 else f2
        f2 = 1.0 if m3 == m4 else 0.0
        f1 = f1 if f1 > f2 else f2
        t = 1e-12 * b
        f2 = 1.0 if a < t else 0.0
        f1 = f1 if f1 > f2 else f2
        spec = f1 if f1 < mixed else mixed
        t = a + b
        f1 = 1.0 if t < 1e-280 else 0.0
        f2 = 1.0 if t > 0.0 else 0.0
        f1 = f1 if f1 < f2 else f2
        spec = spec if spec > f1 else f1
        # The higher member 9 - k wins iff the signs are opposite and k > 0.
        f1 = 1.0 if k > 0.5 else 0.0
        f1 = f1 if f1 < mixed else mixed
        f3 = 0.0 if f1 > 0.5 else 5.0
        # Negative winner iff w < 0, w = dx (k = 0), dy (opposite signs),
        # min(dx, dy) (otherwise; both are >= 0 or both <= 0).
        w = dy if mixed > 0.5 else lo
        w = dx if k < 0.5 else w
        f4 = 10.0 if w < 0.0 else 0.0
        code[i] = k + f3 + f4
        special[i] = spec


def orientation_bins(const double[::1] dx, const double[::1] dy, unsigned char[::1] out,
                     bint reference=False):
    """Orientation bin of each gradient ``(dx[i], dy[i])`` (for tests).

    ``reference=True`` runs the original's 9-dot-product loop instead of the
    equivalent used by :func:`gradient_bins`.
    """
    cdef double gx[CHUNK]
    cdef double gy[CHUNK]
    cdef double code[CHUNK]
    cdef double special[CHUNK]
    cdef Py_ssize_t start = 0, n, i, N = dx.shape[0]
    with nogil:
        if reference:
            for i in range(N):
                out[i] = <unsigned char>_orientation_reference(dx[i], dy[i])
        else:
            while start < N:
                n = min(<Py_ssize_t>CHUNK, N - start)
                for i in range(n):
                    gx[i] = dx[start + i]
                    gy[i] = dy[start + i]
                _orientation_block(gx, gy, n, code, special)
                for i in range(n):
                    if special[i] != 0.0:
                        out[start + i] = <unsigned char>_orientation_reference(gx[i], gy[i])
                    else:
                        out[start + i] = BIN_OF_CODE[<int>code[i]]
                start += n


cdef void _gradient_row(const double *up, const double *mid, const double *down,
                        Py_ssize_t width, double *sqmag, unsigned char *ori) noexcept nogil:
    # Gradients of pixels 1..width-2 of one row (pointers to pixel 0 of the
    # rows above, at and below), in blocks of CHUNK pixels: differences and
    # channel choice (selects only; vectorised, writing local arrays only so
    # that no aliasing check is needed), bins, then the stores.
    cdef double gx[CHUNK]
    cdef double gy[CHUNK]
    cdef double gv[CHUNK]
    cdef double code[CHUNK]
    cdef double special[CHUNK]
    cdef Py_ssize_t start = 1, n, i
    while start < width - 1:
        n = min(<Py_ssize_t>CHUNK, width - 1 - start)
        _strongest_channel(up + 3 * start, mid + 3 * start, down + 3 * start, 3, 1, n, gx, gy, gv)
        _orientation_block(gx, gy, n, code, special)
        for i in range(n):
            sqmag[start + i] = gv[i]
            ori[start + i] = BIN_OF_CODE[<int>code[i]]
            if special[i] != 0.0:
                ori[start + i] = <unsigned char>_orientation_reference(gx[i], gy[i])
        start += n


def gradient_bins(const double[:, :, ::1] image, double[:, ::1] sqmagnitude,
                  unsigned char[:, ::1] orientation):
    """Per-pixel squared gradient magnitude and orientation bin of an RGB image.

    Parameters
    ----------
    image : (H, W, 3) float64, C-contiguous
    sqmagnitude : (H, W) float64, C-contiguous, output
        ``dx**2 + dy**2`` of the colour channel with the largest one (the
        earlier channel wins a tie), for the interior pixels ``1 <= y <= H-2``,
        ``1 <= x <= W-2``; the one-pixel border is set to 0.
    orientation : (H, W) uint8, C-contiguous, output
        Bin 0..17 of the interior pixels: ``o`` when the dot product with unit
        vector ``o`` is the largest and positive, ``o + 9`` when it is the
        largest and negative; the first ``o`` wins a tie and a zero gradient
        is bin 0.  The border is set to 0.
    """
    cdef Py_ssize_t H = image.shape[0], W = image.shape[1]
    cdef Py_ssize_t x, y
    with nogil:
        for y in range(H):
            if y == 0 or y == H - 1 or W < 3:
                for x in range(W):
                    sqmagnitude[y, x] = 0.0
                    orientation[y, x] = 0
                continue
            sqmagnitude[y, 0] = 0.0
            sqmagnitude[y, W - 1] = 0.0
            orientation[y, 0] = 0
            orientation[y, W - 1] = 0
            _gradient_row(&image[y - 1, 0, 0], &image[y, 0, 0], &image[y + 1, 0, 0], W,
                          &sqmagnitude[y, 0], &orientation[y, 0])
