# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
#
# Single-precision HOG kernels for the fast feature pyramid of detection
# (feature_pyramid(..., exact=False); docs/detection.md, "Fast features").
#
# The algorithm of _hog.pyx (voc-release3.1 ``features.cc``) in float32 from
# the pixel differences on, written for the compiler's vectoriser: eight lanes
# per AVX2 register instead of four doubles.  The image (the resized levels)
# stays the double path's.  The results are not the double path's bits:
# values differ by float32 rounding, and a gradient within float32 rounding
# of the boundary between two orientation bins or of a tie between two colour
# channels can fall on the other side.  Kernels trust their caller; argument
# checks live in dpm/features/hog.py.
#
# In the order of the data: the gradients (_hog_fast_gradients.pxi), their
# binning into cell histograms (here: one pass per image, both cell sizes),
# the normalisation (_hog_fast_normalize.pxi).
from cython.view cimport array as cvarray
from libc.math cimport fabsf, floor, sqrtf
from libc.stdlib cimport free, malloc

cdef enum:
    CHUNK = 256     # pixels per block of the gradient kernel's scratch arrays

include "_channels.pxi"

ctypedef fused pixel_t:
    # Image samples: double, or the 8-bit samples of a decoded image (each
    # converted to double exactly: the same gradients as its float64 copy,
    # without making the copy).
    double
    unsigned char



include "_hog_fast_gradients.pxi"


cdef struct Grid:
    # One histogram being filled: cells of sbin pixels, by x bx cells (with
    # the one-cell margin the array has by + 2 rows and bx + 2 columns), of
    # which rows row0 .. row0 + nrows - 1 are held at hist.
    Py_ssize_t sbin, by, bx, row0, nrows, rowstride, vis_x, vis_y
    float *hist
    Py_ssize_t *cell        # per visited column x: 18 * (left cell + 1)
    float *wx0              # weight of the right cell
    float *wx1              # weight of the left cell


cdef int _grid_init(Grid *g, float *hist, Py_ssize_t sbin, Py_ssize_t by, Py_ssize_t bx,
                    Py_ssize_t row0, Py_ssize_t nrows) noexcept nogil:
    # Returns -1 if out of memory.
    cdef Py_ssize_t x, ix
    cdef double xp, frac
    g.hist = hist
    g.sbin = sbin
    g.by = by
    g.bx = bx
    g.row0 = row0
    g.nrows = nrows
    g.rowstride = (bx + 2) * 18
    g.vis_x = bx * sbin
    g.vis_y = by * sbin
    g.cell = <Py_ssize_t *>malloc(g.vis_x * sizeof(Py_ssize_t))
    g.wx0 = <float *>malloc(g.vis_x * sizeof(float))
    g.wx1 = <float *>malloc(g.vis_x * sizeof(float))
    if g.cell == NULL or g.wx0 == NULL or g.wx1 == NULL:
        _grid_free(g)
        return -1
    for x in range(1, g.vis_x - 1):
        xp = (<double>x + 0.5) / <double>sbin - 0.5
        ix = <Py_ssize_t>floor(xp)
        g.cell[x] = (ix + 1) * 18
        frac = xp - ix
        g.wx0[x] = <float>frac
        g.wx1[x] = <float>(1.0 - frac)
    return 0


cdef void _grid_free(Grid *g) noexcept nogil:
    free(g.cell)
    free(g.wx0)
    free(g.wx1)
    g.cell = NULL
    g.wx0 = NULL
    g.wx1 = NULL


cdef inline Py_ssize_t _cell_row(Py_ssize_t y, Py_ssize_t sbin) noexcept nogil:
    # Upper one of the two cell rows (0-based, without the margin) pixel row y
    # is split between: floor((y + 0.5) / sbin - 0.5).
    return <Py_ssize_t>floor((<double>y + 0.5) / <double>sbin - 0.5)


