"""Tests of dpm.features.hog (port of voc-release3.1 features.cc, spec §1.4).

The kernel is checked against the original's outputs (golden/features.npz) and
against ``hog_reference``, a slow plain-NumPy transcription of the spec that
shares no code with the kernel (``benchmarks/bench_features.py`` imports it
too).
"""
import importlib

import numpy as np
import pytest

from conftest import builds_of
from dpm.features import FLIP_PERMUTATION, flip_features, hog
from dpm.features import _hog as kernels

kernels_module = importlib.import_module("dpm.features.kernels")


@pytest.fixture(autouse=True, params=builds_of("dpm.features._hog"))
def kernel_module(request, monkeypatch):
    """Every test runs with each build of the kernels."""
    module = importlib.import_module(request.param)
    monkeypatch.setattr(kernels_module, "_hog_kernels", module)
    monkeypatch.setitem(globals(), "kernels", module)
    return module

# The original's unit vectors, rounded to 4 decimals.
UU = np.array([1.0000, 0.9397, 0.7660, 0.500, 0.1736, -0.1736, -0.5000, -0.7660, -0.9397])
VV = np.array([0.0000, 0.3420, 0.6428, 0.8660, 0.9848, 0.9848, 0.8660, 0.6428, 0.3420])


def mround(x):
    """MATLAB round of a non-negative number (halves away from zero)."""
    return int(np.floor(x + 0.5))


def orientation_reference(dx, dy):
    """Bin 0..17 of gradients, as the original's loop over the 9 directions.

    The original keeps the first direction whose |dot| is strictly the largest
    (``dot > best`` then ``-dot > best``, starting from best = 0): bin o for a
    positive dot, o + 9 for a negative one, and bin 0 for a zero gradient.
    """
    dx = np.asarray(dx, dtype=np.float64)
    dy = np.asarray(dy, dtype=np.float64)
    dots = UU * dx[..., None] + VV * dy[..., None]     # same two roundings as C
    o = np.argmax(np.abs(dots), axis=-1)                # first maximum
    best = np.take_along_axis(dots, o[..., None], axis=-1)[..., 0]
    return np.where(best > 0, o, np.where(best < 0, o + 9, 0))


