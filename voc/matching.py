"""Overlaps of boxes and each detection's best ground-truth box, as the devkit's ``VOCevaldet.m`` finds them."""
from __future__ import annotations

import numpy as np

from .groundtruth import GroundTruth

__all__ = ["box_overlaps", "best_matches", "PAIRS_PER_CHUNK"]

# Upper bound on (detection, ground-truth box) pairs compared at once.
PAIRS_PER_CHUNK = 1 << 22


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


def best_matches(det_image, det_boxes, gt: GroundTruth, inclusive: bool = True):
    """For each detection: the best-overlap box of its image (global index, -1 if
    none) and that overlap (-inf if none)."""
    n = det_image.size
    best = np.full(n, -1, dtype=np.int64)
    best_ov = np.full(n, -np.inf)
    counts = (gt.offsets[1:] - gt.offsets[:-1])[det_image]
    starts = gt.offsets[:-1][det_image]
    cum = np.cumsum(counts)
    # Split the detections into chunks of at most PAIRS_PER_CHUNK pairs (a
    # single detection with more boxes than that still forms one chunk).
    bounds = np.searchsorted(cum, np.arange(PAIRS_PER_CHUNK, cum[-1] if n else 0,
                                            PAIRS_PER_CHUNK), side="right")
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
