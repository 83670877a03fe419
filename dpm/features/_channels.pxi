# Shared by _hog.pyx and _hog_fast.pyx (Cython ``include``): the pixel
# differences and the choice of the strongest colour channel, in double, as
# in voc-release3.1 ``features.cc``.  Both kernels take these steps bit for
# bit alike; the fast kernel rounds the chosen gradient to float32 afterwards.


cdef inline void _strongest_channel(const double *u, const double *m, const double *d, Py_ssize_t n,
                                    double *gx, double *gy, double *gv) noexcept nogil:
    # Gradients of n consecutive pixels of an RGB row: u, m, d point at the
    # first pixel in the rows above, at and below.  gx, gy: the centred
    # differences of the channel with the largest squared norm gv (the
    # earlier channel wins a tie).  Selects only, so that the loop vectorises
    # (the outputs are the caller's local arrays: no aliasing check needed).
    cdef Py_ssize_t i
    cdef double dx, dy, dx2, dy2, dx3, dy3, v, t
    for i in range(n):
        dx = m[3 * i + 3] - m[3 * i - 3]
        dy = d[3 * i] - u[3 * i]
        dx2 = m[3 * i + 4] - m[3 * i - 2]
        dy2 = d[3 * i + 1] - u[3 * i + 1]
        dx3 = m[3 * i + 5] - m[3 * i - 1]
        dy3 = d[3 * i + 2] - u[3 * i + 2]
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
