"""HOG features and image reduction (ports of voc-release3.1 ``features.cc`` and ``resize.cc``).

Both functions work on ``(H, W, C)`` arrays indexed ``[y, x, channel]`` with
pixel values 0..255, as the original's ``double(im)`` (spec §1.2).  The heavy
loops are the Cython kernels in :mod:`dpm.features._hog` and
:mod:`dpm.features._resize`; this module validates arguments and allocates
the outputs.

The private helper ``_fast_hog`` (and ``_hog(..., fast=True)``) runs the fast
single-precision computation of ``feature_pyramid(..., exact=False)``
(kernels of :mod:`dpm.features._hog_fast`, see docs/detection.md, "Fast
features").
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from .. import _cpu


def _kernel_module(name="_hog"):
    """The kernels of ``dpm.features.<name>``: the AVX2 build where the
    processor has AVX2 and it was built (identical results, faster), the
    portable one otherwise."""
    return _cpu.best_build(f"{__package__}.{name}")


_hog_kernels = _kernel_module()
_fast_kernels = _kernel_module("_hog_fast")
_resize_kernels = _kernel_module("_resize")

__all__ = ["hog", "resize", "NUM_FEATURES"]

#: Number of feature channels: 18 contrast-sensitive orientations, 9
#: contrast-insensitive orientations, 4 texture (normalisation-block) energies.
NUM_FEATURES = 31


def mround(x: float) -> int:
    """MATLAB/C ``round`` of a non-negative float: halves go away from zero.

    Exact for every double, unlike ``floor(x + 0.5)`` (which rounds
    0.49999999999999994 up).
    """
    f = math.floor(x)
    return int(f) + (1 if x - f >= 0.5 else 0)


def _check_sbin(sbin) -> int:
    if isinstance(sbin, (bool, np.bool_)) or not isinstance(sbin, numbers.Integral) or sbin < 1:
        raise ValueError(f"sbin must be a positive integer, got {sbin!r}")
    return int(sbin)


def _as_float_image(image, name="image", channels=None, keep_uint8=False) -> np.ndarray:
    """Validate an image and return it as C-contiguous float64 (``double(im)``); with
    ``keep_uint8``, a uint8 image stays uint8 (C-contiguous), for kernels that read either."""
    a = np.asarray(image)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_):
        raise ValueError(f"{name} must be a numeric array, got dtype {a.dtype}")
    if np.iscomplexobj(a):
        raise ValueError(f"{name} must be real-valued, got dtype {a.dtype}")
    if channels is not None and (a.ndim != 3 or a.shape[2] != channels):
        raise ValueError(f"{name} must have shape (H, W, {channels}), got {a.shape}; "
                         "convert grey or RGBA images with dpm.image.as_rgb first")
    if keep_uint8 and a.dtype == np.uint8:
        return np.ascontiguousarray(a)
    inexact = np.issubdtype(a.dtype, np.inexact)
    a = np.ascontiguousarray(a, dtype=np.float64)
    if inexact and not np.isfinite(a).all():
        raise ValueError(f"{name} contains non-finite values (NaN or inf)")
    return a


def float_image(image, name="image", channels=None) -> np.ndarray:
    """An image validated (numeric, finite, ``(H, W, channels)``) and made C-contiguous float64."""
    return _as_float_image(image, name, channels)


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


class _Scratch:
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


def _gradients(image: np.ndarray, scratch: _Scratch | None = None):
    # Unchecked: image is (H, W, 3) C-contiguous float64.
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


def _hog_from_gradients(magnitude: np.ndarray, orientation: np.ndarray, sbin: int,
                        scratch: _Scratch | None = None, dtype=np.float64) -> np.ndarray:
    # Unchecked: the gradient maps of an (H, W, 3) image.  dtype: float64, or
    # float32 for the same values rounded once.
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


def _fast_hog(image: np.ndarray, sbin: int, scratch: _Scratch | None = None, half: bool = False):
    # Unchecked single-precision hog of an (H, W, 3) C-contiguous float64
    # image: (features of cells of sbin, features of cells of sbin // 2 if
    # half else None), float32, from one pass over the gradients.
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


def _hog(image: np.ndarray, sbin: int, scratch: _Scratch | None = None, dtype=np.float64,
         fast: bool = False) -> np.ndarray:
    # Unchecked hog of an (H, W, 3) C-contiguous float64 image (fast: in
    # single precision, dtype float32).
    if fast:
        return _fast_hog(image, sbin, scratch)[0]
    shape = hog_shape(image.shape[0], image.shape[1], sbin)
    if shape[0] == 0 or shape[1] == 0:
        return np.zeros(shape, dtype=dtype)
    return _hog_from_gradients(*_gradients(image, scratch), sbin, scratch, dtype)


def hog(image, sbin: int = 8) -> np.ndarray:
    """31-dimensional HOG features of an RGB image (port of ``features.cc``).

    Parameters
    ----------
    image : (H, W, 3) array_like
        RGB image with values 0..255, indexed ``[y, x, channel]``; any integer
        or float dtype (it is converted to float64 like MATLAB's ``double``).
    sbin : int, default 8
        Cell size in pixels.

    Returns
    -------
    (max(round(H/sbin) - 2, 0), max(round(W/sbin) - 2, 0), 31) ndarray of float64
        ``round`` rounds halves away from zero.  Output cell ``(i, j)`` is cell
        ``(i + 1, j + 1)`` of the ``round(H/sbin) x round(W/sbin)`` grid (the
        outer ring is dropped).  Channels: 0-17 contrast-sensitive orientations
        (bin ``o`` is direction ``20*o`` degrees, y pointing down), 18-26
        contrast-insensitive orientations, 27-30 texture energies of the four
        normalisation blocks (the cell with its right/lower, right/upper,
        left/lower and left/upper neighbours).

    Raises
    ------
    ValueError
        If ``image`` is not ``(H, W, 3)``, not numeric, or has NaN/inf values,
        or if ``sbin`` is not a positive integer.

    Notes
    -----
    The algorithm is the original's: centred [-1 0 1] differences in each
    colour channel with the channel of largest squared norm kept; 18 bins by
    the largest dot product with 9 unit vectors rounded to 4 decimals (strict
    comparisons, so a zero gradient is bin 0 with weight 0); bilinear spatial
    binning; pixels ``1..round(W/sbin)*sbin - 2`` visited with reads clamped to
    the last interior pixel; four 2x2-block normalisations ``1/sqrt(sum + 1e-4)``;
    truncation at 0.2; texture channels scaled by 0.2357.

    The histogram sums are accumulated row by row rather than column by
    column, so results can differ from the original in the last bits (about
    1e-16 relative).

    References
    ----------
    P. Felzenszwalb, R. Girshick, D. McAllester, D. Ramanan, "Object Detection
    with Discriminatively Trained Part Based Models", IEEE TPAMI 32(9), 2010.
    """
    sbin = _check_sbin(sbin)
    return _hog(_as_float_image(image, channels=3), sbin)


def _resize(image: np.ndarray, scale: float, out: np.ndarray | None = None) -> np.ndarray:
    # Unchecked resize of an (H, W, C) C-contiguous float64 (or uint8: the same
    # results as its float64 copy) image, 0 < scale <= 1;
    # ``out``, if given, is a C-contiguous float64 array of the result's shape.
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


def resize_shape(height: int, width: int, scale: float) -> tuple[int, int]:
    """``(round(height*scale), round(width*scale))``, halves away from zero."""
    return mround(height * scale), mround(width * scale)


def resize(image, scale: float) -> np.ndarray:
    """Reduce an image by area averaging (port of ``resize.cc``).

    Parameters
    ----------
    image : (H, W, C) or (H, W) array_like
        Numeric image, indexed ``[y, x(, channel)]``; converted to float64.
        A 2-D image is treated as one channel (the original accepts 3-D
        arrays only).
    scale : float
        Scale factor, ``0 < scale <= 1``.

    Returns
    -------
    (round(H*scale), round(W*scale), C) ndarray of float64
        (2-D in, 2-D out.)  ``round`` rounds halves away from zero.

    Raises
    ------
    ValueError
        If ``scale`` is not in (0, 1], or ``image`` is not 2-D/3-D, not
        numeric, or has NaN/inf values.

    Notes
    -----
    Along an axis of ``S`` source and ``D = round(S*scale)`` destination
    samples, destination ``d`` averages the source interval
    ``[d*S/D, (d+1)*S/D)``: whole pixels weigh ``D/S`` and the partial end
    pixels their covered fraction times ``D/S``, and partial pieces of at most
    1e-3 pixel are skipped (so weights can sum to slightly less than 1).  The
    effective scale of each axis is therefore ``D/S``, not ``scale``.  Rows are
    reduced first, then columns, as in the original.
    """
    if isinstance(scale, (bool, np.bool_)) or not isinstance(scale, numbers.Real):
        raise ValueError(f"scale must be a real number in (0, 1], got {scale!r}")
    scale = float(scale)
    if not (0.0 < scale <= 1.0):
        raise ValueError(f"scale must be in (0, 1] (this resize only reduces), got {scale!r}")
    a = _as_float_image(image)
    if a.ndim not in (2, 3):
        raise ValueError(f"image must have shape (H, W) or (H, W, C), got {a.shape}")
    if a.ndim == 2:
        return _resize(a.reshape(a.shape[0], a.shape[1], 1), scale)[:, :, 0]
    return _resize(a, scale)
