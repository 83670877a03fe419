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
#   gradient_bins(image, sqmagnitude, orientation)  per-pixel squared magnitude
#                                                   and orientation bin
#   bin_cells(magnitude, orientation, sbin, hist)   bilinear spatial binning
#   normalize_cells(hist, out)                      block normalisation, 31 channels
#
# The caller takes the square root in between (numpy's loop, correctly rounded
# like the original's sqrt).  The clamped reads of the original (a visited
# pixel (x, y) reads the gradient at (min(x, W-2), min(y, H-2))) are applied in
# bin_cells, which is why one gradient map serves any grid.  Every decision
# (strongest channel, orientation bin, clipping) is the original's, bit for
# bit; the histogram sums add the same terms row by row instead of column by
# column, so they can differ in the last bits.  Kernels trust their caller;
# argument checks live in dpm/features/hog.py.
from libc.math cimport sqrt, floor, fabs, HUGE_VAL
from libc.stdlib cimport malloc, free

# Unit vectors of the 9 orientations, rounded to 4 decimals as in the original.
cdef double UU[9]
cdef double VV[9]
UU[:] = [1.0000, 0.9397, 0.7660, 0.500, 0.1736, -0.1736, -0.5000, -0.7660, -0.9397]
VV[:] = [0.0000, 0.3420, 0.6428, 0.8660, 0.9848, 0.9848, 0.8660, 0.6428, 0.3420]

cdef double EPS = 0.0001

ctypedef fused feature_t:
    float
    double


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


