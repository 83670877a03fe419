"""The HOG feature pyramid (port of voc-release3.1 ``featpyramid.m``)."""
from __future__ import annotations

import math
import numbers
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from .._alloc import tune_malloc
from ..limits import MODEL_RANGES
from .hog import float_image
from .kernels import Scratch, fast_hog, gradients, hog_from_gradients, hog_shape, level_hog, reduce, resize_shape

__all__ = ["FeaturePyramid", "feature_pyramid", "pyramid_scales"]


@dataclass(eq=False)
class FeaturePyramid:
    """HOG features of an image at a geometric sequence of scales.

    Attributes
    ----------
    levels : list of (h_l, w_l, 31) ndarray of float64 (or float32, see ``dtype``)
        Unpadded feature maps (see :func:`dpm.features.hog`), one per level.
        Level indices are 0-based: ``levels[0]`` is the original's ``feat{1}``.
        ``levels[l - interval]`` has exactly twice the resolution of
        ``levels[l]``; it is where a root filter placed at level ``l`` finds
        its parts.  The first ``interval`` levels (cells of ``sbin / 2``
        pixels) exist only for that purpose.
    scales : (L,) ndarray of float64
        ``scales[l]`` is the image scale at which the ``sbin`` grid of level
        ``l`` is computed: one cell of level ``l`` covers ``sbin / scales[l]``
        pixels of the original image.  ``scales[0] = 2`` and each octave
        halves it.
    sbin : int
        Cell size in pixels at scale 1.
    interval : int
        Number of levels per octave.
    image_shape : (int, int)
        ``(H, W)`` of the image the pyramid was computed from.
    """

    levels: list
    scales: np.ndarray
    sbin: int
    interval: int
    image_shape: tuple

    def __len__(self) -> int:
        return len(self.levels)

    @property
    def shapes(self) -> np.ndarray:
        """``(L, 3)`` int array of the level shapes."""
        return np.array([f.shape for f in self.levels], dtype=np.intp).reshape(-1, 3)


def _max_scale(height: int, width: int, sbin: int, interval: int) -> int:
    # 1 + floor(log(min(imsize) / (5*sbin)) / log(sc)), evaluated in double with
    # the C library's log and pow, as MATLAB/Octave evaluate it.
    sc = 2.0 ** (1.0 / interval)
    return 1 + math.floor(math.log(min(height, width) / (5 * sbin)) / math.log(sc))


def pyramid_scales(height: int, width: int, sbin: int = 8, interval: int = 10) -> np.ndarray:
    """Scale vector of :func:`feature_pyramid` for an ``height x width`` image.

    Returns
    -------
    (L,) ndarray of float64
        ``L = max(max_scale, interval) + interval`` with
        ``max_scale = 1 + floor(log(min(H, W) / (5*sbin)) / log(2**(1/interval)))``.
        (The original preallocates ``max_scale + interval`` entries; MATLAB
        grows the arrays when the first octaves need more, which gives the
        ``max`` here.)
    """
    sbin, interval = _check_args(sbin, interval)
    if height < 1 or width < 1:
        raise ValueError(f"image must be at least 1x1, got {height}x{width}")
    sc = 2.0 ** (1.0 / interval)
    max_scale = _max_scale(height, width, sbin, interval)
    scales = np.zeros(max(max_scale, interval) + interval, dtype=np.float64)
    for i in range(1, interval + 1):
        scales[i - 1] = 2.0 / sc ** (i - 1)
        scales[i + interval - 1] = 1.0 / sc ** (i - 1)
        for j in range(i + interval, max_scale + 1, interval):
            scales[j + interval - 1] = 0.5 * scales[j - 1]
    return scales


def check_pyramid_args(sbin, interval) -> tuple[int, int]:
    """``(sbin, interval)`` as ints, or ``ValueError`` if outside the model ranges (docs/limits.md)."""
    return _check_args(sbin, interval)


def octave_scale_count(height: int, width: int, sbin: int, interval: int) -> int:
    """``max_scale`` of ``featpyramid.m``: the levels of the pyramid below its first octave."""
    return _max_scale(height, width, sbin, interval)


