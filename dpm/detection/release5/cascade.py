"""Star-cascade detection with voc-release5 star models (``cascade_detect.m`` and ``cascade.cc`` of release 5).

The pipeline is the project's cascade (:mod:`dpm.detection.cascade`, the same
compiled search) on release 5's pyramid::

    image -> dpm.features.pyramid_r5 (32 channels, padded with the truncation
    feature) -> its projection onto the cascade's (32, 6) directions -> per
    root level (from ``interval`` on) and component: the projected root's
    response, the level's offsets (component offset, scale prior, and the
    deformation rules' offsets, which are 0 in the release's models) -> the
    stages with pruning -> raw detections in :class:`StarRaw` form ->
    ``process.m``'s steps (:func:`process_star`) unchanged.

As in ``cascade.cc``: the levels come padded, so a part's probe is
``2 rx + ax - padx`` (``2 ry + ay - pady``) on the part level; ``ceil(pad / 2)``
root positions are skipped at each border unless ``skip_border=False``; a
probe is valid on the exact detector's tables (sized by the model's smallest
filter, here the 4-cell-wide roots, wider than the 6-cell parts), its window
clipped to the part's placements, as the bounded distance transform sees them.
A part is placed within ``window`` (4) cells of its probe, which is exactly
what the exact detector's bounded distance transform allows (range 4), so
with every threshold at ``-inf`` and ``skip_border=False`` the detections are
the exact detector's (up to float64 rounding of the responses).

Departures from ``cascade.cc``, kept so that the output is the exact
detector's form (docs/release5.md, "Star-cascades"):

- one detection per root position and level: of the components that pass
  every stage there, the best (on equal scores the first), as the exact
  detector's start symbol takes the best rule; ``cascade.cc`` reports each;
- a hypothesis is a detection when its score is ``> threshold`` (the exact
  detector's test), not ``>=``;
- the root is placed at its position; the exact detector passes it through
  a bounded distance transform with a cost of 1000 per squared cell, which
  moves it only where a neighbour's response is over 1000 higher.
"""
from __future__ import annotations

import math
import time

import numpy as np

from ..._alloc import tune_malloc
from ...cascade.types import Cascade, project
from ...convolve import FilterBank
from ...model.check import validate_cascade
from ...model.release5 import R5_FEATURES, StarModel
from ..cascade import CascadeStats, cascade_levels, cascade_options, cost_table, new_kernel, projection_dtype
from .parse import StarRaw, merge_levels, model_pyramid, placed_detections
from .scores import loc_features

__all__ = ["best_per_position", "check_star_cascade", "detect_raw_star_cascade", "level_biases",
           "star_cascade_kernel", "star_cascade_options"]


def check_star_cascade(model: StarModel, cascade) -> None:
    """``ValueError`` naming the problem if ``cascade`` does not fit the release-5 ``model``."""
    if not isinstance(cascade, Cascade):
        raise ValueError(f"cascade must be a dpm.cascade.Cascade, got {type(cascade).__name__}")
    validate_cascade(cascade, model, source="cascade", features=R5_FEATURES)
    for ci, comp in enumerate(model.components):
        if comp.root.anchor[2] != 0 or any(p.anchor[2] != 1 for p in comp.parts):
            raise ValueError(f"model: component {ci} has a part that is not one octave finer than its root; "
                             "the star-cascade places parts one octave finer (detect with cascade=False)")


def _filter(f) -> np.ndarray:
    # The exact detector's single-precision filter, read in float64 (exact products with float32 levels).
    return np.ascontiguousarray(f.filter.astype(np.float32), dtype=np.float64)


def star_cascade_options(model: StarModel, cascade: Cascade | None, threshold, window):
    """``(cascade, threshold, window)`` checked: None means the model's cascade, and that cascade's
    threshold and window (:func:`dpm.detection.cascade.cascade_options`)."""
    cascade = model.cascade if cascade is None else cascade
    if cascade is None:
        raise ValueError(f"cascade: the model ({model.class_name}) has no star-cascade; give one "
                         "(dpm.model.release5_cascade.cascade_from_published) or detect exactly (cascade=False)")
    check_star_cascade(model, cascade)
    return (cascade,) + cascade_options(cascade, threshold, window)


def star_cascade_kernel(model: StarModel, cascade: Cascade, threshold: float, window: int, skip_border: bool,
                        stats: CascadeStats | None, dtype):
    """``(kernel, roots)``: the compiled search (:func:`dpm.detection.cascade.new_kernel`) for ``model``'s
    padded levels (its own padding) and the bank of its projected root filters in ``dtype``."""
    coeff = np.asarray(cascade.coeff, dtype=np.float64)
    pady, padx = model.padding
    comps = []
    for comp, cc in zip(model.components, cascade.components):
        parts = [dict(full=_filter(p), proj=project(_filter(p), coeff, dtype),
                      anchor=(int(p.anchor[0]) - padx, int(p.anchor[1]) - pady),
                      cost=cost_table(p.deformation, window))
                 for p in comp.parts]
        comps.append(dict(root=_filter(comp.root), bias=0.0, order=np.ascontiguousarray(cc.order, dtype=np.int64),
                          thresholds=np.ascontiguousarray(cc.thresholds, dtype=np.float64), parts=parts))
    roots = FilterBank([project(_filter(c.root), coeff, dtype) for c in model.components], dtype=dtype)
    sizes = np.array([f.size for c in model.components for f in c.filters])
    kernel = new_kernel(comps, window=window, skip_border=skip_border, threshold=threshold, padding=(0, 0),
                        border=(math.ceil(pady / 2), math.ceil(padx / 2)), table=tuple(sizes.min(axis=0).tolist()),
                        blocks=bool(stats and stats.blocks), timing=bool(stats and stats.timing))
    return kernel, roots


