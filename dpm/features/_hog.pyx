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
#
# In the order of the data: the gradients (_hog_gradients.pxi), their binning
# (here), the normalisation (_hog_normalize.pxi).
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


include "_hog_gradients.pxi"


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


include "_hog_normalize.pxi"
