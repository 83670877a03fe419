"""MATLAB's ``imresize`` (bilinear and bicubic, with or without antialiasing), as the original's
training code calls it: ``warppos.m`` to warp positives to the root's size and ``addparts.m`` to
upsample the root filter for the parts.  Computed in float64 with a fixed order of additions (no
BLAS), so the same bits on every machine.
"""
from __future__ import annotations

import math

import numpy as np

from .ordered import ordered_sum

__all__ = ["imresize"]


def _triangle(x):
    return np.where((x >= -1) & (x < 0), x + 1, 0.0) + np.where((x >= 0) & (x <= 1), 1 - x, 0.0)


def _cubic(x):
    # Keys' cubic convolution with a = -0.5, as MATLAB's imresize 'bicubic'.
    ax = np.abs(x)
    ax2 = ax * ax
    ax3 = ax2 * ax
    return ((1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1)
            + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2)))


_KERNELS = {"bilinear": (_triangle, 2.0), "bicubic": (_cubic, 4.0)}


def _resize_taps(n_in: int, n_out: int, kernel, width: float, antialias: bool):
    """MATLAB imresize's ``contributions`` along one axis: ``(n_out, taps)`` 0-based
    input indices and their normalised weights."""
    scale = n_out / n_in
    if scale < 1 and antialias:
        def h(x):
            return scale * kernel(scale * x)
        width = width / scale
    else:
        h = kernel
    u = np.arange(1, n_out + 1, dtype=np.float64) / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    taps = int(math.ceil(width)) + 2
    idx = left[:, None] + np.arange(taps)[None, :]
    w = h(u[:, None] - idx)
    w = w / ordered_sum(w, axis=1)[:, None]
    # Out-of-range taps are mirrored back into the image (MATLAB's symmetric padding).
    aux = np.concatenate([np.arange(n_in), np.arange(n_in - 1, -1, -1)])
    idx = aux[np.mod(idx - 1, aux.size).astype(np.intp)]
    return idx, w


def _resize_axis0(a: np.ndarray, idx: np.ndarray, w: np.ndarray) -> np.ndarray:
    # out[i] = w[i, 0] * a[idx[i, 0]] + w[i, 1] * a[idx[i, 1]] + ..., added tap by tap.
    shape = (idx.shape[0],) + (1,) * (a.ndim - 1)
    out = w[:, 0].reshape(shape) * a[idx[:, 0]]
    for t in range(1, idx.shape[1]):
        out += w[:, t].reshape(shape) * a[idx[:, t]]
    return out


def imresize(image, output_shape, *, method: str = "bilinear", antialias: bool = True) -> np.ndarray:
    """Resize an image as MATLAB's ``imresize(image, [rows cols], method)``.

    Parameters
    ----------
    image : (H, W) or (H, W, C) ndarray
        Any real dtype; computed in float64.
    output_shape : (int, int)
        ``(rows, cols)`` of the result.
    method : {'bilinear', 'bicubic'}
        Triangle kernel, or Keys' cubic with ``a = -0.5`` (MATLAB's 'bicubic').
    antialias : bool
        When shrinking along an axis, widen the kernel by ``1/scale`` (MATLAB's
        default).  ``False`` gives plain interpolation at the half-pixel-centred
        sample positions ``u = (i - 0.5) / scale + 0.5``, which for shrinking
        equals GNU Octave's ``imresize``.

    Returns
    -------
    (rows, cols[, C]) float64 ndarray
        Not rounded: the caller decides about the output class.

    Notes
    -----
    MATLAB's ``contributions`` algorithm: sample positions
    ``u = i/scale + 0.5*(1 - 1/scale)`` (1-based), normalised kernel weights,
    symmetric padding at the borders.  Rows are resized first, then columns;
    each output value is its taps' weighted values added in tap order (a
    fixed order, no BLAS: the same bits on every machine).
    """
    if method not in _KERNELS:
        raise ValueError(f"method must be one of {sorted(_KERNELS)}, got {method!r}")
    a = np.asarray(image, dtype=np.float64)
    if a.ndim not in (2, 3) or a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"expected a non-empty (H, W) or (H, W, C) image, got shape {a.shape}")
    rows, cols = (int(v) for v in output_shape)
    if rows < 1 or cols < 1:
        raise ValueError(f"output_shape must be positive, got {tuple(output_shape)}")
    kernel, width = _KERNELS[method]
    out = _resize_axis0(a, *_resize_taps(a.shape[0], rows, kernel, width, antialias))  # (rows, W[, C])
    out = _resize_axis0(np.moveaxis(out, 1, 0), *_resize_taps(a.shape[1], cols, kernel, width, antialias))
    return np.ascontiguousarray(np.moveaxis(out, 0, 1))             # (rows, cols[, C])
