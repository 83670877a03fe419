"""Tests of the filter responses (valid cross-correlation, port of fconv.cc semantics)."""
import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view
from numpy.testing import assert_allclose

from conftest import builds_of
import dpm.convolve as convolve_module
from dpm.convolve import FilterBank, convolve, get_blas_threads, limit_blas_threads


# ---------------------------------------------------------------------------
# Slow reference and tolerances


def reference_correlate(features, filt):
    """Explicit sum over every window, in float64: C[y, x] = sum A[y+i, x+j, c] B[i, j, c]."""
    a = np.asarray(features, dtype=np.float64)
    b = np.asarray(filt, dtype=np.float64)
    h, w, c = b.shape
    windows = sliding_window_view(a, (h, w, c))[:, :, 0]  # (H-h+1, W-w+1, h, w, C)
    return np.einsum("yxijc,ijc->yx", windows, b)


def magnitude(features, filt):
    """max over windows of sum |A| |B|: the scale rounding errors are proportional to."""
    return float(reference_correlate(np.abs(features), np.abs(filt)).max(initial=0.0))


# Per dtype: (rtol, atol factor).  The absolute tolerance is atol factor x
# magnitude(A, B).  A response is a sum of n = h*w*C products, so the rounding
# error of any summation order is at most about n * eps * sum|a*b| (and in
# practice ~sqrt(n) * eps * sum|a*b|).  Values near zero are cancellations of
# terms of that size, so only an absolute bound scaled by sum|a*b| is fair for
# them; a relative one is not.  The factors sit far above float64/float32
# rounding (eps = 2.2e-16 / 1.2e-7) but far below the effect of one wrong or
# missing product (~1 / n of the magnitude).
TOLERANCES = {np.float64: (1e-10, 1e-12), np.float32: (1e-4, 2e-6)}


def assert_matches_reference(results, features, filters, dtype):
    rtol, atol_factor = TOLERANCES[dtype]
    assert len(results) == len(filters)
    for i, (got, filt) in enumerate(zip(results, filters)):
        expected = reference_correlate(np.asarray(features, dtype=dtype),
                                       np.asarray(filt, dtype=dtype))
        assert got.dtype == dtype, f"filter {i}"
        assert got.shape == expected.shape, f"filter {i}"
        assert got.flags.c_contiguous
        assert_allclose(got, expected, rtol=rtol, atol=atol_factor * magnitude(features, filt),
                        err_msg=f"filter {i} of size {filt.shape}")


DTYPES = [np.float64, np.float32]


# ---------------------------------------------------------------------------
# Golden outputs of the original fconv


def test_convolve_matches_original_golden(golden):
    g = golden("fconv")
    filters = [g[f"B{i}"] for i in range(1, 6)]
    results = FilterBank(filters).convolve(g["A"])
    expected = [g["C1"], g["C2"], g["C3"], g["C4"], g["C5"]]
    # Sub-range call fconv(A, B, 2, 3): the same filters on their own.
    sub = FilterBank(filters[1:3]).convolve(g["A"])
    results += sub
    expected += [g["C2_sub"], g["C3_sub"]]
    for i, (got, exp) in enumerate(zip(results, expected)):
        exp = np.asarray(exp, dtype=np.float64)
        if exp.ndim == 0:  # the 1x1 output of the map-sized B4 is stored as a scalar
            exp = exp.reshape(1, 1)
        filt = (filters + filters[1:3])[i]
        assert got.shape == exp.shape
        # Both sides round a sum of n = h*w*31 products (up to 62000 for B4): the
        # difference is bounded by 2 * n * eps * sum|a*b|, which is the fair atol
        # for outputs that cancel to near zero; elsewhere rtol = 1e-6 applies.
        atol = 2 * filt.size * np.finfo(np.float64).eps * magnitude(g["A"], filt)
        assert_allclose(got, exp, rtol=1e-6, atol=atol, err_msg=f"output {i}")


