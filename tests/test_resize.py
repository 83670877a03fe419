"""Tests of dpm.features.resize (port of voc-release3.1 resize.cc, spec §1.5)."""
import math

import importlib

import numpy as np
import pytest

from conftest import builds_of
from dpm.features import resize

kernels_module = importlib.import_module("dpm.features.kernels")


@pytest.fixture(autouse=True, params=builds_of("dpm.features._resize"))
def resize_kernels(request, monkeypatch):
    """Every test runs with each build of the resize kernels (the same bits)."""
    module = importlib.import_module(request.param)
    monkeypatch.setattr(kernels_module, "_resize_kernels", module)
    return module


def mround(x):
    return int(math.floor(x + 0.5))


def resize_weights(S, D):
    """(D, S) matrix of the original's area-averaging weights along one axis."""
    A = np.zeros((D, S))
    if D == 0:
        return A
    scale, invscale = D / S, S / D
    for d in range(D):
        f1 = d * invscale
        f2 = f1 + invscale
        s1, s2 = math.ceil(f1), math.floor(f2)
        if s1 - f1 > 1e-3:                    # partial pixel on the left
            A[d, s1 - 1] += (s1 - f1) * scale
        A[d, s1:s2] += scale                  # whole pixels
        if f2 - s2 > 1e-3:                    # partial pixel on the right
            A[d, s2] += (f2 - s2) * scale
    return A


def resize_reference(image, scale):
    """Plain-NumPy port of resize.cc: rows first, then columns."""
    im = np.asarray(image, dtype=np.float64)
    H, W = im.shape[:2]
    D0, D1 = mround(H * scale), mround(W * scale)
    out = np.tensordot(resize_weights(H, D0), im, axes=(1, 0))             # (D0, W, ...)
    return np.moveaxis(np.tensordot(resize_weights(W, D1), out, axes=(1, 1)), 0, 1)


# ---------------------------------------------------------------- golden


@pytest.mark.parametrize("name", ["084crop", "synth"])
@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_resize_matches_original(golden, name, k):
    data = golden("resize")
    scale = float(data["scales"][k - 1])
    expected = data[f"out_{name}_{k}"]
    got = resize(data[f"im_{name}"], scale)
    assert got.shape == expected.shape
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


def test_resize_golden_shapes_round_half_away_from_zero(golden):
    data = golden("resize")
    assert resize(data["im_synth"], 0.5).shape == (76, 102, 3)       # 75.5, 101.5


# ---------------------------------------------------------------- reference


@pytest.mark.parametrize("shape", [(48, 64, 3), (37, 51, 3), (1, 40, 3), (40, 1, 3), (9, 7, 2),
                                   (13, 17, 5), (25, 31, 1)])
@pytest.mark.parametrize("scale", [1.0, 0.999, 0.93303299, 0.75, 0.5, 0.5001, 0.3, 0.1, 0.03])
def test_resize_matches_reference_random(rng, shape, scale):
    image = rng.uniform(0, 255, size=shape)
    got = resize(image, scale)
    expected = resize_reference(image, scale)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10)


def test_resize_skips_slivers_of_at_most_1e3_pixel():
    # 1001 -> 1000 samples: destination 0 covers [0, 1.001); the 0.001 sliver
    # of pixel 1 is skipped, so its weights sum to 1000/1001 < 1.
    out = resize(np.ones((1001, 1, 1)), 1000 / 1001)[:, 0, 0]
    assert out.shape == (1000,)
    assert out[0] == pytest.approx(1000 / 1001, abs=1e-15)
    assert np.all(out <= 1 + 1e-12)
    assert np.isclose(out, 1.0, atol=1e-12).sum() > 0
    np.testing.assert_allclose(out, resize_reference(np.ones((1001, 1, 1)), 1000 / 1001)[:, 0, 0],
                               rtol=0, atol=1e-12)


def test_resize_effective_scale_is_destination_over_source():
    # 10 -> round(10 * 0.36) = 4 samples: each averages 10/4 = 2.5 pixels (not
    # 1/0.36 = 2.78), e.g. the first one is (0 + 1 + 0.5 * 2) / 2.5.
    column = np.repeat(np.arange(10, dtype=np.float64)[:, None, None], 3, axis=1)
    out = resize(column, 0.36)
    assert out.shape == (4, 1, 1)
    np.testing.assert_allclose(out[:, 0, 0], [0.8, 3.2, 5.8, 8.2], rtol=0, atol=1e-12)


