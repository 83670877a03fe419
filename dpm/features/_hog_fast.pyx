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



cdef struct Planes:
    # Image rows in planar layout (red, green, blue planes of width samples
    # each), three rows kept, row r in slot r % 3: each row is rearranged once
    # and read by the three gradient rows around it, with contiguous loads
    # (strided loads of interleaved RGB cost the vectorised loop more than
    # its arithmetic).
    double *data
    Py_ssize_t width
    Py_ssize_t held[3]


cdef int _planes_init(Planes *p, Py_ssize_t width) noexcept nogil:
    p.width = width
    p.held[0] = -1
    p.held[1] = -1
    p.held[2] = -1
    p.data = <double *>malloc(9 * width * sizeof(double))
    return -1 if p.data == NULL else 0


cdef const double *_planar_row(Planes *p, const pixel_t *row, Py_ssize_t r) noexcept nogil:
    # Image row r (``row``: its interleaved samples) in planar layout.
    cdef Py_ssize_t W = p.width, i
    cdef double *out = p.data + 3 * W * (r % 3)
    cdef double *g = out + W
    cdef double *b = out + 2 * W
    if p.held[r % 3] != r:
        for i in range(W):
            out[i] = row[3 * i]
            g[i] = row[3 * i + 1]
            b[i] = row[3 * i + 2]
        p.held[r % 3] = r
    return out


cdef void _gradient_row(const double *up, const double *mid, const double *down,
                        Py_ssize_t width, float *mag, unsigned char *ori) noexcept nogil:
    # Gradients of pixels 1..width-2 of one row (pointers to pixel 0 of the
    # planar rows above, at and below: planes of width samples, see Planes).
    # Selects only, so that every step vectorises.
    #
    # The differences and the choice of channel are the double path's (in
    # double, _channels.pxi), and the chosen gradient is then rounded to
    # float32.  Where a row of the resized image is flat, the double path's
    # horizontal difference is rounding noise of the resize (around 1e-13)
    # whose sign decides between the two bins of a vertical gradient (80 and
    # 100 degrees), and which of two colour channels with the same gradient up
    # to such noise is the strongest; in float32 the noise would vanish from
    # the squared norms and the choice and bin change.  Rounding keeps the
    # sign (and zero stays zero), so such pixels land in the double path's bin.
    #
    # Orientation: with a = |dx|, b = |dy| and m_p = UU[p]*a + VV[p]*b for the
    # rounded unit vectors p = 0..4 (m_0 = a), the largest |dot| over the 9
    # directions is max(m_p) (the table is mirror-symmetric), the m_p rise up
    # to the direction nearest the gradient and fall after it, so k = the
    # number of rises is the best p.  With dx and dy of opposite signs the
    # mirrored direction 9 - k is the one (k > 0); the bin is k or 9 - k, plus
    # 9 when the winning dot product is negative (the sign of dx if k = 0, of
    # dy if the signs are opposite, of min(dx, dy) otherwise).  This is
    # _hog.pyx's rule without its special cases for exact ties.
    cdef double hx[CHUNK]
    cdef double hy[CHUNK]
    cdef double hv[CHUNK]
    cdef float gx[CHUNK]
    cdef float gy[CHUNK]
    cdef float gv[CHUNK]
    cdef float gb[CHUNK]
    cdef Py_ssize_t start = 1, n, i
    cdef float dx, dy, a, b, m1, m2, m3, m4, k, lo, hi, w, mixed, bn
    cdef float f1, f2, f3, f4
    cdef double ex, ey, ep, eq
    while start < width - 1:
        n = min(<Py_ssize_t>CHUNK, width - 1 - start)
        _strongest_channel(up + start, mid + start, down + start, 1, width, n, hx, hy, hv)
        for i in range(n):
            # A horizontal difference too small to change the double path's
            # dot products with directions 4 and 5 (80 and 100 degrees):
            # they tie there and the first wins, as with ex = 0.  (A select
            # between doubles, and the roundings in a loop of their own: so
            # both loops vectorise.)
            ex = hx[i]
            ey = hy[i]
            ep = <double>0.1736 * ex + <double>0.9848 * ey
            eq = <double>-0.1736 * ex + <double>0.9848 * ey
            hx[i] = 0.0 if ep == eq else ex
        for i in range(n):
            gx[i] = <float>hx[i]
            gy[i] = <float>hy[i]
            gv[i] = <float>hv[i]
        for i in range(n):
            dx = gx[i]
            dy = gy[i]
            a = fabsf(dx)
            b = fabsf(dy)
            m1 = <float>0.9397 * a + <float>0.3420 * b
            m2 = <float>0.7660 * a + <float>0.6428 * b
            m3 = <float>0.5 * a + <float>0.8660 * b
            m4 = <float>0.1736 * a + <float>0.9848 * b
            f1 = <float>1.0 if m1 > a else <float>0.0
            f2 = <float>1.0 if m2 > m1 else <float>0.0
            f3 = <float>1.0 if m3 > m2 else <float>0.0
            f4 = <float>1.0 if m4 > m3 else <float>0.0
            k = (f1 + f2) + (f3 + f4)
            # Opposite signs and k > 0: flags combined with min (and).
            lo = dx if dx < dy else dy
            hi = dx if dx > dy else dy
            f1 = <float>1.0 if lo < <float>0.0 else <float>0.0
            f2 = <float>1.0 if hi > <float>0.0 else <float>0.0
            f3 = <float>1.0 if k > <float>0.5 else <float>0.0
            mixed = f1 if f1 < f2 else f2
            mixed = mixed if mixed < f3 else f3
            # k, or 9 - k when mixed; plus 9 for a negative winner.  Only
            # selects between values computed beforehand (see _hog.pyx).
            bn = k + mixed * (<float>9.0 - (k + k))
            w = dy if mixed > <float>0.5 else lo
            w = dx if k < <float>0.5 else w
            f4 = <float>9.0 if w < <float>0.0 else <float>0.0
            bn = bn + f4
            gb[i] = bn
        for i in range(n):
            gv[i] = sqrtf(gv[i])
        for i in range(n):
            mag[start + i] = gv[i]
            ori[start + i] = <unsigned char>(<int>gb[i])
        start += n


