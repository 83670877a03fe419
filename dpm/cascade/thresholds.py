"""Part order and pruning thresholds of a star-cascade (spec §C.3, §C.4; ``cascade_model.m``).

Both work on one component's block scores of the training positives, one row
per positive, in the layout ``cascade_model.m``'s ``parse_scores`` builds:
``[d_0, s_0, d_1, s_1, ..., d_{n-1}, s_{n-1}]`` where ``s_i`` is filter ``i``'s
score (0: the root, ``i``: part ``i``, 1-based) and ``d_i`` its deformation
score (the negative deformation cost; 0 for the root).
"""
from __future__ import annotations

import numpy as np

__all__ = ["part_order", "stage_thresholds", "identity_order"]


def _variance(x: np.ndarray) -> float:
    # MATLAB var: the unbiased (n - 1) variance; 0 for a single value.
    return float(np.var(x, ddof=1)) if x.size > 1 else 0.0


def identity_order(num_filters: int) -> np.ndarray:
    """``[0, 1 .. n-1, 0, 1 .. n-1]``: the order of a component without positives."""
    one = np.arange(num_filters, dtype=np.int64)
    return np.concatenate([one, one])


def part_order(blocks) -> np.ndarray:
    """The stage order ``[0, o_1 .. o_{n-1}, 0, o_1 .. o_{n-1}]`` (``getorder``), length ``2n``.

    Greedy: each step places, among the parts not yet placed, the part whose
    removal leaves the smallest (unbiased) variance of the summed scores
    (filter + deformation) of the parts still left; on a tie the part with
    the lowest index wins, as the strict ``<`` of the original.  With fewer
    than two positives every variance is 0 and the order is the parts' own;
    with none (the original's order is then undefined) too.

    Parameters
    ----------
    blocks : (m, 2n) array_like
        One row per positive (module docstring).
    """
    blocks = np.asarray(blocks, dtype=np.float64)
    if blocks.ndim != 2 or blocks.shape[1] < 2 or blocks.shape[1] % 2:
        raise ValueError(f"blocks must be an (m, 2n) array of (deformation, filter) score pairs, "
                         f"got shape {blocks.shape}")
    n = blocks.shape[1] // 2
    totals = blocks[:, 2::2] + blocks[:, 3::2]          # (m, n - 1): part i in column i - 1
    placed: list[int] = []
    for _ in range(n - 1):
        best, choice = np.inf, 0
        for j in range(1, n):
            if j in placed:
                continue
            left = [i - 1 for i in range(1, n) if i != j and i not in placed]
            v = _variance(totals[:, left].sum(axis=1))
            if v < best:
                best, choice = v, j
        if choice == 0:  # every variance NaN or inf: keep the parts' own order
            choice = next(i for i in range(1, n) if i not in placed)
        placed.append(choice)
    one = np.array([0, *placed], dtype=np.int64)
    return np.concatenate([one, one])


def stage_thresholds(projected, full, offset, order, threshold: float, *, projected_offset=None) -> np.ndarray:
    """The ``4n`` pruning thresholds of one component (``cascade_model.m``), 0-based.

    Parameters
    ----------
    projected, full : (m, 2n) array_like
        Block scores of the positives (module docstring) for the projected
        and the full model at the same placement; rows are positives already
        restricted to those scoring at least ``threshold``.
    offset : (m,) array_like
        Each positive's offset score (the component's bias).
    order : (2n,) array_like
        The stage order (:func:`part_order`).
    threshold : float
        The global threshold ``T``.
    projected_offset : (m,) array_like, optional
        The offset scores of the projected model's placements, added to the
        first ``2n`` sums (``pca_offset_loc_scores`` of ``cascade_model.m``;
        release 5 adds the scale prior's score to both); default ``offset``.

    Returns
    -------
    (4n,) float64
        With ``S = [projected[:, p], full[:, f]]`` (columns permuted into stage
        order: ``(d, s)`` of ``order[0]``, of ``order[1]``, ...), 1-based ``j``:
        ``t[j] = min(sum(S[:, 1..j]) + offset)`` for ``j = 1..2n``;
        ``t[j + 2n - 1] = min(sum(S[:, j..j + 2n - 1]) + offset)`` for
        ``j = 2..2n`` (each projected term replaced in turn by its full one);
        ``t[4n] = T``.  Every entry is ``+inf`` when there are no rows (the
        component never fires).
    """
    projected = np.asarray(projected, dtype=np.float64)
    full = np.asarray(full, dtype=np.float64)
    offset = np.asarray(offset, dtype=np.float64).reshape(-1)
    poffset = offset if projected_offset is None else np.asarray(projected_offset, dtype=np.float64).reshape(-1)
    order = np.asarray(order, dtype=np.int64)
    if projected.shape != full.shape or projected.ndim != 2 or projected.shape[1] % 2:
        raise ValueError(f"projected and full must be (m, 2n) arrays of the same shape, got {projected.shape} "
                         f"and {full.shape}")
    m, two_n = projected.shape
    n = two_n // 2
    if offset.shape != (m,) or poffset.shape != (m,):
        raise ValueError(f"offset and projected_offset must have one value per positive ({m}), got "
                         f"{offset.shape[0]} and {poffset.shape[0]}")
    if (order.shape != (two_n,) or order[0] != 0 or sorted(order[:n]) != list(range(n))
            or list(order[n:]) != list(order[:n])):
        raise ValueError(f"order must be [0, o_1 .. o_{n - 1}] twice (a permutation of the {n} filters), "
                         f"got {order.tolist()}")
    t = np.full(4 * n, np.inf)
    if m == 0:
        return t
    cols = np.stack([2 * order, 2 * order + 1], axis=1).reshape(-1)   # (d, s) of each stage
    S = np.concatenate([projected[:, cols[:two_n]], full[:, cols[two_n:]]], axis=1)
    partial = np.cumsum(S, axis=1)
    t[:two_n] = (partial[:, :two_n] + poffset[:, None]).min(axis=0)
    for j in range(2, two_n + 1):
        window = S[:, j - 1:j + two_n - 1].sum(axis=1)
        t[j + two_n - 2] = (window + offset).min()
    t[4 * n - 1] = float(threshold)
    return t
