"""Warped positives and random negatives: the first training stage's examples.

Ports voc-release3.1 ``warppos.m``, ``subarray.m`` and the ``poswarp`` /
``negrandom`` functions of ``train.m`` (Felzenszwalb, Girshick, McAllester,
Ramanan; MIT-style licence); the MATLAB ``imresize`` they rely on is
:mod:`dpm.training.imresize`.

Conventions
-----------
* Images are ``(H, W, 3)`` arrays indexed ``[y, x, channel]`` with values
  0..255 (uint8 or float); a grayscale ``(H, W)`` image is replicated into three
  channels (``color.m``).
* Boxes are ``(x1, y1, x2, y2)``: 1-based, inclusive pixel coordinates, as in the
  original and in VOC annotations.
* An *example* is ``(label_ints, blocks)``: ``label_ints = (label, id, level, xc,
  yc)`` as in the ``.dat`` header, and ``blocks`` a list of ``(block, values)``
  with 0-based block indices and float32 values; filter blocks are stored
  column-major (``arr.ravel(order='F')``, MATLAB's ``A(:)``).  This is what
  ``dpm.learn.ExampleSet.append`` takes.
"""
from __future__ import annotations

import logging
import math
from typing import Callable, Iterable, Iterator

import numpy as np

from ..features.flip import flip_features
from ..model import NUM_FEATURES, Model
from .imresize import imresize

__all__ = [
    "RESAMPLERS", "DEFAULT_RESAMPLER", "subarray", "color_image", "fold_features",
    "warp_window", "warp_box", "warped_features", "warp_positives", "random_negative_windows",
    "random_negatives", "root_example",
]

logger = logging.getLogger(__name__)

# How warp_box resamples the grown box to the root's pixel size.
#   'octave': half-pixel-centred bilinear interpolation without antialiasing,
#             float output.  This is what GNU Octave's image package
#             ``imresize(..., 'bilinear')`` does when shrinking, and what the
#             golden first-stage training set was built with.
#   'matlab': MATLAB's ``imresize(..., 'bilinear')``: the triangle kernel is
#             widened by 1/scale when shrinking (antialiasing), and uint8 input
#             gives uint8 output (rounded), as in the original under MATLAB.
RESAMPLERS = ("octave", "matlab")
DEFAULT_RESAMPLER = "octave"

HogFunction = Callable[[np.ndarray, int], np.ndarray]


# --------------------------------------------------------------------------------------------
# Cropping and warping (warppos.m, subarray.m)
# --------------------------------------------------------------------------------------------

def color_image(image) -> np.ndarray:
    """An ``(H, W, 3)`` view of an image (``color.m``: gray is replicated)."""
    a = np.asarray(image)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    elif a.ndim == 3 and a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    if a.ndim != 3 or a.shape[2] != 3 or a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"expected an (H, W) gray or (H, W, 3) color image, got shape {np.shape(image)}")
    return a


def subarray(array, y1: int, y2: int, x1: int, x2: int) -> np.ndarray:
    """``A(y1:y2, x1:x2, :)`` with 1-based inclusive bounds and replicate padding.

    Port of ``subarray.m`` with ``pad = 1``: rows and columns outside the array
    repeat its border values.
    """
    a = np.asarray(array)
    if y2 < y1 or x2 < x1:
        raise ValueError(f"empty window rows {y1}..{y2}, columns {x1}..{x2}")
    ys = np.clip(np.arange(y1, y2 + 1), 1, a.shape[0]) - 1
    xs = np.clip(np.arange(x1, x2 + 1), 1, a.shape[1]) - 1
    return a[ys][:, xs]


def _round(x: float) -> int:
    # MATLAB round: half away from zero.
    return int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))


