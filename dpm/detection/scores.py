"""Pyramid -> filter scores: root and part responses, part distance transforms, component scores.

:func:`score_levels` yields, per pyramid level ``detect.m`` visits, each
component's score map over root positions (spec §1.9) and, per part, where
the part lands (:class:`PartArgmax`).  Only the rows and columns of each part's
distance transform that ``detect.m`` probes are computed (they are exactly the
original's).  Detection (:mod:`dpm.detection.parse`) and training's latent
search (:mod:`dpm.latent`) both read these scores.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._alloc import tune_malloc
from ..convolve import FilterBank
from ..dt import MAX_SIDE, check_coefficients, transform_unchecked
from ..model import Model

__all__ = ["LevelScores", "PartArgmax", "PreparedModel", "pad_features", "score_level", "score_levels"]


@dataclass(frozen=True)
class PartArgmax:
    """Where a part lands (the dt argmax) for the probe positions of one part level.

    ``detect.m`` reads the distance transform of a part only at the probe
    positions ``(2*x + anchor_x, 2*y + anchor_y)`` (0-based) of the padded part
    level, so only the rows ``row0, row0 + step, ...`` and the columns
    ``col0, col0 + col_step, ...`` of the argmax maps are computed (they are
    identical to the same entries of the full maps).

    Attributes
    ----------
    ix, iy : (R, C) ndarray of int32
        0-based source column and row of the part for the computed rows and
        columns.
    row0, step : int
        Row ``r`` of ``ix``/``iy`` is row ``row0 + r * step`` of the part level.
    shape : (int, int)
        ``(H, W)`` of the full (padded) part level.
    col0, col_step : int, default 0 and 1
        Column ``c`` of ``ix``/``iy`` is column ``col0 + c * col_step`` of the
        part level.
    """

    ix: np.ndarray
    iy: np.ndarray
    row0: int
    step: int
    shape: tuple
    col0: int = 0
    col_step: int = 1

    def at(self, probey, probex):
        """``(px, py)``: 0-based source column and row for probe rows/columns of the part level."""
        r, rem = np.divmod(np.asarray(probey) - self.row0, self.step)
        c, crem = np.divmod(np.asarray(probex) - self.col0, self.col_step)
        if np.any(rem != 0) or np.any(r < 0) or np.any(r >= self.ix.shape[0]):
            raise IndexError("probe row was not computed")
        if np.any(crem != 0) or np.any(c < 0) or np.any(c >= self.ix.shape[1]):
            raise IndexError("probe column was not computed")
        return self.ix[r, c], self.iy[r, c]

    def full(self):
        """Full-size ``(Ix, Iy)`` maps of the part level; entries not computed hold -1."""
        ix = np.full(self.shape, -1, dtype=np.int32)
        iy = np.full(self.shape, -1, dtype=np.int32)
        rows = slice(self.row0, self.row0 + self.step * self.ix.shape[0], self.step)
        cols = slice(self.col0, self.col0 + self.col_step * self.ix.shape[1], self.col_step)
        ix[rows, cols] = self.ix
        iy[rows, cols] = self.iy
        return ix, iy


@dataclass
class LevelScores:
    """Score maps of one pyramid level (what :func:`score_levels` yields).

    ``scores[c]`` is component ``c``'s score map (float64) over root positions
    of the padded level; ``argmax[c][j]`` is a :class:`PartArgmax` giving
    the 0-based position of part ``j`` of component ``c`` for each probe
    position of the padded part level (``.at(probey, probex)``; ``.full()``
    returns the ``(Ix, Iy)`` maps); ``cell`` the cell size in pixels;
    ``root_features`` and ``part_features`` are the zero-padded feature maps
    the filters were applied to, in the precision of the computation (None
    when :func:`score_levels` was asked not to keep them).
    """

    level: int
    cell: float
    scores: list
    argmax: list
    root_features: np.ndarray = None
    part_features: np.ndarray = None


class PreparedModel:
    """A model's filters stacked for convolution, built once per detection call.

    ``dtype`` is the precision of the filter responses (float64: the
    original's; float32: faster, see :func:`detect`).  ``exact_order``
    (float64 only) computes them without BLAS in a fixed summation order, the
    same bits on every machine (:meth:`dpm.convolve.FilterBank.convolve`).
    """

    def __init__(self, model: Model, dtype=np.float64, *, exact_order: bool = False):
        self.model = model
        self.dtype = np.dtype(dtype)
        self.exact_order = bool(exact_order)
        if self.exact_order and self.dtype != np.float64:
            raise ValueError(f"exact_order=True needs float64 responses, got dtype={self.dtype.name}")
        self.roots = FilterBank([c.root for c in model.components], dtype=self.dtype)
        self.part_index = []
        filters = []
        for c in model.components:
            idx = []
            for p in c.parts:
                idx.append(len(filters))
                filters.append(p.filter)
            self.part_index.append(idx)
        self.parts = FilterBank(filters, dtype=self.dtype) if filters else None
        self.deformations = [[check_coefficients(*p.deformation) for p in c.parts] for c in model.components]


def pad_features(features: np.ndarray, pady: int, padx: int, dtype=None) -> np.ndarray:
    h, w, nf = features.shape
    out = np.empty((h + 2 * pady, w + 2 * padx, nf), dtype=features.dtype if dtype is None else dtype)
    out[:pady] = 0
    out[pady + h:] = 0
    out[pady:pady + h, :padx] = 0
    out[pady:pady + h, padx + w:] = 0
    out[pady:pady + h, padx:padx + w] = features
    return out


def _part_dt(resp: np.ndarray, coeffs, row0: int, col0: int, shape):
    """dt of ``-resp`` (exactly ``dt.cc`` on the negated responses) at rows ``row0, row0 + 2, ...``
    and columns ``col0, col0 + 2, ...``.

    At most ``shape`` = (rows, columns) probes, those inside the map.
    ``coeffs`` as checked by :func:`dpm.dt.check_coefficients`.
    """
    if resp.size == 0 or max(resp.shape) > MAX_SIDE:
        raise ValueError(f"part response of shape {resp.shape} is empty or too large for the distance transform")
    rows = range(resp.shape[0])[row0:row0 + 2 * shape[0]:2]
    cols = range(resp.shape[1])[col0:col0 + 2 * shape[1]:2]
    return transform_unchecked(np.ascontiguousarray(resp), coeffs, rows.start, 2, len(rows), True,
                      cols.start, 2, len(cols))


def _fit(values: np.ndarray, shape, fill) -> np.ndarray:
    """``values`` (the probes inside the part map) filled to ``shape``.

    Probes that fall outside the part map (the original would index out of
    range there; it does not happen for pyramids built by featpyramid) get ``fill``.
    """
    if values.shape == tuple(shape):
        return values
    out = np.full(shape, fill, dtype=values.dtype)
    out[:values.shape[0], :values.shape[1]] = values
    return out


def score_levels(pyramid, model: Model, prepared: PreparedModel | None = None, skip=None, *,
                 keep_features: bool = True, exact_order: bool = False):
    """Yield :class:`LevelScores` for each pyramid level ``detect.m`` visits.

    Levels run from ``interval`` (0-based) to the top; a level whose padded map
    is smaller than the model's largest root is skipped, as in the original,
    and so is a level for which ``skip(level, cell_size)`` returns True.
    ``prepared`` fixes the precision (default: float64 responses, the
    original's).  With ``keep_features=False`` the yielded scores do not hold
    the padded feature maps.  ``exact_order=True`` (float64 responses only)
    computes the filter responses in a fixed summation order without BLAS:
    the scores are then the same bits on every machine, which training needs
    (see ``docs/training.md``).
    """
    tune_malloc()
    prepared = prepared or PreparedModel(model, exact_order=exact_order)
    exact = exact_order or prepared.exact_order
    dtype = prepared.dtype
    pady, padx = model.padding
    maxh, maxw = model.maxsize
    interval = pyramid.interval

    def as_dtype(level):
        # No copy when the pyramid was built in the responses' dtype (detect_raw does that).
        return np.ascontiguousarray(pyramid.levels[level], dtype=dtype)

    for lev in range(interval, len(pyramid.levels)):
        feat = pyramid.levels[lev]
        if feat.shape[0] + 2 * pady < maxh or feat.shape[1] + 2 * padx < maxw:
            continue
        if skip is not None and skip(lev, model.sbin / pyramid.scales[lev]):
            continue
        # Responses of the padded maps, computed without forming them.
        root_resp = prepared.roots.convolve(as_dtype(lev), pad=(pady, padx), exact_order=exact)
        part_resp = None
        if prepared.parts is not None:
            part_resp = prepared.parts.convolve(as_dtype(lev - interval), pad=(2 * pady, 2 * padx),
                                                exact_order=exact)
        featr = featp = None
        if keep_features:
            featr = pad_features(feat, pady, padx, dtype)
            if prepared.parts is not None:
                featp = pad_features(pyramid.levels[lev - interval], 2 * pady, 2 * padx, dtype)
        ls = score_level(prepared, lev, model.sbin / pyramid.scales[lev], root_resp, part_resp)
        ls.root_features, ls.part_features = featr, featp
        yield ls


def score_level(prepared: PreparedModel, level: int, cell: float, root_resp, part_resp) -> LevelScores:
    """:class:`LevelScores` of one level from its filter responses.

    ``root_resp`` are the responses of the model's root filters (one per
    component) over the padded root level, ``part_resp`` those of its part
    filters (in :attr:`PreparedModel.parts` order; None without parts) over
    the padded part level (``interval`` levels below), as
    :meth:`dpm.convolve.FilterBank.convolve` gives them; ``cell`` is the
    level's cell size in pixels.  The per-level step of :func:`score_levels`,
    for callers that compute the responses themselves (the bounded-memory
    detector, :mod:`dpm.detection.bands`).
    """
    model = prepared.model
    scores, argmax = [], []
    for ci, comp in enumerate(model.components):
        score = root_resp[ci].astype(np.float64)
        score += comp.bias
        am = []
        for j, part in enumerate(comp.parts):
            # 1-based probe start anchor + 1 ("the anchor position is shifted to account for
            # misalignment between features at different resolutions") -> 0-based start = anchor.
            # Only the probed rows and columns of the transform of -response are computed.
            ax0, ay0 = part.anchor
            resp = part_resp[prepared.part_index[ci][j]]
            m, ix, iy = _part_dt(resp, prepared.deformations[ci][j], ay0, ax0, score.shape)
            score -= _fit(m, score.shape, np.inf)
            am.append(PartArgmax(ix, iy, ay0, 2, resp.shape, ax0, 2))
        scores.append(score)
        argmax.append(am)
    return LevelScores(level, cell, scores, argmax)
