"""The feature kernels in use and the unchecked steps built on them.

The compiled kernels (:mod:`dpm.features._hog`, ``_hog_fast``, ``_resize``,
each with an AVX2 build that gives identical results) are chosen here, once.
The functions below run one step of a feature map or pyramid on arguments
their callers have validated (:mod:`dpm.features.hog` checks the public
``hog`` and ``resize``; :mod:`dpm.features.pyramid` its own arguments), with
the work buffers of a :class:`Scratch` where one is given:

    reduce(image, scale, out)            the area-averaging reduction (resize.cc)
    gradients(image)                     per-pixel magnitude and orientation bin
    hog_from_gradients(m, o, sbin)       cells binned and normalised (features.cc)
    level_hog(image, sbin, fast=...)     both steps: one feature map
    fast_hog(image, sbin, half=...)      the single-precision map(s) in one pass
                                         (feature_pyramid(..., exact=False))
"""
from __future__ import annotations

import math

import numpy as np

from .. import _cpu

__all__ = ["NUM_FEATURES", "Scratch", "fast_hog", "gradients", "hog_from_gradients", "hog_kernels", "hog_shape",
           "level_hog", "mround", "reduce", "resize_kernels", "resize_shape"]

#: Number of feature channels: 18 contrast-sensitive orientations, 9
#: contrast-insensitive orientations, 4 texture (normalisation-block) energies.
NUM_FEATURES = 31


def _kernel_module(name="_hog"):
    """The kernels of ``dpm.features.<name>``: the AVX2 build where the
    processor has AVX2 and it was built (identical results, faster), the
    portable one otherwise."""
    return _cpu.best_build(f"{__package__}.{name}")


_hog_kernels = _kernel_module()
_fast_kernels = _kernel_module("_hog_fast")
_resize_kernels = _kernel_module("_resize")


def mround(x: float) -> int:
    """MATLAB/C ``round`` of a non-negative float: halves go away from zero.

    Exact for every double, unlike ``floor(x + 0.5)`` (which rounds
    0.49999999999999994 up).
    """
    f = math.floor(x)
    return int(f) + (1 if x - f >= 0.5 else 0)


def hog_kernels(exact: bool = True):
    """The HOG kernels in use (:mod:`dpm.features._hog` or its AVX2 build; identical results),
    or with ``exact=False`` the single-precision ones (:mod:`dpm.features._hog_fast` or its AVX2 build)."""
    return _hog_kernels if exact else _fast_kernels


def resize_kernels():
    """The resize kernels in use (:mod:`dpm.features._resize` or its AVX2 build; identical results)."""
    return _resize_kernels


def hog_shape(height: int, width: int, sbin: int) -> tuple[int, int, int]:
    """Shape of ``hog`` of an ``height x width`` image: cells minus the outer ring."""
    return (max(mround(height / sbin) - 2, 0), max(mround(width / sbin) - 2, 0), NUM_FEATURES)


def resize_shape(height: int, width: int, scale: float) -> tuple[int, int]:
    """``(round(height*scale), round(width*scale))``, halves away from zero."""
    return mround(height * scale), mround(width * scale)


class Scratch:
    """Work buffers reused across the levels of one pyramid (one per thread).

    Fresh large arrays cost page faults on first touch, which add up over the
    ~100 temporary arrays of a pyramid.  Buffers only grow.
    """

    def __init__(self):
        self._buffers = {}

    def array(self, name, shape, dtype=np.float64):
        size = math.prod(shape)
        key = (name, np.dtype(dtype))
        buffer = self._buffers.get(key)
        if buffer is None or buffer.size < size:
            buffer = np.empty(max(size, 1), dtype=dtype)
            self._buffers[key] = buffer
        return buffer[:size].reshape(shape)


def gradients(image: np.ndarray, scratch: Scratch | None = None):
    """``(magnitude, orientation)``: float64 norms and uint8 bins (0..17) of the strongest colour
    channel's gradient of each pixel of an ``(H, W, 3)`` C-contiguous float64 image (border 0)."""
    h, w = image.shape[:2]
    if scratch is None:
        magnitude = np.empty((h, w), dtype=np.float64)
        orientation = np.empty((h, w), dtype=np.uint8)
    else:
        magnitude = scratch.array("magnitude", (h, w))
        orientation = scratch.array("orientation", (h, w), np.uint8)
    _hog_kernels.gradient_bins(image, magnitude, orientation)
    # Correctly rounded, so identical to the original's per-pixel sqrt; numpy's
    # SIMD loop is several times faster than the scalar one.
    np.sqrt(magnitude, out=magnitude)
    return magnitude, orientation


