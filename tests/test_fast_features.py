"""The fast single-precision feature pyramid of detection (``feature_pyramid(..., exact=False)``).

Checked against the exact pyramid (the float64 computation, rounded once to
float32): every level, on odd sizes, tiny, grey and non-contiguous images, in
both builds of the fast kernels; and detections of the built-in and VOC2007
person models with fast against exact features.
"""
import dataclasses
import importlib

import numpy as np
import pytest

import dpm
from conftest import builds_of, shared_path
from test_hog import UU, VV, hog_reference, orientation_reference
from dpm.data import resolve_models
from dpm.detection import detect, detect_raw
from dpm.features import feature_pyramid
from dpm.image import as_rgb

kernels_module = importlib.import_module("dpm.features.kernels")

# Fast against exact levels: float32 rounding of values of at most ~0.6.
# Measured on the images below: at most 2.4e-7 (a few float32 ulps).
ROUNDING = 1e-6


@pytest.fixture(autouse=True, params=builds_of("dpm.features._hog_fast"))
def fast_kernels(request, monkeypatch):
    """Every test runs with each build of the fast kernels."""
    module = importlib.import_module(request.param)
    monkeypatch.setattr(kernels_module, "_fast_kernels", module)
    return module


def smooth_image(rng, h, w, channels=3):
    """Waves, a few discs with flat insides, and noise: flat areas, edges, texture."""
    y, x = np.mgrid[0:h, 0:w]
    base = 120 + 60 * np.sin(x / 9.0) * np.cos(y / 13.0)
    for cy, cx, r in [(h // 3, w // 4, min(h, w) // 5), (2 * h // 3, 3 * w // 4, min(h, w) // 4)]:
        base = np.where(np.hypot(y - cy, x - cx) < r, 200.0, base)
    image = base[:, :, None] + rng.normal(0, 4, size=(h, w, channels))
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def level_differences(image, sbin=8, interval=10):
    exact = feature_pyramid(image, sbin, interval, dtype=np.float32)
    fast = feature_pyramid(image, sbin, interval, dtype=np.float32, exact=False)
    np.testing.assert_array_equal(exact.scales, fast.scales)
    assert [f.shape for f in exact.levels] == [f.shape for f in fast.levels]
    assert all(f.dtype == np.float32 for f in fast.levels)
    return [float(np.abs(a.astype(np.float64) - b).max()) if a.size else 0.0
            for a, b in zip(exact.levels, fast.levels)]


@pytest.mark.parametrize("shape", [(97, 131), (160, 203), (41, 40)])
def test_fast_levels_are_the_exact_ones_up_to_float32_rounding(rng, shape):
    diffs = level_differences(smooth_image(rng, *shape))
    assert max(diffs) < ROUNDING, diffs


def test_fast_levels_of_a_grey_image(rng):
    grey = smooth_image(rng, 120, 151, channels=1)[:, :, 0]
    diffs = level_differences(as_rgb(grey))
    assert max(diffs) < ROUNDING, diffs


def test_fast_levels_of_a_non_contiguous_image(rng):
    big = smooth_image(rng, 200, 260)
    view = big[::2, ::-2]                      # strided and mirrored
    assert not view.flags.c_contiguous
    fast = feature_pyramid(view, dtype=np.float32, exact=False)
    copy = feature_pyramid(np.ascontiguousarray(view), dtype=np.float32, exact=False)
    for a, b in zip(fast.levels, copy.levels):
        np.testing.assert_array_equal(a, b)
    assert max(level_differences(view)) < ROUNDING


@pytest.mark.parametrize("shape", [(1, 1), (5, 7), (16, 16), (24, 33), (40, 41)])
def test_fast_levels_of_tiny_images(rng, shape):
    image = rng.integers(0, 256, size=shape + (3,), dtype=np.uint8)
    diffs = level_differences(image)
    assert max(diffs) < ROUNDING, diffs


def test_fast_levels_of_the_demo_image():
    image = dpm.read_image(shared_path("models", "voc-release3.1", "000034.jpg"))
    diffs = level_differences(image)
    # Everywhere float32 rounding, except where one gradient falls within
    # float32 rounding of an orientation-bin boundary: then that pixel's share
    # of its cells moves (one such pixel in this pyramid, at most 8e-3).
    small = [d for d in diffs if d < ROUNDING]
    assert len(small) >= len(diffs) - 2, diffs
    assert max(diffs) < 0.02, diffs


def test_builds_of_the_fast_kernels_agree(rng):
    """The portable and the AVX2 builds: the same operations in the same order, the same bits."""
    builds = [importlib.import_module(b) for b in builds_of("dpm.features._hog_fast")]
    image = smooth_image(rng, 131, 177)
    pyramids = []
    for module in builds:
        kernels_module._fast_kernels = module
        pyramids.append(feature_pyramid(image, dtype=np.float32, exact=False))
    for other in pyramids[1:]:
        for a, b in zip(pyramids[0].levels, other.levels):
            np.testing.assert_array_equal(a, b)


def test_fast_pyramid_is_deterministic(rng):
    image = smooth_image(rng, 150, 211)
    first = feature_pyramid(image, dtype=np.float32, exact=False)
    for n_jobs in (1, 2):
        again = feature_pyramid(image, dtype=np.float32, exact=False, n_jobs=n_jobs)
        for a, b in zip(first.levels, again.levels):
            np.testing.assert_array_equal(a, b)


def numpy_gradients(image):
    """Float64 NumPy gradients of the interior pixels: the strongest channel's (dx, dy) (the first
    channel wins a tie) and its norm."""
    im = np.asarray(image, dtype=np.float64)
    dx = im[1:-1, 2:] - im[1:-1, :-2]
    dy = im[2:, 1:-1] - im[:-2, 1:-1]
    v = dx * dx + dy * dy
    c = np.argmax(v, axis=-1)[..., None]                  # first maximum
    dx, dy = np.take_along_axis(dx, c, -1)[..., 0], np.take_along_axis(dy, c, -1)[..., 0]
    return dx, dy, np.sqrt(dx * dx + dy * dy)


def test_fast_gradients_match_numpy(rng, fast_kernels):
    """Magnitudes within float32 rounding of the float64 computation; bins the same except for
    gradients within float32 rounding of a boundary between two bins."""
    image = smooth_image(rng, 47, 61).astype(np.float64) * 0.731 + rng.random((47, 61, 3))
    magnitude = np.empty((47, 61), np.float32)
    orientation = np.empty((47, 61), np.uint8)
    fast_kernels.gradient_bins(image, magnitude, orientation)
    dx, dy, norm = numpy_gradients(image)
    np.testing.assert_allclose(magnitude[1:-1, 1:-1], norm, rtol=1e-6, atol=0)
    assert not magnitude[[0, -1]].any() and not magnitude[:, [0, -1]].any()
    dots = np.abs(UU * dx[..., None] + VV * dy[..., None])
    top2 = np.sort(dots, axis=-1)[..., -2:]
    clear = top2[..., 1] - top2[..., 0] > 1e-5 * top2[..., 1]
    assert clear.mean() > 0.99
    np.testing.assert_array_equal(orientation[1:-1, 1:-1][clear], orientation_reference(dx, dy)[clear])


@pytest.mark.parametrize("shape,sbin", [((37, 45), 4), ((64, 83), 8), ((90, 70), 6)])
def test_fast_hog_matches_the_numpy_reference(rng, shape, sbin):
    """Integer pixels: gradients exact in float32, so the same bins; values within float32 rounding.
    Both cell sizes of one pass (the pyramid's first octave)."""
    image = rng.integers(0, 256, size=shape + (3,)).astype(np.float64)
    image[: shape[0] // 3] = 77.0                        # a flat band: zero gradients
    whole, half = kernels_module.fast_hog(image, sbin, half=True)
    np.testing.assert_allclose(whole, hog_reference(image, sbin), rtol=0, atol=ROUNDING)
    np.testing.assert_allclose(half, hog_reference(image, sbin // 2), rtol=0, atol=ROUNDING)
    np.testing.assert_array_equal(kernels_module.fast_hog(image, sbin)[0], whole)
    np.testing.assert_array_equal(kernels_module.fast_hog(image, sbin // 2)[0], half)


def test_fast_features_need_float32():
    image = np.zeros((50, 60, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="exact=False.*dtype=np.float32"):
        feature_pyramid(image, dtype=np.float64, exact=False)
    with pytest.raises(ValueError, match="exact must be True or False"):
        feature_pyramid(image, dtype=np.float32, exact="no")
    model = dataclasses.replace(resolve_models("person")[0], cascade=None)   # the exact detector's rule
    with pytest.raises(ValueError, match="exact_features=False.*dtype=np.float32"):
        detect(image, model, dtype=np.float64, exact_features=False)


def test_detection_uses_fast_features_by_default(monkeypatch):
    seen = []
    real = feature_pyramid

    def spy(*args, **kwargs):
        seen.append((np.dtype(kwargs.get("dtype", np.float64)), kwargs.get("exact", True)))
        return real(*args, **kwargs)

    monkeypatch.setattr("dpm.detection.pyramid.feature_pyramid", spy)
    image = np.zeros((120, 100, 3), dtype=np.uint8)
    model = dataclasses.replace(resolve_models("person")[0], cascade=None)   # the exact detector
    detect(image, model)
    detect(image, model, exact_features=True)
    detect(image, model, dtype=np.float64)
    dpm.detect(image, [model])
    assert seen == [(np.dtype(np.float32), False), (np.dtype(np.float32), True),
                    (np.dtype(np.float64), True), (np.dtype(np.float32), False)]


@pytest.mark.parametrize("name", ["person", "voc2007/person"])
@pytest.mark.parametrize("threshold", [None, -1.0])
def test_detections_with_fast_features_equal_the_exact_ones(name, threshold):
    """Same detections, boxes within 0.5 pixel and scores within 1e-3 (measured: the same
    boxes and part boxes exactly, scores within 9e-7)."""
    image = dpm.read_image(shared_path("models", "voc-release3.1", "000034.jpg"))
    model = resolve_models(name)[0]
    exact = detect(image, model, threshold=threshold, exact_features=True)
    fast = detect(image, model, threshold=threshold)
    assert len(fast) == len(exact)
    np.testing.assert_allclose(fast.boxes, exact.boxes, rtol=0, atol=0.5)
    np.testing.assert_allclose(fast.scores, exact.scores, rtol=0, atol=1e-3)
    raw_exact = detect_raw(image, model, threshold, exact_features=True)
    raw_fast = detect_raw(image, model, threshold)
    assert len(raw_fast) == len(raw_exact)
    np.testing.assert_array_equal(raw_fast.to_raw()[:, :-1], raw_exact.to_raw()[:, :-1])
    np.testing.assert_allclose(raw_fast.scores, raw_exact.scores, rtol=0, atol=1e-5)