cdef inline bint _row_in_band(const Grid *g, Py_ssize_t y) noexcept nogil:
    # True if both histogram rows pixel row y adds to are held.
    cdef Py_ssize_t r = _cell_row(y, g.sbin) + 1
    return r >= g.row0 and r + 1 < g.row0 + g.nrows


cdef inline Py_ssize_t _last_reader(const Grid *g, Py_ssize_t y, Py_ssize_t H) noexcept nogil:
    # The visited pixel rows that read gradient row y are y .. _last_reader
    # (reads are clamped to row H - 2; visited rows are 1 .. vis_y - 2).
    if y == H - 2:
        return g.vis_y - 2
    return y if y <= g.vis_y - 2 else y - 1


cdef void _bin_row(const Grid *g, const float *mag, const unsigned char *ori, Py_ssize_t W,
                   Py_ssize_t y) noexcept nogil:
    # The gradient row (mag, ori) read by visited pixel row y, added to the
    # held histogram rows: pixels 1 .. vis_x - 2, reading columns clamped to
    # W - 2, each split between two cells across and two down (bilinear).
    cdef Py_ssize_t iyp = _cell_row(y, g.sbin)
    cdef double frac = (<double>y + 0.5) / <double>g.sbin - 0.5 - <double>iyp
    cdef float vy0 = <float>frac, vy1 = <float>(1.0 - frac)
    cdef float *h0 = g.hist + (iyp + 1 - g.row0) * g.rowstride
    cdef float *h
    cdef Py_ssize_t rs = g.rowstride, x
    cdef Py_ssize_t xlast = g.vis_x - 2 if g.vis_x - 2 < W - 2 else W - 2
    cdef float v, a0, a1
    cdef const Py_ssize_t *cell = g.cell
    cdef const float *wx0 = g.wx0
    cdef const float *wx1 = g.wx1
    for x in range(1, xlast + 1):
        v = mag[x]
        a1 = vy1 * v
        a0 = vy0 * v
        h = h0 + cell[x] + ori[x]
        h[0] += wx1[x] * a1
        h[18] += wx0[x] * a1
        h[rs] += wx1[x] * a0
        h[rs + 18] += wx0[x] * a0
    v = mag[W - 2]
    a1 = vy1 * v
    a0 = vy0 * v
    for x in range(xlast + 1, g.vis_x - 1):
        h = h0 + cell[x] + ori[W - 2]
        h[0] += wx1[x] * a1
        h[18] += wx0[x] * a1
        h[rs] += wx1[x] * a0
        h[rs + 18] += wx0[x] * a0


cdef int _cells(const pixel_t *image, Py_ssize_t row0, Py_ssize_t nrows, Py_ssize_t H,
                Py_ssize_t W, Grid *grids, int ngrids) noexcept nogil:
    # Gradients of the rows of an (H, W, 3) image that the held histogram
    # rows of the grids need, binned row by row (in increasing visited row,
    # then column: the order every histogram value receives its terms in, so
    # a band of histogram rows is bit-identical to the same rows of the whole
    # computation).  image: rows row0 .. row0 + nrows - 1 (full width), which
    # must include rows y - 1 .. y + 1 of each gradient row y needed.
    # Returns -1 if out of memory.
    cdef float *mag = <float *>malloc(W * sizeof(float))
    cdef unsigned char *ori = <unsigned char *>malloc(W * sizeof(unsigned char))
    cdef Py_ssize_t y, v, last, ylo, yhi
    cdef int j
    cdef bint needed
    cdef Planes planes
    if mag == NULL or ori == NULL or _planes_init(&planes, W) != 0:
        free(mag)
        free(ori)
        return -1
    ylo = row0 + 1 if row0 + 1 > 1 else 1
    yhi = row0 + nrows - 2 if row0 + nrows - 2 < H - 2 else H - 2
    for y in range(ylo, yhi + 1):
        needed = False
        for j in range(ngrids):
            last = _last_reader(&grids[j], y, H)
            v = y
            while v <= last and not needed:
                needed = _row_in_band(&grids[j], v)
                v += 1
        if not needed:
            continue
        _gradient_row(_planar_row(&planes, image + 3 * W * (y - 1 - row0), y - 1),
                      _planar_row(&planes, image + 3 * W * (y - row0), y),
                      _planar_row(&planes, image + 3 * W * (y + 1 - row0), y + 1), W, mag, ori)
        for j in range(ngrids):
            last = _last_reader(&grids[j], y, H)
            for v in range(y, last + 1):
                if _row_in_band(&grids[j], v):
                    _bin_row(&grids[j], mag, ori, W, v)
    free(mag)
    free(ori)
    free(planes.data)
    return 0


