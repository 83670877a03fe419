"""Latent placement and feature vectors: ``detect.m``'s latent and writing modes.

Training needs, for a window, the feature vector ``Phi`` whose dot product with
the learner's weights is the detection score (spec §1.9 items 8 and 9):

* :func:`detect_latent` finds the best placement (component, level, root and
  part positions) of a model over a ground-truth box -- the latent positive;
* :func:`detect_examples` returns every placement scoring above a threshold
  (hard negatives), each with its feature vector.

Feature vectors are lists of ``(block index, float32 values)`` in the
``.dat`` layout (:mod:`dpm.learn`): the bias block (value 1), the root window
folded left/right, then for each non-fake part its window (folded if the part
is self-symmetric; plus the mirrored window of its partner's placement
otherwise) and its deformation features ``-(dx^2, dx, dy^2, dy)`` (plus the
partner's, with the linear x term negated).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .boxes import box_area, iou
from .detection import Detections, boxes_at, score_levels
from .features import feature_pyramid
from .features.flip import flip_features
from .image import as_rgb
from .model import Model

__all__ = ["Placement", "detect_latent", "detect_examples", "iter_placements", "fold_window", "mround"]


def mround(x):
    """MATLAB ``round``: half away from zero."""
    x = np.asarray(x, dtype=np.float64)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def fold_window(window: np.ndarray) -> np.ndarray:
    """Fold a window for a left/right symmetric filter (its left ``ceil(w/2)`` columns).

    Columns ``0 .. w//2 - 1`` get the mirrored window's columns added, so that
    the dot product with the filter's half block equals the dot product of the
    full symmetric filter with the window.
    """
    w = window.shape[1]
    out = np.array(window[:, : (w + 1) // 2], dtype=np.float64)
    k = w // 2
    if k:
        out[:, :k] += flip_features(window)[:, :k]
    return out


@dataclass
class Placement:
    """One placement of a component, with its feature vector.

    ``label_ints`` are the ``.dat`` header's ``(level, xc, yc)`` (1-based level,
    root centre in level cells); ``blocks`` the feature vector.  ``position``
    is the root's 0-based ``(y, x)`` cell in the padded level ``level - 1`` and
    ``part_positions`` the parts' 0-based ``(x, y)`` cells in the padded part
    level (one octave finer), one row per part: where the filters were applied.
    """

    score: float
    component: int
    level: int
    xc: int
    yc: int
    root_box: np.ndarray
    part_boxes: np.ndarray
    blocks: list
    position: tuple = (-1, -1)
    part_positions: np.ndarray | None = None


def _placement(model: Model, ls, ci: int, y: int, x: int, score: float) -> Placement:
    comp = model.components[ci]
    pady, padx = model.padding
    rh, rw = comp.root_size
    blocks = [(comp.bias_block, np.ones(1, dtype=np.float32))]
    root = ls.root_features[y:y + rh, x:x + rw]
    blocks.append((comp.root_block, fold_window(root).ravel(order="F").astype(np.float32)))
    windows, defs, where = [], [], []
    for j, part in enumerate(comp.parts):
        probey, probex = 2 * y + part.anchor[1], 2 * x + part.anchor[0]
        px, py = (int(v) for v in ls.argmax[ci][j].at(probey, probex))
        where.append((px, py))
        ph, pw = part.size
        windows.append(ls.part_features[py:py + ph, px:px + pw])
        dx, dy = probex - px, probey - py
        defs.append(-np.array([dx * dx, dx, dy * dy, dy], dtype=np.float64))
    for j, part in enumerate(comp.parts):
        if part.fake:
            continue
        if part.partner >= 0:
            f = windows[j] + flip_features(windows[part.partner])
            d = defs[j] + defs[part.partner] * np.array([1.0, -1.0, 1.0, 1.0])
        else:
            f = fold_window(windows[j])
            d = defs[j]
        blocks.append((part.filter_block, np.asarray(f).ravel(order="F").astype(np.float32)))
        blocks.append((part.def_block, d.astype(np.float32)))
    X, Y = x + 1, y + 1
    rb, pb = boxes_at(model, ci, ls, np.array([y]), np.array([x]))
    return Placement(score=float(score), component=ci, level=ls.level + 1,
                     xc=int(mround(X + rw / 2 - padx)), yc=int(mround(Y + rh / 2 - pady)),
                     root_box=rb[0], part_boxes=pb[0], blocks=blocks, position=(int(y), int(x)),
                     part_positions=np.array(where, dtype=np.intp).reshape(len(comp.parts), 2))


def detect_latent(image, model: Model, bbox, overlap: float = 0.7, *, interval: int | None = None,
                  pyramid=None, exact_order: bool = True) -> Placement | None:
    """The best-scoring placement whose root box overlaps ``bbox`` (``detect.m`` latent mode).

    Parameters
    ----------
    image : (H, W, 3) ndarray
    model : Model
    bbox : sequence of 4 floats
        Ground-truth box ``[x1 y1 x2 y2]``, 1-based inclusive pixels.
    overlap : float
        Minimum IoU of the root box with ``bbox``.  A level is only searched
        if some component's root area at that scale is within this ratio of
        the box's area (both ratios at least ``overlap``).
    interval : int, optional
        Pyramid levels per octave (training uses 5); default ``model.interval``.
    exact_order : bool, optional
        Filter responses in the fixed summation order (default True: the
        same placement on every machine, as training needs); False uses BLAS.

    Returns
    -------
    Placement or None
        None when no placement overlaps enough.
    """
    image = as_rgb(image)
    bbox = np.asarray(bbox, dtype=np.float64)
    if pyramid is None:
        pyramid = feature_pyramid(image, model.sbin, interval or model.interval)
    gt_area = float(box_area(bbox))
    sizes = [c.root_size for c in model.components]

    def skip(level, cell):
        for rh, rw in sizes:
            a = rh * rw * cell * cell
            if a / gt_area >= overlap and gt_area / a >= overlap:
                return False
        return True

    best = None
    for ls in score_levels(pyramid, model, skip=skip, exact_order=exact_order):
        for ci, score in enumerate(ls.scores):
            h, w = score.shape
            xs, ys = np.meshgrid(np.arange(w), np.arange(h), indexing="ij")  # column-major order
            xs, ys = xs.ravel(), ys.ravel()
            rb = _root_boxes(model, ci, ls, ys, xs)
            ok = np.flatnonzero(iou(bbox, rb) >= overlap)
            if ok.size == 0:
                continue
            vals = score[ys[ok], xs[ok]]
            k = int(np.argmax(vals))  # first maximum, like MATLAB max
            if best is None or vals[k] > best[0]:
                best = (float(vals[k]), ls, ci, int(ys[ok[k]]), int(xs[ok[k]]))
    if best is None:
        return None
    score, ls, ci, y, x = best
    return _placement(model, ls, ci, y, x, score)


def _root_boxes(model: Model, ci: int, ls, ys, xs) -> np.ndarray:
    pady, padx = model.padding
    rh, rw = model.components[ci].root_size
    s = ls.cell
    x1 = (xs + 1 - padx) * s + 1
    y1 = (ys + 1 - pady) * s + 1
    return np.stack([x1, y1, x1 + rw * s - 1, y1 + rh * s - 1], axis=1)


def iter_placements(image, model: Model, threshold: float, *, interval: int | None = None, pyramid=None,
                    skip: int = 0, exact_order: bool = True):
    """Yield the placements scoring above ``threshold`` one at a time, in ``detect.m``'s order.

    The first ``skip`` of them are passed over without building their
    feature vectors, so a long list can be consumed in bounded pieces.
    ``exact_order`` as in :func:`detect_latent` (default True).
    """
    image = as_rgb(image)
    if pyramid is None:
        pyramid = feature_pyramid(image, model.sbin, interval or model.interval)
    k = 0
    for ls in score_levels(pyramid, model, exact_order=exact_order):
        for ci, score in enumerate(ls.scores):
            xs, ys = np.nonzero(score.T > threshold)
            if k + len(ys) <= skip:
                k += len(ys)
                continue
            for y, x in zip(ys, xs):
                if k >= skip:
                    yield _placement(model, ls, ci, int(y), int(x), score[y, x])
                k += 1


def detect_examples(image, model: Model, threshold: float, *, interval: int | None = None,
                    max_examples: int | None = None, pyramid=None, exact_order: bool = True):
    """Every placement scoring above ``threshold``, with its feature vector (``detect.m`` writing mode).

    Placements come in ``detect.m``'s order (levels ascending, components,
    column-major positions); at most ``max_examples`` are returned (the
    original stopped at a byte budget).  ``exact_order`` as in
    :func:`detect_latent` (default True).

    Returns
    -------
    (Detections, list of Placement)
    """
    image = as_rgb(image)
    out = []
    if max_examples is None or max_examples > 0:
        for p in iter_placements(image, model, threshold, interval=interval, pyramid=pyramid,
                                 exact_order=exact_order):
            out.append(p)
            if max_examples is not None and len(out) >= max_examples:
                break
    return _as_detections(out, model, image.shape), out


def _as_detections(placements, model, shape) -> Detections:
    if not placements:
        return Detections.empty(model.num_parts, shape[:2])
    root = np.array([p.root_box for p in placements])
    return Detections(root.copy(), np.array([p.score for p in placements]),
                      np.array([p.component for p in placements], dtype=np.intp), root,
                      np.array([p.part_boxes for p in placements]),
                      np.array([p.level - 1 for p in placements], dtype=np.intp), tuple(shape[:2]))
