"""Star-model scores -> raw detections (port of voc-release5 ``gdetect_parse.m`` and
``get_detection_trees.cc`` for star models, and ``imgdetect.m``).

Every root position whose start-symbol score is above the threshold is a
detection (levels in order, positions in MATLAB's column-major ``find``
order, then a stable sort by descending score).  Its component is the first
start rule whose score there equals the start symbol's (the original's rule
argmax).  Each placement (root and parts) is then followed through its
deformation rule's argmax tables, with release 5's "virtual padding" of
``pad * (2**ds - 1)`` cells between a root level and the level ``ds`` octaves
finer, and turned into a pixel box::

    scale = sbin / scales[level]
    x1 = (x - padx * 2**ds) * scale + 1,   x2 = x1 + width * scale - 1   (y alike)

The detection window uses the rule's ``detwindow``/``shiftwindow`` at the root's
scale.  Boxes are 1-based and inclusive, as the release's.

Port of voc-release5 (Girshick, Felzenszwalb, McAllester; MIT-style licence).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...features.pyramid_r5 import feature_pyramid_r5
from ...model.release5 import StarModel
from .scores import PreparedStar, StarLevel, star_levels

__all__ = ["StarRaw", "detect_raw_star", "empty_star_raw", "level_detections", "merge_levels", "model_pyramid",
           "placed_detections"]


@dataclass(frozen=True)
class StarRaw:
    """Raw detections of a star model, sorted by descending score (``imgdetect``'s output).

    Attributes
    ----------
    ds : (N, 6) float64
        ``[x1 y1 x2 y2 r score]``: detection window, 1-based rule (component) index, score.
    bs : (N, 4 * num_filters + 2) float64
        The box of every filter the detection uses in columns ``4*fi .. 4*fi+3``
        (``fi`` its index in the release's ``model.filters``; unused filters 0),
        then ``[r score]``.
    boxes : (N, P + 1, 4) float64
        The same filter boxes in the rule's order: root, then parts.
    levels : (N,) intp
        0-based pyramid level of the root.
    """

    ds: np.ndarray
    bs: np.ndarray
    boxes: np.ndarray
    levels: np.ndarray

    def __len__(self):
        return int(self.ds.shape[0])

    @property
    def components(self) -> np.ndarray:
        """0-based component (start rule) of each detection."""
        return self.ds[:, 4].astype(np.intp) - 1

    @property
    def scores(self) -> np.ndarray:
        return self.ds[:, 5]


def empty_star_raw(model: StarModel) -> StarRaw:
    """No detections, with the shapes of ``model``'s."""
    return StarRaw(np.zeros((0, 6)), np.zeros((0, 4 * model.num_filters + 2)),
                   np.zeros((0, model.num_parts + 1, 4)), np.zeros(0, dtype=np.intp))


def level_detections(scores: StarLevel, model: StarModel, pyramid, threshold: float) -> StarRaw:
    """The detections of one level, in ``find`` order (not sorted)."""
    xs, ys = np.nonzero(scores.start.T > threshold)          # column-major order of the (y, x) table
    n = xs.size
    if n == 0:
        return empty_star_raw(model)
    s = scores.start[ys, xs]
    rule = np.full(n, -1, dtype=np.intp)
    for ci, r in enumerate(scores.rules):
        rule[(rule < 0) & (r[ys, xs] == s)] = ci
    if (rule < 0).any():
        raise RuntimeError("rule argmax not found")  # the start score is the maximum of the rules'
    padx, pady = pyramid.padx, pyramid.pady
    placed = np.zeros((n, model.num_parts + 1, 2), dtype=np.intp)
    for ci, comp in enumerate(model.components):
        sel = np.flatnonzero(rule == ci)
        if sel.size == 0:
            continue
        x, y = xs[sel], ys[sel]
        for j, f in enumerate(comp.filters):
            ax, ay, fds = f.anchor
            step = 2 ** fds
            ix, iy = scores.argmax[ci][j]
            nx, ny = x * step + ax - padx * (step - 1), y * step + ay - pady * (step - 1)
            if nx.min() < 0 or ny.min() < 0 or nx.max() >= ix.shape[1] or ny.max() >= ix.shape[0]:
                raise RuntimeError("a detection above the threshold uses a placement outside its table")
            placed[sel, j, 0] = ix[ny, nx]
            placed[sel, j, 1] = iy[ny, nx]
    return placed_detections(model, pyramid, scores.level, rule, xs, ys, placed, s)


def placed_detections(model: StarModel, pyramid, level, rule, xs, ys, placed, score) -> StarRaw:
    """Raw detections of root positions ``(xs, ys)`` of ``level`` (0-based, padded level; an int, or
    one per detection), each of component ``rule``, with its filters (root, then parts, in the rule's
    order) placed at ``placed`` ``(N, P + 1, 2)`` ``(x, y)``: 0-based cells of the padded level each
    filter is placed at."""
    n = len(xs)
    sbin, interval, padx, pady = model.sbin, pyramid.interval, pyramid.padx, pyramid.pady
    levels = np.broadcast_to(np.asarray(level, dtype=np.intp), (n,))
    scales = np.asarray(pyramid.scales, dtype=np.float64)
    ds = np.zeros((n, 6))
    bs = np.zeros((n, 4 * model.num_filters + 2))
    boxes = np.zeros((n, model.num_parts + 1, 4))
    for ci, comp in enumerate(model.components):
        sel = np.flatnonzero(rule == ci)
        if sel.size == 0:
            continue
        x, y, lev = xs[sel], ys[sel], levels[sel]
        scale = sbin / scales[lev]
        (dh, dw), (sy, sx) = comp.detwindow, comp.shiftwindow
        x1 = (x - sx - padx) * scale
        y1 = (y - sy - pady) * scale
        d = ds[sel]
        d[:, 0] = x1 + 1
        d[:, 1] = y1 + 1
        d[:, 2] = x1 + dw * scale - 1 + 1
        d[:, 3] = y1 + dh * scale - 1 + 1
        ds[sel] = d
        box = np.empty((sel.size, len(comp.filters), 4))
        for j, f in enumerate(comp.filters):
            fds = f.anchor[2]
            step = 2 ** fds
            # release 5's virtual padding: pad * (step - 1) cells between the levels
            px = placed[sel, j, 0] + padx * (step - 1)
            py = placed[sel, j, 1] + pady * (step - 1)
            fscale = sbin / scales[lev - interval * fds]
            fh, fw = f.size
            bx1 = (px - padx * step) * fscale
            by1 = (py - pady * step) * fscale
            b = box[:, j]
            b[:, 0] = bx1 + 1
            b[:, 1] = by1 + 1
            b[:, 2] = bx1 + fw * fscale - 1 + 1
            b[:, 3] = by1 + fh * fscale - 1 + 1
        boxes[sel, :len(comp.filters)] = box
        cols = (4 * np.array([f.filter_index for f in comp.filters])[:, None] + np.arange(4)).ravel()
        bs[np.ix_(sel, cols)] = box.reshape(sel.size, -1)
    ds[:, 4] = rule + 1
    ds[:, 5] = score
    bs[:, -2] = rule + 1
    bs[:, -1] = score
    return StarRaw(ds, bs, boxes, levels.copy())


def merge_levels(model: StarModel, parts) -> StarRaw:
    """The levels' detections (each in ``find`` order) in one :class:`StarRaw`, stably sorted by
    descending score (``imgdetect``'s order)."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return empty_star_raw(model)
    ds = np.concatenate([p.ds for p in parts])
    order = np.argsort(-ds[:, 5], kind="stable")
    return StarRaw(ds[order], np.concatenate([p.bs for p in parts])[order],
                   np.concatenate([p.boxes for p in parts])[order],
                   np.concatenate([p.levels for p in parts])[order])


def model_pyramid(image, model: StarModel, pyramid=None, *, exact: bool = True):
    """``pyramid`` checked against ``model`` (padding, sbin, interval, extra octave), or built from
    ``image`` with the model's settings when None (the release's features, or with ``exact=False``
    the single-precision ones: :func:`dpm.features.pyramid_r5.feature_pyramid_r5`)."""
    if pyramid is None:
        pady, padx = model.padding
        return feature_pyramid_r5(image, model.sbin, model.interval, padx=padx, pady=pady,
                                  extra_octave=model.extra_octave, exact=exact)
    if (pyramid.pady, pyramid.padx) != model.padding or pyramid.interval != model.interval \
            or pyramid.sbin != model.sbin or pyramid.extra_octave != model.extra_octave:
        raise ValueError("pyramid: built with another padding, sbin, interval or extra octave than the model's")
    return pyramid


def detect_raw_star(image, model: StarModel, threshold: float | None = None, *, pyramid=None,
                    prepared: PreparedStar | None = None) -> StarRaw:
    """``imgdetect(im, model, thresh)`` of voc-release5 for a star model.

    Parameters
    ----------
    image : (H, W, 3) array_like
        RGB, values 0..255 (grey images: convert with :func:`dpm.image.as_rgb`).
    model : StarModel
    threshold : float, optional
        Keep root positions scoring strictly above it; default ``model.thresh``.
    pyramid : PaddedPyramid, optional
        Built with the model's padding (:func:`dpm.features.pyramid_r5.feature_pyramid_r5`);
        computed from ``image`` if not given.
    """
    if threshold is None:
        threshold = model.thresh
    threshold = float(threshold)
    if np.isnan(threshold):
        raise ValueError("threshold must be a number, got nan")
    pyramid = model_pyramid(image, model, pyramid)
    return merge_levels(model, [level_detections(lev, model, pyramid, threshold)
                                for lev in star_levels(pyramid, model, prepared)])
