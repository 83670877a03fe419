# The fast kernels' gradients (included by _hog_fast.pyx, which documents the
# algorithm): image rows rearranged into colour planes, the gradient of each
# row (strongest channel, float32 magnitude, orientation bin), and
# gradient_bins, the whole gradient maps of an image.

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
