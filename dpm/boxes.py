"""Boxes: conventions, non-maximum suppression, clipping, bounding-box prediction.

Box convention (the original's, and PASCAL VOC's): ``[x1, y1, x2, y2]`` in
**1-based, inclusive** pixel coordinates, so a box covers ``x2 - x1 + 1``
columns and its area is ``(x2 - x1 + 1) * (y2 - y1 + 1)``.  Coordinates are
floats: detection boxes are in general not on pixel boundaries.

Ports of voc-release3.1 ``nms.m``, ``clipboxes.m`` and ``getboxes.m``
(spec §1.10; Felzenszwalb, Girshick, McAllester, Ramanan, MIT-style licence).
"""
from __future__ import annotations

import numpy as np

__all__ = ["box_area", "nms", "nms_indices", "clip_boxes", "predict_boxes", "iou", "check_boxes"]


def box_area(boxes: np.ndarray) -> np.ndarray:
    """Area of inclusive boxes, ``(x2 - x1 + 1) * (y2 - y1 + 1)``."""
    b = np.asarray(boxes, dtype=np.float64)
    return (b[..., 2] - b[..., 0] + 1) * (b[..., 3] - b[..., 1] + 1)


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """PASCAL overlap (intersection over union, inclusive pixels) of one box with many."""
    box = np.asarray(box, dtype=np.float64)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    w = np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]) + 1
    h = np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]) + 1
    inter = np.where((w > 0) & (h > 0), w * h, 0.0)
    return inter / (box_area(box) + box_area(boxes) - inter)


def nms_indices(boxes: np.ndarray, scores: np.ndarray, overlap: float = 0.5) -> np.ndarray:
    """Greedy non-maximum suppression with the original's overlap rule.

    Boxes are visited from the highest score down (ties: the later box first,
    because ``nms.m`` takes the last element of MATLAB's stable ascending sort).
    The picked box ``i`` suppresses every remaining box ``j`` with
    ``intersection(i, j) / area(j) > overlap``.  This is **not** IoU: the
    denominator is the area of the lower-scoring box, as in voc-release3.1.

    Returns
    -------
    (K,) intp ndarray
        Indices of the kept boxes, in the order they were picked.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if boxes.shape[0] != scores.shape[0]:
        raise ValueError(f"nms: {boxes.shape[0]} boxes but {scores.shape[0]} scores")
    if not 0 <= overlap <= 1 or not np.isfinite(overlap):
        raise ValueError(f"nms: overlap must be in [0, 1], got {overlap}")
    order = np.argsort(scores, kind="stable")[::-1]  # descending, later index first on ties
    x1, y1, x2, y2 = boxes.T
    area = box_area(boxes)
    if order.size > _GRID_NMS_FROM and np.isfinite(boxes).all():
        return _nms_on_grid(order, x1, y1, x2, y2, area, overlap)
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        w = np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1
        h = np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1
        suppress = (w > 0) & (h > 0) & (w * h / area[rest] > overlap)
        order = rest[~suppress]
    return np.asarray(keep, dtype=np.intp)


# Above this many boxes, each picked box is compared only with the boxes that can meet it.
_GRID_NMS_FROM = 20000


def _nms_on_grid(order, x1, y1, x2, y2, area, overlap):
    # The same picks as the loop of nms_indices: a box j that does not meet the picked box i
    # (min(x2) - max(x1) + 1 <= 0, or the same in y) is never suppressed by it, so i is compared
    # only with the boxes listed in the cells its extent (one pixel wider on each side: inclusive
    # pixel boxes) touches, with the same expression.  Boxes are sorted by size into grids whose
    # cells are at least as large as their boxes (a box is listed in at most 3 x 3 cells of its
    # grid).  The raw detections of a large photo (hundreds of thousands) take seconds.
    # A box with x2 - x1 + 1 <= 0 (or in y; bounding-box prediction can invert a box) meets no
    # box: it is never suppressed and suppresses nothing, so it is in no grid.
    n = x1.size
    ex, ey = x2 - x1 + 3, y2 - y1 + 3
    meets = (ex > 2) & (ey > 2)
    if not meets.any():
        return order.astype(np.intp)
    ox, oy = float(np.min(x1[meets])) - 2, float(np.min(y1[meets])) - 2
    size_class = np.ceil(np.log2(np.maximum(np.maximum(ex, ey), 16.0))).astype(np.intp)
    size_class[~meets] = -1
    grids = []
    for c in np.unique(size_class[meets]):
        cell = float(2 ** int(c))
        mine = np.flatnonzero(size_class == c)
        gx0 = ((x1[mine] - 1 - ox) // cell).astype(np.intp)
        gx1 = ((x2[mine] + 1 - ox) // cell).astype(np.intp)
        gy0 = ((y1[mine] - 1 - oy) // cell).astype(np.intp)
        gy1 = ((y2[mine] + 1 - oy) // cell).astype(np.intp)
        ncx, ncy = int(gx1.max()) + 1, int(gy1.max()) + 1
        span_x, span_y = gx1 - gx0 + 1, gy1 - gy0 + 1
        counts = span_x * span_y
        owner = np.repeat(np.arange(mine.size), counts)
        k = np.arange(owner.size) - np.repeat(np.cumsum(counts) - counts, counts)
        cells = (gy0[owner] + k // span_x[owner]) * ncx + gx0[owner] + k % span_x[owner]
        by_cell = np.argsort(cells, kind="stable")
        starts = np.searchsorted(cells[by_cell], np.arange(ncx * ncy + 1))
        grids.append((cell, ncx, ncy, mine[owner[by_cell]], starts))
    alive = np.ones(n, dtype=bool)
    keep = []
    for i in order:
        if not alive[i]:
            continue
        keep.append(i)
        alive[i] = False
        if not meets[i]:
            continue
        lists = []
        for cell, ncx, ncy, members, starts in grids:
            gx0 = max(0, int((x1[i] - 1 - ox) // cell))
            gx1 = min(ncx - 1, int((x2[i] + 1 - ox) // cell))
            gy0 = max(0, int((y1[i] - 1 - oy) // cell))
            gy1 = min(ncy - 1, int((y2[i] + 1 - oy) // cell))
            if gx0 > gx1:
                continue
            for r in range(gy0 * ncx, (gy1 + 1) * ncx, ncx):
                lists.append(members[starts[r + gx0]:starts[r + gx1 + 1]])
        if not lists:
            continue
        cand = np.concatenate(lists)
        cand = cand[alive[cand]]
        if cand.size == 0:
            continue
        cand = np.unique(cand)
        w = np.minimum(x2[i], x2[cand]) - np.maximum(x1[i], x1[cand]) + 1
        h = np.minimum(y2[i], y2[cand]) - np.maximum(y1[i], y1[cand]) + 1
        suppress = (w > 0) & (h > 0) & (w * h / area[cand] > overlap)
        alive[cand[suppress]] = False
    return np.asarray(keep, dtype=np.intp)


def nms(boxes: np.ndarray, overlap: float = 0.5) -> np.ndarray:
    """``nms.m``: rows of ``boxes`` (score in the last column) that survive suppression.

    ``boxes`` is ``(N, K)`` with ``x1 y1 x2 y2`` in the first four columns and
    the score in the last; the surviving rows are returned in pick order.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.size == 0:
        return boxes.reshape(0, boxes.shape[-1] if boxes.ndim == 2 else 5)
    return boxes[nms_indices(boxes[:, :4], boxes[:, -1], overlap)]


