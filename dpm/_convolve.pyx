# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
#
# Filter responses of a feature map: a port of the semantics of voc-release3.1
# ``fconv.cc`` / ``fconvMT.cc`` / ``fconvblas.cc`` (Felzenszwalb, Girshick,
# McAllester, Ramanan; MIT-style licence, see the release's COPYING).
#
# Computes VALID cross-correlations (filters are not flipped):
#     C_f[y, x] = sum_{dy, dx, c} A[y + dy, x + dx, c] * B_f[dy, dx, c],
# with C_f of shape (H - h_f + 1, W - w_f + 1).
#
# Memory layout: row-major (C-contiguous) numpy arrays.  The feature map A is
# (H, W, C) and the filters are stacked into one (K, C) matrix whose row
# k_f + dy * w_f + dx holds B_f[dy, dx, :] (K = sum_f h_f * w_f cells).  The
# original works on MATLAB's column-major (H, W, C) arrays; only the memory
# order differs, the index meaning [y, x, c] is the same.  Indices are 0-based.
#
# Method (not the original's dgemv loop): for a band of input rows [r0, r1),
# one GEMM computes the response of every filter cell at every position,
#     P[k, j] = sum_c A[r0 + j // W, j % W, c] * Bank[k, c],
# stored at p[k * m + j] (m = band positions): positions contiguous per cell.
# A row-major (H, W, C) map is a column-major (C x H*W) matrix with leading
# dimension C, so p, the column-major (m x K) matrix A_band^T (m x C) *
# Bank^T (C x K), is one GEMM without copying anything.
# Each input row r then feeds output row y = r - dy of every filter:
#     C_f[r - dy, x] += P[k_f + dy * w_f + dx, (r - r0) * W + x + dx],
# a contiguous shift-and-add.  Bands do not overlap, so no product is computed
# twice; the band height keeps P small enough to stay in cache between the
# GEMM and the shift-and-add.  A detector pads every level with zeros; with
# pady/padx the kernel correlates the padded map without forming it: the GEMM
# runs over the unpadded positions only and the shift-and-add places each
# product at its padded position, so padding costs nothing.  Positions whose
# features are all zero (padding formed by the caller) contribute nothing and
# are skipped where that is cheap: all-zero rows, and the zero positions
# before the first and after the last nonzero one of a band.  The summation
# order differs from fconv.cc, so results agree with it to rounding only.
#
# Fixed summation order (convolve_bank_fixed, float64, what training uses).
# The GEMM's summation order depends on the BLAS library, its kernel for the
# processor and its build; convolve_bank_fixed computes the same products
# with the project's own code (_convolve_fixed.h) instead, so a response is
# the same bits on every machine, in the portable and the AVX2 build of this
# module, for any band height and thread count.  Per output element:
#   1. each cell product P[k, j] = sum_c A[j, c] * Bank[k, c] is summed from
#      0.0 in channel order c = 0, 1, ..., C-1, each product rounded, one
#      rounding per addition (no fused multiply-add: see setup.py);
#   2. C_f[y, x] starts at 0.0 and receives the products of its input rows in
#      ascending order (dy = 0, 1, ..., h-1; rows of the map that are
#      entirely zero add nothing); within a row, the cells dx = 0..w-1 come in
#      groups of four (two, one at the end of the row): a column that every
#      cell of a group reaches gets ((P_dx + P_dx+1) + (P_dx+2 + P_dx+3))
#      added at once, a column that only some of them reach (near the
#      padding) gets their products one at a time in dx order.
# Both depend only on the filter sizes, the map's size, its zero rows and
# pad, never on the processor.  The BLAS path (convolve_bank) shares step 2.

from cpython.pycapsule cimport PyCapsule_GetName, PyCapsule_GetPointer
from libc.stdlib cimport malloc, free

cdef extern from "_convolve_fixed.h":
    void dpm_cell_products(int n, int ncells, int nchan, const double* a, const double* bank,
                           double* at, double* p, int ldp) noexcept nogil

# BLAS GEMMs, from the function table of scipy.linalg.cython_blas (set by
# dpm.convolve through _set_blas, which can load that table without importing
# all of scipy.linalg: worker processes start faster).
ctypedef void (*sgemm_t)(char* transa, char* transb, int* m, int* n, int* k, float* alpha,
                         float* a, int* lda, float* b, int* ldb, float* beta, float* c,
                         int* ldc) noexcept nogil