def warp_window(box, root_size, sbin: int) -> tuple[int, int, int, int]:
    """The grown crop of ``warppos.m``: ``(y1, y2, x1, x2)``, 1-based inclusive.

    The box grows by one root cell on each side, measured in box pixels:
    ``pad = sbin * box size / filter pixel size`` per axis, then rounded.
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    h, w = root_size
    padx = sbin * (x2 - x1 + 1) / (w * sbin)
    pady = sbin * (y2 - y1 + 1) / (h * sbin)
    return _round(y1 - pady), _round(y2 + pady), _round(x1 - padx), _round(x2 + padx)


def warp_box(image, box, root_size, sbin: int = 8, *, resampler: str = DEFAULT_RESAMPLER) -> np.ndarray:
    """Crop a grown box with replicate padding and resize it to the root's pixels.

    Parameters
    ----------
    image : (H, W[, 3]) ndarray
        Values 0..255.
    box : (x1, y1, x2, y2)
        1-based inclusive pixel box.
    root_size : (h, w)
        Root filter size in cells.
    sbin : int
    resampler : {'octave', 'matlab'}
        See :data:`RESAMPLERS`.

    Returns
    -------
    ((h+2)*sbin, (w+2)*sbin, 3) float64 ndarray
        HOG at ``sbin`` of this image has exactly ``root_size`` cells.
    """
    if resampler not in RESAMPLERS:
        raise ValueError(f"resampler must be one of {RESAMPLERS}, got {resampler!r}")
    im = color_image(image)
    y1, y2, x1, x2 = warp_window(box, root_size, sbin)
    window = subarray(im, y1, y2, x1, x2)
    shape = ((int(root_size[0]) + 2) * sbin, (int(root_size[1]) + 2) * sbin)
    if resampler == "octave":
        return imresize(window, shape, method="bilinear", antialias=False)
    out = imresize(window, shape, method="bilinear", antialias=True)
    if window.dtype == np.uint8:  # MATLAB returns the input's class
        out = np.clip(np.floor(out + 0.5), 0, 255)
    return out


def fold_features(feat) -> np.ndarray:
    """Fold a window left/right into its symmetric learner block.

    Columns ``1..floor(w/2)`` get the flipped right half added to them and the
    left ``ceil(w/2)`` columns are kept (``train.m`` / ``detect.m``, spec §1.9
    item 9).

    Parameters
    ----------
    feat : (h, w, 31) ndarray

    Returns
    -------
    (h, ceil(w/2), 31) float64 ndarray
    """
    f = np.array(feat, dtype=np.float64)
    if f.ndim != 3 or f.shape[2] != NUM_FEATURES:
        raise ValueError(f"expected an (h, w, {NUM_FEATURES}) window, got shape {f.shape}")
    w = f.shape[1]
    w1, w2 = (w + 1) // 2, w // 2
    if w2:
        f[:, :w2] += flip_features(f[:, w1:])
    return f[:, :w1]


def _default_hog() -> HogFunction:
    try:
        from ..features.hog import hog
    except ImportError as exc:  # pragma: no cover - depends on the build
        raise ImportError("dpm.features.hog is not available (build the extensions with "
                          "'python setup.py build_ext --inplace'); pass hog= explicitly") from exc
    return hog


def _check_hog_shape(feat, expected, what):
    if feat.shape[:2] != tuple(expected) or feat.shape[2] != NUM_FEATURES:
        raise ValueError(f"{what}: HOG gave shape {feat.shape}, expected {tuple(expected) + (NUM_FEATURES,)}")


def warped_features(image, box, model: Model, component: int = 0, *, resampler: str = DEFAULT_RESAMPLER,
                    hog: HogFunction | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Folded root features of a warped positive and of its mirror image.

    Returns
    -------
    feat, mirrored : (h, ceil(w/2), 31) float64 ndarrays
        ``fold(hog(warped))`` and ``fold(hog(warped[:, ::-1]))`` (``poswarp``).
    """
    hog = hog or _default_hog()
    comp = model.components[component]
    size = comp.root_size
    warped = warp_box(image, box, size, model.sbin, resampler=resampler)
    out = []
    for im in (warped, np.ascontiguousarray(warped[:, ::-1])):
        feat = np.asarray(hog(im, model.sbin))
        _check_hog_shape(feat, size, "warped positive")
        out.append(fold_features(feat))
    return out[0], out[1]


def root_example(model: Model, component: int, folded, label: int, example_id: int,
                 level: int = 0, xc: int = 0, yc: int = 0):
    """A root-only example: the offset block (value 1) and the folded root block.

    Returns
    -------
    label_ints : tuple of 5 int
        ``(label, id, level, xc, yc)``.
    blocks : list of (int, (n,) float32 ndarray)
        ``[(bias_block, [1]), (root_block, folded.ravel(order='F'))]``.
    """
    comp = model.components[component]
    values = np.asarray(folded, dtype=np.float32).ravel(order="F")
    if values.size != model.blocks[comp.root_block].size:
        raise ValueError(f"root window has {values.size} values, block {comp.root_block} holds "
                         f"{model.blocks[comp.root_block].size}")
    blocks = [(comp.bias_block, np.ones(1, dtype=np.float32)), (comp.root_block, values)]
    return (int(label), int(example_id), int(level), int(xc), int(yc)), blocks