def clip_boxes(boxes: np.ndarray, image_shape) -> np.ndarray:
    """``clipboxes.m``: clamp ``x1, y1`` to at least 1 and ``x2, y2`` to the image width/height.

    Boxes are not removed, even if clipping leaves them empty (as in the original).
    """
    b = np.array(boxes, dtype=np.float64, copy=True)
    if b.size == 0:
        return b
    height, width = int(image_shape[0]), int(image_shape[1])
    b[:, 0] = np.maximum(b[:, 0], 1)
    b[:, 1] = np.maximum(b[:, 1], 1)
    b[:, 2] = np.minimum(b[:, 2], width)
    b[:, 3] = np.minimum(b[:, 3], height)
    return b


def bbox_features(root_boxes: np.ndarray, part_boxes: np.ndarray) -> np.ndarray:
    """The ``getboxes.m`` regressor input for each detection.

    ``[root x2 - x1 (no +1), root x1, root y1, part1 x1, part1 y1, ...]``:
    ``3 + 2 * P`` values per detection, no bias term.
    """
    root_boxes = np.asarray(root_boxes, dtype=np.float64).reshape(-1, 4)
    part_boxes = np.asarray(part_boxes, dtype=np.float64).reshape(root_boxes.shape[0], -1, 4)
    cols = [root_boxes[:, 2:3] - root_boxes[:, 0:1], root_boxes[:, 0:2],
            part_boxes[:, :, 0:2].reshape(root_boxes.shape[0], -1)]
    return np.concatenate(cols, axis=1)


def predict_boxes(root_boxes, part_boxes, components, regressors) -> np.ndarray:
    """``getboxes.m``: predicted ``[x1 y1 x2 y2]`` from root and part boxes.

    Parameters
    ----------
    root_boxes : (N, 4) ndarray
    part_boxes : (N, P, 4) ndarray
    components : (N,) int ndarray
        0-based component of each detection.
    regressors : list of (4, 3 + 2P) ndarray or None
        One per component (``Component.bbox_regressor``).  A component without
        one keeps its root box.
    """
    root_boxes = np.asarray(root_boxes, dtype=np.float64).reshape(-1, 4)
    out = root_boxes.copy()
    if out.shape[0] == 0:
        return out
    feats = bbox_features(root_boxes, part_boxes)
    components = np.asarray(components)
    for c, reg in enumerate(regressors):
        if reg is None:
            continue
        sel = components == c
        if sel.any():
            out[sel] = feats[sel] @ np.asarray(reg, dtype=np.float64).T
    return out


def check_boxes(boxes, what: str = "") -> np.ndarray:
    """``boxes`` as an ``(N, 4)`` float64 array of finite ``[x1, y1, x2, y2]`` rows with
    ``x1 <= x2`` and ``y1 <= y2``, or ``ValueError`` naming the first bad box
    (messages start with ``what``).  Anything empty gives ``(0, 4)``."""
    what = f"{what}: " if what else ""
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.size == 0:
        return np.zeros((0, 4))
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{what}boxes must have shape (N, 4), got {boxes.shape}")
    if not np.isfinite(boxes).all():
        raise ValueError(f"{what}boxes contain NaN or infinite values")
    bad = np.flatnonzero((boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1]))
    if bad.size:
        x1, y1, x2, y2 = boxes[bad[0]]
        raise ValueError(f"{what}box {bad[0]} [{x1:g} {y1:g} {x2:g} {y2:g}] is inverted "
                         f"(x2 < x1 or y2 < y1)")
    return boxes