def test_resize_identity_at_scale_one(rng):
    image = rng.uniform(0, 255, size=(23, 31, 3))
    got = resize(image, 1.0)
    np.testing.assert_array_equal(got, image)
    assert got is not image and not np.shares_memory(got, image)


def test_resize_exact_halving_averages_pairs(rng):
    image = rng.uniform(0, 255, size=(8, 12, 3))
    expected = image.reshape(4, 2, 6, 2, 3).mean(axis=(1, 3))
    np.testing.assert_allclose(resize(image, 0.5), expected, rtol=0, atol=1e-12)


def test_resize_keeps_constant_images_constant():
    out = resize(np.full((60, 80, 3), 42.0), 0.7)
    assert out.shape == (42, 56, 3)
    np.testing.assert_allclose(out, 42.0, rtol=0, atol=1e-12)


def test_resize_two_dimensional_image(rng):
    image = rng.uniform(0, 255, size=(30, 40))
    got = resize(image, 0.6)
    assert got.shape == (18, 24)
    np.testing.assert_array_equal(got, resize(image[:, :, None], 0.6)[:, :, 0])


def test_resize_to_nothing_gives_empty_array():
    assert resize(np.ones((3, 3, 3)), 0.1).shape == (0, 0, 3)
    assert resize(np.ones((1, 9, 3)), 0.4).shape == (0, 4, 3)


def test_resize_accepts_integer_images(rng):
    image = rng.integers(0, 256, size=(20, 30, 3)).astype(np.uint8)
    np.testing.assert_array_equal(resize(image, 0.8), resize(image.astype(np.float64), 0.8))


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("scale", [1.0000001, 2, 0, -0.5, np.nan, np.inf])
def test_resize_rejects_scale_outside_unit_interval(scale):
    with pytest.raises(ValueError, match=r"scale must be in \(0, 1\]"):
        resize(np.ones((4, 4, 3)), scale)


@pytest.mark.parametrize("scale", ["0.5", None, True, 1j])
def test_resize_rejects_non_real_scale(scale):
    with pytest.raises(ValueError, match="scale must be a real number"):
        resize(np.ones((4, 4, 3)), scale)


@pytest.mark.parametrize("shape", [(4,), (4, 4, 3, 1)])
def test_resize_rejects_bad_dimensions(shape):
    with pytest.raises(ValueError, match=r"must have shape \(H, W\) or \(H, W, C\)"):
        resize(np.ones(shape), 0.5)


def test_resize_rejects_non_finite_values():
    image = np.ones((4, 4, 3))
    image[1, 2, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        resize(image, 0.5)


@pytest.mark.parametrize("shape", [(61, 83, 3), (40, 9, 3), (33, 47, 1), (12, 17, 5)])
def test_resize_builds_give_the_same_bits(rng, shape):
    image = rng.random(shape) * 255
    image[:, : shape[1] // 2] = 200.0                    # flat: the rounding noise of the weights shows
    for scale in (0.9330329915368074, 0.7071067811865476, 0.5, 0.37):
        outs = []
        for name in builds_of("dpm.features._resize"):
            kernels_module._resize_kernels = importlib.import_module(name)
            outs.append(resize(image, scale))
        for other in outs[1:]:
            assert np.array_equal(outs[0].view(np.uint64), other.view(np.uint64)), scale


def test_resize_reads_uint8_images_as_their_float64_copy(rng, resize_kernels):
    """The pyramid's first reductions read a uint8 image directly: the same bits as its float64 copy."""
    image = rng.integers(0, 256, size=(53, 71, 3), dtype=np.uint8)
    for scale in (0.9330329915368074, 0.5, 0.3):
        h, w = mround(53 * scale), mround(71 * scale)
        a, b = np.empty((h, w, 3)), np.empty((h, w, 3))
        resize_kernels.resize_image(image, a)
        resize_kernels.resize_image(image.astype(np.float64), b)
        assert np.array_equal(a.view(np.uint64), b.view(np.uint64)), scale
