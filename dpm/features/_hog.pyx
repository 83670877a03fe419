# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
#
# 31-dimensional HOG features: a port of voc-release3.1 ``features.cc``
# (Felzenszwalb, Girshick, McAllester, Ramanan; MIT-style licence).
#
# Layout: every array is C-ordered and indexed [y, x] / [y, x, channel]
# (row = y, column = x), the same index meaning as the original's column-major
# MATLAB arrays.  All indices are 0-based.
#
# The original computes the gradient of every visited pixel and bins it in one
# loop.  Here the work is split in three kernels so that the feature pyramid can
# bin one gradient map at two cell sizes:
#
#   gradient_bins(image, magnitude, orientation)   per-pixel magnitude and bin
#   bin_cells(magnitude, orientation, sbin, hist)  bilinear spatial binning
#   normalize_cells(hist, out)                     block normalisation, 31 channels
#
# The clamped reads of the original (a visited pixel (x, y) reads the gradient at
# (min(x, W-2), min(y, H-2))) are applied in bin_cells, which is why the
# gradient map only has to be computed once per image.  Kernels trust their
# caller; argument checks live in dpm/features/hog.py.
from libc.math cimport sqrt, floor, fabs, HUGE_VAL

# Unit vectors of the 9 orientations, rounded to 4 decimals as in the original.
# Entry 9 is a placeholder so that UU[9 - k], VV[9 - k] can be read for k = 0.
cdef double UU[10]
cdef double VV[10]
UU[:] = [1.0000, 0.9397, 0.7660, 0.500, 0.1736, -0.1736, -0.5000, -0.7660, -0.9397, -1.0]
VV[:] = [0.0000, 0.3420, 0.6428, 0.8660, 0.9848, 0.9848, 0.8660, 0.6428, 0.3420, 0.0]

cdef double EPS = 0.0001


cdef int _orientation_reference(double dx, double dy) noexcept nogil:
    # The original's loop, verbatim in meaning.
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
    #   rounding of the table), so the first maximiser k is the number of
    #   rises.  Special: an exact tie between adjacent m_p, or a subnormal-range
    #   gradient.
    # * If dx and dy do not have opposite signs, |dot_k| = m_k and k (< 9-k)
    #   wins.  Otherwise |dot_k| < m_k strictly, so 9 - k wins -- unless k = 0
    #   (no partner), or |dx| is negligible next to |dy| (below ~1e-16 relative,
    #   where |dot_4| and |dot_5| can round to the same value; special when
    #   |dx| < 1e-12 |dy|).
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
    cdef double dx, dy, a, b, m1, m2, m3, m4, k, t, f1, f2, spec, notmixed, lo, w
    cdef double INF = HUGE_VAL
    for i in range(n):
        dx = gx[i]
        dy = gy[i]
        a = fabs(dx)
        b = fabs(dy)
        m1 = 0.9397 * a + 0.3420 * b
        m2 = 0.7660 * a + 0.6428 * b
        m3 = 0.500 * a + 0.8660 * b
        m4 = 0.1736 * a + 0.9848 * b
        # k = number of rises = position of the last rise.
        k = 1.0 if m1 > a else 0.0
        k = 2.0 if m2 > m1 else k
        k = 3.0 if m3 > m2 else k
        k = 4.0 if m4 > m3 else k
        # Special: an exact tie (not counting the zero gradient, where all m
        # are 0), a subnormal-range gradient, or |dx| < 1e-12 |dy| with dx != 0.
        f1 = 1.0 if a == m1 else 0.0
        f2 = 1.0 if m1 == m2 else 0.0
        f1 = f1 if f1 > f2 else f2
        f2 = 1.0 if m2 == m3 else 0.0
        f1 = f1 if f1 > f2 else f2
        f2 = 1.0 if m3 == m4 else 0.0
        f1 = f1 if f1 > f2 else f2
        t = a + m4
        spec = 0.0 if t == 0.0 else f1
        t = t if t > 0.0 else INF
        f2 = 1.0 if t < 1e-280 else 0.0
        spec = spec if spec > f2 else f2
        t = a if a > 0.0 else INF
        f1 = 1e-12 * b
        f2 = 1.0 if t < f1 else 0.0
        spec = spec if spec > f2 else f2
        # Opposite signs iff e > 0, e = dy if dx < 0, -dy if dx > 0, else 0.
        f1 = -dy
        t = dy if dx < 0.0 else 0.0
        t = f1 if dx > 0.0 else t
        notmixed = 0.0 if t > 0.0 else 1.0
        # lo: the lower member k of the pair wins.
        f2 = 1.0 if k == 0.0 else 0.0
        lo = notmixed if notmixed > f2 else f2
        # Negative winner iff w < 0, w = dx (k = 0), dy (opposite signs),
        # min(dx, dy) (otherwise; both are >= 0 or both <= 0).
        w = dx if dx < dy else dy
        w = w if notmixed > 0.5 else dy
        w = dx if k == 0.0 else w
        f1 = 5.0 if lo > 0.5 else 0.0
        f2 = 10.0 if w < 0.0 else 0.0
        code[i] = k + f1 + f2
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
    # rows above, at and below), in blocks of CHUNK pixels: gather the 6
    # differences, choose the channel (selects only, vectorised), find the
    # bins, and store the squared magnitude and the bin.
    cdef double d[6][CHUNK]
    cdef double gx[CHUNK]
    cdef double gy[CHUNK]
    cdef double code[CHUNK]
    cdef double special[CHUNK]
    cdef Py_ssize_t start = 1, n, i, x
    cdef double dx, dy, dx2, dy2, dx3, dy3, v, t
    while start < width - 1:
        n = min(<Py_ssize_t>CHUNK, width - 1 - start)
        for i in range(n):
            x = 3 * (start + i)
            d[0][i] = mid[x + 3] - mid[x - 3]
            d[1][i] = down[x] - up[x]
            d[2][i] = mid[x + 4] - mid[x - 2]
            d[3][i] = down[x + 1] - up[x + 1]
            d[4][i] = mid[x + 5] - mid[x - 1]
            d[5][i] = down[x + 2] - up[x + 2]
        for i in range(n):
            # Strongest channel; the earlier one wins a tie.
            dx = d[0][i]
            dy = d[1][i]
            dx2 = d[2][i]
            dy2 = d[3][i]
            dx3 = d[4][i]
            dy3 = d[5][i]
            v = dx * dx + dy * dy
            t = dx2 * dx2 + dy2 * dy2
            dx = dx2 if t > v else dx
            dy = dy2 if t > v else dy
            v = t if t > v else v
            t = dx3 * dx3 + dy3 * dy3
            dx = dx3 if t > v else dx
            dy = dy3 if t > v else dy
            v = t if t > v else v
            gx[i] = dx
            gy[i] = dy
            sqmag[start + i] = v
        _orientation_block(gx, gy, n, code, special)
        for i in range(n):
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


