"""Star-cascade detection (spec star-cascade.md §C.5; ``cascade_detect.m`` and ``cascade.cc`` of voc-release5).

The pipeline::

    image -> feature pyramid (float64) -> its projection onto the cascade's
    PCA directions -> per root level and component: projected root response
    everywhere -> per root position, the cascade's stages with pruning
    (dpm/detection/_cascade.pyx) -> raw detections -> the exact detector's
    finish (bbox prediction, suppression, clipping; :func:`dpm.detection.finish_detections`)

:func:`detect_cascade_raw` returns the same :class:`dpm.detection.Detections`
as :func:`dpm.detection.detect_raw` (root and part boxes, components, scores,
levels, in the same order and coordinates), so everything downstream of the
exact detector applies unchanged.  A detection's score is the full model's
score with each part restricted to its window (``cascade.window`` cells
around its anchor probe): with every threshold at ``-inf``, a window that
covers the part levels and ``skip_border=False`` it is exactly the exact
detector's (float64) detection.

Departures from ``cascade.cc``, for this project's release-3.1 pyramids
(docs/detection.md, "Star-cascade detection"):

- part windows are clipped to the part level as the exact detector pads it
  (twice the root padding); release 5 pads every level alike and clips to
  that, which is the same rule for its own pyramids;
- a hypothesis is a detection when its score is ``> threshold`` (the exact
  detector's test), not ``>=``;
- the window maximum is evaluated as the distance transform evaluates it
  (same expression, same tie rule), not as a brute-force sum: the same value
  to rounding, the exact detector's placement on ties.

``skip_border=True`` (the default) visits the root positions cascade.cc
visits: ``ceil(pad / 2)`` positions are skipped at each border of the padded
root level.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from .. import _cpu
from .._alloc import tune_malloc
from ..convolve import FilterBank
from ..cascade.types import Cascade, project
from ..image import as_rgb
from ..model import Model
from ..model.check import validate_cascade
from .finish import finish_detections, upsampled
from .parse import detections_from_placements
from .pyramid import detection_pyramid
from .results import Detections

_kernel = _cpu.best_build(__package__ + "._cascade")

__all__ = ["CascadeStats", "cascade_kernel", "cascade_levels", "cascade_options", "check_cascade", "cost_table",
           "detect_cascade", "detect_cascade_raw", "level_placements", "new_kernel", "project_pyramid",
           "projection_dtype"]

# Time split keys of CascadeStats.seconds, in pipeline order.
STAGES = ("features", "projection", "projected root", "part stages", "full stages", "rest")


@dataclass
class CascadeStats:
    """What one cascade detection did; pass one to :func:`detect_cascade` to have it filled.

    Parameters
    ----------
    timing : bool, default True
        Measure the kernel's projected and full stages (two clock reads per
        stage, level and component).
    blocks : bool, default False
        Record the per-stage scores of every raw detection.

    Attributes (filled by the detection; summed over calls)
    ----------
    seconds : dict of str to float
        Time split: ``features``, ``projection`` (pyramid and filters onto
        the PCA directions), ``projected root`` (dense projected root
        responses), ``part stages`` (the projected part stages), ``full
        stages`` (full root and parts: the rescoring), ``rest`` (the
        kernel's root loop, boxes, suppression).
    passed : (components, 2 (P + 1) + 1) int64 ndarray
        Per component: root positions visited (column 0), that entered
        stage ``s`` (column ``s``), that completed every stage (column
        ``2 n``).
    responses : (int, int)
        Part filter responses computed: full, projected.
    stages : list of int
        Per component, its number of stages ``2 n`` (n = 1 + parts).
    blocks : list of (N, 2 (P + 1), 2) ndarray
        With ``blocks=True``: per call, per raw detection (in order), the
        deformation and filter score added at each stage (stage 0 the
        projected root).
    """

    timing: bool = True
    blocks: bool = False
    seconds: dict = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    passed: np.ndarray = None
    responses: tuple = (0, 0)
    stages: list = field(default_factory=list)
    recorded: list = field(default_factory=list)

    def pruned(self) -> list:
        """Per component: the fraction of the visited root positions pruned at the check before
        each stage ``s = 1 .. 2n - 1`` (the rest completed every stage)."""
        if self.passed is None:
            return []
        return [[(int(row[s - 1]) - int(row[s])) / max(int(row[0]), 1) for s in range(1, stages)]
                for row, stages in zip(self.passed, self.stages)]

    def add_seconds(self, key, seconds):
        """Add ``seconds`` to the time split's ``key``."""
        self.seconds[key] = self.seconds.get(key, 0.0) + seconds

    def record(self, kernel, *, features: float, projection: float, root: float, search: float, rest: float,
               stages, recorded, width: int):
        """Add one detection's figures: the kernel's counts and stage times, the caller's times
        (``search``: in :meth:`CascadeKernel.level`, ``rest``: after it), ``stages`` per component,
        ``recorded`` the per-level block arrays (``width`` = most stages)."""
        proj_s, full_s = kernel.seconds
        self.add_seconds("features", features)
        self.add_seconds("projection", projection)
        self.add_seconds("projected root", root)
        self.add_seconds("part stages", proj_s)
        self.add_seconds("full stages", full_s)
        self.add_seconds("rest", search - proj_s - full_s + rest)
        self.stages = list(stages)
        self.passed = kernel.passed if self.passed is None else self.passed + kernel.passed
        self.responses = tuple(a + b for a, b in zip(self.responses, kernel.responses))
        if self.blocks:
            self.recorded.append(np.concatenate(recorded) if recorded else np.zeros((0, width, 2)))


def check_cascade(model: Model, cascade: Cascade) -> None:
    """Raise ``ValueError`` naming the problem if ``cascade`` does not fit ``model``
    (:func:`dpm.model.check.validate_cascade`, the check every loaded model passes)."""
    if not isinstance(cascade, Cascade):
        raise ValueError(f"cascade must be a dpm.cascade.Cascade, got {type(cascade).__name__}")
    validate_cascade(cascade, model, source="cascade")


def project_pyramid(pyramid, coeff, dtype=np.float64) -> list:
    """The pyramid's levels projected onto ``coeff`` ``(d, k)``: a list of ``(h, w, k)`` maps of ``dtype``."""
    return [project(level, coeff, dtype) for level in pyramid.levels]


def projection_dtype(pyramid) -> np.dtype:
    """Precision of a cascade's projected maps and filters for ``pyramid``: float32 for single-precision
    levels (the fast features, detection's default), float64 for the original's double-precision ones."""
    return np.dtype(np.float32 if all(f.dtype == np.float32 for f in pyramid.levels) else np.float64)


def cascade_levels(pyramid, coeff, dtype, times: dict):
    """For each root level ``lev`` from ``pyramid.interval`` on: ``(lev, root, part, root_proj,
    part_proj)``, the root level and the part level ``lev - interval`` in float64 (read by the full
    stages) and both projected onto ``coeff`` in ``dtype``.  Each level is converted and projected when
    first needed and released after its last use, so that a level is still in cache when the kernel
    reads it and only about ``interval`` levels are held; the time this takes is added to
    ``times["projection"]``."""
    interval = pyramid.interval
    levels, projected = {}, {}
    for lev in range(interval, len(pyramid.levels)):
        clock = time.perf_counter()
        for k in (lev - interval, lev):
            if k not in levels:
                levels[k] = np.ascontiguousarray(pyramid.levels[k], dtype=np.float64)
                projected[k] = project(pyramid.levels[k], coeff, dtype)
        times["projection"] = times.get("projection", 0.0) + time.perf_counter() - clock
        yield lev, levels[lev], levels[lev - interval], projected[lev], projected[lev - interval]
        del levels[lev - interval], projected[lev - interval]


def cost_table(deformation, window: int) -> np.ndarray:
    """(4, 2 window + 1): ``ax k^2``, ``bx k``, ``ay k^2``, ``by k`` for ``k = -window .. window``
    (the products the distance transform forms)."""
    ax, bx, ay, by = (float(v) for v in deformation)
    k = np.arange(-window, window + 1)
    return np.ascontiguousarray(np.stack([ax * (k * k), bx * k, ay * (k * k), by * k]), dtype=np.float64)


def new_kernel(components, **options):
    """The compiled search (``CascadeKernel`` of dpm/detection/_cascade.pyx, the best build for this
    processor) for ``components`` packed as it documents; ``options`` are its keyword arguments."""
    return _kernel.CascadeKernel(components, **options)


def cascade_options(cascade: Cascade, threshold, window):
    """``(threshold, window)`` checked, with None meaning the cascade's own (``cascade.threshold``,
    ``cascade.window``)."""
    thresh = float(cascade.threshold if threshold is None else threshold)
    if math.isnan(thresh):
        raise ValueError("threshold must be a number, got NaN")
    window = cascade.window if window is None else window
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 0:
        raise ValueError(f"window must be a non-negative integer (cells), got {window!r}")
    return thresh, int(window)


def cascade_kernel(model: Model, cascade: Cascade, threshold: float, window: int, skip_border: bool,
                   stats: CascadeStats | None, dtype):
    """``(kernel, roots)``: the compiled search of ``model`` with ``cascade`` (:func:`new_kernel`) and the
    bank of its projected root filters in ``dtype`` (their responses are stage 0)."""
    coeff = np.asarray(cascade.coeff, dtype=np.float64)
    comps = []
    for comp, cc in zip(model.components, cascade.components):
        parts = [dict(full=np.ascontiguousarray(p.filter, dtype=np.float64), proj=project(p.filter, coeff, dtype),
                      anchor=(int(p.anchor[0]), int(p.anchor[1])), cost=cost_table(p.deformation, window))
                 for p in comp.parts]
        comps.append(dict(root=np.ascontiguousarray(comp.root, dtype=np.float64), bias=float(comp.bias),
                          order=np.ascontiguousarray(cc.order, dtype=np.int64),
                          thresholds=np.ascontiguousarray(cc.thresholds, dtype=np.float64), parts=parts))
    roots = FilterBank([project(c.root, coeff, dtype) for c in model.components], dtype=dtype)
    kernel = new_kernel(comps, window=window, skip_border=skip_border, threshold=threshold,
                                   padding=model.padding, blocks=bool(stats and stats.blocks),
                                   timing=bool(stats and stats.timing))
    return kernel, roots


def level_placements(model: Model, lev: int, cell: float, pos, score, parts) -> list:
    """The kernel's detections of root level ``lev`` (cells of ``cell`` pixels) as the placement entries
    of :func:`dpm.detection.parse.detections_from_placements`, one per component that has any."""
    out = []
    for ci in range(len(model.components)):
        mine = pos[:, 0] == ci
        if not mine.any():
            continue
        xs, ys = pos[mine, 1].astype(np.intp), pos[mine, 2].astype(np.intp)
        npc = len(model.components[ci].parts)
        px = parts[mine, :npc, 0].astype(np.float64) + 1
        py = parts[mine, :npc, 1].astype(np.float64) + 1
        out.append((ci, lev, cell, ys, xs, px, py, score[mine]))
    return out


def detect_cascade_raw(image, model: Model, cascade: Cascade, threshold: float | None = None, *, pyramid=None,
                       window: int | None = None, skip_border: bool = True, exact_features: bool | None = None,
                       stats: CascadeStats | None = None) -> Detections:
    """Star-cascade detection without bbox prediction, suppression or clipping.

    The cascade counterpart of :func:`dpm.detection.detect_raw` (same
    output).  ``threshold=None`` uses ``cascade.threshold`` (the global
    threshold its pruning thresholds were computed for); ``window=None``
    uses ``cascade.window``; ``pyramid`` a
    :class:`dpm.features.FeaturePyramid` of ``image`` (its levels are read in
    float64 by the full filters and projected in the levels' precision, see
    :func:`projection_dtype`), computed if None: with the fast single-precision
    features by default, the original's double-precision ones with
    ``exact_features=True`` (:func:`dpm.detection.detection_pyramid`).
    See :func:`detect_cascade`.
    """
    tune_malloc()
    check_cascade(model, cascade)
    image = as_rgb(image)
    thresh, window = cascade_options(cascade, threshold, window)
    clock = time.perf_counter()
    if pyramid is None:
        exact = exact_features is True
        pyramid = detection_pyramid(image, model.sbin, model.interval, np.float64 if exact else np.float32, exact)
    now = time.perf_counter()
    times = {"features": now - clock, "projection": 0.0}
    dtype = projection_dtype(pyramid)
    kernel, roots = cascade_kernel(model, cascade, thresh, window, bool(skip_border), stats, dtype)
    times["projection"] += time.perf_counter() - now
    pady, padx = model.padding
    maxh, maxw = model.maxsize
    found, recorded = [], []
    root_seconds = kernel_seconds = 0.0
    for lev, feat, part, feat_proj, part_proj in cascade_levels(pyramid, cascade.coeff, dtype, times):
        if feat.shape[0] + 2 * pady < maxh or feat.shape[1] + 2 * padx < maxw:
            continue
        t0 = time.perf_counter()
        responses = roots.convolve(feat_proj, pad=(pady, padx))
        t1 = time.perf_counter()
        pos, score, parts, blocks = kernel.level(feat, part, part_proj, responses)
        kernel_seconds += time.perf_counter() - t1
        root_seconds += t1 - t0
        found += level_placements(model, lev, model.sbin / pyramid.scales[lev], pos, score, parts)
        if blocks is not None:
            recorded += [blocks[pos[:, 0] == ci] for ci in range(len(model.components)) if (pos[:, 0] == ci).any()]
    clock = time.perf_counter()
    raw = detections_from_placements(model, found, image.shape[:2])
    if stats is not None:
        stats.record(kernel, features=times["features"], projection=times["projection"], root=root_seconds,
                     search=kernel_seconds, rest=time.perf_counter() - clock,
                     stages=[2 * (1 + len(c.parts)) for c in model.components], recorded=recorded,
                     width=2 * (model.num_parts + 1))
    return raw


def detect_cascade(image, model: Model, cascade: Cascade, *, threshold: float | None = None, upsample: int = 1,
                   nms: float | None = 0.5, bbox_prediction: bool = True, clip: bool = True,
                   window: int | None = None, skip_border: bool = True, exact_features: bool | None = None,
                   stats: CascadeStats | None = None) -> Detections:
    """Detect objects with a model's star-cascade: :func:`dpm.detection.detect` with pruning.

    Parameters
    ----------
    image : (H, W, 3) or (H, W) ndarray
        As for :func:`dpm.detection.detect`.
    model : Model
    cascade : Cascade
        The model's cascade (PCA coefficients, stage order, thresholds).
    threshold : float, optional
        Keep detections scoring above this; default ``cascade.threshold``,
        the global threshold the cascade's pruning thresholds were computed
        for (the original re-builds the cascade for another threshold;
        a lower one here finds no more than the pruning lets through).
    upsample, nms, bbox_prediction, clip
        As for :func:`dpm.detection.detect`.
    window : int, optional
        Half-width in cells of each part's search window around its anchor
        probe (default ``cascade.window``, 4 as in the original).
    skip_border : bool, default True
        Skip ``ceil(pad / 2)`` root positions at each border of each padded
        level, as ``cascade.cc`` does; False visits every position the exact
        detector visits.
    exact_features : bool, optional
        Compute the features in double precision as the original does
        (True), or with the fast single-precision path (None, False: the
        default, as for exact detection; docs/detection.md "Fast features").
    stats : CascadeStats, optional
        Filled with the time split, the pruning counts and the number of
        filter responses computed.

    Returns
    -------
    Detections
        In suppression order (highest score first), as :func:`dpm.detection.detect`.
        Each score is the full model's float64 score with every part
        restricted to its window.
    """
    image = as_rgb(image)
    work = upsampled(image, upsample)
    raw = detect_cascade_raw(work, model, cascade, threshold, window=window, skip_border=skip_border,
                             exact_features=exact_features, stats=stats)
    clock = time.perf_counter()
    dets = finish_detections(raw, model, image.shape[:2], upsample=upsample, nms=nms,
                             bbox_prediction=bbox_prediction, clip=clip)
    if stats is not None:
        stats.add_seconds("rest", time.perf_counter() - clock)
    return dets