def hog_cells(const pixel_t[:, :, ::1] image, int sbin, float[:, :, ::1] hist,
              float[:, :, ::1] hist_half=None):
    """Float32 gradients of an RGB image binned into cell histograms, in one pass.

    Per pixel as :func:`gradient_bins`; the histograms as ``_hog.bin_cells``
    (same grid, visited pixels, clamped reads and margin), in float32.  The
    gradients are computed row by row and binned at once, into ``hist``
    (cells of ``sbin``) and, if given, ``hist_half`` (cells of ``sbin // 2``:
    the first octave of the pyramid bins one gradient map at both sizes).

    Parameters
    ----------
    image : (H, W, 3) float64 or uint8 (the same results as its float64 copy), C-contiguous; ``H, W >= 3``
    sbin : int
    hist, hist_half : (by + 2, bx + 2, 18) float32, zero on entry; ``by, bx >= 1``
        for their cell sizes.
    """
    cdef Grid grids[2]
    cdef int ngrids = 1 if hist_half is None else 2, failed = 0
    cdef Py_ssize_t H = image.shape[0], W = image.shape[1]
    with nogil:
        if _grid_init(&grids[0], &hist[0, 0, 0], sbin, hist.shape[0] - 2, hist.shape[1] - 2, 0,
                      hist.shape[0]) != 0:
            failed = 1
        elif ngrids == 2 and _grid_init(&grids[1], &hist_half[0, 0, 0], sbin // 2,
                                        hist_half.shape[0] - 2, hist_half.shape[1] - 2, 0,
                                        hist_half.shape[0]) != 0:
            _grid_free(&grids[0])
            failed = 1
        else:
            failed = _cells(&image[0, 0, 0], 0, H, H, W, grids, ngrids) != 0
            _grid_free(&grids[0])
            if ngrids == 2:
                _grid_free(&grids[1])
    if failed:
        raise MemoryError()


def hog_cell_rows(const pixel_t[:, :, ::1] image, int sbin, float[:, :, ::1] hist, Py_ssize_t height,
                  Py_ssize_t by, Py_ssize_t image_row0, Py_ssize_t hist_row0):
    """:func:`hog_cells` for a band of histogram rows (a bounded-memory pyramid).

    ``hist`` holds rows ``hist_row0 .. hist_row0 + hist.shape[0] - 1`` of the
    ``(by + 2, bx + 2, 18)`` histograms of an image of ``height`` rows;
    ``image`` holds its rows ``image_row0 ..`` (full width), at least those
    the held histogram rows read, with one more row on each side.  Those
    histogram rows that receive all their pixels are bit-identical to the
    same rows of :func:`hog_cells` (the same terms, in the same order).
    """
    cdef Grid grid
    cdef int failed = 0
    with nogil:
        if _grid_init(&grid, &hist[0, 0, 0], sbin, by, hist.shape[1] - 2, hist_row0,
                      hist.shape[0]) != 0:
            failed = 1
        else:
            failed = _cells(&image[0, 0, 0], image_row0, image.shape[0], height, image.shape[1],
                            &grid, 1) != 0
            _grid_free(&grid)
    if failed:
        raise MemoryError()


include "_hog_fast_normalize.pxi"
