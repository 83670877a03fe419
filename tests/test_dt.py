"""Tests of the generalised distance transform (port of voc-release3.1 dt.cc)."""
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from dpm import _dt
from dpm.dt import distance_transform

KERNELS = ("lines", "scalar", "vector", "best")


@pytest.fixture(autouse=True, params=KERNELS)
def kernel(request):
    """Every test runs with each transform kernel (they must agree bit for bit)."""
    _dt._kernel(request.param)
    yield request.param
    _dt._kernel("best")


# ---------------------------------------------------------------------------
# Slow references


def brute_force_1d(f, a, b):
    """O(n^2) 1-D transform: first strict minimum over all sources.

    The cost is formed in dt.cc's order, (f[s] + a*(d-s)^2) + b*(d-s), with an
    integer square, so values and ties are comparable bit for bit.
    """
    n = f.size
    d = np.arange(n)[:, None]
    s = np.arange(n)[None, :]
    cost = (f[None, :] + a * (d - s) ** 2) + b * (d - s)
    arg = np.argmin(cost, axis=1)  # first occurrence: ties go to the smaller source
    return cost[np.arange(n), arg], arg


def brute_force_2d(vals, ax, bx, ay, by):
    height, width = vals.shape
    tmp = np.empty_like(vals)
    tmp_iy = np.empty(vals.shape, dtype=np.intp)
    for x in range(width):
        tmp[:, x], tmp_iy[:, x] = brute_force_1d(vals[:, x], ay, by)
    out = np.empty_like(vals)
    ix = np.empty(vals.shape, dtype=np.intp)
    for y in range(height):
        out[y], ix[y] = brute_force_1d(tmp[y], ax, bx)
    iy = tmp_iy[np.arange(height)[:, None], ix]
    return out, ix, iy


def recursive_dt_1d(f, a, b):
    """Line-by-line port of dt.cc's recursive dt_helper (for NaN semantics)."""
    n = f.size
    dst = np.empty(n)
    ptr = np.empty(n, dtype=np.intp)

    def cost(d, s):
        return f[s] + a * ((d - s) * (d - s)) + b * (d - s)

    def helper(s1, s2, d1, d2):
        if d2 >= d1:
            d = (d1 + d2) >> 1
            s = s1
            for p in range(s1 + 1, s2 + 1):
                if cost(d, s) > cost(d, p):
                    s = p
            dst[d] = cost(d, s)
            ptr[d] = s
            helper(s1, s, d1, d - 1)
            helper(s, s2, d + 1, d2)

    helper(0, n - 1, 0, n - 1)
    return dst, ptr


def check_against_brute_force(vals, ax, bx, ay, by):
    M, Ix, Iy = distance_transform(vals, ax, bx, ay, by)
    rM, rIx, rIy = brute_force_2d(np.asarray(vals, dtype=np.float64), ax, bx, ay, by)
    assert M.dtype == np.float64 and Ix.dtype == np.int32 and Iy.dtype == np.int32
    assert M.shape == Ix.shape == Iy.shape == np.shape(vals)
    # Same argmins means the same cost expression was picked: values agree exactly.
    assert_array_equal(Ix, rIx)
    assert_array_equal(Iy, rIy)
    assert_array_equal(M, rM)


# ---------------------------------------------------------------------------
# Golden outputs of the original


@pytest.mark.parametrize("case", [1, 2, 3, 4])
def test_dt_matches_original_golden(golden, case):
    g = golden("dt")
    ax, bx, ay, by = g["params"][case - 1]
    M, Ix, Iy = distance_transform(g["vals"], ax, bx, ay, by)
    assert_allclose(M, g[f"M{case}"], rtol=1e-6, atol=1e-9)
    # The original's argmins are 1-based.
    assert_array_equal(Ix + 1, g[f"Ix{case}"])
    assert_array_equal(Iy + 1, g[f"Iy{case}"])


# ---------------------------------------------------------------------------
# Brute-force reference on random and degenerate inputs


@pytest.mark.parametrize("shape", [(1, 1), (1, 17), (17, 1), (2, 3), (23, 31), (40, 9)])
@pytest.mark.parametrize("params", [
    (0.1, 0.0, 0.1, 0.0),
    (0.05, 0.3, 0.2, -0.4),
    (0.01, -0.02, 0.01, 0.03),
])
def test_dt_random_matches_brute_force(rng, shape, params):
    vals = 2 * rng.standard_normal(shape)
    check_against_brute_force(vals, *params)


