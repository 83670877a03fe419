"""Release-5 pyramid -> score maps of a star model (port of voc-release5 ``gdetect_dp.m``).

For a star model the grammar's dynamic programme is, per pyramid level ``L``
and component (start rule) ``c``:

* filter responses: every filter is correlated with every level it is used
  at (``fconv``), and the responses of one level are extended to the
  largest response size of the level with ``-inf`` (``post_pad``): every
  table of a level has one size, ``(H - hmin + 1, W - wmin + 1)``, with
  ``hmin``/``wmin`` the smallest filter sides of the model;
* deformation rule of each placement ``j`` (root or part), at its own level
  ``l = L - interval * ds``: ``response + offset + loc[l]``, then the bounded
  distance transform (:func:`dpm.dt_bounded.bounded_distance_transform`,
  +-4 cells), which also gives the argmax tables ``Ix``, ``Iy``;
* structural rule: ``offset + loc[L]``, plus, for each placement in rule
  order, its transformed scores sampled at ``y * 2**ds + ay - pady * (2**ds - 1)``
  (and likewise in x); samples outside the table are ``-inf``, and so is
  the whole rule where a placement's level ``l`` is below 0;
* the start symbol's score is the pointwise maximum over the components.

``loc`` is the scale prior: level ``l`` (0-based) has the features
``[l < interval, interval <= l < 2*interval, l >= 2*interval]``
(``loc_feat.m``) and scores ``loc . features``.

Filters are rounded to single precision first (``single(model_get_block(...))``)
and correlated in float64 with the float32 levels, so the products are
exact; the original sums them in float32 (``fconv_32``), which agrees to about
1e-6.

Port of voc-release5 (Girshick, Felzenszwalb, McAllester; MIT-style licence).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...convolve import FilterBank
from ...dt_bounded import DEFAULT_RANGE, bounded_distance_transform
from ...model.release5 import StarModel

__all__ = ["PreparedStar", "StarLevel", "loc_features", "star_levels"]


def loc_features(num_levels: int, interval: int) -> np.ndarray:
    """``loc_feat.m``: ``(3, num_levels)`` indicators of each level's octave (first, second, rest)."""
    f = np.zeros((3, num_levels))
    e = min(num_levels, interval)
    f[0, :e] = 1
    e2 = min(num_levels, 2 * e)
    f[1, e:e2] = 1
    f[2, e2:] = 1
    return f


class PreparedStar:
    """A star model's filters in one :class:`~dpm.convolve.FilterBank` per ``ds`` (root: 0, parts: 1)."""

    def __init__(self, model: StarModel):
        self.model = model
        self.banks = {}
        self.index = {}      # (component, placement) -> (ds, index in the bank)
        by_ds = {}
        for ci, comp in enumerate(model.components):
            for j, f in enumerate(comp.filters):
                ds = f.anchor[2]
                group = by_ds.setdefault(ds, [])
                self.index[ci, j] = (ds, len(group))
                group.append(f.filter.astype(np.float32))
        for ds, filters in by_ds.items():
            self.banks[ds] = FilterBank(filters, dtype=np.float64)
        sizes = np.array([f.size for c in model.components for f in c.filters])
        self.min_size = (int(sizes[:, 0].min()), int(sizes[:, 1].min()))
        self.max_ds = max(by_ds)


@dataclass
class StarLevel:
    """Score tables of one root level (what :func:`star_levels` yields).

    Attributes
    ----------
    level : int
        0-based root level.
    start : (R, C) float64
        The start symbol's score (``model.symbols(model.start).score{level+1}``).
    rules : list of (R, C) float64
        Each component's (start rule's) score.
    argmax : list of list of (Ix, Iy) or None
        Per component and placement, the 0-based argmax tables of the
        placement's deformation rule at its level (None where the rule is
        ``-inf`` at this level).
    """

    level: int
    start: np.ndarray
    rules: list
    argmax: list


def _table_shape(feat: np.ndarray, min_size) -> tuple:
    return max(feat.shape[0] - min_size[0] + 1, 0), max(feat.shape[1] - min_size[1] + 1, 0)


def _responses(prepared: PreparedStar, feat: np.ndarray, ds: int, shape) -> list:
    """Responses of the filters of ``ds`` on a padded level, extended to ``shape`` with -inf
    (``post_pad``).  A filter larger than the level (the original stops there) scores -inf."""
    out = []
    for r in prepared.banks[ds].convolve(feat, allow_empty=True):
        if r.shape == tuple(shape):
            out.append(np.asarray(r, dtype=np.float64))
            continue
        full = np.full(shape, -np.inf)
        full[:r.shape[0], :r.shape[1]] = r
        out.append(full)
    return out


def _sample(table: np.ndarray, start_y: int, start_x: int, step: int, shape) -> np.ndarray:
    """``table`` at rows ``start_y + step*k`` and columns ``start_x + step*k``, ``-inf`` outside."""
    out = np.full(shape, -np.inf)
    ys = start_y + step * np.arange(shape[0])
    xs = start_x + step * np.arange(shape[1])
    oky = (ys >= 0) & (ys < table.shape[0])
    okx = (xs >= 0) & (xs < table.shape[1])
    if oky.any() and okx.any():
        out[np.ix_(oky, okx)] = table[np.ix_(ys[oky], xs[okx])]
    return out


def star_levels(pyramid, model: StarModel, prepared: PreparedStar | None = None, *, dt_range=DEFAULT_RANGE):
    """Yield a :class:`StarLevel` for every level of a release-5 pyramid, in order.

    ``pyramid`` is a :class:`dpm.features.pyramid_r5.PaddedPyramid` built with
    the model's padding.  The deformation rule of a placement at level ``l`` is
    computed once, for the one root level that uses it.
    """
    prepared = prepared or PreparedStar(model)
    interval, pady, padx = pyramid.interval, pyramid.pady, pyramid.padx
    num_levels = len(pyramid.levels)
    loc = loc_features(num_levels, interval)
    shapes = [_table_shape(f, prepared.min_size) for f in pyramid.levels]
    for lev in range(num_levels):
        shape = shapes[lev]
        responses = {}
        for ds in prepared.banks:
            src = lev - interval * ds
            if src >= 0:
                responses[ds] = _responses(prepared, pyramid.levels[src], ds, shapes[src])
        rules, argmax = [], []
        for ci, comp in enumerate(model.components):
            score = np.full(shape, comp.offset + float(comp.loc @ loc[:, lev]))
            am = []
            for j, f in enumerate(comp.filters):
                ax, ay, ds = f.anchor
                src = lev - interval * ds
                if src < 0:
                    score[:] = -np.inf
                    am.append(None)
                    continue
                vals = responses[ds][prepared.index[ci, j][1]] + f.offset + float(f.loc @ loc[:, src])
                m, ix, iy = bounded_distance_transform(vals, *f.deformation, range=dt_range)
                step = 2 ** ds
                score += _sample(m, ay - (step - 1) * pady, ax - (step - 1) * padx, step, shape)
                am.append((ix, iy))
            rules.append(score)
            argmax.append(am)
        start = rules[0].copy()
        for r in rules[1:]:
            np.maximum(start, r, out=start)
        yield StarLevel(lev, start, rules, argmax)