def _check_args(sbin, interval):
    # The ranges of model files (docs/limits.md): the pyramid's levels grow with interval.
    lo, hi = MODEL_RANGES["sbin"]
    if (isinstance(sbin, (bool, np.bool_)) or not isinstance(sbin, numbers.Integral)
            or not lo <= sbin <= hi or sbin % 2):
        raise ValueError(f"sbin must be a positive even integer, {lo}..{hi}, got {sbin!r}")
    lo, hi = MODEL_RANGES["interval"]
    if (isinstance(interval, (bool, np.bool_)) or not isinstance(interval, numbers.Integral)
            or not lo <= interval <= hi):
        raise ValueError(f"interval must be a positive integer, {lo}..{hi}, got {interval!r}")
    return int(sbin), int(interval)


def _octave_chain(image, source, i, sbin, interval, max_scale, scratch, dtype, fast):
    # Levels of the chain that starts at the i-th (1-based) scale of the first
    # octave, as {0-based level index: features}.  fast: single-precision HOG.
    # image: float64, or uint8 for the fast kernels; source: the image or its
    # uint8 original, which the first reduction reads alike (the same results,
    # an eighth of the memory traffic).
    sc = 2.0 ** (1.0 / interval)
    scale = 1.0 / sc ** (i - 1)
    h, w = image.shape[:2]
    dh, dw = resize_shape(h, w, scale)
    if (dh, dw) == (h, w):
        scaled = image        # resize would return an exact copy
    else:
        scaled = reduce(source, scale, scratch.array("scaled", (dh, dw, 3)))
    out = {}
    if fast:
        # One pass over the gradients bins them at both cell sizes.
        out[i + interval - 1], out[i - 1] = fast_hog(scaled, sbin, scratch, half=True)
    elif 0 in hog_shape(dh, dw, sbin // 2)[:2]:
        out[i - 1] = level_hog(scaled, sbin // 2, scratch, dtype, fast)
        out[i + interval - 1] = level_hog(scaled, sbin, scratch, dtype, fast)
    else:
        # One gradient map binned at both cell sizes.
        magnitude, orientation = gradients(scaled, scratch)
        out[i - 1] = hog_from_gradients(magnitude, orientation, sbin // 2, scratch, dtype)
        out[i + interval - 1] = hog_from_gradients(magnitude, orientation, sbin, scratch, dtype)
    halved = ("half_a", "half_b")
    for n, j in enumerate(range(i + interval, max_scale + 1, interval)):
        dh, dw = resize_shape(dh, dw, 0.5)
        scaled = reduce(scaled, 0.5, scratch.array(halved[n % 2], (dh, dw, 3)))
        out[j + interval - 1] = level_hog(scaled, sbin, scratch, dtype, fast)
    return out


def feature_pyramid(image, sbin: int = 8, interval: int = 10, *, n_jobs: int = 1,
                    dtype=np.float64, exact: bool = True) -> FeaturePyramid:
    """HOG feature pyramid of an image (port of ``featpyramid.m``).

    Parameters
    ----------
    image : (H, W, 3) array_like
        RGB image with values 0..255, indexed ``[y, x, channel]``.
    sbin : int, default 8
        Cell size in pixels; must be even (the first octave uses ``sbin / 2``).
    interval : int, default 10
        Levels per octave; consecutive levels differ by ``2**(1/interval)``.
    n_jobs : int, default 1
        Number of threads; the ``interval`` chains of halvings are computed
        concurrently (the kernels release the GIL).  ``-1`` uses every CPU.
        The result does not depend on ``n_jobs``.
    dtype : {np.float64, np.float32}, default np.float64
        Type of the levels.  The features are computed in double precision
        either way; float32 levels hold them rounded once (exactly
        ``levels[l].astype(np.float32)`` of the float64 pyramid), which is
        what float32 filter responses need, without the float64 copy.
    exact : bool, default True
        True: the features as above.  False (needs ``dtype=np.float32``):
        the fast features of detection.  The image is resized exactly as
        above; from the pixel differences on (gradients, orientation bins,
        spatial binning, normalisation) the computation is in single
        precision, vectorised, one pass per resized image, about 1.3 to 1.5
        times as fast overall.  Levels
        differ from the exact ones by float32 rounding (max abs difference
        around 1e-6 on the demo images) and, very rarely, where a gradient
        lies within float32 rounding of the boundary between two orientation
        bins or of a tie between two colour channels, by that pixel's share
        of its cells.  See docs/detection.md, "Fast features".  Training
        uses the exact features.

    Returns
    -------
    FeaturePyramid
        With ``sc = 2**(1/interval)`` and ``i = 1..interval``: the image
        reduced by ``1/sc**(i-1)`` (see :func:`dpm.features.resize`) gives
        level ``i-1`` (cells of ``sbin/2``, scale ``2/sc**(i-1)``) and level
        ``i-1+interval`` (cells of ``sbin``, scale ``1/sc**(i-1)``); it is
        then halved repeatedly, each halving giving the level ``interval``
        further down with half the scale, while the level index (1-based, as in
        the original) stays within ``max_scale + interval``, where
        ``max_scale = 1 + floor(log(min(H, W) / (5*sbin)) / log(sc))``.
        Tiny images can give empty ``(0, w, 31)`` levels, as in the original.

    Raises
    ------
    ValueError
        If ``image`` is not a non-empty ``(H, W, 3)`` numeric array of finite
        values, ``sbin`` is not a positive even integer, ``interval`` is not a
        positive integer, ``n_jobs`` is not a positive integer or -1, or
        ``exact=False`` is asked with a ``dtype`` other than float32.
    """
    tune_malloc()
    sbin, interval = _check_args(sbin, interval)
    if (isinstance(n_jobs, (bool, np.bool_)) or not isinstance(n_jobs, numbers.Integral)
            or (n_jobs < 1 and n_jobs != -1)):
        raise ValueError(f"n_jobs must be a positive integer or -1, got {n_jobs!r}")
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float64), np.dtype(np.float32)):
        raise ValueError(f"dtype must be float64 or float32, got {dtype}")
    if not isinstance(exact, (bool, np.bool_)):
        raise ValueError(f"exact must be True or False, got {exact!r}")
    if not exact and dtype != np.float32:
        raise ValueError(f"exact=False (single-precision features) needs dtype=np.float32, got "
                         f"dtype={dtype.name}; pass dtype=np.float32, or exact=True for float64 levels")
    # The reductions read a uint8 image directly (the same results as from its float64 copy), and
    # so do the fast kernels: the float64 copy is made for the exact kernels only.
    original = np.asarray(image)
    image = float_image(original, channels=3, keep_uint8=not exact)
    source = np.ascontiguousarray(original) if original.dtype == np.uint8 else image
    h, w = image.shape[:2]
    if h == 0 or w == 0:
        raise ValueError(f"image must be at least 1x1, got shape {image.shape}")
    scales = pyramid_scales(h, w, sbin, interval)
    max_scale = _max_scale(h, w, sbin, interval)
    workers = (os.cpu_count() or 1) if n_jobs == -1 else int(n_jobs)
    workers = min(workers, interval)
    levels = [None] * len(scales)
    chains = range(1, interval + 1)
    # Even with one worker the chains run on a pool thread: glibc hands the
    # main thread's freed memory back to the system eagerly, and faulting the
    # ~100 temporaries and outputs of a pyramid back in cost about a third of
    # the time there; a pool thread's arena keeps it.
    local = threading.local()

    def run(i):
        if not hasattr(local, "scratch"):
            local.scratch = Scratch()
        return _octave_chain(image, source, i, sbin, interval, max_scale, local.scratch, dtype, not exact)

    with ThreadPoolExecutor(max_workers=max(workers, 1)) as pool:
        results = list(pool.map(run, chains))
    for part in results:
        for level, feat in part.items():
            levels[level] = feat
    return FeaturePyramid(levels=levels, scales=scales, sbin=sbin, interval=interval,
                          image_shape=(h, w))