ctypedef void (*dgemm_t)(char* transa, char* transb, int* m, int* n, int* k, double* alpha,
                         double* a, int* lda, double* b, int* ldb, double* beta, double* c,
                         int* ldc) noexcept nogil
cdef sgemm_t sgemm = NULL
cdef dgemm_t dgemm = NULL


def _set_blas(capi):
    """Use the ``sgemm``/``dgemm`` capsules of ``capi`` (a cython_blas ``__pyx_capi__``)."""
    global sgemm, dgemm
    s = capi["sgemm"]
    d = capi["dgemm"]
    sgemm = <sgemm_t>PyCapsule_GetPointer(s, PyCapsule_GetName(s))
    dgemm = <dgemm_t>PyCapsule_GetPointer(d, PyCapsule_GetName(d))

ctypedef fused floating:
    float
    double


cdef inline void _gemm_tn(int m, int n, int k, const floating* a, int lda,
                          const floating* b, int ldb, floating* c, int ldc) noexcept nogil:
    # c (m x n, column-major) = a^T * b, with a stored (k x m) and b (k x n).
    cdef char ta = b'T'
    cdef char tb = b'N'
    cdef float one_s = 1.0, zero_s = 0.0
    cdef double one_d = 1.0, zero_d = 0.0
    if floating is float:
        sgemm(&ta, &tb, &m, &n, &k, &one_s, <float*>a, &lda, <float*>b, &ldb,
              &zero_s, c, &ldc)
    else:
        dgemm(&ta, &tb, &m, &n, &k, &one_d, <double*>a, &lda, <double*>b, &ldb,
              &zero_d, c, &ldc)