def hog_reference(image, sbin):
    """Plain-NumPy port of features.cc (slow, straightforward)."""
    im = np.asarray(image, dtype=np.float64)
    H, W = im.shape[:2]
    by, bx = mround(H / sbin), mround(W / sbin)
    oy, ox = max(by - 2, 0), max(bx - 2, 0)
    out = np.zeros((oy, ox, 31))
    if oy == 0 or ox == 0:
        return out
    # Visited pixels and the clamped pixel each one reads.
    xs = np.arange(1, bx * sbin - 1)
    ys = np.arange(1, by * sbin - 1)
    cx = np.minimum(xs, W - 2)
    cy = np.minimum(ys, H - 2)
    dx = im[cy][:, cx + 1] - im[cy][:, cx - 1]            # (ny, nx, 3)
    dy = im[cy + 1][:, cx] - im[cy - 1][:, cx]
    v = dx * dx + dy * dy
    # Strongest channel, the first one on a tie.
    best = np.zeros(v.shape[:2], dtype=int)
    for c in (1, 2):
        best[v[:, :, c] > np.take_along_axis(v, best[..., None], 2)[..., 0]] = c
    gx = np.take_along_axis(dx, best[..., None], 2)[..., 0]
    gy = np.take_along_axis(dy, best[..., None], 2)[..., 0]
    mag = np.sqrt(np.take_along_axis(v, best[..., None], 2)[..., 0])
    o = orientation_reference(gx, gy)
    # Bilinear spatial binning; contributions outside the grid are dropped.
    xp = (xs + 0.5) / sbin - 0.5
    yp = (ys + 0.5) / sbin - 0.5
    ixp = np.floor(xp).astype(int)
    iyp = np.floor(yp).astype(int)
    vx0 = xp - ixp
    vy0 = yp - iyp
    vx1 = 1.0 - vx0
    vy1 = 1.0 - vy0
    hist = np.zeros((by, bx, 18))
    IX, IY = np.meshgrid(ixp, iyp)
    for ddx, ddy, wx, wy in [(0, 0, vx1, vy1), (1, 0, vx0, vy1), (0, 1, vx1, vy0), (1, 1, vx0, vy0)]:
        weight = wy[:, None] * wx[None, :] * mag
        cellx, celly = IX + ddx, IY + ddy
        ok = (cellx >= 0) & (cellx < bx) & (celly >= 0) & (celly < by)
        np.add.at(hist, (celly[ok], cellx[ok], o[ok]), weight[ok])
    # Block energies and the four normalisations of every output cell.
    energy = ((hist[:, :, :9] + hist[:, :, 9:]) ** 2).sum(axis=2)
    block = energy[:-1, :-1] + energy[1:, :-1] + energy[:-1, 1:] + energy[1:, 1:]
    inv = 1.0 / np.sqrt(block + 0.0001)
    n1 = inv[1:, 1:][:oy, :ox]    # the cell with its right, lower and diagonal neighbours
    n2 = inv[:-1, 1:][:oy, :ox]   # right and up
    n3 = inv[1:, :-1][:oy, :ox]   # left and down
    n4 = inv[:-1, :-1][:oy, :ox]  # left and up
    h = hist[1:-1, 1:-1]
    parts = [np.minimum(h * n[..., None], 0.2) for n in (n1, n2, n3, n4)]
    out[:, :, :18] = 0.5 * (parts[0] + parts[1] + parts[2] + parts[3])
    hi = h[:, :, :9] + h[:, :, 9:]
    ins = [np.minimum(hi * n[..., None], 0.2) for n in (n1, n2, n3, n4)]
    out[:, :, 18:27] = 0.5 * (ins[0] + ins[1] + ins[2] + ins[3])
    for k in range(4):
        out[:, :, 27 + k] = 0.2357 * parts[k].sum(axis=2)
    return out


def hog_shape(h, w, sbin):
    return (max(mround(h / sbin) - 2, 0), max(mround(w / sbin) - 2, 0), 31)


# ---------------------------------------------------------------- golden


def _golden_cases():
    names = ["000034", "000061", "000084", "synth1", "synth2", "synth3", "synth4", "gray1"]
    return [(name, sbin) for name in names for sbin in (8, 4)]


@pytest.mark.parametrize("name,sbin", _golden_cases())
def test_hog_matches_original(golden, name, sbin):
    data = golden("features")
    image = data[f"im_{name}"]
    if image.ndim == 2:                      # color.m: replicate the grey plane
        image = np.repeat(image[:, :, None], 3, axis=2)
    expected = data[f"f{sbin}_{name}"]
    got = hog(image, sbin)
    assert got.shape == expected.shape
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


# ---------------------------------------------------------------- reference


@pytest.mark.parametrize("shape,sbin", [
    ((48, 64), 8), ((100, 60), 8), ((38, 54), 4), ((61, 45), 4), ((37, 29), 6),
    ((33, 70), 2), ((20, 20), 1), ((24, 24), 8), ((52, 75), 10),
])
def test_hog_matches_reference_random(rng, shape, sbin):
    image = rng.uniform(0, 255, size=shape + (3,))
    np.testing.assert_allclose(hog(image, sbin), hog_reference(image, sbin), rtol=0, atol=1e-12)


@pytest.mark.parametrize("shape,sbin", [((64, 48), 8), ((45, 59), 4), ((30, 30), 3)])
def test_hog_matches_reference_integer_image(rng, shape, sbin):
    # Integer pixels make exact ties common: zero differences, equal channel
    # energies, gradients on the bisector of two directions.
    image = rng.integers(0, 4, size=shape + (3,)).astype(np.uint8) * 60
    np.testing.assert_allclose(hog(image, sbin), hog_reference(image, sbin), rtol=0, atol=1e-12)


