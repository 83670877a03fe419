"""Tests of dpm.features.feature_pyramid (port of voc-release3.1 featpyramid.m, spec §1.6)."""
import math

import numpy as np
import pytest

from dpm.features import FeaturePyramid, feature_pyramid, pyramid_scales
from test_hog import hog_reference
from test_resize import mround, resize_reference


def pyramid_reference(image, sbin, interval):
    """featpyramid.m line by line, on the NumPy references of resize and features."""
    im = np.asarray(image, dtype=np.float64)
    sc = 2 ** (1 / interval)
    max_scale = 1 + math.floor(math.log(min(im.shape[:2]) / (5 * sbin)) / math.log(sc))
    feat, scale = {}, {}
    for i in range(1, interval + 1):
        scaled = resize_reference(im, 1 / sc ** (i - 1))
        feat[i] = hog_reference(scaled, sbin // 2)
        scale[i] = 2 / sc ** (i - 1)
        feat[i + interval] = hog_reference(scaled, sbin)
        scale[i + interval] = 1 / sc ** (i - 1)
        for j in range(i + interval, max_scale + 1, interval):
            scaled = resize_reference(scaled, 0.5)
            feat[j + interval] = hog_reference(scaled, sbin)
            scale[j + interval] = 0.5 * scale[j]
    n = max(feat)                       # MATLAB grows the cell array as needed
    assert sorted(feat) == list(range(1, n + 1))
    return [feat[k] for k in range(1, n + 1)], np.array([scale[k] for k in range(1, n + 1)])


# ---------------------------------------------------------------- golden


def test_pyramid_matches_original_on_crop(golden):
    data = golden("pyramid")
    pyramid = feature_pyramid(data["im_084crop"], 8, 10)
    n = int(data["nlevels"])
    assert len(pyramid) == n == len(pyramid.scales)
    np.testing.assert_allclose(pyramid.scales, data["scale"], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(pyramid.shapes, data["shapes_084crop"].astype(int))
    for level in range(n):
        expected = data[f"level_{level + 1:02d}"]
        assert pyramid.levels[level].shape == expected.shape
        np.testing.assert_allclose(pyramid.levels[level], expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", ["000034", "000061", "000084"])
def test_pyramid_scales_and_shapes_match_original_on_demo_images(golden, name):
    image = golden("features")[f"im_{name}"]
    expected_scales = golden("pyramid")[f"scale_{name}"]
    expected_shapes = golden("pyramid")[f"shapes_{name}"].astype(int)
    pyramid = feature_pyramid(image)
    np.testing.assert_allclose(pyramid.scales, expected_scales, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(pyramid.shapes, expected_shapes)
    np.testing.assert_allclose(pyramid_scales(*image.shape[:2]), expected_scales, rtol=0, atol=1e-12)


def test_pyramid_levels_match_hog_of_golden_demo_image(golden):
    # Level interval (scale 1, sbin 8) and level 0 (scale 1, sbin 4) are the
    # features of the image itself.
    data = golden("features")
    pyramid = feature_pyramid(data["im_000084"])
    np.testing.assert_allclose(pyramid.levels[10], data["f8_000084"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(pyramid.levels[0], data["f4_000084"], rtol=0, atol=1e-5)


# ---------------------------------------------------------------- reference


@pytest.mark.parametrize("shape,sbin,interval", [
    ((90, 70), 8, 10), ((64, 64), 4, 5), ((45, 120), 8, 3), ((30, 33), 2, 4), ((12, 200), 8, 10),
])
def test_pyramid_matches_reference(rng, shape, sbin, interval):
    image = rng.uniform(0, 255, size=shape + (3,))
    pyramid = feature_pyramid(image, sbin, interval)
    levels, scales = pyramid_reference(image, sbin, interval)
    np.testing.assert_allclose(pyramid.scales, scales, rtol=0, atol=0)
    assert len(pyramid.levels) == len(levels)
    for got, expected in zip(pyramid.levels, levels):
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10)


# ---------------------------------------------------------------- structure


def test_pyramid_octave_structure(rng):
    pyramid = feature_pyramid(rng.uniform(0, 255, size=(200, 150, 3)), 8, 10)
    assert isinstance(pyramid, FeaturePyramid)
    assert (pyramid.sbin, pyramid.interval, pyramid.image_shape) == (8, 10, (200, 150))
    scales = pyramid.scales
    assert scales[0] == 2.0 and scales[10] == 1.0
    # Level l - interval has exactly twice the resolution of level l.
    np.testing.assert_array_equal(scales[:-10], 2 * scales[10:])
    assert np.all(np.diff(scales) < 0)
    for level in range(10, len(pyramid)):
        parts, root = pyramid.levels[level - 10].shape, pyramid.levels[level].shape
        assert abs((parts[0] + 2) - 2 * (root[0] + 2)) <= 2
    for feat in pyramid.levels:
        assert feat.dtype == np.float64 and feat.flags.c_contiguous and feat.shape[2] == 31


def test_pyramid_first_levels_are_hog_of_the_image(rng):
    from dpm.features import hog
    image = rng.uniform(0, 255, size=(70, 90, 3))
    pyramid = feature_pyramid(image, 8, 10)
    np.testing.assert_array_equal(pyramid.levels[0], hog(image, 4))
    np.testing.assert_array_equal(pyramid.levels[10], hog(image, 8))


@pytest.mark.parametrize("n_jobs", [2, 3, 10, 16, -1])
def test_pyramid_is_the_same_for_any_n_jobs(rng, n_jobs):
    image = rng.uniform(0, 255, size=(120, 160, 3))
    serial = feature_pyramid(image, 8, 10)
    parallel = feature_pyramid(image, 8, 10, n_jobs=n_jobs)
    np.testing.assert_array_equal(parallel.scales, serial.scales)
    for a, b in zip(parallel.levels, serial.levels):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("shape", [(97, 131), (40, 40), (20, 33)])
def test_float32_pyramid_is_the_float64_one_rounded_once(rng, shape):
    image = rng.uniform(0, 255, size=shape + (3,))
    p64 = feature_pyramid(image, 8, 5)
    p32 = feature_pyramid(image, 8, 5, dtype=np.float32)
    assert np.array_equal(p32.scales, p64.scales)
    assert len(p32.levels) == len(p64.levels)
    for a, b in zip(p32.levels, p64.levels):
        assert a.dtype == np.float32 and a.flags.c_contiguous
        assert a.shape == b.shape
        assert a.tobytes() == b.astype(np.float32).tobytes()


def test_pyramid_rejects_bad_dtype(rng):
    with pytest.raises(ValueError, match="dtype"):
        feature_pyramid(rng.uniform(0, 255, size=(40, 40, 3)), dtype=np.int32)


@pytest.mark.parametrize("side,expected", [
    (40, 1), (79, 10), (80, 11), (81, 11), (160, 21), (320, 31), (480, 36), (640, 41),
])
def test_pyramid_max_scale_formula(side, expected):
    # max_scale = 1 + floor(log(min / 40) / log(2^0.1)); at exact powers of two
    # the quotient evaluates to 10.000000000000004 etc. in double, as in MATLAB.
    scales = pyramid_scales(side, side + 7, 8, 10)
    assert len(scales) == max(expected, 10) + 10


def test_pyramid_of_a_small_image_has_two_octaves(rng):
    # max_scale < interval: MATLAB grows the preallocated arrays, so there are
    # always 2 * interval levels; levels below 3 cells are empty.
    pyramid = feature_pyramid(rng.uniform(0, 255, size=(30, 30, 3)), 8, 10)
    assert len(pyramid) == 20
    assert pyramid.levels[0].shape == (6, 6, 31)
    assert pyramid.levels[10].shape == (2, 2, 31)
    assert pyramid.levels[-1].shape == (0, 0, 31)
    tiny = feature_pyramid(np.zeros((1, 1, 3)), 8, 10)
    assert len(tiny) == 20 and all(f.shape == (0, 0, 31) for f in tiny.levels)


def test_pyramid_level_shapes_follow_the_resize_and_hog_sizes():
    h, w = 375, 500
    pyramid = feature_pyramid(np.zeros((h, w, 3)), 8, 10)
    sc = 2 ** 0.1
    for i in range(1, 11):
        hh, ww = mround(h / sc ** (i - 1)), mround(w / sc ** (i - 1))
        assert pyramid.levels[i - 1].shape == (mround(hh / 4) - 2, mround(ww / 4) - 2, 31)
        assert pyramid.levels[i + 9].shape == (mround(hh / 8) - 2, mround(ww / 8) - 2, 31)
    assert len(pyramid) == 43


@pytest.mark.parametrize("exact", [True, False])
def test_pyramid_accepts_uint8(rng, exact):
    """The reductions read a uint8 image directly (also a strided view): the same levels as from
    its float64 copy."""
    dtype = np.float64 if exact else np.float32
    image = rng.integers(0, 256, size=(60, 70, 3)).astype(np.uint8)
    for view in (image, np.concatenate([image, image], axis=1)[:, ::2]):
        a = feature_pyramid(view, 8, 5, dtype=dtype, exact=exact)
        b = feature_pyramid(view.astype(np.float64), 8, 5, dtype=dtype, exact=exact)
        for x, y in zip(a.levels, b.levels):
            np.testing.assert_array_equal(x, y)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("sbin", [0, 7, -8, 8.0, True, None, 66, 10 ** 6])
def test_pyramid_rejects_bad_sbin(sbin):
    with pytest.raises(ValueError, match="sbin must be a positive even integer"):
        feature_pyramid(np.zeros((40, 40, 3)), sbin)


@pytest.mark.parametrize("interval", [0, -1, 2.5, None, 101, 10 ** 6])
def test_pyramid_rejects_bad_interval(interval):
    with pytest.raises(ValueError, match="interval must be a positive integer"):
        feature_pyramid(np.zeros((40, 40, 3)), 8, interval)


@pytest.mark.parametrize("n_jobs", [0, -2, 1.5, None])
def test_pyramid_rejects_bad_n_jobs(n_jobs):
    with pytest.raises(ValueError, match="n_jobs must be a positive integer or -1"):
        feature_pyramid(np.zeros((40, 40, 3)), n_jobs=n_jobs)


def test_pyramid_rejects_bad_images():
    with pytest.raises(ValueError, match=r"must have shape \(H, W, 3\)"):
        feature_pyramid(np.zeros((40, 40)))
    with pytest.raises(ValueError, match="at least 1x1"):
        feature_pyramid(np.zeros((0, 40, 3)))
    image = np.zeros((40, 40, 3))
    image[3, 3, 2] = np.inf
    with pytest.raises(ValueError, match="non-finite"):
        feature_pyramid(image)
