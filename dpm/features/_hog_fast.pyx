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


cdef void _gradient_row(const double *up, const double *mid, const double *down,
                        Py_ssize_t width, float *mag, unsigned char *ori) noexcept nogil:
    # Gradients of pixels 1..width-2 of one row (pointers to pixel 0 of the
    # rows above, at and below).  Selects only, so that every step vectorises.
    #
    # The differences and the choice of channel are the double path's (in
    # double), and the chosen gradient is then rounded to float32.  Where a
    # row of the resized image is flat, the double path's horizontal
    # difference is rounding noise of the resize (around 1e-13) whose sign
    # decides between the two bins of a vertical gradient (80 and 100
    # degrees), and which of two colour channels with the same gradient up to
    # such noise is the strongest; in float32 the noise would vanish from the
    # squared norms and the choice and bin change.  Rounding keeps the sign
    # (and zero stays zero), so such pixels land in the double path's bin.
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
    cdef const double *u
    cdef const double *m
    cdef const double *d
    cdef Py_ssize_t start = 1, n, i
    cdef float dx, dy, t, a, b, m1, m2, m3, m4, k, lo, hi, w, mixed, bn
    cdef float f1, f2, f3, f4
    cdef double ex, ey, ex2, ey2, ex3, ey3, ev, et, ep, eq
    while start < width - 1:
        n = min(<Py_ssize_t>CHUNK, width - 1 - start)
        u = up + 3 * start
        m = mid + 3 * start
        d = down + 3 * start
        for i in range(n):
            ex = m[3 * i + 3] - m[3 * i - 3]
            ey = d[3 * i] - u[3 * i]
            ex2 = m[3 * i + 4] - m[3 * i - 2]
            ey2 = d[3 * i + 1] - u[3 * i + 1]
            ex3 = m[3 * i + 5] - m[3 * i - 1]
            ey3 = d[3 * i + 2] - u[3 * i + 2]
            # Strongest channel; the earlier one wins a tie.
            ev = ex * ex + ey * ey
            et = ex2 * ex2 + ey2 * ey2
            ex = ex2 if et > ev else ex
            ey = ey2 if et > ev else ey
            ev = et if et > ev else ev
            et = ex3 * ex3 + ey3 * ey3
            ex = ex3 if et > ev else ex
            ey = ey3 if et > ev else ey
            ev = et if et > ev else ev
            # A horizontal difference too small to change the double path's
            # dot products with directions 4 and 5 (80 and 100 degrees):
            # they tie there and the first wins, as with ex = 0.
            ep = <double>0.1736 * ex + <double>0.9848 * ey
            eq = <double>-0.1736 * ex + <double>0.9848 * ey
            ex = 0.0 if ep == eq else ex
            hx[i] = ex
            hy[i] = ey
            hv[i] = ev
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


def gradient_bins(const double[:, :, ::1] image, float[:, ::1] magnitude,
                  unsigned char[:, ::1] orientation):
    """Per-pixel gradient magnitude and orientation bin of an RGB image, in float32.

    The image is the double path's (float64): the differences are taken in
    double and rounded once, the rest is computed in float32.

    As ``_hog.gradient_bins`` followed by the square root: ``magnitude`` is
    the norm (not its square) of the strongest channel's gradient; the
    one-pixel border is 0 in both outputs.

    Parameters
    ----------
    image : (H, W, 3) float64, C-contiguous
    magnitude : (H, W) float32, C-contiguous, output
    orientation : (H, W) uint8, C-contiguous, output
    """
    cdef Py_ssize_t H = image.shape[0], W = image.shape[1]
    cdef Py_ssize_t x, y
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
            _gradient_row(&image[y - 1, 0, 0], &image[y, 0, 0], &image[y + 1, 0, 0], W,
                          &magnitude[y, 0], &orientation[y, 0])


def bin_cells(const float[:, ::1] magnitude, const unsigned char[:, ::1] orientation,
              int sbin, float[:, :, ::1] hist):
    """Accumulate float32 gradients into cell histograms by bilinear spatial weighting.

    As ``_hog.bin_cells`` (same grid, visited pixels, clamped reads and
    margin), in float32.

    Parameters
    ----------
    magnitude : (H, W) float32
    orientation : (H, W) uint8
        Gradient maps (interior used only); ``H, W >= 3``.
    sbin : int
    hist : (by + 2, bx + 2, 18) float32, zero on entry; ``by, bx >= 1``.
    """
    cdef Py_ssize_t H = magnitude.shape[0], W = magnitude.shape[1]
    cdef Py_ssize_t by = hist.shape[0] - 2, bx = hist.shape[1] - 2
    cdef Py_ssize_t vis_y = by * sbin, vis_x = bx * sbin
    cdef Py_ssize_t rowstride = hist.shape[1] * 18
    cdef Py_ssize_t x, y, yc, ix, iyp, c
    cdef double xp, yp, frac
    cdef float v, a0, a1, vy0, vy1
    cdef float *h
    cdef float *h0
    cdef const float *mrow
    cdef const unsigned char *orow
    cdef Py_ssize_t *cell
    cdef Py_ssize_t *col
    cdef float *wx0
    cdef float *wx1
    if vis_x < 3 or vis_y < 3:
        return
    cell = <Py_ssize_t *>malloc(vis_x * sizeof(Py_ssize_t))
    col = <Py_ssize_t *>malloc(vis_x * sizeof(Py_ssize_t))
    wx0 = <float *>malloc(vis_x * sizeof(float))
    wx1 = <float *>malloc(vis_x * sizeof(float))
    if cell == NULL or col == NULL or wx0 == NULL or wx1 == NULL:
        free(cell)
        free(col)
        free(wx0)
        free(wx1)
        raise MemoryError()
    with nogil:
        for x in range(1, vis_x - 1):
            xp = (<double>x + 0.5) / <double>sbin - 0.5
            ix = <Py_ssize_t>floor(xp)
            cell[x] = (ix + 1) * 18
            col[x] = x if x < W - 2 else W - 2      # the clamped read
            frac = xp - ix
            wx0[x] = <float>frac                    # weight of the right cell
            wx1[x] = <float>(1.0 - frac)            # weight of the left cell
        for y in range(1, vis_y - 1):
            yc = y if y < H - 2 else H - 2
            yp = (<double>y + 0.5) / <double>sbin - 0.5
            iyp = <Py_ssize_t>floor(yp)
            frac = yp - iyp
            vy0 = <float>frac
            vy1 = <float>(1.0 - frac)
            mrow = &magnitude[yc, 0]
            orow = &orientation[yc, 0]
            h0 = &hist[iyp + 1, 0, 0]
            for x in range(1, vis_x - 1):
                c = col[x]
                v = mrow[c]
                a1 = vy1 * v
                a0 = vy0 * v
                h = h0 + cell[x] + orow[c]
                h[0] += wx1[x] * a1
                h[18] += wx0[x] * a1
                h[rowstride] += wx1[x] * a0
                h[rowstride + 18] += wx0[x] * a0
    free(cell)
    free(col)
    free(wx0)
    free(wx1)


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
