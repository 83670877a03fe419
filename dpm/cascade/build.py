"""Add a star-cascade to a model: :func:`build_cascade` (``cascade_data.m`` + ``cascade_model.m``).

The steps: the training positives' block scores for the model and its PCA
projection (:mod:`dpm.cascade.statistics`), then per component the part order
and the pruning thresholds from the positives scoring at least the global
threshold (:mod:`dpm.cascade.thresholds`).
"""
from __future__ import annotations

import logging
import warnings

import numpy as np

from ..features import NUM_FEATURES
from ..model import Model, StarModel
from ..model.check import validate_model
from ..training.data import Positive, clip_to_images
from .pca import load_hog_pca
from .statistics import STATS_INTERVAL, STATS_OVERLAP, CascadeStatistics, cascade_statistics
from .thresholds import identity_order, part_order, stage_thresholds
from .types import DEFAULT_WINDOW, Cascade, CascadeComponent

__all__ = ["build_cascade", "cascade_from_statistics", "DEFAULT_DIMS"]

log = logging.getLogger(__name__)

DEFAULT_DIMS = 5   # cascade_model.m's release setting


def _coefficients(coeff, dims) -> np.ndarray:
    if isinstance(dims, bool) or not isinstance(dims, (int, np.integer)) or not 1 <= dims <= NUM_FEATURES:
        raise ValueError(f"dims must be a whole number of principal directions in 1..{NUM_FEATURES}, got {dims!r}")
    if coeff is None:
        coeff, _ = load_hog_pca()
    coeff = np.asarray(coeff, dtype=np.float64)
    if coeff.ndim != 2 or coeff.shape[0] != NUM_FEATURES or not np.isfinite(coeff).all():
        raise ValueError(f"coeff must be a finite ({NUM_FEATURES}, k) matrix (principal directions of "
                         f"{NUM_FEATURES}-value HOG cells in columns, dpm.cascade.pca.pca_of_hog), got shape "
                         f"{coeff.shape}")
    if coeff.shape[1] < dims:
        raise ValueError(f"coeff has {coeff.shape[1]} columns, fewer than dims={dims}; pass more principal "
                         "directions or a smaller dims")
    return np.ascontiguousarray(coeff[:, :dims])


def cascade_from_statistics(model: Model, stats: CascadeStatistics, coeff, threshold: float,
                            window: int = DEFAULT_WINDOW) -> Cascade:
    """The cascade (order and thresholds per component, §C.3-§C.4) from the positives' block scores.

    Only positives scoring at least ``threshold`` count.  A component left
    without any gets every threshold at ``+inf`` (it never fires) and a
    warning.

    Raises
    ------
    ValueError
        No positive was detected, or none scores at least ``threshold``.
    """
    threshold = float(threshold)
    if not np.isfinite(threshold):
        raise ValueError(f"threshold must be a finite score, got {threshold}")
    if stats.detected == 0:
        raise ValueError(f"positives: none of the {stats.boxes} positives could be scored ({stats.skipped} smaller "
                         f"than the model's smallest root, {stats.undetected} views without a placement over "
                         f"their box, {stats.failed} failed); pass the positives the model was trained on")
    best = max(float(s.max()) for s in stats.score if s.size)
    if best < threshold:
        raise ValueError(f"threshold: all {stats.detected} scored positives are below threshold={threshold:.4f} "
                         f"(best {best:.4f}); pass a lower threshold, or the positives of this model's class")
    comps = []
    for ci, comp in enumerate(model.components):
        n = 1 + len(comp.parts)
        keep = stats.score[ci] >= threshold
        if not keep.any():
            warnings.warn(f"cascade: component {ci} has no positive scoring at least {threshold:.4f}; "
                          "it will never fire", stacklevel=2)
            comps.append(CascadeComponent(identity_order(n), np.full(4 * n, np.inf)))
            continue
        order = part_order(stats.full[ci][keep])
        t = stage_thresholds(stats.projected[ci][keep], stats.full[ci][keep], stats.offset[ci][keep], order,
                             threshold)
        comps.append(CascadeComponent(order, t))
        log.info("cascade component %d: %d of %d positives at or above %.4f; part order %s", ci, int(keep.sum()),
                 keep.size, threshold, order[1:n].tolist())
    return Cascade(coeff=np.array(coeff, dtype=np.float64), components=comps, threshold=threshold, window=window)


def build_cascade(model: Model, positives, *, threshold: float | None = None, dims: int = DEFAULT_DIMS,
                  coeff=None, n_jobs: int = 1, executor=None, progress: bool = False,
                  interval: int = STATS_INTERVAL, overlap: float = STATS_OVERLAP, mirror: bool = True) -> Model:
    """A copy of ``model`` carrying a star-cascade learned from its training positives.

    Parameters
    ----------
    model : Model
    positives : sequence
        The training positives: :class:`dpm.training.data.Positive` (e.g.
        ``voc.training_data(folder, cls).positives``) or ``(image, box)``
        pairs (a path or an ``(H, W, 3)`` array; a 1-based inclusive box).
    threshold : float, optional
        The global threshold the cascade is built for (default
        ``model.thresh``): positives scoring below it are left out of the
        thresholds, and detection keeps what scores at least it.
    dims : int, default 5
        Principal directions the projected filters and features keep.
    coeff : (31, k) array_like, optional
        Principal directions of HOG cells in columns (default: the shipped
        ones, :func:`dpm.cascade.pca.load_hog_pca`); the first ``dims`` are used.
    n_jobs, executor
        Where the positives are scored, as in :func:`dpm.train`.
    progress : bool
        A progress bar on stderr.
    interval, overlap, mirror
        The positives' pyramid (levels per octave), the least overlap of a
        placement with its box, and whether mirrored positives count too
        (defaults: the release's 5 and 0.5, and mirrors).

    Returns
    -------
    Model
        ``model``'s copy with ``.cascade`` set; ``model`` itself is unchanged.

    Raises
    ------
    ValueError
        No positives, none detected, all scoring below ``threshold``, or bad
        ``dims`` / ``coeff``.
    """
    if not isinstance(model, Model):
        if isinstance(model, StarModel):
            raise ValueError("model: a voc-release5 StarModel takes the cascade of the release's published "
                             "statistics (dpm.model.release5_cascade.cascade_from_published; the built-in r5/... "
                             "models carry it), not one built here")
        raise ValueError(f"model must be a dpm.Model, got {type(model).__name__}")
    positives = list(getattr(positives, "positives", positives))
    if not positives:
        raise ValueError("positives: no positives to build a cascade from; pass the model's training positives "
                         "(e.g. voc.training_data(folder, cls).positives)")
    coeff = _coefficients(coeff, dims)
    threshold = model.thresh if threshold is None else float(threshold)
    positives = _clipped(positives)
    stats = cascade_statistics(model, positives, coeff, interval=interval, overlap=overlap, mirror=mirror,
                               n_jobs=n_jobs, executor=executor, progress=progress)
    cascade = cascade_from_statistics(model, stats, coeff, threshold)
    out = model.copy()
    out.cascade = cascade
    above = sum(int((s >= threshold).sum()) for s in stats.score)
    out.info["cascade"] = (f"{stats.detected} positive detections ({above} at or above {threshold:.6g}) from "
                           f"{stats.boxes} boxes, {coeff.shape[1]} PCA dims")
    validate_model(out, source="build_cascade")
    return out


def _clipped(positives) -> list:
    if all(isinstance(p, Positive) for p in positives):
        return clip_to_images(positives)
    return positives
