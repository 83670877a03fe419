"""Average precision of one class's detections with the PASCAL VOC devkit's rules.

Port of the devkit's ``VOCevaldet.m`` and ``VOCap.m`` as called by
voc-release3.1 ``pascal_eval.m`` (spec §1.15; Felzenszwalb, Girshick,
McAllester, Ramanan, MIT-style licence; devkit by Everingham et al.):

1. Detections of all images are sorted by score, descending. Ties keep their
   input order (MATLAB's ``sort`` is stable).
2. Each detection is compared with every ground-truth box of its image; the
   box with the largest overlap wins (ties: the first box). Overlap is IoU with
   inclusive pixel corners, ``area = (x2 - x1 + 1) * (y2 - y1 + 1)``.
3. Overlap ``>= iou_threshold`` (0.5): a ``difficult`` box makes the detection
   *ignored* (neither true nor false positive); otherwise the first detection
   to reach a box is a true positive and any later one a false positive
   (duplicate). Overlap below the threshold, or an image without ground
   truth: false positive.
4. ``recall = cumsum(tp) / n_positives`` (non-difficult boxes) and
   ``precision = cumsum(tp) / (cumsum(tp) + cumsum(fp))``.

The matching is vectorised: the only sequential part of the devkit's loop
("is this box already taken?") is equivalent to "is this the first detection,
in score order, whose best box is this one?", which ``np.unique`` answers.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .ap import area_ap, voc07_ap
from .groundtruth import GroundTruth
from .matching import best_matches

__all__ = ["APResult", "evaluate", "flatten_detections"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class APResult:
    """Average precision and the precision-recall curve of one class.

    Attributes
    ----------
    ap : float
        VOC2007 11-point interpolated AP (what voc-release3.1 reports).
    ap_area : float
        All-point AP (VOC2010 onwards): area under the monotone precision envelope.
    precision, recall : (N,) float64 ndarray
        After each detection in score order, as the devkit computes them.
        ``precision`` is NaN while only ignored detections have been seen.
    scores : (N,) float64 ndarray
        Detection scores, sorted descending.
    order : (N,) intp ndarray
        Input position of each sorted detection.
    tp, fp : (N,) bool ndarray
        True/false positive flags in score order; a detection with both
        ``False`` matched a difficult box and is ignored.
    n_detections : int
    n_positives : int
        Non-difficult ground-truth boxes.
    iou_threshold : float
    cls : str
    """

    ap: float
    ap_area: float
    precision: np.ndarray
    recall: np.ndarray
    scores: np.ndarray
    order: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    n_detections: int
    n_positives: int
    iou_threshold: float = 0.5
    cls: str = ""

    @property
    def n_true_positives(self) -> int:
        return int(np.count_nonzero(self.tp))

    @property
    def n_false_positives(self) -> int:
        return int(np.count_nonzero(self.fp))

    @property
    def n_ignored(self) -> int:
        """Detections that matched a difficult box."""
        return self.n_detections - self.n_true_positives - self.n_false_positives

    @property
    def max_recall(self) -> float:
        """Recall with every detection kept (0 without detections)."""
        return float(self.recall[-1]) if self.recall.size else 0.0

    def summary(self) -> dict:
        """The scalar results as a JSON-ready dict."""
        def num(x):
            return None if not np.isfinite(x) else float(x)
        return {"class": self.cls, "ap": num(self.ap), "ap_area": num(self.ap_area),
                "recall": num(self.max_recall), "n_detections": int(self.n_detections),
                "n_positives": int(self.n_positives), "n_true_positives": self.n_true_positives,
                "n_false_positives": self.n_false_positives, "n_ignored": self.n_ignored,
                "iou_threshold": float(self.iou_threshold)}


def flatten_detections(detections):
    """(image_ids list, scores (N,), boxes (N, 4)) from any accepted input."""
    if hasattr(detections, "image_ids") and hasattr(detections, "scores") \
            and hasattr(detections, "boxes"):
        return list(detections.image_ids), detections.scores, detections.boxes
    if isinstance(detections, tuple) and len(detections) == 3:
        ids, scores, boxes = detections
        return [str(i) for i in ids], scores, boxes
    if isinstance(detections, Mapping):
        ids, scores, boxes = [], [], []
        for image_id, dets in detections.items():
            if hasattr(dets, "scores") and hasattr(dets, "boxes"):
                s, b = np.asarray(dets.scores, np.float64).reshape(-1), dets.boxes
            else:
                arr = np.asarray(dets, dtype=np.float64)
                if arr.size == 0:
                    continue
                if arr.ndim != 2 or arr.shape[1] != 5:
                    raise ValueError(f"detections of image {image_id!r}: expected an (N, 5) array "
                                     f"[x1 y1 x2 y2 score] or an object with .boxes and .scores, "
                                     f"got shape {arr.shape}")
                s, b = arr[:, 4], arr[:, :4]
            b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
            if len(b) != len(s):
                raise ValueError(f"detections of image {image_id!r}: {len(b)} boxes but "
                                 f"{len(s)} scores")
            ids.extend([str(image_id)] * len(s))
            scores.append(s)
            boxes.append(b)
        scores = np.concatenate(scores) if scores else np.zeros(0)
        boxes = np.concatenate(boxes) if boxes else np.zeros((0, 4))
        return ids, scores, boxes
    raise ValueError("detections must be a mapping {image_id: detections}, a tuple "
                     "(image_ids, scores, boxes) or an object with .image_ids, .scores and .boxes")


def evaluate(detections, ground_truth, cls: str | None = None, split: str = "test", *,
             iou_threshold: float = 0.5, inclusive: bool = True) -> APResult:
    """Score detections of one class with the VOC devkit's rules.

    Parameters
    ----------
    detections : mapping, tuple or Results
        One of

        * ``{image_id: dets}`` where ``dets`` has ``.boxes`` (N, 4) and
          ``.scores`` (N,) (e.g. ``dpm.Detections``) or is an (N, 5) array
          ``[x1 y1 x2 y2 score]`` (voc-release3.1's layout);
        * a tuple ``(image_ids (N,), scores (N,), boxes (N, 4))``;
        * a :class:`voc.results.Results` (a read results file).

        Boxes are 1-based inclusive ``[x1 y1 x2 y2]``. Ties in score keep the
        input order (for a mapping: its iteration order).
    ground_truth : GroundTruth or VOCDataset
        A dataset needs ``cls`` and ``split``.
    cls : str, optional
        Class name; required with a dataset, only a label otherwise.
    split : str
        Image set of a dataset (default ``'test'``).
    iou_threshold : float
        Minimum overlap of a true positive, in (0, 1] (devkit: 0.5).
    inclusive : bool
        Pixel-inclusive overlap (+1 on widths and heights, the VOC rule);
        ``False`` for continuous coordinates.

    Returns
    -------
    APResult

    Raises
    ------
    ValueError
        Detections on images outside the ground truth's image set (the id is
        named), non-finite scores or boxes, boxes with ``x2 < x1`` or
        ``y2 < y1``, mismatched lengths.

    Notes
    -----
    With no non-difficult ground truth, recall is undefined: ``ap`` and
    ``ap_area`` are NaN and a warning is logged.
    """
    if not (0 < iou_threshold <= 1):
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
    if not isinstance(ground_truth, GroundTruth):
        if not hasattr(ground_truth, "ground_truth"):
            raise ValueError("ground_truth must be a GroundTruth or a VOCDataset")
        if not cls:
            raise ValueError("evaluating against a dataset needs a class name")
        ground_truth = ground_truth.ground_truth(cls, split)
    gt = ground_truth

    ids, scores, boxes = flatten_detections(detections)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(ids) != scores.size:
        raise ValueError(f"detections: {len(ids)} image ids but {scores.size} scores")
    if not np.isfinite(scores).all():
        raise ValueError(f"detections: score {int(np.flatnonzero(~np.isfinite(scores))[0])} "
                         "is NaN or infinite")
    from dpm.boxes import check_boxes

    boxes = check_boxes(boxes, "detections")
    if boxes.shape[0] != scores.size:
        raise ValueError(f"detections: {boxes.shape[0]} boxes but {scores.size} scores")
    det_image = gt.index_of(ids)

    order = np.argsort(-scores, kind="stable")
    det_image = det_image[order]
    det_boxes = boxes[order]
    best, best_ov = best_matches(det_image, det_boxes, gt, inclusive)

    matched = best_ov >= iou_threshold
    difficult = np.zeros(order.size, dtype=bool)
    difficult[matched] = gt.difficult[best[matched]]
    candidate = matched & ~difficult
    tp = np.zeros(order.size, dtype=bool)
    cand = np.flatnonzero(candidate)
    _, first = np.unique(best[cand], return_index=True)
    tp[cand[first]] = True
    fp = ~matched | (candidate & ~tp)

    npos = gt.n_positives
    ctp = np.cumsum(tp, dtype=np.float64)
    cfp = np.cumsum(fp, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = ctp / npos if npos else np.full(order.size, np.nan)
        precision = ctp / (ctp + cfp)
    if npos == 0:
        logger.warning("no non-difficult ground truth%s: AP is undefined",
                       f" of class {cls!r}" if cls else "")
        ap = ap_area = float("nan")
    else:
        ap, ap_area = voc07_ap(recall, precision), area_ap(recall, precision)
    return APResult(ap=ap, ap_area=ap_area, precision=precision, recall=recall,
                    scores=scores[order], order=order, tp=tp, fp=fp,
                    n_detections=int(order.size), n_positives=npos,
                    iou_threshold=float(iou_threshold), cls=cls or "")
