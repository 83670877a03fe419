"""Average precision with the PASCAL VOC devkit's rules.

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
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

__all__ = ["GroundTruth", "APResult", "evaluate", "average_precision", "voc07_ap", "area_ap",
           "box_overlaps"]

logger = logging.getLogger(__name__)

# Upper bound on (detection, ground-truth box) pairs compared at once.
_PAIRS_PER_CHUNK = 1 << 22


@dataclass(frozen=True, eq=False)
class GroundTruth:
    """Ground-truth boxes of one class over a set of images, independent of any file format.

    Attributes
    ----------
    image_ids : tuple of str
        Every image of the evaluation set (also those without boxes); a
        detection on an image outside this set is an error.
    boxes : (M, 4) float64 ndarray
        ``[x1 y1 x2 y2]`` of all boxes, grouped by image in ``image_ids`` order.
    difficult : (M,) bool ndarray
        Parallel to ``boxes``.
    offsets : (len(image_ids) + 1,) int64 ndarray
        The boxes of image ``i`` are ``boxes[offsets[i]:offsets[i + 1]]``.

    Notes
    -----
    Build it with :meth:`from_arrays`, :meth:`from_mapping` or
    ``VOCDataset.ground_truth(cls, split)``.
    """

    image_ids: tuple
    boxes: np.ndarray
    difficult: np.ndarray
    offsets: np.ndarray
    _index: dict = field(repr=False, compare=False, default=None)

    def __post_init__(self):
        if self._index is None:
            index = {image_id: k for k, image_id in enumerate(self.image_ids)}
            if len(index) != len(self.image_ids):
                seen = set()
                dup = next(i for i in self.image_ids if i in seen or seen.add(i))
                raise ValueError(f"ground truth: image id {dup!r} appears more than once")
            object.__setattr__(self, "_index", index)

    @classmethod
    def from_arrays(cls, image_ids, boxes, difficult=None) -> "GroundTruth":
        """Build from per-image lists.

        Parameters
        ----------
        image_ids : sequence of str
        boxes : sequence of (n_i, 4) array_like
            1-based inclusive ``[x1 y1 x2 y2]`` per image.
        difficult : sequence of (n_i,) array_like of bool, optional
            Default: no box is difficult.
        """
        image_ids = tuple(str(i) for i in image_ids)
        if len(boxes) != len(image_ids):
            raise ValueError(f"ground truth: {len(image_ids)} image ids but {len(boxes)} box arrays")
        from dpm.boxes import check_boxes  # only the box check: `import voc` stays free of dpm

        per_image = [check_boxes(b, f"ground truth of image {i!r}") for i, b in zip(image_ids, boxes)]
        if difficult is None:
            diff = [np.zeros(len(b), dtype=bool) for b in per_image]
        else:
            if len(difficult) != len(image_ids):
                raise ValueError(f"ground truth: {len(image_ids)} image ids but "
                                 f"{len(difficult)} difficult arrays")
            diff = [np.asarray(d, dtype=bool).reshape(-1) for d in difficult]
            for i, b, d in zip(image_ids, per_image, diff):
                if len(d) != len(b):
                    raise ValueError(f"ground truth of image {i!r}: {len(b)} boxes but "
                                     f"{len(d)} difficult flags")
        counts = np.array([len(b) for b in per_image], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        all_boxes = np.concatenate(per_image) if per_image else np.zeros((0, 4))
        all_diff = np.concatenate(diff) if diff else np.zeros(0, dtype=bool)
        return cls(image_ids, all_boxes.reshape(-1, 4), all_diff, offsets)

    @classmethod
    def from_mapping(cls, mapping) -> "GroundTruth":
        """Build from ``{image_id: boxes}`` or ``{image_id: (boxes, difficult)}``."""
        ids, boxes, diff = [], [], []
        for image_id, value in mapping.items():
            if isinstance(value, tuple) and len(value) == 2:
                b, d = value
            else:
                b, d = value, None
            b = np.asarray(b, dtype=np.float64).reshape(-1, 4) if np.size(b) else np.zeros((0, 4))
            ids.append(image_id)
            boxes.append(b)
            diff.append(np.zeros(len(b), bool) if d is None else d)
        return cls.from_arrays(ids, boxes, diff)

    @property
    def n_positives(self) -> int:
        """Number of non-difficult boxes (the recall denominator)."""
        return int(np.count_nonzero(~self.difficult))

    def __len__(self):
        return len(self.image_ids)

    def index_of(self, image_ids) -> np.ndarray:
        """Positions of image ids in :attr:`image_ids`.

        Raises
        ------
        ValueError
            Naming the first id that is not in the set.
        """
        index = self._index
        try:
            return np.fromiter((index[i] for i in image_ids), dtype=np.int64, count=len(image_ids))
        except KeyError as exc:
            raise ValueError(f"detection on image {exc.args[0]!r}, which is not in the "
                             f"evaluation set ({len(self.image_ids)} images)") from None


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


# -- average precision from a curve ---------------------------------------------

def _matlab_colon(a, d, b):
    """``a:d:b`` computed the way MATLAB does (first half ``a + k d``, second half
    ``b - (n - k) d``), so that thresholds compare bit-for-bit like the devkit's
    ``t = 0:0.1:1`` (for example its 0.3 is ``3 * 0.1``, slightly above 0.3)."""
    n = int(np.floor((b - a) / d + 1e-10))
    k = np.arange(n + 1)
    out = np.where(k < n / 2, a + k * d, b - (n - k) * d)
    if n % 2 == 0:
        out[n // 2] = (a + b) / 2
    return out


_T11 = _matlab_colon(0.0, 0.1, 1.0)


def _as_curve(recall, precision):
    recall = np.asarray(recall, dtype=np.float64).reshape(-1)
    precision = np.asarray(precision, dtype=np.float64).reshape(-1)
    if recall.shape != precision.shape:
        raise ValueError(f"recall and precision differ in length: {recall.size} vs {precision.size}")
    return recall, precision


def voc07_ap(recall, precision) -> float:
    """VOC2007 11-point interpolated average precision.

    ``mean over t in 0:0.1:1 of max(precision[recall >= t])`` (0 where no
    recall reaches ``t``); NaN precisions are skipped like MATLAB's ``max``.
    The thresholds are MATLAB's ``0:0.1:1`` bit for bit.

    The devkit accumulates ``ap = ap + p/11``, which can be off in the last
    bit (1.0000000000000002 for a perfect curve); here the eleven maxima are
    summed exactly and divided once.

    Parameters
    ----------
    recall, precision : (N,) array_like
    """
    recall, precision = _as_curve(recall, precision)
    best = []
    for t in _T11:
        p = precision[recall >= t]
        p = p[~np.isnan(p)]
        best.append(float(p.max()) if p.size else 0.0)
    return math.fsum(best) / 11


def area_ap(recall, precision) -> float:
    """All-point average precision (devkit ``VOCap.m``, VOC2010 onwards).

    The area under the precision envelope (precision made monotone
    non-increasing from the right), summed over the points where recall
    changes. NaN precisions are skipped like MATLAB's ``max``.

    Parameters
    ----------
    recall, precision : (N,) array_like
    """
    recall, precision = _as_curve(recall, precision)
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.fmax.accumulate(mpre[::-1])[::-1]
    i = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    return float(np.sum((mrec[i] - mrec[i - 1]) * mpre[i]))


def average_precision(recall, precision, *, metric: str = "voc07") -> float:
    """AP of a precision-recall curve.

    Parameters
    ----------
    recall, precision : (N,) array_like
    metric : str {'voc07', 'area'}
        11-point interpolated (VOC2007) or all-point (VOC2010+).
    """
    if metric == "voc07":
        return voc07_ap(recall, precision)
    if metric == "area":
        return area_ap(recall, precision)
    raise ValueError(f"metric must be 'voc07' or 'area', got {metric!r}")


# -- overlaps and matching ---------------------------------------------------------

def box_overlaps(a, b, *, inclusive: bool = True) -> np.ndarray:
    """Elementwise IoU of two equally long box arrays, as the devkit computes it.

    Parameters
    ----------
    a, b : (K, 4) float64 ndarray
        ``[x1 y1 x2 y2]``.
    inclusive : bool
        Pixel-inclusive corners (+1 on widths and heights), the VOC rule.
        ``False`` gives the continuous overlap.

    Returns
    -------
    (K,) float64 ndarray
        IoU, or ``-inf`` where the boxes do not intersect (``iw <= 0`` or
        ``ih <= 0``), the devkit's "no overlap" value.
    """
    one = 1.0 if inclusive else 0.0
    iw = np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]) + one
    ih = np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]) + one
    inter = iw * ih
    ua = ((a[:, 2] - a[:, 0] + one) * (a[:, 3] - a[:, 1] + one)
          + (b[:, 2] - b[:, 0] + one) * (b[:, 3] - b[:, 1] + one) - inter)
    with np.errstate(divide="ignore", invalid="ignore"):
        ov = inter / ua
    return np.where((iw > 0) & (ih > 0), ov, -np.inf)


def _best_matches(det_image, det_boxes, gt: GroundTruth, inclusive):
    """For each detection: the best-overlap box of its image (global index, -1 if
    none) and that overlap (-inf if none)."""
    n = det_image.size
    best = np.full(n, -1, dtype=np.int64)
    best_ov = np.full(n, -np.inf)
    counts = (gt.offsets[1:] - gt.offsets[:-1])[det_image]
    starts = gt.offsets[:-1][det_image]
    cum = np.cumsum(counts)
    # Split the detections into chunks of at most _PAIRS_PER_CHUNK pairs (a
    # single detection with more boxes than that still forms one chunk).
    bounds = np.searchsorted(cum, np.arange(_PAIRS_PER_CHUNK, cum[-1] if n else 0,
                                            _PAIRS_PER_CHUNK), side="right")
    bounds = np.unique(np.concatenate([[0], bounds, [n]]))
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        c = counts[lo:hi]
        total = int(c.sum())
        if total == 0:
            continue
        pair_det = np.repeat(np.arange(lo, hi), c)
        first = np.cumsum(c) - c                      # first pair of each detection (chunk-local)
        within = np.arange(total) - np.repeat(first, c)
        pair_gt = np.repeat(starts[lo:hi], c) + within
        ov = box_overlaps(det_boxes[pair_det], gt.boxes[pair_gt], inclusive=inclusive)
        has = c > 0
        seg_max = np.full(hi - lo, -np.inf)
        seg_max[has] = np.maximum.reduceat(ov, first[has])
        # First pair reaching the segment maximum: the devkit's strict '>' keeps
        # the first box on ties.
        hit = (ov == seg_max[pair_det - lo]) & np.isfinite(ov)
        dets, pos = np.unique(pair_det[hit], return_index=True)
        best[dets] = pair_gt[hit][pos]
        best_ov[dets] = ov[hit][pos]
    return best, best_ov


def _flatten_detections(detections):
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

    ids, scores, boxes = _flatten_detections(detections)
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
    best, best_ov = _best_matches(det_image, det_boxes, gt, inclusive)

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