# ---------------------------------------------------------------------------
# NumPy reference on random inputs


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("map_shape, filter_shapes", [
    ((9, 1, 5), [(3, 1), (1, 1), (9, 1)]),        # 1-pixel-wide map
    ((1, 11, 5), [(1, 4), (1, 1), (1, 11)]),      # 1-pixel-high map
    ((1, 1, 7), [(1, 1)]),                        # 1x1 map and filter
    ((12, 15, 31), [(1, 1), (12, 15), (6, 6)]),   # 1x1 filter, filter equal to the map
    ((30, 14, 31), [(23, 3), (21, 14), (5, 7)]),  # filter heights > 20
    ((17, 13, 3), [(4, 2), (2, 4), (17, 1), (1, 13)]),
])
def test_convolve_random_matches_reference(rng, dtype, map_shape, filter_shapes):
    c = map_shape[2]
    features = rng.standard_normal(map_shape)
    filters = [rng.standard_normal((h, w, c)) for h, w in filter_shapes]
    results = FilterBank(filters, dtype=dtype).convolve(features)
    assert_matches_reference(results, features, filters, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_convolve_many_filters_of_different_sizes(rng, dtype):
    sizes = [(6, 6), (7, 6), (9, 5), (5, 6), (8, 4), (11, 7), (1, 1), (3, 10), (13, 2), (6, 7),
             (2, 2), (10, 10)]
    features = rng.standard_normal((37, 41, 31))
    filters = [rng.standard_normal((h, w, 31)) for h, w in sizes]
    bank = FilterBank(filters, dtype=dtype)
    assert len(bank) == len(filters) and bank.sizes == sizes
    assert_matches_reference(bank.convolve(features), features, filters, dtype)
    # The same bank on another map size.
    other = rng.standard_normal((14, 25, 31))
    assert_matches_reference(bank.convolve(other), other, filters, dtype)


@pytest.mark.parametrize("band_bytes", [1, 3000, 1 << 30])
def test_convolve_row_bands_accumulate(rng, monkeypatch, band_bytes):
    # One row per band, a few rows per band, and the whole map in one band.
    monkeypatch.setattr(convolve_module, "BAND_BYTES", band_bytes)
    features = rng.standard_normal((19, 16, 8))
    filters = [rng.standard_normal((h, w, 8)) for h, w in [(5, 3), (1, 1), (19, 2), (7, 16)]]
    assert_matches_reference(convolve(features, filters), features, filters, np.float64)


@pytest.mark.parametrize("band_bytes", [1, 5000, 1 << 30])
def test_convolve_zero_positions_are_skipped_exactly(rng, monkeypatch, band_bytes):
    # Zero padding (whole rows and columns), an interior zero row, isolated zero
    # positions, and rows whose first/last positions are zero: the kernel skips
    # zero positions, which must not change any response.
    monkeypatch.setattr(convolve_module, "BAND_BYTES", band_bytes)
    features = np.zeros((31, 27, 6))
    features[5:25, 4:21] = rng.standard_normal((20, 17, 6))
    features[12] = 0.0
    features[8, 9] = 0.0
    features[17, 4:7] = 0.0
    features[20, 18:21] = 0.0
    features[6, 10, 3] = 0.0  # one zero channel only: the position still counts
    sizes = [(5, 3), (1, 1), (14, 10), (31, 2), (2, 27)]
    filters = [rng.standard_normal((h, w, 6)) for h, w in sizes]
    for dtype in DTYPES:
        results = FilterBank(filters, dtype=dtype).convolve(features)
        assert_matches_reference(results, features, filters, dtype)


@pytest.mark.parametrize("band_bytes", [1, 5000, 1 << 30])
@pytest.mark.parametrize("pad", [(0, 0), (1, 0), (0, 2), (3, 4), (6, 9)])
def test_convolve_pad_equals_padded_map(rng, monkeypatch, band_bytes, pad):
    # pad=(py, px) must give the responses of the zero-padded map: filters
    # wider than the map plus padding on one side, as wide as the padded map,
    # 1x1, a 1-column map, and zero rows / edge positions inside the map.
    monkeypatch.setattr(convolve_module, "BAND_BYTES", band_bytes)
    py, px = pad
    for shape in [(9, 11, 5), (4, 1, 5), (1, 7, 5)]:
        features = rng.standard_normal(shape)
        if shape[0] > 3:
            features[2] = 0.0
            features[-1, 0] = 0.0
        padded = np.pad(features, ((py, py), (px, px), (0, 0)))
        H, W = padded.shape[:2]
        sizes = [(1, 1), (min(3, H), min(4, W)), (H, min(2, W)), (min(2, H), W),
                 (min(shape[0] + py, H), min(shape[1] + px, W))]
        filters = [rng.standard_normal((h, w, 5)) for h, w in sizes]
        for dtype in DTYPES:
            results = FilterBank(filters, dtype=dtype).convolve(features, pad=pad)
            assert_matches_reference(results, padded, filters, dtype)


# ---------------------------------------------------------------------------
# Fixed summation order (exact_order=True, what training uses)


def fixed_order_reference(features, filt):
    """The order documented in dpm/_convolve.pyx for an unpadded map, in NumPy.

    Cell products summed from 0 over the channels in order; the cells of a
    filter row added in groups of four (two, one at the row's end) as
    ``(P0 + P1) + (P2 + P3)``; the rows ``dy`` added in ascending order.
    """
    a = np.asarray(features, dtype=np.float64)
    b = np.asarray(filt, dtype=np.float64)
    H, W, C = a.shape
    h, w, _ = b.shape
    hout, wout = H - h + 1, W - w + 1

    def cell(dy, dx):
        s = np.zeros((hout, wout))
        for c in range(C):
            s = s + a[dy:dy + hout, dx:dx + wout, c] * b[dy, dx, c]
        return s

    out = np.zeros((hout, wout))
    for dy in range(h):
        dx = 0
        while dx < w:
            g = 4 if dx + 3 < w else (2 if dx + 1 < w else 1)
            p = [cell(dy, d) for d in range(dx, dx + g)]
            out = out + ((p[0] + p[1]) + (p[2] + p[3]) if g == 4 else (p[0] + p[1] if g == 2 else p[0]))
            dx += g
    return out


def bits(a):
    return np.ascontiguousarray(a, dtype=np.float64).view(np.uint64)


@pytest.mark.parametrize("map_shape, filter_shapes", [
    ((9, 1, 5), [(3, 1), (1, 1), (9, 1)]),
    ((12, 15, 31), [(1, 1), (12, 15), (6, 6), (5, 7)]),
    ((30, 19, 31), [(7, 8), (10, 6), (6, 10), (13, 6)]),   # the built-in model's filter sizes
])
def test_exact_order_is_the_documented_order(rng, map_shape, filter_shapes):
    features = rng.standard_normal(map_shape)
    filters = [rng.standard_normal((h, w, map_shape[2])) for h, w in filter_shapes]
    for got, filt in zip(FilterBank(filters).convolve(features, exact_order=True), filters):
        np.testing.assert_array_equal(bits(got), bits(fixed_order_reference(features, filt)))


@pytest.mark.parametrize("pad", [(0, 0), (3, 4), (8, 4)])
def test_exact_order_matches_reference(rng, pad):
    features = rng.standard_normal((23, 17, 31))
    features[4] = 0.0
    padded = np.pad(features, ((pad[0], pad[0]), (pad[1], pad[1]), (0, 0)))
    filters = [rng.standard_normal((h, w, 31)) for h, w in [(1, 1), (7, 8), (10, 6), (13, 6), (2, 3)]]
    results = FilterBank(filters).convolve(features, pad=pad, exact_order=True)
    assert_matches_reference(results, padded, filters, np.float64)


@pytest.mark.parametrize("band_bytes", [1, 5000, 1 << 30])
def test_exact_order_same_bits_for_any_band_height(rng, monkeypatch, band_bytes):
    features = rng.standard_normal((29, 21, 31))
    features[7] = 0.0
    features[11, :5] = 0.0
    bank = FilterBank([rng.standard_normal((h, w, 31)) for h, w in [(7, 8), (10, 6), (1, 1), (3, 5)]])
    expected = bank.convolve(features, pad=(8, 4), exact_order=True)
    monkeypatch.setattr(convolve_module, "BAND_BYTES", band_bytes)
    for got, want in zip(bank.convolve(features, pad=(8, 4), exact_order=True), expected):
        np.testing.assert_array_equal(bits(got), bits(want))


def test_exact_order_portable_and_avx2_builds_identical(rng):
    """Every build of the kernel gives the same bits (position counts that are
    not multiples of the vector blocks, cell counts that are not multiples of 4)."""
    import importlib

    modules = [importlib.import_module(name) for name in builds_of("dpm._convolve")]
    if len(modules) < 2:
        pytest.skip("no AVX2 build of dpm._convolve on this processor or platform")
    for shape, sizes, pad in [((37, 29, 31), [(7, 8), (10, 6), (6, 10)], (16, 8)),
                              ((13, 6, 31), [(13, 6)], (8, 4)),
                              ((5, 3, 7), [(1, 1), (2, 3), (5, 3)], (1, 2)),
                              ((40, 33, 31), [(3, 3), (1, 2), (9, 9)], (0, 0))]:
        features = rng.standard_normal(shape)
        bank = FilterBank([rng.standard_normal((h, w, shape[2])) for h, w in sizes])
        layout, _, total = bank._layout(shape[0] + 2 * pad[0], shape[1] + 2 * pad[1])
        outs = []
        for module in modules:
            out = np.zeros(total)
            module.convolve_bank_fixed(features, bank._bank, layout, out, convolve_module.BAND_BYTES, *pad)
            outs.append(out)
        for out in outs[1:]:
            np.testing.assert_array_equal(bits(out), bits(outs[0]))


def test_exact_order_needs_float64(rng):
    bank = FilterBank([np.ones((2, 2, 3))], dtype=np.float32)
    with pytest.raises(ValueError, match="exact_order=True needs a float64 FilterBank"):
        bank.convolve(np.ones((4, 4, 3)), exact_order=True)


def test_convolve_pad_of_empty_map(rng):
    # A (0, W) map padded is all zeros; the responses are zeros of the padded size.
    filters = [rng.standard_normal((2, 2, 3))]
    (out,) = FilterBank(filters).convolve(np.zeros((0, 4, 3)), pad=(2, 1))
    assert out.shape == (3, 5)
    assert not out.any()
    with pytest.raises(ValueError, match="pad"):
        FilterBank(filters).convolve(np.ones((3, 3, 3)), pad=(-1, 0))


def test_convolve_all_zero_map(rng):
    filters = [rng.standard_normal((3, 4, 5)), rng.standard_normal((1, 1, 5))]
    results = convolve(np.zeros((6, 7, 5)), filters)
    assert [r.shape for r in results] == [(4, 4), (6, 7)]
    assert all(np.array_equal(r, np.zeros_like(r)) for r in results)


def test_convolve_non_finite_features_propagate(rng):
    # NaN and inf are not zeros: they must reach every window that covers them.
    features = rng.standard_normal((6, 6, 2))
    features[2, 3, 1] = np.nan
    features[0, 0] = 0.0
    (out,) = convolve(features, [rng.standard_normal((2, 2, 2))])
    expected = np.zeros((5, 5), dtype=bool)
    expected[1:3, 2:4] = True
    assert np.array_equal(np.isnan(out), expected)


def test_convolve_is_not_flipped():
    # A single hot cell in the filter picks the map value at that offset.
    features = np.arange(5 * 6, dtype=np.float64).reshape(5, 6, 1)
    filt = np.zeros((2, 3, 1))
    filt[1, 2, 0] = 1.0
    (out,) = convolve(features, [filt])
    assert out.shape == (4, 4)
    assert np.array_equal(out, features[1:5, 2:6, 0])


def test_convolve_input_conversion(rng):
    filters = [rng.standard_normal((3, 2, 4))]
    base = rng.standard_normal((8, 7, 4))
    ref = FilterBank(filters).convolve(base)[0]
    fortran = FilterBank(filters).convolve(np.asfortranarray(base))[0]
    strided = FilterBank(filters).convolve(np.repeat(base, 2, axis=0)[::2])[0]
    assert np.array_equal(fortran, ref) and np.array_equal(strided, ref)
    as_float32 = FilterBank(filters).convolve(base.astype(np.float32))[0]
    assert as_float32.dtype == np.float64
    ints = rng.integers(-3, 4, size=(6, 5, 4))
    assert_matches_reference(FilterBank(filters).convolve(ints), ints, filters, np.float64)


def test_convolve_float32_bank_outputs_float32(rng):
    bank = FilterBank([rng.standard_normal((2, 2, 3))], dtype=np.float32)
    out = bank.convolve(rng.standard_normal((4, 4, 3)))[0]
    assert bank.dtype == np.float32 and out.dtype == np.float32


# ---------------------------------------------------------------------------
# Errors and empty outputs


def test_convolve_filter_larger_than_map_raises(rng):
    filters = [rng.standard_normal((2, 2, 3)), rng.standard_normal((5, 2, 3))]
    with pytest.raises(ValueError,
                       match=r"filter 1 of size 5x2 is larger than the 4x6 feature map"):
        convolve(rng.standard_normal((4, 6, 3)), filters)
    with pytest.raises(ValueError, match=r"filter 0 of size 1x7 is larger than the 4x6"):
        convolve(rng.standard_normal((4, 6, 3)), [np.ones((1, 7, 3))])


def test_convolve_allow_empty(rng):
    features = rng.standard_normal((4, 6, 3))
    filters = [rng.standard_normal((2, 2, 3)), rng.standard_normal((5, 2, 3)),
               rng.standard_normal((9, 9, 3)), rng.standard_normal((3, 6, 3))]
    results = convolve(features, filters, allow_empty=True)
    assert [r.shape for r in results] == [(3, 5), (0, 5), (0, 0), (2, 1)]
    assert_matches_reference([results[0], results[3]], features, [filters[0], filters[3]],
                             np.float64)
    # A map too small for every filter.
    results = convolve(features[:1, :1], filters[1:3], allow_empty=True)
    assert [r.shape for r in results] == [(0, 0), (0, 0)]


@pytest.mark.parametrize("features, match", [
    (np.zeros((4, 4)), r"\(H, W, C\) array"),
    (np.zeros((4, 4, 2)), "features have 2 channels but the filters have 3"),
])
def test_convolve_rejects_bad_features(features, match):
    with pytest.raises(ValueError, match=match):
        FilterBank([np.ones((1, 1, 3))]).convolve(features)


@pytest.mark.parametrize("filters, kwargs, match", [
    ([], {}, "at least one filter"),
    ([np.ones((2, 2))], {}, r"filter 0 must be a non-empty \(h, w, C\)"),
    ([np.ones((2, 2, 3)), np.ones((0, 2, 3))], {}, "filter 1 must be a non-empty"),
    ([np.ones((2, 2, 3)), np.ones((2, 2, 4))], {}, "filter 1 has 4 channels, filter 0 has 3"),
    ([np.ones((2, 2, 3))], {"dtype": np.int32}, "float32 or float64"),
])
def test_filterbank_rejects_bad_filters(filters, kwargs, match):
    with pytest.raises(ValueError, match=match):
        FilterBank(filters, **kwargs)


# ---------------------------------------------------------------------------
# BLAS threads


def test_limit_blas_threads_sets_and_restores():
    before = get_blas_threads()
    if before is None:
        pytest.skip("SciPy's OpenBLAS could not be located; its threads are not controllable here")
    with limit_blas_threads(1):
        assert get_blas_threads() == 1
        with limit_blas_threads(2):
            assert get_blas_threads() == 2
        assert get_blas_threads() == 1  # the enclosing limit applies again
    assert get_blas_threads() == before
    with limit_blas_threads(None):
        assert get_blas_threads() == before


def test_convolve_leaves_blas_threads_unchanged(rng):
    before = get_blas_threads()
    if before is None:
        pytest.skip("SciPy's OpenBLAS could not be located")
    convolve(rng.standard_normal((30, 30, 31)), [rng.standard_normal((6, 6, 31))])
    assert get_blas_threads() == before


def test_limit_blas_threads_rejects_zero():
    with pytest.raises(ValueError, match="blas_threads must be >= 1"):
        with limit_blas_threads(0):
            pass