def bin_cells(const double[:, ::1] magnitude, const unsigned char[:, ::1] orientation,
              int sbin, double[:, :, ::1] hist):
    """Accumulate gradients into cell histograms by bilinear spatial weighting.

    The grid has ``by = hist.shape[0] - 2`` rows and ``bx = hist.shape[1] - 2``
    columns of cells.  Pixels ``1 <= x <= bx*sbin - 2``, ``1 <= y <= by*sbin - 2``
    are visited and read the gradient at ``(min(x, W-2), min(y, H-2))``.

    Parameters
    ----------
    magnitude : (H, W) float64
    orientation : (H, W) uint8
        Output of :func:`gradient_bins` (interior used only); ``H, W >= 3``.
    sbin : int
        Cell size in pixels.
    hist : (by + 2, bx + 2, 18) float64, zero on entry
        Histograms with a one-cell margin: cell ``(i, j)`` of the original is
        ``hist[i + 1, j + 1]``.  Contributions the original drops (cells outside
        the grid) land in the margin.  Requires ``by, bx >= 1``.
    """
    cdef Py_ssize_t H = magnitude.shape[0], W = magnitude.shape[1]
    cdef Py_ssize_t by = hist.shape[0] - 2, bx = hist.shape[1] - 2
    cdef Py_ssize_t vis_y = by * sbin, vis_x = bx * sbin
    cdef Py_ssize_t x, y, xc, yc, ix, iyp, row
    cdef Py_ssize_t rowstride = hist.shape[1] * 18
    cdef double xp, yp, vy0, vy1, v, a
    cdef double *h
    cdef double *h0
    cdef const double *mrow
    cdef const unsigned char *orow
    if vis_x < 3 or vis_y < 3:
        return
    import numpy as np
    # Per-column tables: clamped read column, (left cell + 1) * 18, weights.
    cols_np = np.empty(vis_x, dtype=np.intp)
    cell_np = np.empty(vis_x, dtype=np.intp)
    wx_np = np.empty((vis_x, 2), dtype=np.float64)
    cdef Py_ssize_t[::1] cols = cols_np
    cdef Py_ssize_t[::1] cell = cell_np
    cdef double[:, ::1] wx = wx_np
    with nogil:
        for x in range(1, vis_x - 1):
            xp = (<double>x + 0.5) / <double>sbin - 0.5
            ix = <Py_ssize_t>floor(xp)
            cols[x] = x if x < W - 2 else W - 2
            cell[x] = (ix + 1) * 18
            wx[x, 0] = xp - ix            # vx0: weight of the right cell
            wx[x, 1] = 1.0 - wx[x, 0]     # vx1: weight of the left cell
        for y in range(1, vis_y - 1):
            yc = y if y < H - 2 else H - 2
            yp = (<double>y + 0.5) / <double>sbin - 0.5
            iyp = <Py_ssize_t>floor(yp)
            vy0 = yp - iyp
            vy1 = 1.0 - vy0
            mrow = &magnitude[yc, 0]
            orow = &orientation[yc, 0]
            h0 = &hist[iyp + 1, 0, 0]
            for x in range(1, vis_x - 1):
                xc = cols[x]
                v = mrow[xc]
                h = h0 + cell[x] + orow[xc]
                # (vx * vy) * v, the original's association order.
                h[0] += wx[x, 1] * vy1 * v
                h[18] += wx[x, 0] * vy1 * v
                h[rowstride] += wx[x, 1] * vy0 * v
                h[rowstride + 18] += wx[x, 0] * vy0 * v