@pytest.mark.parametrize("shape,sbin,expected", [
    ((100, 60), 8, (11, 6, 31)),     # 12.5 -> 13 and 7.5 -> 8 (half away from zero)
    ((38, 54), 4, (8, 12, 31)),      # 9.5 -> 10 and 13.5 -> 14
    ((300, 500), 8, (36, 61, 31)),
    ((480, 640), 8, (58, 78, 31)),
])
def test_hog_shape_rounds_half_away_from_zero(shape, sbin, expected):
    assert hog(np.zeros(shape + (3,)), sbin).shape == expected


@pytest.mark.parametrize("shape,sbin", [
    ((1, 1), 8), ((1, 50), 8), ((50, 1), 8), ((2, 40), 4), ((19, 100), 8), ((100, 19), 8),
    ((0, 0), 8), ((0, 30), 8), ((2, 2), 1), ((2, 2), 4), ((4, 200), 2), ((200, 9), 4),
])
def test_hog_tiny_images_give_empty_maps(rng, shape, sbin):
    image = rng.uniform(0, 255, size=shape + (3,))
    got = hog(image, sbin)
    assert got.shape == hog_shape(shape[0], shape[1], sbin)
    assert got.shape[0] == 0 or got.shape[1] == 0


def test_hog_one_pixel_wide_strip(rng):
    # 1 pixel wide: no cells across, so the map has no columns but keeps its rows.
    got = hog(rng.uniform(0, 255, size=(80, 1, 3)), 8)
    assert got.shape == (8, 0, 31)


def test_hog_smallest_nonempty_map_matches_reference(rng):
    image = rng.uniform(0, 255, size=(20, 21, 3))       # 2.5 -> 3 cells each way
    got = hog(image, 8)
    assert got.shape == (1, 1, 31)
    np.testing.assert_allclose(got, hog_reference(image, 8), rtol=0, atol=1e-12)


def test_hog_constant_image_is_zero():
    # Zero gradient everywhere: bin 0 with weight 0, so every histogram is 0
    # and every feature is 0 (the normalisation is 1/sqrt(eps)).
    got = hog(np.full((64, 80, 3), 77.0), 8)
    assert got.shape == (6, 8, 31)
    assert not got.any()


def test_hog_values_lie_in_documented_ranges(rng):
    got = hog(rng.uniform(0, 255, size=(96, 128, 3)), 8)
    assert got.min() >= 0
    assert got[:, :, :27].max() <= 0.4 + 1e-12
    assert got[:, :, 27:].max() <= 0.2357 * 18 * 0.2 + 1e-12


def test_hog_accepts_integer_and_float32_images(rng):
    image = rng.integers(0, 256, size=(40, 56, 3)).astype(np.uint8)
    expected = hog(image.astype(np.float64), 8)
    for dtype in (np.uint8, np.int32, np.float32, np.int64):
        np.testing.assert_array_equal(hog(image.astype(dtype), 8), expected)


def test_hog_does_not_depend_on_memory_layout(rng):
    image = rng.uniform(0, 255, size=(40, 56, 3))
    expected = hog(image, 8)
    np.testing.assert_array_equal(hog(np.asfortranarray(image), 8), expected)
    big = rng.uniform(0, 255, size=(80, 112, 3))
    big[::2, ::2] = image
    np.testing.assert_array_equal(hog(big[::2, ::2], 8), expected)


def test_hog_uses_the_first_channel_on_a_tie():
    # Centre pixel (1, 1) of a 3x3 image: R has (dx, dy) = (3, 4), G has (4, 3),
    # the same energy 25; B is flat.  The original keeps R (strict ">").
    image = np.zeros((3, 3, 3))
    image[1, 2, 0], image[2, 1, 0] = 3, 4
    image[1, 2, 1], image[2, 1, 1] = 4, 3
    magnitude = np.empty((3, 3))
    orientation = np.empty((3, 3), dtype=np.uint8)
    kernels.gradient_bins(image, magnitude, orientation)
    assert magnitude[1, 1] == 25.0                   # squared; hog.py takes the root
    assert orientation[1, 1] == orientation_reference(3.0, 4.0)
    assert orientation_reference(3.0, 4.0) != orientation_reference(4.0, 3.0)


