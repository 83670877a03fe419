"""Bounded distance transform of part scores (port of voc-release5 ``fast_bounded_dt.cc``).

Release 5 places a part at most ``range`` cells (4: a 9x9 window) from where
its deformation rule probes it:

    M[y, x] = max_{|x - sx| <= range, |y - sy| <= range} f[sy, sx]
                  - (ax*dx**2 + bx*dx + ay*dy**2 + by*dy),   dx = x - sx, dy = y - sy

computed separably (a y-pass down every column, then an x-pass along every
row) with the lower envelope of parabolas, each intersection clamped to the
window.  It is a *maximisation* of the scores themselves, where release 3.1's
``dt`` (:mod:`dpm.dt`) minimises the negated scores without a bound; the two
agree wherever the unbounded argmax lies within the window.  The arithmetic is
the original's term for term (``dpm/_dt_bounded.pyx``), so values and argmaxes
are bit for bit fast_bounded_dt's.
"""
from __future__ import annotations

import math

import numpy as np

from . import _dt_bounded
from .dt import check_coefficients

__all__ = ["DEFAULT_RANGE", "bounded_distance_transform"]

#: The window release 5's ``gdetect_dp.m`` uses: +-4 cells.
DEFAULT_RANGE = 4


def bounded_distance_transform(vals, ax, bx, ay, by, range=DEFAULT_RANGE):
    """``fast_bounded_dt(vals, ax, bx, ay, by, range)`` with 0-based argmaxes.

    Parameters
    ----------
    vals : (H, W) array_like
        Scores ``f[y, x]`` (converted to float64); ``-inf`` is allowed.
    ax, bx, ay, by : float
        Deformation cost coefficients (release 5's ``def.w``, flipped for a
        mirrored part: ``bx`` negated).  ``ax`` and ``ay`` must be > 0.
    range : float, default 4
        Largest displacement along each axis, in cells (>= 0).

    Returns
    -------
    M : (H, W) float64
    Ix, Iy : (H, W) int32
        0-based column and row of the source of each maximum (the original's
        outputs minus 1).

    Raises
    ------
    ValueError
        ``vals`` is not a non-empty 2-D array, a coefficient is not finite,
        ``ax`` or ``ay`` is not positive (the envelope divides by them), or
        ``range`` is negative or not finite.
    """
    ax, bx, ay, by = check_coefficients(ax, bx, ay, by)
    if ax <= 0 or ay <= 0:
        raise ValueError(f"ax and ay must be > 0 (quadratic deformation costs), got ax={ax}, ay={ay}")
    try:
        rng = float(range)
    except (TypeError, ValueError):
        raise ValueError(f"range must be a real number, got {range!r}") from None
    if not math.isfinite(rng) or rng < 0:
        raise ValueError(f"range must be finite and >= 0, got {rng}")
    vals = np.ascontiguousarray(vals, dtype=np.float64)
    if vals.ndim != 2 or vals.shape[0] < 1 or vals.shape[1] < 1:
        raise ValueError(f"vals must be a non-empty 2-D array, got shape {vals.shape}")
    out = np.empty(vals.shape, dtype=np.float64)
    ix = np.empty(vals.shape, dtype=np.int32)
    iy = np.empty(vals.shape, dtype=np.int32)
    _dt_bounded.bounded_dt(vals, ax, bx, ay, by, rng, out, ix, iy)
    return out, ix, iy