def normalize_cells(const double[:, :, ::1] hist, double[:, :, ::1] out):
    """Normalise and truncate cell histograms into the 31 output channels.

    Parameters
    ----------
    hist : (by + 2, bx + 2, 18) float64
        Output of :func:`bin_cells` (the margin is ignored).
    out : (by - 2, bx - 2, 31) float64, output
        Channels 0-17 contrast-sensitive, 18-26 contrast-insensitive, 27-30
        texture (normalisation blocks N1..N4).  Requires ``by, bx >= 3``.
    """
    cdef Py_ssize_t by = hist.shape[0] - 2, bx = hist.shape[1] - 2
    cdef Py_ssize_t oy = out.shape[0], ox = out.shape[1]
    cdef Py_ssize_t x, y, o
    cdef double s, n1, n2, n3, n4, h1, h2, h3, h4, t1, t2, t3, t4
    cdef const double *src
    cdef double *dst
    if oy <= 0 or ox <= 0:
        return
    import numpy as np
    norm_np = np.zeros((by, bx), dtype=np.float64)
    inv_np = np.empty((by - 1, bx - 1), dtype=np.float64)
    cdef double[:, ::1] norm = norm_np
    cdef double[:, ::1] inv = inv_np
    with nogil:
        # Energy of each cell: squared norm of the contrast-insensitive histogram,
        # summed over o in the original's order.
        for y in range(by):
            for x in range(bx):
                src = &hist[y + 1, x + 1, 0]
                s = 0.0
                for o in range(9):
                    s = s + (src[o] + src[o + 9]) * (src[o] + src[o + 9])
                norm[y, x] = s
        # 1/sqrt of each 2x2 block, keyed by its top-left cell.  The original
        # evaluates the same sum (top-left, below, right, diagonal, then eps)
        # four times, once per output cell that uses the block.
        for y in range(by - 1):
            for x in range(bx - 1):
                inv[y, x] = 1.0 / sqrt(norm[y, x] + norm[y + 1, x] + norm[y, x + 1]
                                       + norm[y + 1, x + 1] + EPS)
        for y in range(oy):
            for x in range(ox):
                n1 = inv[y + 1, x + 1]   # the cell, right, below, diagonal
                n2 = inv[y, x + 1]       # right and up
                n3 = inv[y + 1, x]       # left and down
                n4 = inv[y, x]           # left and up
                src = &hist[y + 2, x + 2, 0]
                dst = &out[y, x, 0]
                t1 = 0.0
                t2 = 0.0
                t3 = 0.0
                t4 = 0.0
                for o in range(18):
                    h1 = src[o] * n1
                    h2 = src[o] * n2
                    h3 = src[o] * n3
                    h4 = src[o] * n4
                    h1 = h1 if h1 <= 0.2 else 0.2
                    h2 = h2 if h2 <= 0.2 else 0.2
                    h3 = h3 if h3 <= 0.2 else 0.2
                    h4 = h4 if h4 <= 0.2 else 0.2
                    dst[o] = 0.5 * (h1 + h2 + h3 + h4)
                    t1 += h1
                    t2 += h2
                    t3 += h3
                    t4 += h4
                for o in range(9):
                    s = src[o] + src[o + 9]
                    h1 = s * n1
                    h2 = s * n2
                    h3 = s * n3
                    h4 = s * n4
                    h1 = h1 if h1 <= 0.2 else 0.2
                    h2 = h2 if h2 <= 0.2 else 0.2
                    h3 = h3 if h3 <= 0.2 else 0.2
                    h4 = h4 if h4 <= 0.2 else 0.2
                    dst[18 + o] = 0.5 * (h1 + h2 + h3 + h4)
                dst[27] = 0.2357 * t1
                dst[28] = 0.2357 * t2
                dst[29] = 0.2357 * t3
                dst[30] = 0.2357 * t4