def level_biases(model: StarModel, loc: np.ndarray, interval: int) -> np.ndarray:
    """(levels, components): what root level ``l`` adds to every hypothesis of each component: the
    offsets and scale priors of its structural rule and of each filter's deformation rule (at the
    filter's level); rows below ``interval`` are unused (0)."""
    nlev = loc.shape[1]
    out = np.zeros((nlev, len(model.components)))
    levels = np.arange(interval, nlev)
    for c, comp in enumerate(model.components):
        b = comp.offset + np.asarray(comp.loc, dtype=np.float64) @ loc[:, levels]
        for f in comp.filters:
            b = b + (f.offset + np.asarray(f.loc, dtype=np.float64) @ loc[:, levels - interval * f.anchor[2]])
        out[interval:, c] = b
    return out


def best_per_position(pos: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Rows of ``pos`` (component, rx, ry) keeping, per (rx, ry), the best score (first component on
    ties), in column-major order of the positions (the exact detector's ``find`` order)."""
    order = np.lexsort((pos[:, 0], -score, pos[:, 2], pos[:, 1]))
    p = pos[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = (p[1:, 1] != p[:-1, 1]) | (p[1:, 2] != p[:-1, 2])
    return order[first]


def detect_raw_star_cascade(image, model: StarModel, cascade: Cascade | None = None, threshold: float | None = None,
                            *, pyramid=None, window: int | None = None, skip_border: bool = True,
                            exact_projections: bool = False, stats: CascadeStats | None = None) -> StarRaw:
    """Raw detections of a release-5 star model with its star-cascade (the counterpart of
    :func:`dpm.detection.release5.detect_raw_star`, same output form).

    Parameters
    ----------
    image : (H, W, 3) array_like
        RGB, values 0..255.
    model : StarModel
    cascade : Cascade, optional
        Default ``model.cascade``.
    threshold : float, optional
        Keep hypotheses scoring above it; default ``cascade.threshold`` (what
        its pruning thresholds were computed for).
    pyramid : PaddedPyramid, optional
        As for :func:`~dpm.detection.release5.detect_raw_star`.
    window : int, optional
        Half-width in cells of each part's window (default ``cascade.window``, 4).
    skip_border : bool, default True
        Skip ``ceil(pad / 2)`` root positions at each border, as ``cascade.cc``.
    exact_projections : bool, default False
        True: the projected levels, filters and responses in float64, as
        ``cascade.cc`` computes them.  False: in float32 (a documented
        departure: projected scores only decide pruning; docs/detection.md,
        "Star-cascade detection").  The release's levels are single precision
        either way.
    stats : CascadeStats, optional
        Filled with the time split, pruning counts and responses computed.
    """
    tune_malloc()
    cascade, thresh, window = star_cascade_options(model, cascade, threshold, window)
    clock = time.perf_counter()
    pyramid = model_pyramid(image, model, pyramid)
    now = time.perf_counter()
    times = {"features": now - clock, "projection": 0.0}
    clock = now
    dtype = np.dtype(np.float64) if exact_projections else projection_dtype(pyramid)
    kernel, roots = star_cascade_kernel(model, cascade, thresh, window, bool(skip_border), stats, dtype)
    times["projection"] += time.perf_counter() - clock
    interval = pyramid.interval
    biases = level_biases(model, loc_features(len(pyramid.levels), interval), interval)
    found, recorded = [], []
    root_seconds = kernel_seconds = assemble = 0.0
    for lev, feat, part, feat_proj, part_proj in cascade_levels(pyramid, cascade.coeff, dtype, times):
        t0 = time.perf_counter()
        responses = roots.convolve(feat_proj, allow_empty=True)
        t1 = time.perf_counter()
        pos, score, parts, blocks = kernel.level(feat, part, part_proj, responses,
                                                 bias=biases[lev])
        t2 = time.perf_counter()
        root_seconds += t1 - t0
        kernel_seconds += t2 - t1
        if len(pos):
            keep = best_per_position(pos, score)
            found.append((np.full(len(keep), lev, dtype=np.intp), pos[keep], score[keep], parts[keep]))
            if blocks is not None:
                recorded.append(blocks[keep])
        assemble += time.perf_counter() - t2
    clock = time.perf_counter()
    if found:
        lev, pos, score, parts = (np.concatenate(x) for x in zip(*found))
        placed = np.concatenate([pos[:, None, 1:3], parts], axis=1).astype(np.intp)
        pos = pos.astype(np.intp)
        raw = merge_levels(model, [placed_detections(model, pyramid, lev, pos[:, 0], pos[:, 1], pos[:, 2],
                                                     placed, score)])
    else:
        raw = merge_levels(model, [])
    if stats is not None:
        stats.record(kernel, features=times["features"], projection=times["projection"], root=root_seconds,
                     search=kernel_seconds, rest=assemble + time.perf_counter() - clock,
                     stages=[2 * len(c.filters) for c in model.components], recorded=recorded,
                     width=2 * (model.num_parts + 1))
    return raw