@pytest.mark.parametrize("params", [
    (0.0, 0.5, 0.0, -0.25),   # linear costs only: the argmin is the same for every destination
    (0.0, 0.0, 0.0, 0.0),     # no cost at all: everything ties with the first global minimum
    (1e6, 0.0, 2.5e5, 3.0),   # very stiff: every destination picks itself
    (0.25, 0.5, 0.125, -1.0),
])
def test_dt_degenerate_coefficients(rng, params):
    vals = rng.standard_normal((13, 19))
    check_against_brute_force(vals, *params)


def test_dt_large_a_picks_destination(rng):
    vals = rng.standard_normal((12, 15))
    M, Ix, Iy = distance_transform(vals, 1e6, 0.0, 1e6, 0.0)
    yy, xx = np.mgrid[:12, :15]
    assert_array_equal(Ix, xx)
    assert_array_equal(Iy, yy)
    assert_array_equal(M, vals)


@pytest.mark.parametrize("params", [
    (0.1, 0.0, 0.1, 0.0),
    (0.25, 0.5, 0.5, -0.5),   # dyadic coefficients: costs are exact, so ties are exact too
    (0.0, 1.0, 0.0, 0.0),
    (0.0, 0.0, 0.0, 0.0),
])
@pytest.mark.parametrize("shape", [(1, 1), (1, 12), (12, 1), (9, 14)])
def test_dt_constant_map_ties(shape, params):
    # Ties everywhere: the smaller source must win in both passes.
    check_against_brute_force(np.full(shape, 3.0), *params)


def test_dt_integer_plateaus_ties(rng):
    # Few distinct values: many exact ties between distant sources.
    vals = rng.integers(0, 3, size=(21, 25)).astype(np.float64)
    for params in [(0.5, 0.0, 0.25, 0.0), (0.0, 0.0, 0.0, 0.0), (0.125, 0.25, 0.5, -0.75)]:
        check_against_brute_force(vals, *params)


def test_dt_zero_cost_at_anchor():
    # A single deep minimum attracts every probe within reach; at its own
    # position the cost is zero and the value is the minimum itself.
    vals = np.full((11, 13), 10.0)
    vals[4, 7] = -5.0
    M, Ix, Iy = distance_transform(vals, 0.1, 0.0, 0.1, 0.0)
    assert M[4, 7] == -5.0 and Ix[4, 7] == 7 and Iy[4, 7] == 4
    assert M[0, 0] == pytest.approx(-5.0 + 0.1 * 7 ** 2 + 0.1 * 4 ** 2)
    assert (Ix[0, 0], Iy[0, 0]) == (7, 4)


def test_dt_is_separable_1d_rows(rng):
    # A single row is the 1-D transform along x; a single column along y.
    f = rng.standard_normal(30)
    M, Ix, Iy = distance_transform(f[None, :], 0.07, 0.1, 5.0, 5.0)
    ref, arg = brute_force_1d(f, 0.07, 0.1)
    assert_array_equal(M[0], ref)
    assert_array_equal(Ix[0], arg)
    assert_array_equal(Iy, 0)
    M, Ix, Iy = distance_transform(f[:, None], 5.0, 5.0, 0.07, 0.1)
    assert_array_equal(M[:, 0], ref)
    assert_array_equal(Iy[:, 0], arg)
    assert_array_equal(Ix, 0)


def test_dt_nan_follows_original_scan(rng):
    # NaN costs never win a comparison; a NaN at the start of a scan range is kept.
    f = rng.standard_normal(25)
    f[[0, 6, 7, 18]] = np.nan
    for a, b in [(0.1, 0.0), (0.3, -0.2)]:
        M, Ix, _ = distance_transform(f[None, :], a, b, 1.0, 0.0)
        ref, arg = recursive_dt_1d(f, a, b)
        assert_array_equal(Ix[0], arg)
        assert_array_equal(M[0], ref)  # NaNs compare equal in assert_array_equal


def test_dt_recursive_port_agrees_with_brute_force(rng):
    # Sanity check of the reference port itself on finite data.
    f = rng.standard_normal(40)
    assert_array_equal(recursive_dt_1d(f, 0.05, 0.1)[1], brute_force_1d(f, 0.05, 0.1)[1])


