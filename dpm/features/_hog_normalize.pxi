# The block normalisation of the double-precision HOG kernels (included by
# _hog.pyx, which documents the algorithm): normalize_cells, cell histograms to
# 31-channel features.

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