def test_hog_channel_ties_match_reference(rng):
    # The same plane in all three channels: every pixel is a three-way tie.
    plane = rng.integers(0, 256, size=(40, 48)).astype(np.float64)
    image = np.repeat(plane[:, :, None], 3, axis=2)
    np.testing.assert_allclose(hog(image, 4), hog_reference(image, 4), rtol=0, atol=1e-12)


# ---------------------------------------------------------------- orientation


def _orientation_kernel(dx, dy, reference=False):
    out = np.empty(dx.size, dtype=np.uint8)
    kernels.orientation_bins(np.ascontiguousarray(dx, dtype=np.float64),
                             np.ascontiguousarray(dy, dtype=np.float64), out, reference)
    return out


def test_orientation_zero_gradient_is_bin_zero():
    assert _orientation_kernel(np.zeros(5), np.zeros(5)).tolist() == [0] * 5
    assert orientation_reference(0.0, 0.0) == 0


def test_orientation_known_directions():
    # y points down; bin o is direction 20*o degrees, o + 9 the opposite one.
    dx = np.array([1.0, 0.0, -1.0, 0.0, 1.0, -1.0])
    dy = np.array([0.0, 1.0, 0.0, -1.0, 1.0, -1.0])
    # (0, 1) ties between 80 and 100 degrees: the first (4) wins; (0, -1) -> 13.
    assert _orientation_kernel(dx, dy).tolist() == [0, 4, 9, 13, 2, 11]


def test_orientation_integer_grid_matches_reference():
    g = np.arange(-255.0, 256.0)
    dx, dy = (a.ravel() for a in np.meshgrid(g, g))
    np.testing.assert_array_equal(_orientation_kernel(dx, dy), orientation_reference(dx, dy))


@pytest.mark.parametrize("scale", [1.0, 1e-3, 1e-14, 1e-300, 1e-310, 1e300])
def test_orientation_random_matches_reference(rng, scale):
    dx = rng.normal(size=200_000) * scale
    dy = rng.normal(size=200_000) * scale
    np.testing.assert_array_equal(_orientation_kernel(dx, dy), orientation_reference(dx, dy))


def test_orientation_subnormal_gradients_match_reference(rng):
    # Multiples of the smallest subnormal: the dot products lose most of their
    # precision.
    tiny = np.nextafter(0.0, 1.0)
    g = np.arange(-60, 61) * tiny
    dx, dy = (a.ravel() for a in np.meshgrid(g, g))
    np.testing.assert_array_equal(_orientation_kernel(dx, dy), orientation_reference(dx, dy))
    dx = rng.integers(-10**6, 10**6, size=100_000) * tiny
    dy = rng.integers(-10**6, 10**6, size=100_000) * tiny
    np.testing.assert_array_equal(_orientation_kernel(dx, dy), orientation_reference(dx, dy))


def test_orientation_near_bin_boundaries_matches_reference(rng):
    # Directions within 1e-12 degree of the bin boundaries (10 + 20k degrees).
    angle = np.repeat(np.arange(-180.0, 180.0, 10.0), 5000)
    angle = np.deg2rad(angle + rng.normal(size=angle.size) * 1e-12)
    r = rng.uniform(0, 300, size=angle.size)
    dx, dy = r * np.cos(angle), r * np.sin(angle)
    np.testing.assert_array_equal(_orientation_kernel(dx, dy), orientation_reference(dx, dy))


def test_orientation_one_component_at_rounding_level_matches_reference(rng):
    # |dx| a few ulps of 100 next to a large dy (and vice versa): the dot
    # products of mirrored directions round to the same value.
    big = rng.uniform(-255, 255, size=100_000)
    small = rng.integers(-3, 4, size=100_000) * np.spacing(100.0)
    for dx, dy in [(small, big), (big, small)]:
        np.testing.assert_array_equal(_orientation_kernel(dx, dy), orientation_reference(dx, dy))


