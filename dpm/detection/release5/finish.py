"""Raw star-model detections -> final boxes: the steps of voc-release5 ``process.m``.

``clipboxes`` -> ``bboxpred_get(model.bboxpred, ds, reduceboxes(model, bs))``
-> ``clipboxes`` -> ``nms(ds, 0.5)``, each a port of the release's function:

* :func:`clip_detections` (``clipboxes.m`` of release 5): clamps the window to
  the image and, unlike release 3.1's, *removes* detections left with no
  width or height;
* :func:`reduce_boxes` (``reduceboxes.m``): per component, drops the columns
  of the filters none of its detections uses (all four coordinates zero),
  leaving ``4 * (1 + parts) + 2`` columns in filter-index order;
* :func:`predict_boxes_r5` (``bboxpred_get.m`` with ``bboxpred_input.m``): per
  component in turn, the displacement of each side, relative to the window's
  width or height, is linear in the filters' centres relative to the
  window's centre (plus a constant); rows come out grouped by component;
* ``nms.m``: :func:`dpm.boxes.nms_indices` (the same rule as release 3.1's).

Port of voc-release5 (Girshick, Felzenszwalb, McAllester; MIT-style licence).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...boxes import nms_indices
from ...model.release5 import StarModel
from .parse import StarRaw

__all__ = ["ProcessSteps", "clip_detections", "predict_boxes_r5", "process_star", "reduce_boxes"]


def clip_detections(ds: np.ndarray, bs: np.ndarray, image_shape):
    """``[ds, bs] = clipboxes(im, ds, bs)``: ``(ds, bs, kept)``, ``kept`` the surviving row indices."""
    ds = np.array(ds, dtype=np.float64, copy=True)
    if ds.shape[0] == 0:
        return ds, np.asarray(bs), np.zeros(0, dtype=np.intp)
    height, width = int(image_shape[0]), int(image_shape[1])
    ds[:, 0] = np.maximum(ds[:, 0], 1)
    ds[:, 1] = np.maximum(ds[:, 1], 1)
    ds[:, 2] = np.minimum(ds[:, 2], width)
    ds[:, 3] = np.minimum(ds[:, 3], height)
    w = ds[:, 2] - ds[:, 0] + 1
    h = ds[:, 3] - ds[:, 1] + 1
    kept = np.flatnonzero(~((w <= 0) | (h <= 0)))
    return ds[kept], np.asarray(bs)[kept], kept


def reduce_boxes(model: StarModel, bs: np.ndarray) -> np.ndarray:
    """``reduceboxes(model, bs)``: the boxes of the filters each component uses, ``[boxes..., r, score]``."""
    bs = np.asarray(bs, dtype=np.float64)
    n = len(model.components[0].filters)
    out = np.zeros((bs.shape[0], 4 * n + 2))
    if bs.shape[0] == 0:
        return out
    comps = bs[:, -2]
    for c in range(1, int(comps.max()) + 1):
        rows = np.flatnonzero(comps == c)
        if rows.size == 0:
            continue
        tmp = bs[rows]
        used = [j for j in range(0, bs.shape[1] - 2, 4) if np.count_nonzero(tmp[:, j:j + 4])]
        cols = [k for j in used for k in range(j, j + 4)] + [bs.shape[1] - 2, bs.shape[1] - 1]
        if len(cols) != out.shape[1]:
            raise ValueError(f"component {c} uses {len(used)} filters; reduceboxes needs {n} for every component")
        out[rows] = tmp[:, cols]
    return out


def predict_boxes_r5(model: StarModel, ds: np.ndarray, bs: np.ndarray):
    """``[ds_pred, bs_pred] = bboxpred_get(model.bboxpred, ds, bs)`` on reduced boxes ``bs``.

    Returns ``(ds_pred, bs_pred, order)``: ``ds_pred`` is ``(N, 5)``
    ``[x1 y1 x2 y2 score]``, rows grouped by component (1, 2, ...), and
    ``order`` the input row of each output row.  A component without a
    regressor keeps its windows (the original has none missing).
    """
    ds = np.asarray(ds, dtype=np.float64)
    bs = np.asarray(bs, dtype=np.float64)
    if bs.shape[0] == 0:
        return np.zeros((0, 5)), bs, np.zeros(0, dtype=np.intp)
    preds, orders = [], []
    comps = bs[:, -2]
    for c in range(1, int(comps.max()) + 1):
        rows = np.flatnonzero(comps == c)
        if rows.size == 0:
            continue
        d, b = ds[rows], bs[rows]
        x1, y1, x2, y2 = d[:, 0], d[:, 1], d[:, 2], d[:, 3]
        w, h = x2 - x1, y2 - y1
        reg = model.components[c - 1].bbox_regressor
        if reg is None:
            pred = np.stack([x1, y1, x2, y2, b[:, -1]], axis=1)
        else:
            rx, ry = x1 + w / 2, y1 + h / 2
            cols = []
            for j in range(0, b.shape[1] - 2, 4):
                px = b[:, j] + (b[:, j + 2] - b[:, j]) / 2
                py = b[:, j + 1] + (b[:, j + 3] - b[:, j + 1]) / 2
                cols += [(px - rx) / w, (py - ry) / h]
            a = np.stack(cols + [np.ones(rows.size)], axis=1)
            if a.shape[1] != reg.shape[1]:
                raise ValueError(f"component {c}: {a.shape[1]} regressor inputs, its bboxpred has {reg.shape[1]}")
            dx1, dy1, dx2, dy2 = (a @ reg[k] for k in range(4))
            pred = np.stack([x1 + w * dx1, y1 + h * dy1, x2 + w * dx2, y2 + h * dy2, b[:, -1]], axis=1)
        preds.append(pred)
        orders.append(rows)
    order = np.concatenate(orders)
    return np.concatenate(preds), bs[order], order


@dataclass(frozen=True)
class ProcessSteps:
    """Every step of ``process.m``; ``*_rows`` map each row to its row of the raw detections.

    ``clip1``/``bbpred``/``clip2`` are ``(ds, bs)`` pairs as the release's
    ``ds_clip1, bs_clip1`` ...; ``nms`` the 0-based indices into ``clip2``'s
    rows that survive suppression, in pick order; ``final`` the ``(ds, bs)``
    of those rows.
    """

    clip1: tuple
    bbpred: tuple
    clip2: tuple
    nms: np.ndarray
    final: tuple
    final_rows: np.ndarray


def process_star(raw: StarRaw, model: StarModel, image_shape, *, overlap: float | None = 0.5,
                 bbox_prediction: bool = True, clip: bool = True) -> ProcessSteps:
    """The steps of release 5's ``process.m`` on raw detections.

    ``overlap=None`` skips suppression; ``bbox_prediction=False`` keeps the
    windows (``ds`` becomes ``[x1 y1 x2 y2 score]``); ``clip=False`` skips
    both clipping steps.
    """
    rows = np.arange(len(raw))
    ds, bs = raw.ds, raw.bs
    if clip:
        ds, bs, kept = clip_detections(ds, bs, image_shape)
        rows = rows[kept]
    clip1 = (ds, bs)
    if bbox_prediction:
        ds, bs, order = predict_boxes_r5(model, ds, reduce_boxes(model, bs))
        rows = rows[order]
    else:
        ds = np.concatenate([ds[:, :4], ds[:, 5:6]], axis=1) if ds.shape[0] else np.zeros((0, 5))
    bbpred = (ds, bs)
    if clip:
        ds, bs, kept = clip_detections(ds, bs, image_shape)
        rows = rows[kept]
    clip2 = (ds, bs)
    if overlap is not None and ds.shape[0]:
        pick = nms_indices(ds[:, :4], ds[:, -1], overlap)
    else:
        pick = np.arange(ds.shape[0])
    return ProcessSteps(clip1, bbpred, clip2, pick, (ds[pick], bs[pick]), rows[pick])