# ---------------------------------------------------------------------------
# Row subsets, input conversion, errors


@pytest.mark.parametrize("rows", [slice(1, None, 2), slice(0, None, 2), slice(3, 8),
                                  slice(None, None, 5), slice(-2, None), slice(7, 7)])
def test_dt_rows_equal_full_transform_rows(rng, rows):
    vals = rng.standard_normal((17, 23))
    M, Ix, Iy = distance_transform(vals, 0.05, 0.1, 0.2, -0.1)
    m, ix, iy = distance_transform(vals, 0.05, 0.1, 0.2, -0.1, rows=rows)
    assert m.shape == M[rows].shape
    assert_array_equal(m, M[rows])
    assert_array_equal(ix, Ix[rows])
    assert_array_equal(iy, Iy[rows])


@pytest.mark.parametrize("rows, cols", [
    (None, slice(1, None, 2)), (slice(1, None, 2), slice(0, None, 2)), (slice(0, 9, 2), slice(3, 18, 2)),
    (None, slice(5, 6)), (slice(2, 3), slice(None, None, 3)), (None, slice(-1, None)),
    (slice(1, None, 2), slice(22, None, 2)), (None, slice(4, 4)), (slice(16, None), slice(0, None, 7)),
])
@pytest.mark.parametrize("shape", [(17, 23), (1, 12), (9, 1), (40, 71)])
def test_dt_rows_cols_equal_full_transform(rng, rows, cols, shape):
    vals = rng.standard_normal(shape)
    vals[0, :] = vals[0, 0]  # a plateau: ties
    params = (0.05, 0.1, 0.2, -0.1)
    M, Ix, Iy = distance_transform(vals, *params)
    m, ix, iy = distance_transform(vals, *params, rows=rows, cols=cols)
    rows = rows or slice(None)
    cols = cols or slice(None)
    assert m.shape == M[rows, cols].shape
    assert_array_equal(m, M[rows, cols])
    assert_array_equal(ix, Ix[rows, cols])
    assert_array_equal(iy, Iy[rows, cols])


@pytest.mark.parametrize("a, b", [(0.0, 0.0), (1e-9, 0.0), (0.01, -0.3), (1e6, 0.0), (0.5, 5.0)])
def test_dt_cols_equal_full_transform_nan_and_ties(rng, a, b):
    # NaN, infinities and integer plateaus make the scan order matter: the
    # subset must reproduce the full divide and conquer's choices exactly.
    vals = rng.integers(-3, 3, size=(13, 57)).astype(np.float64)
    vals[2, 10] = np.nan
    vals[5, 20:30] = np.inf
    vals[7, 3] = -np.inf
    M, Ix, Iy = distance_transform(vals, a, b, a, b)
    for rows, cols in ((slice(0, None, 2), slice(1, None, 2)), (slice(1, None, 2), slice(0, 50, 2))):
        m, ix, iy = distance_transform(vals, a, b, a, b, rows=rows, cols=cols)
        assert_array_equal(m, M[rows, cols])
        assert_array_equal(ix, Ix[rows, cols])
        assert_array_equal(iy, Iy[rows, cols])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows", [None, slice(1, None, 2)])
def test_dt_negate_and_float32_equal_the_converted_negated_map(rng, dtype, rows):
    vals = (rng.standard_normal((19, 26)) * 3).astype(dtype)
    vals[4, 5:9] = vals[4, 5]  # a plateau: ties
    ref = distance_transform(-vals.astype(np.float64), 0.05, -0.1, 0.02, 0.3, rows=rows)
    got = distance_transform(vals, 0.05, -0.1, 0.02, 0.3, rows=rows, negate=True)
    for a, b in zip(got, ref):
        assert_array_equal(a, b)
    plain = distance_transform(vals, 0.05, -0.1, 0.02, 0.3, rows=rows)
    for a, b in zip(plain, distance_transform(vals.astype(np.float64), 0.05, -0.1, 0.02, 0.3, rows=rows)):
        assert_array_equal(a, b)
    check_against_brute_force(-vals.astype(np.float64), 0.05, -0.1, 0.02, 0.3)