def hog_from_gradients(magnitude: np.ndarray, orientation: np.ndarray, sbin: int,
                       scratch: Scratch | None = None, dtype=np.float64) -> np.ndarray:
    """The feature map of cells of ``sbin`` pixels from an image's :func:`gradients`, in float64, or
    ``dtype=np.float32`` for the same values rounded once."""
    h, w = magnitude.shape
    by, bx = mround(h / sbin), mround(w / sbin)
    out = np.empty((max(by - 2, 0), max(bx - 2, 0), NUM_FEATURES), dtype=dtype)
    if out.shape[0] == 0 or out.shape[1] == 0:
        # The original fills histograms it never reads; with fewer than 3
        # cells on an axis nothing reaches the output.
        return out
    if scratch is None:
        hist = np.zeros((by + 2, bx + 2, 18), dtype=np.float64)
    else:
        hist = scratch.array("hist", (by + 2, bx + 2, 18))
        hist.fill(0.0)
    _hog_kernels.bin_cells(magnitude, orientation, sbin, hist)
    _hog_kernels.normalize_cells(hist, out)
    return out


def fast_hog(image: np.ndarray, sbin: int, scratch: Scratch | None = None, half: bool = False):
    """Single-precision feature maps of an ``(H, W, 3)`` C-contiguous float64 or uint8 image:
    ``(cells of sbin, cells of sbin // 2 if half else None)``, float32, from one pass over the
    gradients."""
    h, w = image.shape[:2]
    outs, filled = [], []
    for s in (sbin, sbin // 2) if half else (sbin,):
        shape = hog_shape(h, w, s)
        if 0 in shape[:2]:
            outs.append(np.zeros(shape, dtype=np.float32))
            continue
        hist_shape = (shape[0] + 4, shape[1] + 4, 18)
        if scratch is None:
            hist = np.zeros(hist_shape, dtype=np.float32)
        else:
            hist = scratch.array(f"hist{s}", hist_shape, np.float32)
            hist.fill(0.0)
        outs.append(np.empty(shape, dtype=np.float32))
        filled.append((s, hist, outs[-1]))
    if filled:
        # The second histogram, if any, has cells of sbin // 2.
        _fast_kernels.hog_cells(image, filled[0][0], filled[0][1], filled[1][1] if len(filled) > 1 else None)
        for _, hist, out in filled:
            _fast_kernels.normalize_cells(hist, out)
    return outs[0], (outs[1] if half else None)


def level_hog(image: np.ndarray, sbin: int, scratch: Scratch | None = None, dtype=np.float64,
              fast: bool = False) -> np.ndarray:
    """The feature map of cells of ``sbin`` pixels of an ``(H, W, 3)`` C-contiguous float64 image
    (``fast``: in single precision, :func:`fast_hog`; ``dtype`` float32 then)."""
    if fast:
        return fast_hog(image, sbin, scratch)[0]
    shape = hog_shape(image.shape[0], image.shape[1], sbin)
    if shape[0] == 0 or shape[1] == 0:
        return np.zeros(shape, dtype=dtype)
    return hog_from_gradients(*gradients(image, scratch), sbin, scratch, dtype)


def reduce(image: np.ndarray, scale: float, out: np.ndarray | None = None) -> np.ndarray:
    """The area-averaging reduction of an ``(H, W, C)`` C-contiguous float64 (or uint8: the same
    results as its float64 copy) image, ``0 < scale <= 1``, into ``out`` (a C-contiguous float64
    array of the result's shape) if given."""
    h, w, c = image.shape
    dh, dw = mround(h * scale), mround(w * scale)
    if out is None:
        out = np.empty((dh, dw, c), dtype=np.float64)
    if dh == 0 or dw == 0 or c == 0:
        out[...] = 0.0
    elif dh == h and dw == w:
        # The original's weights are then all exactly 1: an exact copy.
        out[...] = image
    else:
        _resize_kernels.resize_image(image, out)
    return out

