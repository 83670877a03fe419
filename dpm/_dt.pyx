# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
#
# Generalised distance transform: a port of voc-release3.1 ``dt.cc``
# (Felzenszwalb, Girshick, McAllester, Ramanan; MIT-style licence, see the
# release's COPYING).
#
# 1-D transform of f over n samples, for every destination d:
#     M(d) = min_s f(s) + a*(d - s)^2 + b*(d - s),   I(d) = first argmin s,
# by the original's divide and conquer (O(n log n)): the middle destination
# scans its whole source range keeping the first strict minimum (ties go to the
# smaller s), then the left half recurses on sources [s1, s*] and the right half
# on [s*, s2].  The cost is evaluated in dt.cc's order,
# ``(f(s) + a*square(d-s)) + b*(d-s)`` with an integer square; the two products
# are read from per-offset tables holding the very same rounded values, so the
# costs, and therefore the argmin choices (ties included), are bit for bit
# those of dt.cc.  The recursion runs from an explicit stack.
#
# 2-D transform: a y-pass down every column with (ay, by), then an x-pass along
# every row of its result with (ax, bx); Iy is the y-pass argmin at the column
# chosen by the x-pass.
#
# Memory layout: row-major (C-contiguous) (H, W) arrays indexed [y, x]; the
# original works on MATLAB's column-major arrays with the same index meaning.
# Index base: argmins are 0-based here (dt.cc returns them 1-based).

from libc.stdlib cimport malloc, free

ctypedef fused real:
    float
    double


cdef enum:
    # Pending left halves of the divide and conquer: at most about log2(n) + 1.
    _STACK = 96


cdef void _cost_tables(int n, double a, double b, double* quad, double* lin) noexcept nogil:
    # quad[n - 1 + k] = a*(k*k) and lin[n - 1 + k] = b*k for |k| < n: the same
    # rounded products dt.cc forms inline as a*square(d-s) and b*(d-s).
    cdef int k
    for k in range(-(n - 1), n):
        quad[n - 1 + k] = a * (k * k)
        lin[n - 1 + k] = b * k


cdef inline int _first_min(const double* src, const double* quad, const double* lin,
                           int d, int s1, int s2, double* value) noexcept nogil:
    # dt.cc's scan for destination d over sources [s1, s2]: the first strict
    # minimum of the cost (src[p] + quad[d-p]) + lin[d-p] (tables centred on 0).
    cdef double best = src[s1] + quad[d - s1] + lin[d - s1]
    cdef int s = s1, p
    cdef double v
    for p in range(s1 + 1, s2 + 1):
        v = src[p] + quad[d - p] + lin[d - p]
        if best > v:
            s = p
            best = v
    value[0] = best
    return s


