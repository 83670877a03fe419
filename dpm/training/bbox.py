"""Bounding-box regression of voc-release3.1 (``trainbox.m`` / ``getboxes.m``).

For a detection of component ``c`` with root box ``(x1, y1, x2, y2)`` and part
boxes ``(px1_j, py1_j, ...)``, ``getboxes.m`` builds the regressor features

    A = [x2 - x1, x1, y1, px1_1, py1_1, ..., px1_P, py1_P]

(the root width *without* the +1, and no bias term) and predicts the box as
``A @ regressor.T``, where ``regressor`` is the ``(4, 3 + 2P)`` matrix stored in
:attr:`dpm.model.Component.bbox_regressor` (rows: x1, y1, x2, y2; the original's
``components{c}.x1 .. y2`` coefficient vectors).  ``trainbox.m`` fits each row by
least squares (MATLAB's ``A\\b``) on the latent detections of the training
positives and their ground-truth boxes.  Port of voc-release3.1 (Felzenszwalb,
Girshick, McAllester, Ramanan; MIT-style licence).
"""
from __future__ import annotations

import copy
import logging

import numpy as np

from ..model import Model
from .ordered import householder_qr, ordered_matmul, ordered_sum, solve_upper

__all__ = ["bbox_features", "bbox_features_from_detections", "backslash", "fit_bbox_regressor",
           "predict_boxes", "fit_model_regressors", "scale_boxes"]

logger = logging.getLogger(__name__)


def bbox_features(root_boxes, part_boxes) -> np.ndarray:
    """The ``getboxes.m`` regressor features.

    Parameters
    ----------
    root_boxes : (N, 4) array-like
        ``(x1, y1, x2, y2)`` of each detection's root, in image pixels.
    part_boxes : (N, P, 4) array-like
        Each detection's part boxes (P may be 0).

    Returns
    -------
    (N, 3 + 2P) float64 ndarray
        ``[x2 - x1, x1, y1, px1_1, py1_1, ..., px1_P, py1_P]`` per row.
    """
    roots = np.asarray(root_boxes, dtype=np.float64)
    if roots.ndim != 2 or roots.shape[1] != 4:
        raise ValueError(f"root_boxes must have shape (N, 4), got {roots.shape}")
    parts = np.asarray(part_boxes, dtype=np.float64)
    if parts.size == 0:
        parts = parts.reshape(roots.shape[0], 0, 4)
    if parts.ndim != 3 or parts.shape[0] != roots.shape[0] or parts.shape[2] != 4:
        raise ValueError(f"part_boxes must have shape ({roots.shape[0]}, P, 4), got {parts.shape}")
    n, p = parts.shape[:2]
    out = np.empty((n, 3 + 2 * p))
    out[:, 0] = roots[:, 2] - roots[:, 0]
    out[:, 1] = roots[:, 0]
    out[:, 2] = roots[:, 1]
    out[:, 3::2] = parts[:, :, 0]
    out[:, 4::2] = parts[:, :, 1]
    return out


def bbox_features_from_detections(rows, num_parts: int) -> np.ndarray:
    """Regressor features from ``detect.m`` rows.

    Parameters
    ----------
    rows : (N, 4 + 4P + 2) array-like
        ``[root x1 y1 x2 y2, part_1 x1 y1 x2 y2, ..., component, score]``.
    num_parts : int

    Returns
    -------
    (N, 3 + 2P) float64 ndarray
    """
    r = np.asarray(rows, dtype=np.float64)
    width = 4 + 4 * num_parts + 2
    if r.ndim != 2 or r.shape[1] != width:
        raise ValueError(f"detection rows must have shape (N, {width}) for {num_parts} parts, got {r.shape}")
    return bbox_features(r[:, :4], r[:, 4:4 + 4 * num_parts].reshape(-1, num_parts, 4))


