# The fast kernels' normalisation (included by _hog_fast.pyx): cell histograms
# to the 31 output channels, in float32.

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