def test_dt_accepts_other_dtypes_and_layouts(rng):
    vals = rng.standard_normal((9, 14))
    ref = distance_transform(vals, 0.1, 0.0, 0.1, 0.0)
    fortran = distance_transform(np.asfortranarray(vals), 0.1, 0.0, 0.1, 0.0)
    strided = distance_transform(np.repeat(vals, 2, axis=1)[:, ::2], 0.1, 0.0, 0.1, 0.0)
    for got in (fortran, strided):
        for a, b in zip(got, ref):
            assert_array_equal(a, b)
    ints = rng.integers(-5, 5, size=(6, 7))
    check_against_brute_force(ints, 0.5, 0.0, 0.5, 0.0)


@pytest.mark.parametrize("kwargs, match", [
    (dict(ax=-0.1), "ax must be >= 0"),
    (dict(ay=-1e-9), "ay must be >= 0"),
    (dict(bx=np.nan), "bx must be finite"),
    (dict(by=np.inf), "by must be finite"),
    (dict(ax=np.inf), "ax must be finite"),
    (dict(ay="x"), "ay must be a real number"),
])
def test_dt_rejects_bad_coefficients(kwargs, match):
    params = dict(ax=0.1, bx=0.0, ay=0.1, by=0.0)
    params.update(kwargs)
    with pytest.raises(ValueError, match=match):
        distance_transform(np.zeros((3, 3)), **params)


@pytest.mark.parametrize("vals", [np.zeros(5), np.zeros((2, 2, 2)), np.zeros((0, 4)),
                                  np.zeros((3, 0))])
def test_dt_rejects_bad_shapes(vals):
    with pytest.raises(ValueError, match="non-empty 2-D"):
        distance_transform(vals, 0.1, 0.0, 0.1, 0.0)


@pytest.mark.parametrize("rows, match", [(slice(None, None, -1), "positive step"),
                                         (slice(0, 4, 0), "positive step"),
                                         ([0, 2], "slice or None")])
def test_dt_rejects_bad_rows(rows, match):
    with pytest.raises(ValueError, match=match):
        distance_transform(np.zeros((4, 4)), 0.1, 0.0, 0.1, 0.0, rows=rows)
    with pytest.raises(ValueError, match=match):
        distance_transform(np.zeros((4, 4)), 0.1, 0.0, 0.1, 0.0, cols=rows)


# ---------------------------------------------------------------------------
# Kernels


def test_dt_kernel_names():
    assert _dt._kernel("best") in ("lines", "avx2")
    assert _dt._kernel("lines") == "lines"
    assert _dt._kernel("scalar") == "scalar"
    assert _dt._kernel("vector") in ("vector", "scalar")
    with pytest.raises(ValueError, match="unknown kernel"):
        _dt._kernel("fast")


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (9, 1), (7, 8), (8, 7), (16, 16), (33, 70), (70, 17)])
@pytest.mark.parametrize("subset", [False, True])
def test_dt_kernels_agree(rng, kernel, shape, subset):
    # Lines are grouped 8 at a time: sizes around multiples of 8, NaN,
    # infinities, plateaus (ties) and float32 input through each kernel
    # against the line-by-line kernel.
    vals = rng.integers(-4, 4, size=shape).astype(np.float64) + 0.25 * rng.standard_normal(shape)
    vals[:, shape[1] // 2] = 1.0
    flat = vals.reshape(-1)
    flat[rng.integers(0, flat.size, size=max(1, flat.size // 20))] = np.nan
    flat[rng.integers(0, flat.size, size=max(1, flat.size // 20))] = np.inf
    flat[rng.integers(0, flat.size, size=max(1, flat.size // 30))] = -np.inf
    kwargs = dict(rows=slice(1, None, 2), cols=slice(0, None, 2)) if subset else {}
    for data in (vals, vals.astype(np.float32)):
        for params in ((0.05, 0.1, 0.2, -0.1), (0.0, 0.0, 0.0, 0.0), (3.0, 1.0, 1e-9, 0.5)):
            for negate in (False, True):
                got = distance_transform(data, *params, negate=negate, **kwargs)
                _dt._kernel("lines")
                ref = distance_transform(data, *params, negate=negate, **kwargs)
                _dt._kernel(kernel)
                for g, r in zip(got, ref):
                    assert_array_equal(g, r)