cdef inline void _add_cells(floating* orow, const floating* pa, Py_ssize_t step,
                            Py_ssize_t ncell, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    # orow[x] += sum over c < ncell of pa[c*step + x], for lo <= x <= hi
    # (ncell = 1, 2 or 4: several cells per pass save loads and stores of the
    # output row).
    cdef Py_ssize_t x
    cdef const floating* pb = pa + step
    cdef const floating* pc = pb + step
    cdef const floating* pd = pc + step
    if ncell == 4:
        for x in range(lo, hi + 1):
            orow[x] += (pa[x] + pb[x]) + (pc[x] + pd[x])
    elif ncell == 2:
        for x in range(lo, hi + 1):
            orow[x] += pa[x] + pb[x]
    else:
        for x in range(lo, hi + 1):
            orow[x] += pa[x]


cdef inline void _shift_add(const floating* p, Py_ssize_t m, Py_ssize_t width,
                            Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t h, Py_ssize_t w,
                            Py_ssize_t k0, Py_ssize_t hout, Py_ssize_t wout,
                            Py_ssize_t pady, Py_ssize_t padx, floating* out) noexcept nogil:
    # Add the contributions of input rows [r0, r1) (already in p) to one
    # filter's output.  Input cell (r, c) is cell (r + pady, c + padx) of the
    # padded map, so cell (dy, dx) of the filter adds it to output
    # (r + pady - dy, c + padx - dx).
    cdef Py_ssize_t r, ry, dy, dy_lo, dy_hi, dx, g, d, lo, hi, glo, ghi
    cdef floating* orow
    cdef const floating* prow
    for r in range(r0, r1):
        ry = r + pady
        dy_lo = ry - hout + 1 if ry - hout + 1 > 0 else 0
        dy_hi = ry if ry < h - 1 else h - 1
        for dy in range(dy_lo, dy_hi + 1):
            orow = out + (ry - dy) * wout
            # Cell (dy, dx) is bank row k0 + dy*w + dx; shifted so that entry
            # x is its product with input column x - padx + dx, its rows start
            # m + 1 apart.  Output columns reached by cell dx: [lo(dx), hi(dx)].
            prow = p + (k0 + dy * w) * m + (r - r0) * width - padx
            dx = 0
            while dx < w:
                g = 4 if dx + 3 < w else (2 if dx + 1 < w else 1)
                # Columns every cell of the group reaches, then the rest of
                # each cell's range one cell at a time.
                glo = padx - dx if padx - dx > 0 else 0
                ghi = padx - dx - g + width
                if ghi > wout - 1:
                    ghi = wout - 1
                if glo <= ghi:
                    _add_cells(orow, prow + dx * (m + 1), m + 1, g, glo, ghi)
                for d in range(dx, dx + g):
                    lo = padx - d if padx - d > 0 else 0
                    hi = padx - d + width - 1
                    if hi > wout - 1:
                        hi = wout - 1
                    if glo > ghi:
                        _add_cells(orow, prow + d * (m + 1), m + 1, 1, lo, hi)
                    else:
                        _add_cells(orow, prow + d * (m + 1), m + 1, 1, lo,
                                   hi if hi < glo - 1 else glo - 1)
                        _add_cells(orow, prow + d * (m + 1), m + 1, 1,
                                   lo if lo > ghi + 1 else ghi + 1, hi)
                dx += g


cdef inline Py_ssize_t _first_nonzero(const floating* a, Py_ssize_t n) noexcept nogil:
    # Index of the first nonzero of a[0:n], or n.
    cdef Py_ssize_t i
    for i in range(n):
        if a[i] != 0:
            return i
    return n


cdef inline Py_ssize_t _last_nonzero(const floating* a, Py_ssize_t n) noexcept nogil:
    # Index of the last nonzero of a[0:n], or -1.
    cdef Py_ssize_t i
    for i in range(n - 1, -1, -1):
        if a[i] != 0:
            return i
    return -1


cdef Py_ssize_t _convolve_bands(const floating[:, :, ::1] features, const floating[:, ::1] bank,
                                const Py_ssize_t[:, ::1] layout, floating[::1] out,
                                Py_ssize_t band_bytes, Py_ssize_t pady, Py_ssize_t padx,
                                bint fixed, Py_ssize_t row0, Py_ssize_t full_height,
                                bint last) except -1:
    # The band loop of convolve_bank (fixed = False: BLAS GEMM) and of
    # convolve_bank_fixed (fixed = True, double only: dpm_cell_products).
    # features holds rows row0 .. of a map of full_height rows; returns the
    # number of rows consumed (all of them if last; else up to the start of
    # an incomplete band at the end).
    cdef Py_ssize_t height = features.shape[0], width = features.shape[1]
    cdef Py_ssize_t nchan = features.shape[2], ncells = bank.shape[0]
    cdef Py_ssize_t nfilt = layout.shape[0]
    cdef Py_ssize_t rows, r0, r1, m, j0, j1, k, j, f, h, w, hout, wout
    cdef Py_ssize_t rowlen = width * nchan
    cdef floating* p
    cdef double* at = NULL
    cdef const floating* a
    if height == 0 or width == 0 or nchan == 0 or ncells == 0 or nfilt == 0:
        return height
    if not fixed and (sgemm == NULL or dgemm == NULL):
        raise RuntimeError("no BLAS: call _set_blas first (dpm.convolve does)")
    rows = band_bytes // (<Py_ssize_t>sizeof(floating) * ncells * width)
    if rows < 1:
        rows = 1
    if rows > full_height:
        rows = full_height
    p = <floating*>malloc(<size_t>(rows * width * ncells) * sizeof(floating))
    if fixed:
        at = <double*>malloc(<size_t>((rows * width + 8) * nchan) * sizeof(double))
    if p == NULL or (fixed and at == NULL):
        free(p)
        free(at)
        raise MemoryError("cannot allocate the convolution band buffers")
    try:
        with nogil:
            a = &features[0, 0, 0]
            r0 = 0
            while r0 < height:
                # Band: up to `rows` consecutive rows that are not entirely zero.
                j0 = _first_nonzero(a + r0 * rowlen, rowlen)
                if j0 == rowlen:
                    r0 += 1
                    continue
                r1 = r0 + 1
                while r1 < height and r1 - r0 < rows:
                    if _first_nonzero(a + r1 * rowlen, rowlen) == rowlen:
                        break
                    r1 += 1
                if r1 == height and r1 - r0 < rows and not last and row0 + r1 < full_height:
                    break       # the band may go on in the next call's rows
                m = (r1 - r0) * width
                # Products over band positions j0..j1 (first to last nonzero).
                j0 = j0 // nchan
                j1 = (r1 - 1 - r0) * width + _last_nonzero(a + (r1 - 1) * rowlen, rowlen) // nchan
                if fixed:
                    if floating is double:
                        dpm_cell_products(<int>(j1 - j0 + 1), <int>ncells, <int>nchan,
                                          a + (r0 * width + j0) * nchan, &bank[0, 0], at,
                                          p + j0, <int>m)
                else:
                    _gemm_tn(<int>(j1 - j0 + 1), <int>ncells, <int>nchan,
                             a + (r0 * width + j0) * nchan, <int>nchan, &bank[0, 0], <int>nchan,
                             p + j0, <int>m)
                if j0 > 0 or j1 < m - 1:
                    for k in range(ncells):
                        for j in range(j0):
                            p[k * m + j] = 0
                        for j in range(j1 + 1, m):
                            p[k * m + j] = 0
                for f in range(nfilt):
                    if layout[f, 4] == 0:
                        continue
                    h = layout[f, 0]
                    w = layout[f, 1]
                    hout = full_height + 2 * pady - h + 1
                    wout = width + 2 * padx - w + 1
                    _shift_add(p, m, width, r0 + row0, r1 + row0, h, w, layout[f, 2], hout, wout,
                               pady, padx, &out[layout[f, 3]])
                r0 = r1
    finally:
        free(p)
        free(at)
    return r0


def convolve_bank(const floating[:, :, ::1] features, const floating[:, ::1] bank,
                  const Py_ssize_t[:, ::1] layout, floating[::1] out,
                  Py_ssize_t band_bytes, Py_ssize_t pady=0, Py_ssize_t padx=0):
    """Correlate one feature map with every filter of a stacked bank, in place.

    Parameters
    ----------
    features : (H, W, C) float32 or float64 C-contiguous memoryview
    bank : (K, C) memoryview of the same dtype
        Filter cells stacked row by row (see the module header).
    layout : (F, 5) intp memoryview
        Per filter: ``h, w, k0`` (first bank row), ``offset`` (start of its
        output in ``out``) and ``active`` (0 to skip a filter whose output
        would be empty).
    out : (N,) memoryview of the same dtype, zero-filled
        Receives each active filter's (H + 2*pady - h + 1, W + 2*padx - w + 1)
        output, row-major, at its offset.
    band_bytes : int
        Target size of the per-band product buffer; at least one input row is
        processed per band.
    pady, padx : int, optional
        Correlate the map surrounded by ``pady`` rows and ``padx`` columns of
        zeros on each side (default none), without forming it: the padding
        contributes nothing, so only the outputs' sizes and positions change.

    Notes
    -----
    Positions whose C features are all zero contribute nothing, so the
    zero-padding a detector adds around each level is skipped: rows that are
    entirely zero are left out of the bands, and the GEMM of a band starts at
    its first and ends at its last nonzero position (the products outside are
    set to zero instead).  Results equal the plain sum up to the sign of
    zeros.

    Trusts its caller: sizes must be consistent and fit BLAS's 32-bit ints.
    The GIL is released for the whole computation.
    """
    _convolve_bands(features, bank, layout, out, band_bytes, pady, padx, False, 0, features.shape[0], True)


def convolve_bank_rows(const floating[:, :, ::1] features, const floating[:, ::1] bank,
                       const Py_ssize_t[:, ::1] layout, floating[::1] out,
                       Py_ssize_t band_bytes, Py_ssize_t pady, Py_ssize_t padx,
                       Py_ssize_t row0, Py_ssize_t height, bint last, bint fixed):
    """:func:`convolve_bank` (or, ``fixed``, :func:`convolve_bank_fixed`) fed one band of rows.

    ``features`` holds rows ``row0 ..`` of a map of ``height`` rows whose
    responses ``out`` accumulates (``layout`` and ``out`` for the whole map).
    ``row0`` must be where a band of the whole computation starts (0, or a
    value this function returned).  Unless ``last``, a band that reaches the
    end of ``features`` without being complete is left for the next call.
    Returns the map row where the next call must start.  Fed this way, every
    GEMM and every addition is the whole computation's, in the same order, so
    the responses are bit-identical to one :func:`convolve_bank` call.
    """
    return row0 + _convolve_bands(features, bank, layout, out, band_bytes, pady, padx, fixed, row0, height, last)


def convolve_bank_fixed(const double[:, :, ::1] features, const double[:, ::1] bank,
                        const Py_ssize_t[:, ::1] layout, double[::1] out,
                        Py_ssize_t band_bytes, Py_ssize_t pady=0, Py_ssize_t padx=0):
    """:func:`convolve_bank` in float64 with the fixed summation order of the
    module header (no BLAS): the same bits on every machine and in every build.

    Same arguments as :func:`convolve_bank` (float64 only).
    """
    _convolve_bands(features, bank, layout, out, band_bytes, pady, padx, True, 0, features.shape[0], True)
