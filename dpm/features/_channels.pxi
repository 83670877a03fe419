# Shared by _hog.pyx and _hog_fast.pyx (Cython ``include``): the pixel
# differences and the choice of the strongest colour channel, in double, as
# in voc-release3.1 ``features.cc``.  Both kernels take these steps bit for
# bit alike; the fast kernel rounds the chosen gradient to float32 afterwards.


cdef inline void _strongest_channel(const double *u, const double *m, const double *d,
                                    Py_ssize_t step, Py_ssize_t channel, Py_ssize_t n,
                                    double *gx, double *gy, double *gv) noexcept nogil:
    # Gradients of n consecutive pixels of an RGB row: u, m, d point at the
    # first pixel's red sample in the rows above, at and below; ``step`` is
    # the distance between pixels and ``channel`` between a pixel's samples
    # (3 and 1 for interleaved RGB, 1 and the plane size for planar rows; the
    # callers pass constants or loop invariants, so that the loop is compiled
    # for the layout).  gx, gy: the centred differences of the channel with the
    # largest squared norm gv (the earlier channel wins a tie).  Selects only,
    # so that the loop vectorises (the outputs are the caller's local arrays:
    # no aliasing check needed).
    cdef Py_ssize_t i
    cdef double dx, dy, dx2, dy2, dx3, dy3, v, t
    cdef const double *m2 = m + channel
    cdef const double *m3 = m + 2 * channel
    cdef const double *u2 = u + channel
    cdef const double *u3 = u + 2 * channel
    cdef const double *d2 = d + channel
    cdef const double *d3 = d + 2 * channel
    for i in range(n):
        dx = m[step * i + step] - m[step * i - step]
        dy = d[step * i] - u[step * i]
        dx2 = m2[step * i + step] - m2[step * i - step]
        dy2 = d2[step * i] - u2[step * i]
        dx3 = m3[step * i + step] - m3[step * i - step]
        dy3 = d3[step * i] - u3[step * i]
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
        gv[i] = v