# (|dx|, |dy|) on which the rounded dot products of two neighbouring directions
# are exactly equal, found by search: m_0 = m_1, m_1 = m_2, m_2 = m_3, m_3 = m_4
# with m_p = UU[p] |dx| + VV[p] |dy|.
EXACT_TIES = [(380.0, 67.0), (1504.0, 868.5), (837.0, 997.5), (99.0, 272.0)]


def test_orientation_exact_ties_between_directions_match_reference():
    a, b = np.array(EXACT_TIES).T
    m = UU[:5] * a[:, None] + VV[:5] * b[:, None]
    assert all(m[p, p] == m[p, p + 1] for p in range(4))      # the ties are real
    dx, dy = [], []
    for scale in (1.0, 0.5, 0.125, 2.0 ** -10):                # powers of 2 keep ties
        for sx in (1, -1):
            for sy in (1, -1):
                dx.extend(sx * a * scale)
                dy.extend(sy * b * scale)
    dx, dy = np.array(dx), np.array(dy)
    np.testing.assert_array_equal(_orientation_kernel(dx, dy), orientation_reference(dx, dy))
    np.testing.assert_array_equal(_orientation_kernel(dy, dx), orientation_reference(dy, dx))


def test_orientation_reference_loop_in_kernel_agrees(rng):
    dx = rng.integers(-20, 21, size=10_000).astype(np.float64)
    dy = rng.integers(-20, 21, size=10_000).astype(np.float64)
    np.testing.assert_array_equal(_orientation_kernel(dx, dy, reference=True),
                                  orientation_reference(dx, dy))


