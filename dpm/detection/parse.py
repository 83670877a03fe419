"""Filter scores -> raw detections: placements above the threshold, backtracked to root and part boxes.

``detect.m`` in plain detection mode (spec §1.9): every root position scoring
above the threshold, in the original's order (levels ascending from
``interval``; within a level, components in order; within a component,
column-major positions), with its root box and the boxes where its parts
landed, in 1-based inclusive pixel coordinates (see :mod:`dpm.boxes`).
"""
from __future__ import annotations

import numpy as np

from .._alloc import tune_malloc
from ..image import as_rgb
from ..model import Model
from .results import Detections
from .pyramid import DEFAULT_DTYPE, detection_pyramid
from .scores import LevelScores, PreparedModel, score_levels

__all__ = ["boxes_at", "boxes_from", "detect_raw", "detections_from_placements", "level_found", "part_positions"]


def boxes_at(model: Model, comp_index: int, ls: LevelScores, ys: np.ndarray, xs: np.ndarray):
    """Root and part boxes (1-based inclusive pixels) for root positions ``(ys, xs)`` (0-based)."""
    px, py = part_positions(model, comp_index, ls, ys, xs)
    return boxes_from(model, comp_index, ys, xs, px, py, ls.cell)


def part_positions(model: Model, comp_index: int, ls: LevelScores, ys: np.ndarray, xs: np.ndarray):
    """``(px, py)``, ``(N, P)`` float64: 1-based part positions for root positions ``(ys, xs)``."""
    comp = model.components[comp_index]
    nparts = len(comp.parts)
    px = np.empty((xs.size, nparts))
    py = np.empty((xs.size, nparts))
    for j, part in enumerate(comp.parts):
        am = ls.argmax[comp_index][j]
        if (am.row0, am.step, am.col0, am.col_step) == (part.anchor[1], 2, part.anchor[0], 2):
            # What score_levels computes: entry (r, c) is probe (y, x).
            px[:, j] = am.ix[ys, xs]
            py[:, j] = am.iy[ys, xs]
        else:
            px[:, j], py[:, j] = am.at(2 * ys + part.anchor[1], 2 * xs + part.anchor[0])
    px += 1
    py += 1
    return px, py


def boxes_from(model: Model, comp_index: int, ys, xs, px, py, s):
    """Root and part boxes from root positions (0-based), 1-based part positions ``(N, P)`` and
    the cell size ``s`` (a number, or one per position)."""
    pady, padx = model.padding
    comp = model.components[comp_index]
    s = np.asarray(s, dtype=np.float64)
    sp = s[:, None] if s.ndim else s
    rh, rw = comp.root_size
    X = xs.astype(np.float64) + 1
    Y = ys.astype(np.float64) + 1
    x1 = (X - padx) * s + 1
    y1 = (Y - pady) * s + 1
    root = np.stack([x1, y1, x1 + rw * s - 1, y1 + rh * s - 1], axis=1)
    nparts = len(comp.parts)
    parts = np.empty((xs.size, nparts, 4))
    if nparts == 0:
        return root, parts
    ph, pw = np.array([part.size for part in comp.parts], dtype=np.float64).T
    px1 = ((px - 2) / 2 + 1 - padx) * sp + 1
    py1 = ((py - 2) / 2 + 1 - pady) * sp + 1
    parts[:, :, 0] = px1
    parts[:, :, 1] = py1
    parts[:, :, 2] = px1 + pw * sp / 2 - 1
    parts[:, :, 3] = py1 + ph * sp / 2 - 1
    return root, parts


def detect_raw(image, model: Model, threshold: float | None = None, *, pyramid=None,
               dtype=DEFAULT_DTYPE, exact_features: bool | None = None) -> Detections:
    """``detect.m`` in plain detection mode: every placement scoring above ``threshold``.

    No bounding-box prediction, suppression or clipping: ``boxes`` are the root
    boxes.  ``threshold=None`` uses ``model.thresh``.  ``dtype`` and
    ``exact_features`` are as in :func:`dpm.detection.detect_one` (``exact_features``
    is unused when ``pyramid`` is given).
    """
    tune_malloc()
    image = as_rgb(image)
    thresh = model.thresh if threshold is None else float(threshold)
    prepared = PreparedModel(model, dtype)
    if pyramid is None:
        pyramid = detection_pyramid(image, model.sbin, model.interval, prepared.dtype, exact_features)
    found = []
    for ls in score_levels(pyramid, model, prepared, keep_features=False):
        found.extend(level_found(model, ls, thresh))
    return detections_from_placements(model, found, image.shape[:2])


def level_found(model: Model, ls: LevelScores, thresh: float) -> list:
    """The placements of one level scoring above ``thresh``, compactly (what
    :func:`detections_from_placements` takes).

    One entry per component with placements: component, level, cell size,
    root positions (0-based rows and columns, in ``detect.m``'s column-major
    order), part positions and scores.  Small: the level's score and argmax
    maps can be dropped afterwards.
    """
    found = []
    for ci, score in enumerate(ls.scores):
        xs, ys = np.nonzero(score.T > thresh)  # MATLAB find order: column-major
        if xs.size == 0:
            continue
        px, py = part_positions(model, ci, ls, ys, xs)
        found.append((ci, ls.level, ls.cell, ys, xs, px, py, score[ys, xs]))
    return found


def detections_from_placements(model: Model, found, image_shape) -> Detections:
    """Raw :class:`Detections` (boxes = root boxes) from placements grouped per (level, component).

    ``found``: a list of ``(component, level, cell, ys, xs, px, py, scores)``
    in the detections' order (:func:`level_found`'s entries of the levels in
    ascending order): 0-based root positions ``(ys, xs)`` of the padded root
    level, 1-based part positions ``px``, ``py`` ``(N, P)`` of the padded part
    level, ``cell`` the level's cell size in pixels.  The boxes are those of
    :func:`detect_raw` (which uses it); the star-cascade and the bounded
    detectors use it too.
    """
    nparts = model.num_parts
    if not found:
        return Detections.empty(nparts, tuple(image_shape), model.class_name)
    comps = np.concatenate([np.full(f[3].size, f[0], dtype=np.intp) for f in found])
    levels = np.concatenate([np.full(f[3].size, f[1], dtype=np.intp) for f in found])
    scores = np.concatenate([f[7] for f in found])
    root = np.empty((comps.size, 4))
    parts = np.empty((comps.size, nparts, 4))
    for ci in range(len(model.components)):
        mine = [f for f in found if f[0] == ci]
        if not mine:
            continue
        where = np.flatnonzero(comps == ci)
        r, p = boxes_from(model, ci, np.concatenate([f[3] for f in mine]), np.concatenate([f[4] for f in mine]),
                           np.concatenate([f[5] for f in mine]), np.concatenate([f[6] for f in mine]),
                           np.concatenate([np.full(f[3].size, f[2]) for f in mine]))
        root[where] = r
        parts[where] = p
    return Detections(root.copy(), scores, comps, root, parts, levels, tuple(image_shape), model.class_name)
