"""COCO detection metrics: AP over IoU 0.50:0.05:0.95, AP50, AP75, AP by size, AR.

The algorithm is that of the COCO API's ``COCOeval`` for ``iouType='bbox'``
(``PythonAPI/pycocotools/cocoeval.py`` of cocodataset/cocoapi, Piotr Dollar
and Tsung-Yi Lin, Simplified BSD licence), written anew with NumPy:

1. Per image and category, detections are sorted by score (descending,
   stable: ties keep their input order) and only the first
   ``max_dets[-1]`` (100) are kept.
2. Overlap is the continuous IoU of ``[x, y, w, h]`` boxes; against a crowd
   box it is intersection over the *detection's* area.
3. A ground-truth box is ignored (for a size range) when it is a crowd box,
   carries ``ignore`` (see ``use_ignore_flag``), or its ``area`` field lies
   outside the range.  At each IoU threshold ``t`` each detection, in score
   order, takes the not-yet-matched box (crowd boxes can be matched again)
   with the highest IoU ``>= t``, preferring non-ignored boxes (ties: the
   later box); a detection matched to an ignored box is ignored; an
   unmatched detection whose area ``w * h`` lies outside the size range is
   ignored too.
4. Per category, size range and ``max_dets`` value (the first 1, 10, 100
   detections of each image), detections of all images (images in ascending
   id order) are sorted by score (stable); ``precision = tp / (tp + fp + eps)``
   made monotone from the right, read at the 101 recall thresholds
   ``0:0.01:1`` (0 beyond the last recall reached); ``recall`` is the final
   recall.  A category without non-ignored ground truth in a size range is
   left out of that range's means (``-1`` in the arrays, as in the COCO API).
5. AP is the mean over IoU thresholds, recall thresholds and categories; AR
   the mean of the final recall over IoU thresholds and categories.

One departure, on purpose: the COCO API overwrites an annotation's
``ignore`` field with its ``iscrowd`` flag, so ``ignore`` alone changes
nothing there.  Here ``ignore`` (which :func:`coco.from_voc` writes for VOC's
``difficult``) makes the box ignored, without crowd matching
(``use_ignore_flag=False`` gives the COCO API's numbers exactly).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["COCOMetrics", "evaluate_coco", "STAT_NAMES", "box_iou_xywh"]

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101)
MAX_DETS = (1, 10, 100)
AREA_RANGES = {"all": (0.0, 1e5 ** 2), "small": (0.0, 32.0 ** 2), "medium": (32.0 ** 2, 96.0 ** 2),
               "large": (96.0 ** 2, 1e5 ** 2)}
STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")

_EPS = np.spacing(1)
_CHUNK = 1 << 22          # at most this many (image, detection, box) triples at once


@dataclass(frozen=True, eq=False)
class COCOMetrics:
    """The COCO metrics of one evaluation.

    Attributes
    ----------
    stats : dict
        ``AP`` (IoU .50:.05:.95), ``AP50``, ``AP75``, ``APs``, ``APm``,
        ``APl``, ``AR1``, ``AR10``, ``AR100``, ``ARs``, ``ARm``, ``ARl``
        (the COCO API's ``stats[0..11]``); NaN where undefined (no
        ground truth in that size range), where the COCO API prints -1.
    precision : (T, R, K, A, M) float64 ndarray
        IoU thresholds x recall thresholds x categories x size ranges
        (all, small, medium, large) x max_dets; -1 where undefined.
    recall : (T, K, A, M) float64 ndarray
    category_ids : tuple of int
    category_names : tuple of str
    """

    stats: dict
    precision: np.ndarray
    recall: np.ndarray
    category_ids: tuple
    category_names: tuple = ()
    iou_thresholds: np.ndarray = field(default_factory=lambda: IOU_THRESHOLDS.copy())
    max_dets: tuple = MAX_DETS

    def per_category_ap(self) -> dict:
        """``{category name (or id): AP@[.50:.95]}`` over all sizes, 100 detections."""
        out = {}
        for k, cid in enumerate(self.category_ids):
            name = self.category_names[k] if self.category_names else cid
            out[name] = _mean_defined(self.precision[:, :, k, 0, -1])
        return out

    def summary(self) -> dict:
        """The stats as a JSON-ready dict (``None`` where undefined)."""
        return {k: (None if math.isnan(v) else float(v)) for k, v in self.stats.items()}

    def format(self) -> str:
        """One line: ``AP 0.412, AP50 0.701, ... ARl 0.600`` (``-`` where undefined)."""
        return ", ".join(f"{k} {'-' if math.isnan(v) else f'{v:.4f}'}" for k, v in self.stats.items())


def _mean_defined(s) -> float:
    s = np.asarray(s)
    s = s[s > -1]
    return float(np.mean(s)) if s.size else float("nan")


def box_iou_xywh(dt, gt, crowd) -> np.ndarray:
    """IoU of ``[x, y, w, h]`` boxes as the COCO API computes it (``maskApi.c`` ``bbIou``).

    ``dt`` (..., D, 4) and ``gt`` (..., G, 4) broadcast over leading axes;
    ``crowd`` (..., G) bool: against a crowd box the union is the detection's
    area.  Returns (..., D, G), 0 where the boxes do not overlap.
    """
    d = dt[..., :, None, :]
    g = gt[..., None, :, :]
    w = np.minimum(d[..., 2] + d[..., 0], g[..., 2] + g[..., 0]) - np.maximum(d[..., 0], g[..., 0])
    h = np.minimum(d[..., 3] + d[..., 1], g[..., 3] + g[..., 1]) - np.maximum(d[..., 1], g[..., 1])
    inter = w * h
    da = d[..., 2] * d[..., 3]
    ga = g[..., 2] * g[..., 3]
    union = np.where(crowd[..., None, :], da, da + ga - inter)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = inter / union
    return np.where((w > 0) & (h > 0), iou, 0.0)


def _pad(counts, starts, arrays):
    """Per-image slices ``a[starts[i]:starts[i] + counts[i]]`` of each array, padded: (valid, *padded)."""
    width = int(counts.max()) if counts.size else 0
    offs = np.arange(width)
    valid = offs[None, :] < counts[:, None]
    idx = np.where(valid, starts[:, None] + offs[None, :], 0)
    out = [valid]
    for a in arrays:
        out.append(a[idx] if a.size else np.zeros(idx.shape + a.shape[1:], a.dtype))
    return out


def _match(dt_box, dt_valid, gt_box, gt_area, gt_crowd, gt_ignore, gt_valid, ranges, thresholds):
    """Step 3 for a group of images at once (padded arrays: (n, D, ...) and (n, G, ...)).

    Returns ``matched`` and ``ignored`` (to be completed with the detections'
    own area), both (A, T, n, D) bool.  Detections are matched one rank at a
    time, every image, size range and threshold together.
    """
    n, D = dt_valid.shape
    G = gt_valid.shape[1]
    A, T = len(ranges), len(thresholds)
    matched = np.zeros((A, T, n, D), dtype=bool)
    ignored = np.zeros((A, T, n, D), dtype=bool)
    if G == 0 or D == 0:
        return matched, ignored
    crowd = gt_crowd & gt_valid
    ious = box_iou_xywh(dt_box, gt_box, crowd)                          # (n, D, G)
    thr = np.minimum(thresholds, 1 - 1e-10)[None, :, None, None]        # (1, T, 1, 1)
    lo, hi = ranges[:, 0, None, None], ranges[:, 1, None, None]
    gig = (gt_ignore[None] | (gt_area[None] < lo) | (gt_area[None] > hi))[:, None]   # (A, 1, n, G)
    gig = np.broadcast_to(gig, (A, T, n, G))
    taken = np.zeros((A, T, n, G), dtype=bool)
    reusable = np.broadcast_to(crowd, (A, T, n, G))
    for d in range(D):
        iou_d = ious[None, None, :, d, :]                                # (1, 1, n, G)
        ok = gt_valid & (reusable | ~taken) & (iou_d >= thr)
        regular = ok & ~gig
        use = np.where(regular.any(-1, keepdims=True), regular, ok & gig)
        best = np.where(use, iou_d, -np.inf)
        m = G - 1 - np.argmax(best[..., ::-1], axis=-1)                 # the last of the best boxes
        hit = use.any(-1) & dt_valid[:, d]                               # (A, T, n)
        matched[..., d] = hit
        ignored[..., d] = hit & np.take_along_axis(gig, m[..., None], -1)[..., 0]
        a_i, t_i, n_i = np.nonzero(hit)
        taken[a_i, t_i, n_i, m[a_i, t_i, n_i]] = True
    return matched, ignored


def _group_images(counts_d, counts_g):
    """Images (with detections and boxes) in groups small enough to pad together."""
    both = np.flatnonzero((counts_d > 0) & (counts_g > 0))
    both = both[np.argsort(counts_g[both], kind="stable")]
    groups, current, d_max = [], [], 0
    for i in both.tolist():
        d = max(d_max, int(counts_d[i]))
        if current and (len(current) + 1) * d * int(counts_g[i]) * 40 > _CHUNK:
            groups.append(np.array(current))
            current, d = [], int(counts_d[i])
        current.append(i)
        d_max = d
    if current:
        groups.append(np.array(current))
    return groups


def _accumulate(score, image_rank, matched, ignored, n_regular, max_dets):
    """Step 4 for one category: precision (T, R, A, M) and recall (T, A, M), -1 where undefined."""
    A, T = matched.shape[:2]
    R, M = RECALL_THRESHOLDS.size, len(max_dets)
    precision = -np.ones((T, R, A, M))
    recall = -np.ones((T, A, M))
    for m, max_det in enumerate(max_dets):
        keep = np.flatnonzero(image_rank < max_det)
        order = keep[np.argsort(-score[keep], kind="stable")]
        for a in range(A):
            if n_regular[a] == 0:
                continue
            dtm, dig = matched[a][:, order], ignored[a][:, order]
            tp = np.cumsum(dtm & ~dig, axis=1, dtype=np.float64)
            fp = np.cumsum(~dtm & ~dig, axis=1, dtype=np.float64)
            nd = order.size
            if nd == 0:
                recall[:, a, m] = 0.0
                precision[:, :, a, m] = 0.0
                continue
            rc = tp / n_regular[a]
            pr = tp / (fp + tp + _EPS)
            pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
            recall[:, a, m] = rc[:, -1]
            for t in range(T):
                inds = np.searchsorted(rc[t], RECALL_THRESHOLDS, side="left")
                precision[t, :, a, m] = np.where(inds < nd, pr[t, np.minimum(inds, nd - 1)], 0.0)
    return precision, recall


def evaluate_coco(ground_truth, results, *, categories=None, use_ignore_flag: bool = True,
                  max_dets=MAX_DETS) -> COCOMetrics:
    """COCO metrics of detections against COCO ground truth (see the module docstring).

    Parameters
    ----------
    ground_truth : coco.Instances
        Every image of the evaluation set (also those without objects) and
        its annotations (``bbox``, ``area``, ``iscrowd``, ``ignore``).
    results : coco.COCOResults or list of dict
        Detections: ``image_id``, ``category_id``, ``bbox`` ``[x, y, w, h]``,
        ``score`` (a COCO results list).
    categories : sequence of str or int, optional
        Categories to evaluate, by name or id (default: every category of
        ``ground_truth``).  Detections of other categories are left out.
    use_ignore_flag : bool, default True
        Honour the ``ignore`` field of the annotations (``False``: only
        ``iscrowd``, as the COCO API).
    max_dets : tuple of 3 int, default (1, 10, 100)

    Returns
    -------
    COCOMetrics

    Raises
    ------
    ValueError
        A detection on an image or of a category that ``ground_truth`` does
        not have; an unknown category in ``categories``.
    """
    from .results import COCOResults

    res = results if isinstance(results, COCOResults) else COCOResults.from_list(results)
    max_dets = tuple(sorted(int(m) for m in max_dets))
    if len(max_dets) != 3 or max_dets[0] < 1:
        raise ValueError(f"max_dets must be three positive numbers, got {max_dets!r}")
    cats = _categories(ground_truth, categories)
    image_ids = sorted(ground_truth.image_ids)
    pos = {i: k for k, i in enumerate(image_ids)}
    known_cats = {c.id for c in ground_truth.categories}
    bad = next((i for i in res.image_ids.tolist() if i not in pos), None)
    if bad is not None:
        raise ValueError(f"results: a detection is on image id {bad!r}, which is not in the ground "
                         f"truth ({len(image_ids)} images)")
    bad = next((c for c in res.category_ids.tolist() if c not in known_cats), None)
    if bad is not None:
        raise ValueError(f"results: a detection has category id {bad!r}, which is not a category of "
                         f"the ground truth ({', '.join(str(c) for c in sorted(known_cats))})")

    anns = ground_truth.annotations
    g_img = np.array([pos[a.image_id] for a in anns], dtype=np.int64)
    g_cat = np.array([a.category_id for a in anns], dtype=np.int64)
    g_box = np.array([a.bbox for a in anns], dtype=np.float64).reshape(-1, 4)
    g_area = np.array([a.area for a in anns], dtype=np.float64)
    g_crowd = np.array([a.iscrowd for a in anns], dtype=bool)
    g_ign = g_crowd | (np.array([a.ignore for a in anns], dtype=bool) & bool(use_ignore_flag))
    d_img = np.fromiter((pos[i] for i in res.image_ids.tolist()), dtype=np.int64, count=len(res))

    ranges = np.array(list(AREA_RANGES.values()))
    n_img = len(image_ids)
    K, A, T = len(cats), len(ranges), IOU_THRESHOLDS.size
    precision = -np.ones((T, RECALL_THRESHOLDS.size, K, A, len(max_dets)))
    recall = -np.ones((T, K, A, len(max_dets)))
    for k, cat in enumerate(c.id for c in cats):
        gi = np.flatnonzero(g_cat == cat)
        gi = gi[np.argsort(g_img[gi], kind="stable")]                   # by image, file order within
        di = np.flatnonzero(res.category_ids == cat)
        di = di[np.argsort(-res.scores[di], kind="stable")]
        di = di[np.argsort(d_img[di], kind="stable")]                   # by image, score order within
        counts_g = np.bincount(g_img[gi], minlength=n_img)
        counts_d_all = np.bincount(d_img[di], minlength=n_img)
        starts_d_all = np.concatenate([[0], np.cumsum(counts_d_all)[:-1]])
        rank = np.arange(di.size) - np.repeat(starts_d_all, counts_d_all)
        di, rank = di[rank < max_dets[-1]], rank[rank < max_dets[-1]]
        counts_d = np.minimum(counts_d_all, max_dets[-1])
        starts_g = np.concatenate([[0], np.cumsum(counts_g)[:-1]])
        starts_d = np.concatenate([[0], np.cumsum(counts_d)[:-1]])
        d_box = res.bboxes[di]
        d_area = d_box[:, 2] * d_box[:, 3]
        matched = np.zeros((A, T, di.size), dtype=bool)
        ignored = np.zeros((A, T, di.size), dtype=bool)
        for group in _group_images(counts_d, counts_g):
            dvalid, dbox, where = _pad(counts_d[group], starts_d[group],
                                       [d_box, np.arange(di.size)])
            gvalid, gbox, garea, gcrowd, gign = _pad(counts_g[group], starts_g[group],
                                                     [g_box[gi], g_area[gi], g_crowd[gi], g_ign[gi]])
            mt, ig = _match(dbox, dvalid, gbox, garea, gcrowd, gign, gvalid, ranges, IOU_THRESHOLDS)
            matched[..., where[dvalid]] = mt[..., dvalid]
            ignored[..., where[dvalid]] = ig[..., dvalid]
        outside = (d_area[None] < ranges[:, 0, None]) | (d_area[None] > ranges[:, 1, None])   # (A, N)
        ignored |= ~matched & outside[:, None, :]
        regular = ~g_ign[gi][None] & (g_area[gi][None] >= ranges[:, 0, None]) \
            & (g_area[gi][None] <= ranges[:, 1, None])
        p, r = _accumulate(res.scores[di], rank, matched, ignored, regular.sum(axis=1), max_dets)
        precision[:, :, k] = p
        recall[:, k] = r

    stats = _summarize(precision, recall, max_dets)
    return COCOMetrics(stats=stats, precision=precision, recall=recall,
                       category_ids=tuple(c.id for c in cats), category_names=tuple(c.name for c in cats),
                       max_dets=max_dets)


def _categories(ground_truth, categories):
    if categories is None:
        return sorted(ground_truth.categories, key=lambda c: c.id)
    if isinstance(categories, (str, int)):
        categories = [categories]
    by_id = {c.id: c for c in ground_truth.categories}
    out = []
    for c in categories:
        if isinstance(c, str):
            out.append(ground_truth.category(c))
        elif c in by_id:
            out.append(by_id[c])
        else:
            raise ValueError(f"categories: no category with id {c!r} in the ground truth")
    return sorted(set(out), key=lambda c: c.id)


def _summarize(precision, recall, max_dets):
    """The twelve numbers of ``COCOeval.summarize`` (NaN where the COCO API prints -1)."""
    a = {name: k for k, name in enumerate(AREA_RANGES)}
    t50, t75 = 0, 5                        # IOU_THRESHOLDS[0] == 0.5, [5] == 0.75

    def ap(area="all", t=None, m=2):
        s = precision[:, :, :, a[area], m]
        return _mean_defined(s if t is None else s[t])

    def ar(area="all", m=2):
        return _mean_defined(recall[:, :, a[area], m])

    values = (ap(), ap(t=t50), ap(t=t75), ap("small"), ap("medium"), ap("large"),
              ar(m=0), ar(m=1), ar(), ar("small"), ar("medium"), ar("large"))
    return dict(zip(STAT_NAMES, values))