def test_gradient_bins_match_reference_on_planted_gradients(rng):
    # A 3-row image whose middle row has chosen gradients at every third pixel.
    n = 3000
    gx = np.concatenate([rng.integers(-255, 256, n // 2).astype(float),
                         rng.integers(-3, 4, n // 2) * np.spacing(100.0)])
    gy = np.concatenate([rng.integers(-255, 256, n // 2).astype(float),
                         rng.uniform(-255, 255, n // 2)])
    image = np.zeros((3, 3 * n, 3))
    cols = 3 * np.arange(n) + 1
    image[1, cols + 1, 0] = gx            # dx = right - left, left is 0
    image[2, cols, 0] = gy                # dy = below - above, above is 0
    magnitude = np.empty((3, 3 * n))
    orientation = np.empty((3, 3 * n), dtype=np.uint8)
    kernels.gradient_bins(image, magnitude, orientation)
    np.testing.assert_array_equal(orientation[1, cols], orientation_reference(gx, gy))
    np.testing.assert_array_equal(magnitude[1, cols], gx * gx + gy * gy)
    # The one-pixel border is zeroed.
    assert not magnitude[[0, 2]].any() and not orientation[[0, 2]].any()
    assert not magnitude[:, [0, -1]].any() and not orientation[:, [0, -1]].any()


# ---------------------------------------------------------------- flip


def test_hog_flip_equivariance_when_width_is_a_multiple_of_sbin(rng):
    # With W = cells * sbin the visited columns 1..W-2 and the cell centres are
    # symmetric under x -> W-1-x, so mirroring the image mirrors the features,
    # up to the rounding of the histogram sums, whose terms come in another
    # order (as in the original).  Non-integer pixels avoid the exact ties
    # discussed below.
    for shape, sbin in [((64, 80), 8), ((50, 48), 4), ((37, 96), 8), ((40, 60), 6)]:
        image = rng.uniform(0, 255, size=shape + (3,))
        np.testing.assert_allclose(hog(image[:, ::-1], sbin), flip_features(hog(image, sbin)),
                                   rtol=0, atol=1e-12)


def test_hog_flip_exception_width_not_multiple_of_sbin(rng):
    # W = 84 (10.5 -> 11 cells): the grid extends 4 pixels past the right edge,
    # where the last interior gradient is replicated; the mirrored image does
    # that on the other side instead.  W = 83 (10 cells) drops 3 columns on the
    # right only.
    for width in (84, 83):
        image = rng.uniform(0, 255, size=(64, width, 3))
        assert not np.allclose(hog(image[:, ::-1], 8), flip_features(hog(image, 8)), atol=1e-3)


def test_hog_flip_exception_vertical_gradients_tie():
    # Rows only: dx = 0, so directions 80 and 100 degrees tie and the original
    # picks bin 4 (or 13) in both the image and its mirror, while flipping maps
    # bin 4 to bin 5.  The equivariance fails exactly there.
    y = np.arange(64, dtype=np.float64)
    image = np.repeat((100 + 80 * np.sin(y / 5))[:, None, None], 80, axis=1).repeat(3, axis=2)
    direct = hog(image, 8)
    np.testing.assert_array_equal(hog(image[:, ::-1], 8), direct)     # the same image
    assert direct[:, :, [4, 13]].sum() > 0 and not direct[:, :, [5, 14]].any()
    flipped = flip_features(direct)
    tied = [4, 5, 13, 14, 22, 23]          # sensitive 4/5, 13/14; insensitive 4/5
    others = np.setdiff1d(np.arange(31), tied)
    np.testing.assert_allclose(flipped[:, :, others], direct[:, :, others], rtol=0, atol=1e-12)
    assert not np.allclose(flipped[:, :, tied], direct[:, :, tied], atol=1e-3)


def test_flip_permutation_is_an_involution():
    np.testing.assert_array_equal(FLIP_PERMUTATION[FLIP_PERMUTATION], np.arange(31))


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("shape", [(20, 20), (20, 20, 1), (20, 20, 4), (20, 20, 3, 1), (20,)])
def test_hog_rejects_non_rgb_shapes(shape):
    with pytest.raises(ValueError, match=r"must have shape \(H, W, 3\)"):
        hog(np.zeros(shape), 8)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_hog_rejects_non_finite_values(value):
    image = np.zeros((24, 24, 3))
    image[5, 7, 1] = value
    with pytest.raises(ValueError, match="non-finite"):
        hog(image, 8)


@pytest.mark.parametrize("sbin", [0, -8, 2.5, 8.0, True, "8", None])
def test_hog_rejects_bad_sbin(sbin):
    with pytest.raises(ValueError, match="sbin must be a positive integer"):
        hog(np.zeros((24, 24, 3)), sbin)


def test_hog_rejects_non_numeric_images():
    with pytest.raises(ValueError, match="numeric"):
        hog(np.full((24, 24, 3), "a"), 8)
    with pytest.raises(ValueError, match="real-valued"):
        hog(np.zeros((24, 24, 3), dtype=complex), 8)


def test_hog_accepts_numpy_integer_sbin(rng):
    image = rng.uniform(0, 255, size=(40, 40, 3))
    np.testing.assert_array_equal(hog(image, np.int64(8)), hog(image, 8))


def test_fastest_kernel_build_is_selected():
    assert kernels_module._kernel_module().__name__ == builds_of("dpm.features._hog")[-1]


@pytest.mark.parametrize("shape", [(61, 83), (120, 97)])
def test_kernel_builds_give_identical_features(rng, shape):
    # The AVX2 build must not change a single bit (no fused multiply-add).
    builds = [importlib.import_module(n) for n in builds_of("dpm.features._hog")]
    image = rng.uniform(0, 255, size=shape + (3,))
    image[10:20, 10:30] = 7.0  # flat patch: zero gradients, ties
    outputs = []
    for module in builds:
        kernels_module._hog_kernels = module
        outputs.append([hog(image, sbin) for sbin in (4, 8)])
    for other in outputs[1:]:
        for a, b in zip(outputs[0], other):
            assert a.tobytes() == b.tobytes()