def gradient_bins(const pixel_t[:, :, ::1] image, float[:, ::1] magnitude,
                  unsigned char[:, ::1] orientation):
    """Per-pixel gradient magnitude and orientation bin of an RGB image, in float32 (for tests).

    The gradients :func:`hog_cells` bins.  The image is the double path's
    (float64): the differences are taken in double and rounded once, the
    rest is computed in float32.

    As ``_hog.gradient_bins`` followed by the square root: ``magnitude`` is
    the norm (not its square) of the strongest channel's gradient; the
    one-pixel border is 0 in both outputs.

    Parameters
    ----------
    image : (H, W, 3) float64 or uint8 (the same results as its float64 copy), C-contiguous
    magnitude : (H, W) float32, C-contiguous, output
    orientation : (H, W) uint8, C-contiguous, output
    """
    cdef Py_ssize_t H = image.shape[0], W = image.shape[1]
    cdef Py_ssize_t x, y
    cdef Planes planes
    if _planes_init(&planes, W) != 0:
        raise MemoryError()
    with nogil:
        for y in range(H):
            if y == 0 or y == H - 1 or W < 3:
                for x in range(W):
                    magnitude[y, x] = 0.0
                    orientation[y, x] = 0
                continue
            magnitude[y, 0] = 0.0
            magnitude[y, W - 1] = 0.0
            orientation[y, 0] = 0
            orientation[y, W - 1] = 0
            _gradient_row(_planar_row(&planes, &image[y - 1, 0, 0], y - 1),
                          _planar_row(&planes, &image[y, 0, 0], y),
                          _planar_row(&planes, &image[y + 1, 0, 0], y + 1), W,
                          &magnitude[y, 0], &orientation[y, 0])
    free(planes.data)


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


