"""Block scores of the training positives for a star-cascade (spec §C.2; ``cascade_data.m``).

For each positive whose box is at least ``prod(minsize * sbin / 2)`` pixels,
the image is cropped around it (``croppos``) and the full model's best
placement over the box (overlap 0.5, the positive pyramid of 5 levels per
octave) is found with :func:`dpm.latent.detect_latent`.  At that placement
every block's score is recorded: the root filter's, each part's filter score
and deformation score (minus its deformation cost), and the offset (bias).
Then the model projected onto the PCA of HOG (filters ``W C``, features
``F C``) is run at the same component, level and root position, its parts
placed freely by its own distance transform, and its block scores recorded
the same way.  Each set of block scores sums to its detection's score (checked
to 1e-5, as the release does).  As this project's training, each positive is
taken twice, as it is and mirrored (release 5's ``pascal_data`` lists the
mirrored positives too).

The work per positive is a task of :mod:`dpm.execution` (:class:`CascadeDataTask`),
so it runs in processes (``n_jobs``) or on a Dask cluster (``executor``).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np

from ..detection import score_levels
from ..execution import TaskFailed, make_executor
from ..features import FeaturePyramid, feature_pyramid
from ..image import read_image
from ..latent import detect_latent
from ..model import Model
from ..training.tasks import croppos, flip_box
from .types import project

__all__ = ["CascadeDataTask", "PositiveScores", "CascadeStatistics", "cascade_statistics", "project_model",
           "block_scores", "STATS_INTERVAL", "STATS_OVERLAP", "SUM_TOLERANCE"]

log = logging.getLogger(__name__)

STATS_INTERVAL = 5        # release 5's conf.training.interval_fg (the latent positives' pyramid)
STATS_OVERLAP = 0.5       # cascade_data.m: gdetect_pos_prepare(im, model, bbox, 0.5)
SUM_TOLERANCE = 1e-5      # cascade_data.m's check that the block scores sum to the score


def project_model(model: Model, coeff) -> Model:
    """``model`` with every filter projected onto ``coeff`` ``(31, k)`` (``project_model.m``).

    The result has ``(h, w, k)`` filters: it is for scoring projected
    pyramids only (it is not a valid model file).
    """
    comps = [replace(c, root=project(c.root, coeff), parts=[replace(p, filter=project(p.filter, coeff))
                                                            for p in c.parts])
             for c in model.components]
    return replace(model, components=comps, cascade=None)


def _padded(features: np.ndarray, pady: int, padx: int) -> np.ndarray:
    return np.pad(features, ((pady, pady), (padx, padx), (0, 0)))


def block_scores(component, root_features, part_features, position, part_positions):
    """``(blocks, offset)`` of a component placed at ``position`` (0-based ``(y, x)`` in the padded
    root level) with its parts at ``part_positions`` (``(P, 2)`` 0-based ``(x, y)`` in the padded
    part level): ``blocks`` is ``[0, s_0, d_1, s_1, ...]`` (:mod:`dpm.cascade.thresholds`)."""
    y, x = position
    rh, rw = component.root_size
    out = np.zeros(2 + 2 * len(component.parts))
    out[1] = float(np.sum(component.root * root_features[y:y + rh, x:x + rw]))
    for j, part in enumerate(component.parts):
        px, py = (int(v) for v in part_positions[j])
        ph, pw = part.size
        dx, dy = 2 * x + part.anchor[0] - px, 2 * y + part.anchor[1] - py
        ax, bx, ay, by = (float(v) for v in part.deformation)
        out[2 + 2 * j] = 0.0 - (ax * dx * dx + bx * dx + ay * dy * dy + by * dy)
        out[3 + 2 * j] = float(np.sum(part.filter * part_features[py:py + ph, px:px + pw]))
    return out, float(component.bias)


@dataclass(frozen=True)
class PositiveScores:
    """The block scores of one positive (or its mirror) for the full and the projected model."""

    component: int
    level: int              # 0-based pyramid level of the root (pyramid of STATS_INTERVAL levels per octave)
    score: float            # the full model's detection score
    projected_score: float  # the projected model's score at the same root placement
    offset: float           # the component's bias
    full: np.ndarray        # (2n,) block scores of the full model
    projected: np.ndarray   # (2n,) block scores of the projected model


def _check_sum(what, blocks, offset, score, label):
    total = float(blocks.sum() + offset)
    if not abs(total - score) <= SUM_TOLERANCE * max(1.0, abs(score)):
        raise RuntimeError(f"{label}: the {what} block scores sum to {total:.8g}, the detection scored "
                           f"{score:.8g}")


def positive_scores(image, box, model: Model, projected: Model, coeff, *, interval=STATS_INTERVAL,
                    overlap=STATS_OVERLAP, label="positive") -> PositiveScores | None:
    """:class:`PositiveScores` of the best placement over ``box`` in ``image`` (None: no placement)."""
    pyramid = feature_pyramid(image, model.sbin, interval)
    p = detect_latent(image, model, box, overlap, interval=interval, pyramid=pyramid)
    if p is None:
        return None
    ci, lev = p.component, p.level - 1
    comp = model.components[ci]
    pady, padx = model.padding
    full, offset = block_scores(comp, _padded(pyramid.levels[lev], pady, padx),
                                _padded(pyramid.levels[lev - interval], 2 * pady, 2 * padx),
                                p.position, p.part_positions)
    _check_sum("full model's", full, offset, p.score, label)
    # The projected model at the same component, level and root position; parts placed by its own dt.
    levels = list(pyramid.levels)
    for k in (lev, lev - interval):
        levels[k] = project(levels[k], coeff)
    small = FeaturePyramid(levels, pyramid.scales, pyramid.sbin, pyramid.interval, pyramid.image_shape)
    ls = next(score_levels(small, projected, skip=lambda level, cell: level != lev, exact_order=True))
    y, x = p.position
    pcomp = projected.components[ci]
    where = np.array([[int(v) for v in ls.argmax[ci][j].at(2 * y + part.anchor[1], 2 * x + part.anchor[0])]
                      for j, part in enumerate(pcomp.parts)], dtype=np.intp).reshape(len(pcomp.parts), 2)
    pscore = float(ls.scores[ci][y, x])
    proj, _ = block_scores(pcomp, ls.root_features, ls.part_features, p.position, where)
    _check_sum("projected model's", proj, offset, pscore, label)
    return PositiveScores(ci, lev, float(p.score), pscore, offset, full, proj)


@dataclass(frozen=True)
class StatsModels:
    """What a :class:`CascadeDataTask` computes with: the model, its projection and the projection matrix."""

    model: Model
    projected: Model
    coeff: np.ndarray


@dataclass(frozen=True)
class CascadeDataTask:
    """Block scores of positive ``index`` (1-based) and its mirror (``run`` returns a list of 0-2
    :class:`PositiveScores`); ``image`` is a path or an ``(H, W, 3)`` array."""

    index: int
    image: object
    box: tuple
    interval: int = STATS_INTERVAL
    overlap: float = STATS_OVERLAP
    min_area: float = 0.0
    mirror: bool = True

    @property
    def label(self) -> str:
        return str(self.image) if not isinstance(self.image, np.ndarray) else f"positive {self.index}"

    def run(self, models: StatsModels):
        x1, y1, x2, y2 = self.box
        if (x2 - x1 + 1) * (y2 - y1 + 1) < self.min_area:
            return []
        image = self.image if isinstance(self.image, np.ndarray) else read_image(self.image)
        crop, cbox = croppos(image, self.box)
        views = [(crop, cbox)]
        if self.mirror:
            views.append((crop[:, ::-1], flip_box(cbox, crop.shape[1])))
        out = []
        for im, b in views:
            s = positive_scores(im, b, models.model, models.projected, models.coeff, interval=self.interval,
                                overlap=self.overlap, label=self.label)
            if s is not None:
                out.append(s)
        return out


@dataclass
class CascadeStatistics:
    """Block scores of the positives, per component (what :mod:`dpm.cascade.thresholds` needs).

    ``score[c]`` ``(m_c,)``, ``offset[c]`` ``(m_c,)``, ``full[c]`` and
    ``projected[c]`` ``(m_c, 2n)``: the positives detected with component
    ``c``.  ``boxes`` positives were given, ``skipped`` were smaller than the
    minimum area, ``undetected`` had no placement overlapping their box
    enough (counted per view: a box and its mirror), ``failed`` could not be
    read or computed.
    """

    score: list
    offset: list
    full: list
    projected: list
    projected_score: list
    boxes: int = 0
    skipped: int = 0
    undetected: int = 0
    failed: int = 0

    @property
    def detected(self) -> int:
        """Number of detected positives (views), all components."""
        return int(sum(len(s) for s in self.score))


def _positive_items(positives):
    for p in positives:
        if hasattr(p, "path") and hasattr(p, "box"):
            yield str(p.path), tuple(float(v) for v in p.box)
        else:
            image, box = p
            yield (image if isinstance(image, np.ndarray) else str(image)), tuple(float(v) for v in box)


def cascade_statistics(model: Model, positives, coeff, *, interval: int = STATS_INTERVAL,
                       overlap: float = STATS_OVERLAP, mirror: bool = True, n_jobs: int = 1, executor=None,
                       progress: bool = False) -> CascadeStatistics:
    """Block scores of ``positives`` for ``model`` and its projection onto ``coeff`` ``(31, k)`` (§C.2).

    ``positives`` are :class:`dpm.training.data.Positive` (or anything with
    ``path`` and ``box``) or ``(image, box)`` pairs (an image path or array,
    a 1-based inclusive box).  Runs on ``executor`` (a
    :class:`dpm.execution.Executor`, a ``distributed.Client`` or a
    ``concurrent.futures.Executor``) or in ``n_jobs`` processes.  A positive
    that fails (an unreadable image) is logged and left out.
    """
    coeff = np.ascontiguousarray(coeff, dtype=np.float64)
    models = StatsModels(model, project_model(model, coeff), coeff)
    mh, mw = model.minsize
    min_area = (mh * model.sbin / 2) * (mw * model.sbin / 2)
    tasks = [CascadeDataTask(i, image, box, interval, overlap, min_area, mirror)
             for i, (image, box) in enumerate(_positive_items(positives), start=1)]
    ncomp = len(model.components)
    rows = [[] for _ in range(ncomp)]
    stats = CascadeStatistics([], [], [], [], [], boxes=len(tasks))
    own = make_executor(n_jobs) if executor is None else None
    try:
        run = own or make_executor(executor=executor)
        for task, result in run.map(tasks, models, desc="cascade data", unit="pos", progress=progress):
            if isinstance(result, TaskFailed):
                log.warning("skipping a positive: %s", result)
                stats.failed += 1
                continue
            x1, y1, x2, y2 = task.box
            if (x2 - x1 + 1) * (y2 - y1 + 1) < min_area:
                stats.skipped += 1
                continue
            stats.undetected += (2 if mirror else 1) - len(result)
            for r in result:
                rows[r.component].append(r)
    finally:
        if own is not None:
            own.close()
    two_n = [2 + 2 * len(c.parts) for c in model.components]
    for ci in range(ncomp):
        rs = rows[ci]
        stats.score.append(np.array([r.score for r in rs], dtype=np.float64))
        stats.projected_score.append(np.array([r.projected_score for r in rs], dtype=np.float64))
        stats.offset.append(np.array([r.offset for r in rs], dtype=np.float64))
        stats.full.append(np.array([r.full for r in rs], dtype=np.float64).reshape(len(rs), two_n[ci]))
        stats.projected.append(np.array([r.projected for r in rs], dtype=np.float64).reshape(len(rs), two_n[ci]))
    log.info("cascade data: %d detections from %d boxes%s; %d boxes too small, %d views without a placement "
             "over their box, %d failed", stats.detected, stats.boxes, " and their mirrors" if mirror else "",
             stats.skipped, stats.undetected, stats.failed)
    return stats
