"""HOG features and image reduction (ports of voc-release3.1 ``features.cc`` and ``resize.cc``).

Both functions work on ``(H, W, C)`` arrays indexed ``[y, x, channel]`` with
pixel values 0..255, as the original's ``double(im)`` (spec §1.2).  This
module validates their arguments; the computation is the unchecked steps of
:mod:`dpm.features.kernels` (Cython kernels in :mod:`dpm.features._hog` and
:mod:`dpm.features._resize`; the fast single-precision computation of
``feature_pyramid(..., exact=False)`` in :mod:`dpm.features._hog_fast`, see
docs/detection.md, "Fast features").
"""
from __future__ import annotations

import numbers

import numpy as np

from .kernels import NUM_FEATURES, level_hog, reduce

__all__ = ["hog", "resize", "NUM_FEATURES", "float_image"]


def _check_sbin(sbin) -> int:
    if isinstance(sbin, (bool, np.bool_)) or not isinstance(sbin, numbers.Integral) or sbin < 1:
        raise ValueError(f"sbin must be a positive integer, got {sbin!r}")
    return int(sbin)


def float_image(image, name="image", channels=None, keep_uint8=False) -> np.ndarray:
    """An image validated (numeric, finite, ``(H, W, channels)`` if ``channels`` is given; ``name``
    in the errors) and made C-contiguous float64 (``double(im)``); with ``keep_uint8``, a uint8
    image stays uint8 (C-contiguous), for kernels that read either."""
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
    return level_hog(float_image(image, channels=3), sbin)


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
    a = float_image(image)
    if a.ndim not in (2, 3):
        raise ValueError(f"image must have shape (H, W) or (H, W, C), got {a.shape}")
    if a.ndim == 2:
        return reduce(a.reshape(a.shape[0], a.shape[1], 1), scale)[:, :, 0]
    return reduce(a, scale)
