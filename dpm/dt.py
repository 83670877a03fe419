"""Generalised distance transform of part responses (port of voc-release3.1 ``dt.cc``).

For a 2-D array ``f`` indexed ``[y, x]`` the transform is

    M[y, x] = min_{sy, sx} f[sy, sx] + ax*(x - sx)**2 + bx*(x - sx)
                                     + ay*(y - sy)**2 + by*(y - sy),

computed separably (spec §1.8): a y-pass down every column with ``(ay, by)``,
then an x-pass along every row of the result with ``(ax, bx)``.  ``Ix[y, x]`` is
the source column of the minimum and ``Iy[y, x]`` its source row (the y-pass
argmin at row ``y`` of column ``Ix[y, x]``).  ``(x, y)`` is the destination (the
probe position) and ``(sx, sy)`` the source (the part position).

The detector applies it to the *negated* part response, so that
``-M = max_s R(s) - deformation cost`` as in ``detect.m``.
"""
from __future__ import annotations

import math

import numpy as np

from . import _dt

__all__ = ["MAX_SIDE", "check_coefficients", "distance_transform", "transform_unchecked"]

# dt.cc squares offsets in a C int: sides up to 46340 keep (n - 1)**2 < 2**31.
MAX_SIDE = 46340


def distance_transform(vals, ax, bx, ay, by, *, rows=None, cols=None, negate=False):
    """Generalised distance transform with argmins, exactly as ``dt.cc``.

    Parameters
    ----------
    vals : (H, W) array_like
        Values ``f[y, x]``; float32 and float64 arrays are read as they are
        and converted to float64 element by element (exactly), anything else
        is converted to float64 first (the original takes ``double`` only).
        ``H`` and ``W`` must be at least 1.
    ax, bx : float
        Quadratic and linear cost coefficients along x (columns).
    ay, by : float
        Quadratic and linear cost coefficients along y (rows).
    rows : slice, optional
        Compute only these rows of the outputs (a slice with a positive step,
        e.g. ``slice(1, None, 2)``).  They are identical to the same rows of
        the full transform: the y-pass still runs over the whole map and only
        the x-pass of the other rows is skipped (and the y-pass computes
        only these rows, scanning all of them as sources).
    cols : slice, optional
        Compute only these columns of the outputs (a slice with a positive
        step), identical to the same columns of the full transform: the
        x-pass scans every column as a source but computes only these
        destinations (and those the divide and conquer needs to bound their
        scans).  ``detect.m`` probes every other row and column.
    negate : bool, optional
        Transform ``-vals`` (negation is exact, so this equals
        ``distance_transform(-vals, ...)`` without the temporary array).

    Returns
    -------
    M : (H, W) ndarray of float64
        The transformed values (``(len(range(H)[rows]), len(range(W)[cols]))``
        with ``rows`` or ``cols``).
    Ix, Iy : (H, W) ndarray of int32
        **0-based** column and row of the source attaining each minimum.
        voc-release3.1 ``dt`` returns them 1-based: ``Ix + 1``, ``Iy + 1`` are
        the original's outputs.

    Raises
    ------
    ValueError
        If ``vals`` is not a non-empty 2-D array, a side exceeds 46340 (the
        original squares offsets in a C ``int``), a coefficient is not finite,
        ``ax`` or ``ay`` is negative, or ``rows`` or ``cols`` is not a slice
        with a positive step.

    Notes
    -----
    The 1-D passes use the original's O(n log n) divide and conquer, not the
    linear-time lower envelope, and evaluate the cost with the same floating
    point expression, so every comparison, and hence every argmin, is the
    original's: among equal costs in a scanned range the smallest source
    index wins.  Infinite values are fine; a NaN cost never wins a comparison
    (as in the original).  The divide and conquer assumes the argmin moves
    monotonically with the destination, which holds for quadratic
    coefficients ``>= 0`` (the learner keeps them ``>= 0.01``); the original
    silently returns wrong minima for negative ones, here they are rejected.

    References
    ----------
    P. Felzenszwalb and D. Huttenlocher, "Distance transforms of sampled
    functions", Theory of Computing 8, 2012.  P. Felzenszwalb, R. Girshick,
    D. McAllester, D. Ramanan, "Object detection with discriminatively trained
    part based models", IEEE PAMI 32(9), 2010.

    Examples
    --------
    >>> M, Ix, Iy = distance_transform([[0.0, 5.0, 5.0]], 1.0, 0.0, 1.0, 0.0)
    >>> M.tolist(), Ix.tolist()
    ([[0.0, 1.0, 4.0]], [[0, 0, 0]])
    """
    coeffs = check_coefficients(ax, bx, ay, by)
    vals = np.asarray(vals)
    if vals.dtype not in _NATIVE:
        vals = vals.astype(np.float64)
    vals = np.ascontiguousarray(vals)
    if vals.ndim != 2 or vals.shape[0] < 1 or vals.shape[1] < 1:
        raise ValueError(f"vals must be a non-empty 2-D array, got shape {vals.shape}")
    if max(vals.shape) > MAX_SIDE:
        raise ValueError(f"vals of shape {vals.shape} is too large (sides must be <= {MAX_SIDE})")
    start, step, nrows = _subset(rows, vals.shape[0], "rows")
    cstart, cstep, ncols = _subset(cols, vals.shape[1], "cols")
    return transform_unchecked(vals, coeffs, start, step, nrows, bool(negate), cstart, cstep, ncols)


def _subset(sel, size, name):
    """``(start, step, count)`` of a slice of ``range(size)`` (None: everything)."""
    if sel is None:
        return 0, 1, size
    if not isinstance(sel, slice):
        raise ValueError(f"{name} must be a slice or None, got {type(sel).__name__}")
    if sel.step is not None and sel.step < 1:
        raise ValueError(f"{name} must have a positive step, got {sel.step}")
    selected = range(size)[sel]
    return selected.start, selected.step, len(selected)


_NATIVE = (np.dtype(np.float32), np.dtype(np.float64))


def check_coefficients(ax, bx, ay, by):
    """``(ax, bx, ay, by)`` as floats, or ``ValueError`` (see :func:`distance_transform`)."""
    coeffs = {"ax": ax, "bx": bx, "ay": ay, "by": by}
    for name, value in coeffs.items():
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a real number, got {value!r}") from None
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value}")
        coeffs[name] = value
    for name in ("ax", "ay"):
        if coeffs[name] < 0:
            raise ValueError(
                f"{name} must be >= 0 (the transform needs a convex cost), got {coeffs[name]}"
            )
    return coeffs["ax"], coeffs["bx"], coeffs["ay"], coeffs["by"]


def transform_unchecked(vals, coeffs, start, step, nrows, negate, cstart=0, cstep=1, ncols=None):
    """Unchecked :func:`distance_transform`: ``vals`` a non-empty C-contiguous float32/float64
    map with sides <= 46340, ``coeffs`` checked, rows ``start + k*step`` (k < nrows) and
    columns ``cstart + k*cstep`` (k < ncols; default all) inside it."""
    if ncols is None:
        ncols = vals.shape[1]
    out = np.empty((nrows, ncols), dtype=np.float64)
    ix = np.empty((nrows, ncols), dtype=np.int32)
    iy = np.empty((nrows, ncols), dtype=np.int32)
    ax, bx, ay, by = coeffs
    _dt.distance_transform(vals, ax, bx, ay, by, out, ix, iy, start, step, negate, cstart, cstep)
    return out, ix, iy