def warp_positives(positives: Iterable, model: Model, component: int = 0, *,
                   resampler: str = DEFAULT_RESAMPLER, hog: HogFunction | None = None) -> Iterator:
    """Warped positive examples and their mirror images (``poswarp`` of ``train.m``).

    Parameters
    ----------
    positives : iterable of (image, box)
        ``image`` is an ``(H, W[, 3])`` array (0..255) or a callable returning
        one (so images can be loaded lazily), or None for an image that could
        not be read (skipped); ``box`` is ``(x1, y1, x2, y2)``, 1-based
        inclusive.
    model : Model
    component : int
        0-based component whose root filter sets the warp size.
    resampler : {'octave', 'matlab'}
    hog : callable, optional
        ``hog(image, sbin) -> (h, w, 31)``; defaults to :func:`dpm.features.hog`.

    Yields
    ------
    label_ints, blocks
        See :func:`root_example`.  Positive ``i`` (1-based, counting skipped
        ones) gives ids ``2i-1`` (as is) and ``2i`` (mirrored); label 1; level,
        xc and yc 0.  Boxes smaller than the root filter's pixel area are
        skipped, as in the original.
    """
    comp = model.components[component]
    h, w = comp.root_size
    min_area = h * w * model.sbin * model.sbin
    hog = hog or _default_hog()
    skipped = 0
    for i, (image, box) in enumerate(positives, start=1):
        x1, y1, x2, y2 = box
        if (x2 - x1 + 1) * (y2 - y1 + 1) < min_area:
            skipped += 1
            continue
        if callable(image):
            image = image()
        if image is None:
            continue
        feat, mirrored = warped_features(image, box, model, component, resampler=resampler, hog=hog)
        yield root_example(model, component, feat, 1, 2 * i - 1)
        yield root_example(model, component, mirrored, 1, 2 * i)
    if skipped:
        logger.info("warped positives: skipped %d boxes smaller than the %dx%d-pixel root filter",
                    skipped, h * model.sbin, w * model.sbin)


# --------------------------------------------------------------------------------------------
# Random negatives (negrandom)
# --------------------------------------------------------------------------------------------

def random_negative_windows(feature_shape, root_size, n: int, rng) -> np.ndarray:
    """Top-left corners of ``n`` uniformly random root-sized windows.

    Parameters
    ----------
    feature_shape : (H, W, ...)
        Shape of the image's feature map.
    root_size : (h, w)
    n : int
    rng : numpy.random.Generator or int or None

    Returns
    -------
    (n, 2) int ndarray
        0-based ``(y, x)`` corners; empty unless ``W > w`` and ``H > h`` (the
        original's strict test).  Each window draws x, then y.
    """
    rng = np.random.default_rng(rng)
    H, W = int(feature_shape[0]), int(feature_shape[1])
    h, w = int(root_size[0]), int(root_size[1])
    if n <= 0 or not (W > w and H > h):
        return np.zeros((0, 2), dtype=np.intp)
    out = np.empty((n, 2), dtype=np.intp)
    for j in range(n):
        out[j, 1] = rng.integers(0, W - w + 1)
        out[j, 0] = rng.integers(0, H - h + 1)
    return out


def random_negatives(image, model: Model, n: int, rng, component: int = 0, *, image_index: int = 1,
                     hog: HogFunction | None = None, features=None) -> list:
    """Random root-sized negative windows of one image (``negrandom`` of ``train.m``).

    Parameters
    ----------
    image : (H, W[, 3]) ndarray or None
        Values 0..255 at native scale; may be None when ``features`` is given.
    model : Model
    n : int
        Windows per image (the original: ``floor(maxnum / #negative images)``).
    rng : numpy.random.Generator, int or None
    component : int
    image_index : int
        1-based index of the image in the negative list; example ids are
        ``(image_index - 1) * n + j`` for ``j = 1..n``.
    hog : callable, optional
    features : (H, W, 31) ndarray, optional
        Precomputed ``hog(image, sbin)``.

    Returns
    -------
    list of (label_ints, blocks)
        Label -1, level/xc/yc 0.  Empty when the image is not larger than the
        root filter in both directions.
    """
    comp = model.components[component]
    if features is None:
        hog = hog or _default_hog()
        features = hog(np.asarray(color_image(image), dtype=np.float64), model.sbin)
    feat = np.asarray(features)
    h, w = comp.root_size
    out = []
    for j, (y, x) in enumerate(random_negative_windows(feat.shape, (h, w), n, rng), start=1):
        folded = fold_features(feat[y:y + h, x:x + w])
        out.append(root_example(model, component, folded, -1, (image_index - 1) * n + j))
    return out