def backslash(A, b) -> np.ndarray:
    """MATLAB's ``A\\b`` for a rectangular ``A``: least squares via pivoted QR.

    For a full-rank ``A`` this is the unique least-squares solution.  For a
    rank-deficient one it is MATLAB's *basic* solution (at most ``rank`` nonzero
    coefficients, the others exactly 0), not numpy's minimum-norm solution; the
    rank uses MATLAB's tolerance ``max(m, n) * eps(|R[0, 0]|)``.  Computed in a
    fixed order without LAPACK (:func:`dpm.training.ordered.householder_qr`),
    so the result is the same bits on every machine; it agrees with LAPACK's to
    rounding.

    Parameters
    ----------
    A : (m, n) array-like
    b : (m,) or (m, k) array-like

    Returns
    -------
    (n,) or (n, k) float64 ndarray
    """
    A = np.asarray(A, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    vector = b.ndim == 1
    B = b[:, None] if vector else b
    m, n = A.shape
    if B.shape[0] != m:
        raise ValueError(f"A has {m} rows but b has {B.shape[0]}")
    x = np.zeros((n, B.shape[1]))
    if m and n:
        R, QtB, piv = householder_qr(A, B)
        diag = np.abs(np.diag(R))
        tol = max(m, n) * np.spacing(diag[0]) if diag.size else 0.0
        r = int((diag > tol).sum())
        if r < n:
            logger.warning("bounding-box regression: the features are rank deficient (rank %d of %d); "
                           "using the basic least-squares solution", r, n)
        if r:
            x[piv[:r]] = solve_upper(R[:r, :r], QtB[:r])
    return x[:, 0] if vector else x


def fit_bbox_regressor(A, targets, *, translation_invariant: bool = False) -> np.ndarray:
    """Least-squares box regressor of ``trainbox.m`` (no bias term).

    Parameters
    ----------
    A : (N, 3 + 2P) array-like
        Regressor features (:func:`bbox_features`).
    targets : (N, 4) array-like
        Ground-truth boxes ``(x1, y1, x2, y2)`` in the same coordinates.
    translation_invariant : bool
        Fit in coordinates relative to the root box's top-left corner (every
        x coordinate, of the features and the targets, minus the root's x1;
        every y minus its y1), then map the solution back to the original's
        form.  The result is a regressor of the same shape and meaning whose
        predictions move with the detection (shifting an image shifts its
        predicted boxes by the same amount).  The original (False) fits the
        absolute coordinates, which is degenerate when the training boxes all
        sit at the same place in their crops (fixed-size crops such as
        INRIA's): it then learns a constant box instead of an offset.

    Returns
    -------
    (4, 3 + 2P) float64 ndarray
        Row ``k`` predicts coordinate ``k``: ``boxes = A @ regressor.T``.

    Raises
    ------
    ValueError
        Shapes disagree, values are not finite, or there are no examples.
    """
    A = np.asarray(A, dtype=np.float64)
    T = np.asarray(targets, dtype=np.float64)
    if A.ndim != 2 or A.shape[1] < 3 or (A.shape[1] - 3) % 2:
        raise ValueError(f"A must have shape (N, 3 + 2P), got {A.shape}")
    if T.shape != (A.shape[0], 4):
        raise ValueError(f"targets must have shape ({A.shape[0]}, 4), got {T.shape}")
    if A.shape[0] == 0:
        raise ValueError("cannot fit a bounding-box regressor without examples")
    if not (np.isfinite(A).all() and np.isfinite(T).all()):
        raise ValueError("bounding-box regression input contains non-finite values")
    if not translation_invariant:
        return np.ascontiguousarray(backslash(A, T).T)
    # relative features [w, px1_j - x1, py1_j - y1] and targets [x1' - x1, y1' - y1, x2' - x1, y2' - y1]
    x0, y0 = A[:, 1:2], A[:, 2:3]
    rel = np.concatenate([A[:, :1], A[:, 3::2] - x0, A[:, 4::2] - y0], axis=1)
    order = [0] + [3 + 2 * j for j in range(A.shape[1] // 2 - 1)] + [4 + 2 * j for j in range(A.shape[1] // 2 - 1)]
    Trel = T - np.concatenate([x0, y0, x0, y0], axis=1)
    W = backslash(rel, Trel)                      # (1 + 2P, 4)
    R = np.zeros((4, A.shape[1]))
    R[:, order] = W.T
    # x' - x1 = c.w + sum a_j (px_j - x1) + sum b_j (py_j - y1)  =>  absolute coefficients
    px = ordered_sum(R[:, 3::2], axis=1)
    py = ordered_sum(R[:, 4::2], axis=1)
    R[:, 1] = -px
    R[:, 2] = -py
    R[[0, 2], 1] += 1.0   # x1 and x2 rows move with the root's x1
    R[[1, 3], 2] += 1.0   # y1 and y2 rows move with its y1
    return np.ascontiguousarray(R)


def predict_boxes(regressor, A) -> np.ndarray:
    """Predicted boxes ``A @ regressor.T`` (``getboxes.m``), shape ``(N, 4)``, summed in
    column order (:func:`dpm.training.ordered.ordered_matmul`)."""
    R = np.asarray(regressor, dtype=np.float64)
    A = np.asarray(A, dtype=np.float64)
    if R.ndim != 2 or R.shape[0] != 4 or A.ndim != 2 or A.shape[1] != R.shape[1]:
        raise ValueError(f"regressor {R.shape} and features {A.shape} do not fit together")
    return ordered_matmul(A, R.T)


def fit_model_regressors(model: Model, components, A, targets, *, translation_invariant: bool = False) -> Model:
    """Fit one regressor per component (``trainbox.m``) and return a new model.

    Parameters
    ----------
    model : Model
    components : (N,) int array-like
        0-based component of each example's latent detection.
    A : (N, 3 + 2P) array-like
    targets : (N, 4) array-like
    translation_invariant : bool
        See :func:`fit_bbox_regressor`.

    Returns
    -------
    Model
        A copy whose components carry ``bbox_regressor``.  A component without
        examples keeps no regressor (its detections then use the root box) and
        a warning is logged; the original would have fitted on an empty set.
    """
    comps = np.asarray(components, dtype=np.intp).ravel()
    A = np.asarray(A, dtype=np.float64)
    T = np.asarray(targets, dtype=np.float64)
    if comps.shape[0] != A.shape[0] or T.shape[0] != A.shape[0]:
        raise ValueError(f"components ({comps.shape[0]}), A ({A.shape[0]}) and targets ({T.shape[0]}) "
                         "must have one row per example")
    if comps.size and (comps.min() < 0 or comps.max() >= len(model.components)):
        raise ValueError(f"component indices must be in [0, {len(model.components)})")
    new = copy.deepcopy(model)
    for ci, comp in enumerate(new.components):
        sel = comps == ci
        want = 3 + 2 * len(comp.parts)
        if A.shape[1] != want:
            raise ValueError(f"component {ci} has {len(comp.parts)} parts: A needs {want} columns, "
                             f"got {A.shape[1]}")
        if not sel.any():
            logger.warning("bounding-box regression: component %d has no examples; it keeps no regressor", ci)
            comp.bbox_regressor = None
            continue
        comp.bbox_regressor = fit_bbox_regressor(A[sel], T[sel], translation_invariant=translation_invariant)
    return new


def scale_boxes(boxes, width_scale: float = 1.0, height_scale: float = 1.0) -> np.ndarray:
    """Boxes shrunk (or grown) about their centres: ``(N, 4)`` 1-based inclusive boxes.

    Width ``x2 - x1 + 1`` becomes ``width_scale`` times as large, likewise the
    height; the centre ``((x1 + x2) / 2, (y1 + y2) / 2)`` stays.  Training
    scales the regression targets with it (``TrainConfig.box_scale``).
    """
    b = np.array(boxes, dtype=np.float64, copy=True).reshape(-1, 4)
    if width_scale == 1.0 and height_scale == 1.0:
        return b
    for lo, hi, f in ((0, 2, width_scale), (1, 3, height_scale)):
        c = (b[:, lo] + b[:, hi]) / 2
        half = (f * (b[:, hi] - b[:, lo] + 1) - 1) / 2
        b[:, lo], b[:, hi] = c - half, c + half
    return b