cdef inline bint _wanted(int d1, int d2, int c0, int cstep, int cend) noexcept nogil:
    # Is one of the wanted destinations c0 + k*cstep (< cend) inside [d1, d2]?
    cdef int first = c0
    if d1 > c0:
        first = c0 + ((d1 - c0 + cstep - 1) // cstep) * cstep
    return first <= d2 and first < cend


cdef int _plan(int n, int c0, int cstep, int cend, int* order, int* lo, int* hi,
               int* slot) noexcept nogil:
    # The node sequence of dt.cc's divide and conquer dt_helper(s1, s2, d1, d2)
    # over n samples, which depends on n only: node d = (d1 + d2) >> 1 scans
    # sources from the argmin of the destination lo (its nearest ancestor on
    # the left) to the argmin of hi (nearest ancestor on the right); n and n + 1
    # stand for the bounds 0 and n - 1.  Parents come before their children.
    # Only the nodes whose destination range holds a wanted destination
    # d = c0 + k*cstep < cend are kept, so every wanted destination is scanned
    # over the very source range dt.cc scans (its ancestors are all kept);
    # slot is k for a wanted destination, -1 for the others.  (dt.cc's range
    # of one source gives each destination that source, as a scan of length
    # one does.)  Returns the number of nodes.
    cdef int stack[_STACK][4]
    cdef int top = 1, m = 0
    cdef int d1, d2, l, h, d
    if cend > n:
        cend = n
    stack[0][0] = 0
    stack[0][1] = n - 1
    stack[0][2] = n
    stack[0][3] = n + 1
    while top > 0:
        top -= 1
        d1 = stack[top][0]
        d2 = stack[top][1]
        l = stack[top][2]
        h = stack[top][3]
        while d2 >= d1 and _wanted(d1, d2, c0, cstep, cend):
            d = (d1 + d2) >> 1
            order[m] = d
            lo[m] = l
            hi[m] = h
            slot[m] = (d - c0) // cstep if d >= c0 and d < cend and (d - c0) % cstep == 0 else -1
            m += 1
            if d - 1 >= d1:
                stack[top][0] = d1
                stack[top][1] = d - 1
                stack[top][2] = l
                stack[top][3] = d
                top += 1
            d1 = d + 1
            l = d
    return m


cdef void _dt1d(const double* src, double* dst, int* ptr, int n,
                const double* quad, const double* lin, int m, const int* order,
                const int* lo, const int* hi, const int* slot, int* argmin) noexcept nogil:
    # Contiguous 1-D transform of n samples along a plan of m nodes (see
    # _plan); quad and lin are centred tables (see _cost_tables).  The wanted
    # destinations go to dst[slot], ptr[slot]; argmin (n + 2 ints) holds
    # every node's argmin.
    cdef int i, d, s, k
    cdef double best
    argmin[n] = 0
    argmin[n + 1] = n - 1
    for i in range(m):
        d = order[i]
        s = _first_min(src, quad, lin, d, argmin[lo[i]], argmin[hi[i]], &best)
        argmin[d] = s
        k = slot[i]
        if k >= 0:
            dst[k] = best
            ptr[k] = s


ctypedef void (*lanes_fn)(const double* src, int n, const double* quad, const double* lin,
                          int m, const int* order, const int* lo, const int* hi,
                          const int* slot, double* argmin, double* dst, double* ptr) noexcept nogil


cdef extern from "_dt_lanes.h":
    # Eight 1-D transforms along one plan at once: for each line g (sample p
    # at src[p*LANES + g]) exactly what _dt1d computes for it -- node d scans
    # the line's own range [s1_g, s2_g] (from its own argmins) for the first
    # strict minimum of (src + quad) + lin.  argmin: (n + 2) * LANES doubles;
    # wanted destinations go to dst[slot*LANES + g] and ptr[slot*LANES + g]
    # (the argmin, as a double).  Vectorised where the compiler allows it.
    enum:
        LANES "DPM_LANES"
    lanes_fn dpm_dt1d_lanes_get(int which) noexcept nogil
    const char* dpm_dt1d_lanes_name(lanes_fn f) noexcept nogil


# The 2-D transform runs LANES lines at a time where a vector kernel for this
# processor makes that faster (AVX2), line by line otherwise.
cdef lanes_fn _dt1d_lanes = dpm_dt1d_lanes_get(2)
cdef bint _lines = dpm_dt1d_lanes_name(_dt1d_lanes) != b"avx2"


def _kernel(name=None):
    """Name of the transform kernel in use: 'avx2', 'vector', 'scalar' (LANES
    lines at a time) or 'lines' (line by line).

    With ``name`` (one of those or 'best'), switch to it first; for tests and
    benchmarks, every kernel gives the same results.  'vector' and 'avx2' fall
    back to what the compiler and processor offer.
    """
    global _dt1d_lanes, _lines
    if name is not None:
        if name not in ("scalar", "vector", "avx2", "lines", "best"):
            raise ValueError(f"unknown kernel {name!r}")
        _dt1d_lanes = dpm_dt1d_lanes_get({"scalar": 0, "vector": 1}.get(name, 2))
        _lines = name == "lines" or (
            name == "best" and dpm_dt1d_lanes_name(_dt1d_lanes) != b"avx2")
    return "lines" if _lines else dpm_dt1d_lanes_name(_dt1d_lanes).decode()


cdef void _dt2d_lines(const real* vals, bint negate, int height, int width, double ax, double bx,
                double ay, double by, int row0, int rstep, int nrows, int col0, int cstep, int ncols,
                double* out, int* ix, int* iy, double* work, int* iwork) noexcept nogil:
    # Outputs (nrows, ncols) hold rows row0 + r*rstep and columns col0 + c*cstep
    # of the transform of vals (converted to double), or of -vals if negate
    # (exact either way).  The y-pass needs only the wanted rows as
    # destinations (the x-pass reads no other), but all columns; the x-pass
    # computes the wanted columns of the wanted rows.
    # work: nrows*width + 2*height + 4*max(height, width) doubles;
    # iwork: nrows*width + height + 5*max(height, width) + 2 ints.
    # (The line-by-line path, used where no vector kernel is available.)
    cdef int x, y, r, c
    cdef int nmax = height if height > width else width
    cdef Py_ssize_t row, orow, n = <Py_ssize_t>nrows * width
    cdef double* tmp_m = work
    cdef double* col = work + n
    cdef double* col_m = col + height
    cdef double* quad = col_m + height
    cdef double* lin = quad + 2 * nmax
    cdef int* tmp_iy = iwork
    cdef int* col_i = iwork + n
    cdef int* order = col_i + height
    cdef int* lo = order + nmax
    cdef int* hi = lo + nmax
    cdef int* slot = hi + nmax
    cdef int* argmin = slot + nmax
    cdef int m
    # y-pass: gather each column into contiguous scratch, transform (wanted
    # rows only, compacted), scatter into the rows of tmp_m.
    _cost_tables(height, ay, by, quad, lin)
    m = _plan(height, row0, rstep, row0 + nrows * rstep, order, lo, hi, slot)
    for x in range(width):
        if negate:
            for y in range(height):
                col[y] = -(<double>vals[<Py_ssize_t>y * width + x])
        else:
            for y in range(height):
                col[y] = vals[<Py_ssize_t>y * width + x]
        _dt1d(col, col_m, col_i, height, quad + height - 1, lin + height - 1,
              m, order, lo, hi, slot, argmin)
        for r in range(nrows):
            tmp_m[<Py_ssize_t>r * width + x] = col_m[r]
            tmp_iy[<Py_ssize_t>r * width + x] = col_i[r]
    # x-pass along the (contiguous) rows, then look up Iy at the chosen column.
    _cost_tables(width, ax, bx, quad, lin)
    m = _plan(width, col0, cstep, col0 + ncols * cstep, order, lo, hi, slot)
    for r in range(nrows):
        row = <Py_ssize_t>r * width
        orow = <Py_ssize_t>r * ncols
        _dt1d(tmp_m + row, out + orow, ix + orow, width, quad + width - 1, lin + width - 1,
              m, order, lo, hi, slot, argmin)
        for c in range(ncols):
            iy[orow + c] = tmp_iy[row + ix[orow + c]]


cdef void _dt2d(const real* vals, bint negate, int height, int width, double ax, double bx,
                double ay, double by, int row0, int rstep, int nrows, int col0, int cstep, int ncols,
                double* out, int* ix, int* iy, double* work) noexcept nogil:
    # Outputs (nrows, ncols) hold rows row0 + r*rstep and columns col0 + c*cstep
    # of the transform of vals (converted to double), or of -vals if negate
    # (exact either way).  The y-pass needs only the wanted rows as
    # destinations (the x-pass reads no other), but all columns; the x-pass
    # computes the wanted columns of the wanted rows.  Both passes transform
    # LANES lines at a time (_dt1d_lanes): the y-pass LANES adjacent columns,
    # the x-pass LANES wanted rows, which the y-pass stores interleaved for it
    # (tmp[(b*width + x)*LANES + g] is row b*LANES + g, column x).  Lines past
    # the end of the map repeat its last line and are discarded.
    # work: doubles, see _dt_work_size.
    cdef int x, y, r, c, g, k, b, xg, rg
    cdef int nmax = height if height > width else width
    cdef int nblocks = (nrows + LANES - 1) // LANES
    cdef Py_ssize_t tsize = <Py_ssize_t>nblocks * width * LANES
    cdef double* tmp_m = work
    cdef double* tmp_iy = tmp_m + tsize
    cdef double* lines = tmp_iy + tsize
    cdef double* dst = lines + <Py_ssize_t>nmax * LANES
    cdef double* ptr = dst + <Py_ssize_t>nmax * LANES
    cdef double* argmin = ptr + <Py_ssize_t>nmax * LANES
    cdef double* quad = argmin + <Py_ssize_t>(nmax + 2) * LANES
    cdef double* lin = quad + 2 * nmax
    cdef int* order = <int*>(lin + 2 * nmax)
    cdef int* lo = order + nmax
    cdef int* hi = lo + nmax
    cdef int* slot = hi + nmax
    cdef int m
    cdef double v
    cdef Py_ssize_t t
    # y-pass over blocks of LANES columns.
    _cost_tables(height, ay, by, quad, lin)
    m = _plan(height, row0, rstep, row0 + nrows * rstep, order, lo, hi, slot)
    x = 0
    while x < width:
        for y in range(height):
            for g in range(LANES):
                xg = x + g if x + g < width else width - 1
                v = vals[<Py_ssize_t>y * width + xg]
                lines[y * LANES + g] = -v if negate else v
        _dt1d_lanes(lines, height, quad + height - 1, lin + height - 1,
                    m, order, lo, hi, slot, argmin, dst, ptr)
        for r in range(nrows):
            t = (<Py_ssize_t>(r // LANES) * width + x) * LANES + r % LANES
            for g in range(LANES):
                if x + g < width:
                    tmp_m[t + g * LANES] = dst[r * LANES + g]
                    tmp_iy[t + g * LANES] = ptr[r * LANES + g]
        x += LANES
    # Rows of the last block past nrows repeat row nrows - 1 (same block).
    for rg in range(nrows, nblocks * LANES):
        for x in range(width):
            t = (<Py_ssize_t>(rg // LANES) * width + x) * LANES
            tmp_m[t + rg % LANES] = tmp_m[t + (nrows - 1) % LANES]
    # x-pass over blocks of LANES rows, then Iy at the chosen column.
    _cost_tables(width, ax, bx, quad, lin)
    m = _plan(width, col0, cstep, col0 + ncols * cstep, order, lo, hi, slot)
    for b in range(nblocks):
        _dt1d_lanes(tmp_m + <Py_ssize_t>b * width * LANES, width, quad + width - 1,
                    lin + width - 1, m, order, lo, hi, slot, argmin, dst, ptr)
        for g in range(LANES):
            r = b * LANES + g
            if r >= nrows:
                break
            for c in range(ncols):
                k = <int>ptr[c * LANES + g]
                out[<Py_ssize_t>r * ncols + c] = dst[c * LANES + g]
                ix[<Py_ssize_t>r * ncols + c] = k
                iy[<Py_ssize_t>r * ncols + c] = <int>tmp_iy[(<Py_ssize_t>b * width + k) * LANES + g]


cdef Py_ssize_t _dt_work_size(int height, int width, int nrows) noexcept nogil:
    # Doubles of scratch space _dt2d needs (the int arrays are carved from it).
    cdef Py_ssize_t nmax = height if height > width else width
    cdef Py_ssize_t nblocks = (nrows + LANES - 1) // LANES
    return (2 * nblocks * width * LANES + 3 * nmax * LANES + (nmax + 2) * LANES
            + 4 * nmax + 2 * nmax + 8)


def distance_transform(const real[:, ::1] vals, double ax, double bx, double ay, double by,
                       double[:, ::1] out, int[:, ::1] ix, int[:, ::1] iy,
                       int row0=0, int row_step=1, bint negate=False, int col0=0, int col_step=1):
    """Fill ``out``, ``ix``, ``iy`` with the 2-D transform of ``vals`` (see the header).

    Parameters
    ----------
    vals : (H, W) float32 or float64 C-contiguous memoryview
        Converted to double element by element (exactly).
    ax, bx, ay, by : float
        Quadratic and linear coefficients along x and y; ``ax, ay >= 0``.
    out : (R, C) float64, written
    ix, iy : (R, C) int32, written
        0-based source column and row of each minimum.
    row0, row_step : int
        Output row r is row ``row0 + r * row_step`` of the full transform
        (``row_step >= 1``; the rows must lie inside ``vals``).
    col0, col_step : int
        Output column c is column ``col0 + c * col_step`` of the full transform
        (``col_step >= 1``; the columns must lie inside ``vals``).
    negate : bool
        Transform ``-vals`` instead (negation is exact).

    Notes
    -----
    Trusts its caller (shapes consistent, non-empty, coefficients valid,
    sides below 46341 so that squared offsets fit an int as in dt.cc).  The
    GIL is released during the computation.
    """
    cdef int height = <int>vals.shape[0], width = <int>vals.shape[1]
    cdef int nrows = <int>out.shape[0], ncols = <int>out.shape[1]
    cdef Py_ssize_t n = <Py_ssize_t>nrows * width
    cdef Py_ssize_t nmax = height if height > width else width
    cdef double* work
    cdef int* iwork = NULL
    if height == 0 or width == 0 or nrows == 0 or ncols == 0:
        return
    if _lines:
        work = <double*>malloc((n + 2 * height + 4 * nmax) * sizeof(double))
        iwork = <int*>malloc((n + height + 5 * nmax + 2) * sizeof(int))
    else:
        work = <double*>malloc(_dt_work_size(height, width, nrows) * sizeof(double))
    if work == NULL or (_lines and iwork == NULL):
        free(work)
        free(iwork)
        raise MemoryError("cannot allocate distance transform scratch space")
    with nogil:
        if _lines:
            _dt2d_lines(&vals[0, 0], negate, height, width, ax, bx, ay, by, row0, row_step,
                        nrows, col0, col_step, ncols, &out[0, 0], &ix[0, 0], &iy[0, 0], work,
                        iwork)
        else:
            _dt2d(&vals[0, 0], negate, height, width, ax, bx, ay, by, row0, row_step, nrows,
                  col0, col_step, ncols, &out[0, 0], &ix[0, 0], &iy[0, 0], work)
    free(work)
    free(iwork)
