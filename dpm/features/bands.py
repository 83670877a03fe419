"""The feature pyramid a band of rows at a time, for images too large to hold it.

:func:`dpm.features.feature_pyramid` holds every level at once; for a
12000 x 12000 image its first level alone (cells of ``sbin / 2`` pixels) is
3000 x 3000 x 31 values, and the float64 copy of the image and the resized
images it works on take 3.5 GB each.  :func:`pyramid_plan` describes the same
pyramid without computing it; :meth:`LevelPlan.rows` computes any band of rows
of one level, bit-identical to the same rows of ``feature_pyramid``'s level:

* the resized images are computed a band of rows at a time from the bands of
  the images they reduce (the area-averaging reduction is separable: an output
  row reads a few source rows, :func:`dpm.features._resize.source_rows`), back
  to the input image, which is converted to float64 one band at a time;
* HOG cells of a band of rows are binned from the pixels that reach them
  (:func:`dpm.features._hog.bin_cell_rows`, or for the fast single-precision
  features of ``feature_pyramid(..., exact=False)``
  :func:`dpm.features._hog_fast.hog_cell_rows`: the same pixels, in the same
  order), and block normalisation needs one neighbouring cell row on each side.

A resized image small enough (``cache_bytes``) is kept whole once computed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .hog import float_image
from .kernels import NUM_FEATURES, hog_kernels, hog_shape, mround, resize_kernels, resize_shape
from .pyramid import check_pyramid_args, octave_scale_count, pyramid_scales

__all__ = ["ImageRows", "LevelPlan", "level_layout", "levels_by_chain", "pyramid_plan"]


class ImageRows:
    """Rows of an image as float64, on demand: the input image, or a reduction of another ``ImageRows``.

    ``rows(a, b)`` returns rows ``a .. b-1`` as a C-contiguous ``(b - a, W, 3)``
    float64 array, identical to the same rows of the whole image (for a
    reduction: of :func:`dpm.features.resize` of the whole parent).
    """

    def __init__(self, image=None, *, parent: "ImageRows" = None, shape=None, cache_bytes: int = 0,
                 band_bytes: int = 2 ** 26):
        self._image = image
        self.parent = parent
        self.band_bytes = band_bytes
        self.shape = tuple(image.shape[:2]) if image is not None else tuple(shape)
        self.cache_bytes = cache_bytes
        self._whole = None

    @classmethod
    def of_image(cls, image, band_bytes: int = 2 ** 26) -> "ImageRows":
        a = np.asarray(image)
        if a.ndim != 3 or a.shape[2] != 3 or 0 in a.shape:
            raise ValueError(f"image must be a non-empty (H, W, 3) array, got shape {a.shape}")
        return cls(a, band_bytes=band_bytes)

    def reduced(self, shape, cache_bytes: int = 0) -> "ImageRows":
        """This image reduced to ``shape`` (itself when the shape is its own: the reduction is then a copy)."""
        if tuple(shape) == self.shape:
            return self
        return ImageRows(parent=self, shape=shape, cache_bytes=cache_bytes, band_bytes=self.band_bytes)

    @property
    def nbytes(self) -> int:
        return self.shape[0] * self.shape[1] * 3 * 8

    def samples(self, a: int, b: int) -> np.ndarray:
        """Rows ``a .. b-1`` as the kernels may read them: a uint8 input image's own rows (each sample
        is converted to float64 exactly by the kernels, the same results as :meth:`rows`), else
        :meth:`rows`."""
        if self._image is not None and self._image.dtype == np.uint8:
            return np.ascontiguousarray(self._image[a:b])
        return self.rows(a, b)

    def rows(self, a: int, b: int) -> np.ndarray:
        if self._whole is not None:
            return self._whole[a:b]
        if self._image is not None:
            return float_image(self._image[a:b], channels=3)
        if self.cache_bytes and self.nbytes <= self.cache_bytes and (a, b) != (0, self.shape[0]):
            self._whole = self.rows(0, self.shape[0])
            return self._whole[a:b]
        h, w = self.shape
        ph, pw = self.parent.shape
        out = np.empty((b - a, w, 3), dtype=np.float64)
        if b <= a:
            return out
        # Bands of the parent of about band_bytes.
        step = max(1, int(self.band_bytes // (pw * 24 * max(1.0, ph / h))))
        for y0 in range(a, b, step):
            y1 = min(b, y0 + step)
            lo, hi = resize_kernels().source_rows(ph, h, y0, y1)
            src = self.parent.samples(lo, hi)
            resize_kernels().resize_rows(src, out[y0 - a:y1 - a], ph, h, y0, lo)
        return out

    def release(self):
        """Forget a kept whole image."""
        self._whole = None


@dataclass
class LevelPlan:
    """One level of a feature pyramid, not computed: its shape and where its rows come from.

    ``source`` is the resized image whose HOG cells of ``cell`` pixels make
    the level; ``shape`` is ``(rows, columns, 31)``; ``exact`` as in
    :func:`dpm.features.feature_pyramid` (False: the fast single-precision
    features, float32 rows only).
    """

    index: int
    source: ImageRows
    cell: int
    shape: tuple
    exact: bool = True

    def rows(self, r0: int, r1: int, dtype=np.float32) -> np.ndarray:
        """Rows ``r0 .. r1-1`` of the level (bit-identical to the same rows of ``feature_pyramid``'s
        level with the same ``dtype`` and ``exact``)."""
        if not self.exact and np.dtype(dtype) != np.float32:
            raise ValueError(f"the fast features (exact=False) are float32; got dtype={np.dtype(dtype).name}")
        h, w = self.source.shape
        sbin = self.cell
        out = np.empty((r1 - r0, self.shape[1], NUM_FEATURES), dtype=dtype)
        if r1 <= r0 or self.shape[1] == 0:
            return out
        by, bx = mround(h / sbin), mround(w / sbin)
        # Histogram rows r0 .. r1 + 3 (with hog's one-cell margin) give feature rows r0 .. r1 - 1;
        # the pixels binned into them lie within these rows (a superset; the kernel picks them).
        ylo = max(1, (r0 - 1) * sbin - 1)
        yhi = min(by * sbin - 2, (r1 + 2) * sbin + sbin // 2 + 1)
        g0 = min(ylo, h - 2)
        g1 = min(yhi, h - 2) + 1
        if not self.exact:
            image = self.source.samples(g0 - 1, g1 + 1)
            kernels = hog_kernels(exact=False)
            hist = np.zeros((r1 - r0 + 4, bx + 2, 18), dtype=np.float32)
            kernels.hog_cell_rows(image, sbin, hist, h, by, g0 - 1, r0)
            del image
            kernels.normalize_cells(hist, out)
            return out
        image = self.source.rows(g0 - 1, g1 + 1)
        kernels = hog_kernels()
        sqmag = np.empty(image.shape[:2], dtype=np.float64)
        orientation = np.empty(image.shape[:2], dtype=np.uint8)
        kernels.gradient_bins(image, sqmag, orientation)
        del image
        np.sqrt(sqmag, out=sqmag)
        hist = np.zeros((r1 - r0 + 4, bx + 2, 18), dtype=np.float64)
        kernels.bin_cell_rows(sqmag, orientation, sbin, hist, h, by, g0 - 1, r0)
        del sqmag, orientation
        kernels.normalize_cells(hist, out)
        return out

    def bytes_per_row(self) -> int:
        """About the memory :meth:`rows` takes per level row (its working arrays)."""
        w = self.source.shape[1]
        # Image band (float64 RGB), gradients (8 + 1 bytes), histograms, features; and the
        # bands of the reductions above it, about as large again.
        return self.cell * w * (2 * 24 + 9) + (self.shape[1] + 2) * 18 * 8 + self.shape[1] * NUM_FEATURES * 8


def level_layout(height: int, width: int, sbin: int = 8, interval: int = 10):
    """``[(level, chain, depth, (h, w), cell)]``: how ``featpyramid.m`` makes each level of an
    ``height x width`` image: the ``chain``-th (1-based) first-octave reduction, halved ``depth``
    times, to ``h x w`` pixels, in HOG cells of ``cell`` pixels.  Level shapes are
    ``hog_shape(h, w, cell)``; levels the original leaves unset (tiny images) are missing."""
    sbin, interval = check_pyramid_args(sbin, interval)
    max_scale = octave_scale_count(height, width, sbin, interval)
    sc = 2.0 ** (1.0 / interval)
    out = []
    for i in range(1, interval + 1):
        dh, dw = resize_shape(height, width, 1.0 / sc ** (i - 1))
        out.append((i - 1, i, 0, (dh, dw), sbin // 2))
        out.append((i + interval - 1, i, 0, (dh, dw), sbin))
        for n, j in enumerate(range(i + interval, max_scale + 1, interval)):
            dh, dw = resize_shape(dh, dw, 0.5)
            out.append((j + interval - 1, i, n + 1, (dh, dw), sbin))
    return sorted(out)


def pyramid_plan(image, sbin: int = 8, interval: int = 10, *, cache_bytes: int = 0, band_bytes: int = 2 ** 26,
                 exact: bool = True):
    """The levels of ``feature_pyramid(image, sbin, interval, exact=exact)`` as :class:`LevelPlan` s, and
    its scales (``exact=False``: the fast single-precision features, rows of float32 only).

    Nothing is computed: each level's rows are computed when asked for
    (:meth:`LevelPlan.rows`).  ``image`` is an ``(H, W, 3)`` array of values
    0..255 of any numeric dtype (uint8 stays uint8: rows are converted to
    float64 a band at a time).  Resized images of at most ``cache_bytes``
    (float64) are kept once computed; reductions read their source in bands of
    about ``band_bytes``.  Images so small that ``featpyramid.m`` leaves levels
    unset are refused (use ``feature_pyramid``).

    Returns
    -------
    (levels, scales) : (list of LevelPlan, ndarray)
    """
    if not isinstance(exact, (bool, np.bool_)):
        raise ValueError(f"exact must be True or False, got {exact!r}")
    root = ImageRows.of_image(image, band_bytes)
    h, w = root.shape
    layout = level_layout(h, w, sbin, interval)
    scales = pyramid_scales(h, w, sbin, interval)
    if len(layout) != len(scales):
        raise ValueError(f"image of {w}x{h} pixels is too small for a banded pyramid; use feature_pyramid")
    chains = {}
    levels = []
    for level, chain, depth, shape, cell in layout:
        key = (chain, depth)
        if key not in chains:
            parent = root if depth == 0 else chains[(chain, depth - 1)]
            chains[key] = parent.reduced(shape, cache_bytes)
        levels.append(LevelPlan(level, chains[key], cell, hog_shape(*shape, cell), bool(exact)))
    return levels, scales


def levels_by_chain(levels, interval: int):
    """``(lev, root, part)`` for every root level of :func:`pyramid_plan`'s ``levels`` (from ``interval``
    on) and its part level ``interval`` below, chain by chain (levels ``i, i + interval, ...``), so that
    the reduced images a chain shares are computed once and kept while small enough; each is released
    once the chain no longer needs it (a part level's after its root level: the next root level's part
    level is this root level)."""
    for chain in range(interval):
        for lev in range(interval + chain, len(levels), interval):
            root, part = levels[lev], levels[lev - interval]
            yield lev, root, part
            if part.source is not root.source:
                part.source.release()
        for lev in range(chain, len(levels), interval):
            levels[lev].source.release()