cdef inline void _bin_pixel(double *h, Py_ssize_t rowstride, double v, double vx0, double vx1,
                            double vy0, double vy1) noexcept nogil:
    # The original's four bilinear updates, (vx * vy) * v, in its order.
    h[0] += vx1 * vy1 * v
    h[18] += vx0 * vy1 * v
    h[rowstride] += vx1 * vy0 * v
    h[rowstride + 18] += vx0 * vy0 * v


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
        Gradient maps (interior used only); ``H, W >= 3``.
    sbin : int
        Cell size in pixels.
    hist : (by + 2, bx + 2, 18) float64, zero on entry
        Histograms with a one-cell margin: cell ``(i, j)`` of the original is
        ``hist[i + 1, j + 1]``.  Contributions the original drops (cells outside
        the grid) land in the margin.  Requires ``by, bx >= 1``.
    """
    bin_cell_rows(magnitude, orientation, sbin, hist, magnitude.shape[0], hist.shape[0] - 2, 0, 0)


def bin_cell_rows(const double[:, ::1] magnitude, const unsigned char[:, ::1] orientation,
                  int sbin, double[:, :, ::1] hist, Py_ssize_t H, Py_ssize_t by,
                  Py_ssize_t mag_row0, Py_ssize_t hist_row0):
    """:func:`bin_cells` for a band of histogram rows (a bounded-memory pyramid).

    ``hist`` holds rows ``hist_row0 .. hist_row0 + hist.shape[0] - 1`` of the
    ``(by + 2, bx + 2, 18)`` histograms of an image of ``H`` rows; the pixels
    whose both updates land in those rows are binned, in the same order as
    :func:`bin_cells`, so those rows that receive all their pixels are
    bit-identical to the whole computation's.  ``magnitude`` and
    ``orientation`` hold gradient rows ``mag_row0 ..`` (full width), at least
    the rows the visited pixels read.
    """
    cdef Py_ssize_t W = magnitude.shape[1]
    cdef Py_ssize_t bx = hist.shape[1] - 2, nrows = hist.shape[0]
    cdef Py_ssize_t vis_y = by * sbin, vis_x = bx * sbin
    cdef Py_ssize_t rowstride = hist.shape[1] * 18
    cdef Py_ssize_t x, y, yc, ix, iyp, xlast
    cdef double xp, yp, vy0, vy1
    cdef double *h0
    cdef const double *mrow
    cdef const unsigned char *orow
    cdef Py_ssize_t *cell
    cdef double *wx0
    cdef double *wx1
    if vis_x < 3 or vis_y < 3:
        return
    # Pixels 1..xlast read their own column; the rest read column W - 2.
    xlast = min(vis_x - 2, W - 2)
    cell = <Py_ssize_t *>malloc(vis_x * sizeof(Py_ssize_t))
    wx0 = <double *>malloc(vis_x * sizeof(double))
    wx1 = <double *>malloc(vis_x * sizeof(double))
    if cell == NULL or wx0 == NULL or wx1 == NULL:
        free(cell)
        free(wx0)
        free(wx1)
        raise MemoryError()
    with nogil:
        for x in range(1, vis_x - 1):
            xp = (<double>x + 0.5) / <double>sbin - 0.5
            ix = <Py_ssize_t>floor(xp)
            cell[x] = (ix + 1) * 18
            wx0[x] = xp - ix            # weight of the right cell
            wx1[x] = 1.0 - wx0[x]       # weight of the left cell
        for y in range(1, vis_y - 1):
            yp = (<double>y + 0.5) / <double>sbin - 0.5
            iyp = <Py_ssize_t>floor(yp)
            if iyp + 1 < hist_row0 or iyp + 2 >= hist_row0 + nrows:
                continue
            yc = y if y < H - 2 else H - 2
            vy0 = yp - iyp
            vy1 = 1.0 - vy0
            mrow = &magnitude[yc - mag_row0, 0]
            orow = &orientation[yc - mag_row0, 0]
            h0 = &hist[iyp + 1 - hist_row0, 0, 0]
            for x in range(1, xlast + 1):
                _bin_pixel(h0 + cell[x] + orow[x], rowstride, mrow[x], wx0[x], wx1[x], vy0, vy1)
            for x in range(xlast + 1, vis_x - 1):
                _bin_pixel(h0 + cell[x] + orow[W - 2], rowstride, mrow[W - 2], wx0[x], wx1[x],
                           vy0, vy1)
    free(cell)
    free(wx0)
    free(wx1)


cdef inline double _clip(double h) noexcept nogil:
    # min(h, 0.2) as the original's "x <= y ? x : y" (same value; written as
    # "<" so that the compiler can use a min instruction).
    return h if h < 0.2 else 0.2


cdef inline void _sensitive(double h, double n1, double n2, double n3, double n4, feature_t *dst,
                            double *t1, double *t2, double *t3, double *t4) noexcept nogil:
    # One contrast-sensitive channel of one cell, and its texture sums.
    cdef double h1 = _clip(h * n1), h2 = _clip(h * n2), h3 = _clip(h * n3), h4 = _clip(h * n4)
    dst[0] = 0.5 * (h1 + h2 + h3 + h4)
    t1[0] += h1
    t2[0] += h2
    t3[0] += h3
    t4[0] += h4


cdef inline double _insensitive(double h, double n1, double n2, double n3,
                                double n4) noexcept nogil:
    # One contrast-insensitive channel of one cell.
    return 0.5 * (_clip(h * n1) + _clip(h * n2) + _clip(h * n3) + _clip(h * n4))


def normalize_cells(const double[:, :, ::1] hist, feature_t[:, :, ::1] out):
    """Normalise and truncate cell histograms into the 31 output channels.

    Parameters
    ----------
    hist : (by + 2, bx + 2, 18) float64
        Output of :func:`bin_cells` (the margin is ignored).
    out : (by - 2, bx - 2, 31) float64 or float32, output
        Channels 0-17 contrast-sensitive, 18-26 contrast-insensitive, 27-30
        texture (normalisation blocks N1..N4).  Requires ``by, bx >= 3``.
        Computed in double precision; a float32 output holds those values
        rounded once (as ``astype(np.float32)`` would).
    """
    cdef Py_ssize_t by = hist.shape[0] - 2, bx = hist.shape[1] - 2
    cdef Py_ssize_t oy = out.shape[0], ox = out.shape[1]
    cdef Py_ssize_t x, y, o
    cdef double s, n1, n2, n3, n4, t1, t2, t3, t4
    cdef const double *src
    cdef const double *row
    cdef feature_t *dst
    cdef double *nrm
    cdef double *inv
    cdef const double *i0
    cdef const double *i1
    if oy <= 0 or ox <= 0:
        return
    nrm = <double *>malloc(by * bx * sizeof(double))
    inv = <double *>malloc((by - 1) * (bx - 1) * sizeof(double))
    if nrm == NULL or inv == NULL:
        free(nrm)
        free(inv)
        raise MemoryError()
    with nogil:
        # Energy of each cell: squared norm of the contrast-insensitive
        # histogram, summed over o in the original's order.
        for y in range(by):
            for x in range(bx):
                src = &hist[y + 1, x + 1, 0]
                s = 0.0
                for o in range(9):
                    s = s + (src[o] + src[o + 9]) * (src[o] + src[o + 9])
                nrm[y * bx + x] = s
        # 1/sqrt of each 2x2 block, keyed by its top-left cell.  The original
        # evaluates the same sum (top-left, below, right, diagonal, then eps)
        # once per output cell that uses the block.
        for y in range(by - 1):
            for x in range(bx - 1):
                inv[y * (bx - 1) + x] = 1.0 / sqrt(
                    nrm[y * bx + x] + nrm[(y + 1) * bx + x] + nrm[y * bx + x + 1]
                    + nrm[(y + 1) * bx + x + 1] + EPS)
        for y in range(oy):
            i0 = inv + y * (bx - 1)          # blocks whose top row is y
            i1 = i0 + (bx - 1)               # ... y + 1
            row = &hist[y + 2, 2, 0]         # cell (y + 1, 1) of the grid
            for x in range(ox):
                n1 = i1[x + 1]   # the cell, right, below, diagonal
                n2 = i0[x + 1]   # right and up
                n3 = i1[x]       # left and down
                n4 = i0[x]       # left and up
                src = row + 18 * x
                dst = &out[y, x, 0]
                t1 = 0.0
                t2 = 0.0
                t3 = 0.0
                t4 = 0.0
                for o in range(18):
                    _sensitive(src[o], n1, n2, n3, n4, dst + o, &t1, &t2, &t3, &t4)
                for o in range(9):
                    dst[18 + o] = _insensitive(src[o] + src[o + 9], n1, n2, n3, n4)
                dst[27] = 0.2357 * t1
                dst[28] = 0.2357 * t2
                dst[29] = 0.2357 * t3
                dst[30] = 0.2357 * t4
    free(nrm)
    free(inv)