cdef inline float _clip(float h) noexcept nogil:
    return h if h < <float>0.2 else <float>0.2


cdef inline float _sum8(const float *a) noexcept nogil:
    return ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]))


def normalize_cells(const float[:, :, ::1] hist, float[:, :, ::1] out):
    """Normalise and truncate float32 cell histograms into the 31 output channels.

    As ``_hog.normalize_cells`` (same layout and channels), in float32; the
    texture sums are added in another order.

    Parameters
    ----------
    hist : (by + 2, bx + 2, 18) float32
    out : (by - 2, bx - 2, 31) float32, output; ``by, bx >= 3``.
    """
    cdef Py_ssize_t by = hist.shape[0] - 2, bx = hist.shape[1] - 2
    cdef Py_ssize_t oy = out.shape[0], ox = out.shape[1]
    cdef Py_ssize_t x, y, o
    cdef float s, h, n1, n2, n3, n4
    cdef const float *src
    cdef float *dst
    cdef float *nrm
    cdef float *inv
    cdef const float *i0
    cdef const float *i1
    # Clipped values of the 18 sensitive channels under the four
    # normalisations, padded to 24 with zeros, for the texture sums.
    cdef float c1[24]
    cdef float c2[24]
    cdef float c3[24]
    cdef float c4[24]
    cdef float acc[32]
    if oy <= 0 or ox <= 0:
        return
    cdef float[:, ::1] energy = cvarray(shape=(by, bx), itemsize=sizeof(float), format="f")
    cdef float[:, ::1] blocks = cvarray(shape=(by - 1, bx - 1), itemsize=sizeof(float), format="f")
    with nogil:
        for o in range(24):
            c1[o] = 0.0
            c2[o] = 0.0
            c3[o] = 0.0
            c4[o] = 0.0
        for y in range(by):
            nrm = &energy[y, 0]
            for x in range(bx):
                src = &hist[y + 1, x + 1, 0]
                s = 0.0
                for o in range(9):
                    h = src[o] + src[o + 9]
                    s = s + h * h
                nrm[x] = s
        for y in range(by - 1):
            inv = &blocks[y, 0]
            for x in range(bx - 1):
                inv[x] = <float>1.0 / sqrtf(energy[y, x] + energy[y + 1, x] + energy[y, x + 1]
                                     + energy[y + 1, x + 1] + <float>0.0001)
        for y in range(oy):
            i0 = &blocks[y, 0]
            i1 = &blocks[y + 1, 0]
            for x in range(ox):
                n1 = i1[x + 1]
                n2 = i0[x + 1]
                n3 = i1[x]
                n4 = i0[x]
                src = &hist[y + 2, x + 2, 0]
                dst = &out[y, x, 0]
                for o in range(18):
                    h = src[o]
                    c1[o] = _clip(h * n1)
                    c2[o] = _clip(h * n2)
                    c3[o] = _clip(h * n3)
                    c4[o] = _clip(h * n4)
                    dst[o] = <float>0.5 * ((c1[o] + c2[o]) + (c3[o] + c4[o]))
                for o in range(9):
                    h = src[o] + src[o + 9]
                    dst[18 + o] = <float>0.5 * ((_clip(h * n1) + _clip(h * n2))
                                         + (_clip(h * n3) + _clip(h * n4)))
                for o in range(8):
                    acc[o] = (c1[o] + c1[o + 8]) + c1[o + 16]
                    acc[o + 8] = (c2[o] + c2[o + 8]) + c2[o + 16]
                    acc[o + 16] = (c3[o] + c3[o + 8]) + c3[o + 16]
                    acc[o + 24] = (c4[o] + c4[o + 8]) + c4[o + 16]
                dst[27] = <float>0.2357 * _sum8(acc)
                dst[28] = <float>0.2357 * _sum8(acc + 8)
                dst[29] = <float>0.2357 * _sum8(acc + 16)
                dst[30] = <float>0.2357 * _sum8(acc + 24)
