"""Average precision of a precision-recall curve: the devkit's 11-point (VOC2007) and all-point rules."""
from __future__ import annotations

import math

import numpy as np

__all__ = ["voc07_ap", "area_ap", "average_precision", "matlab_colon", "VOC07_RECALL_LEVELS"]


def matlab_colon(a, d, b):
    """``a:d:b`` computed the way MATLAB does (first half ``a + k d``, second half
    ``b - (n - k) d``), so that thresholds compare bit-for-bit like the devkit's
    ``t = 0:0.1:1`` (for example its 0.3 is ``3 * 0.1``, slightly above 0.3)."""
    n = int(np.floor((b - a) / d + 1e-10))
    k = np.arange(n + 1)
    out = np.where(k < n / 2, a + k * d, b - (n - k) * d)
    if n % 2 == 0:
        out[n // 2] = (a + b) / 2
    return out


VOC07_RECALL_LEVELS = matlab_colon(0.0, 0.1, 1.0)


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
    for t in VOC07_RECALL_LEVELS:
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
