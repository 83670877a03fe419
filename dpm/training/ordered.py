"""Arithmetic in a fixed order: sums, small products and least squares.

Training must give the same bits on every machine (``docs/training.md``), so
its few linear-algebra steps do not go through BLAS or LAPACK (whose order of
summation depends on the library, its kernel for the processor and its build)
nor through numpy reductions (whose blocking is numpy's to change).  Everything
here is built from elementwise numpy operations (one IEEE rounding each, the
same on every processor) applied in an order written down in each function.
The arrays are small (box regression: a few thousand rows, 3 + 2P columns), so
the Python loops cost little.
"""
from __future__ import annotations

import numpy as np

__all__ = ["ordered_sum", "tree_sum", "ordered_matmul", "householder_qr", "solve_upper"]


def ordered_sum(x, axis: int = -1) -> np.ndarray:
    """Sum along ``axis`` from first to last: ``((x0 + x1) + x2) + ...``.

    For short axes (a handful of terms).  An empty axis sums to 0.
    """
    x = np.moveaxis(np.asarray(x, dtype=np.float64), axis, 0)
    if x.shape[0] == 0:
        return np.zeros(x.shape[1:])
    out = x[0].copy()
    for i in range(1, x.shape[0]):
        out += x[i]
    return out


def tree_sum(x, axis: int = 0) -> np.ndarray:
    """Sum along ``axis`` by pairwise halving, for long axes.

    Round after round, terms ``2i`` and ``2i + 1`` are added (an odd count
    gets a ``+0.0`` term appended) until one is left: the order depends only
    on the length.  An empty axis sums to 0.
    """
    x = np.moveaxis(np.asarray(x, dtype=np.float64), axis, 0)
    if x.shape[0] == 0:
        return np.zeros(x.shape[1:])
    while x.shape[0] > 1:
        if x.shape[0] % 2:
            x = np.concatenate([x, np.zeros((1,) + x.shape[1:])])
        x = x[0::2] + x[1::2]
    return x[0].copy()


def ordered_matmul(a, b) -> np.ndarray:
    """``a @ b`` for an ``(n, k)`` and a ``(k, p)`` matrix, each entry summed over
    ``k`` from first to last (:func:`ordered_sum`); for small ``k``."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"cannot multiply matrices of shapes {a.shape} and {b.shape}")
    return ordered_sum(a[:, :, None] * b[None, :, :], axis=1)


def householder_qr(A, B):
    """Householder QR of ``A`` with column pivoting, applied to ``B`` as it goes.

    Step ``k`` takes the remaining column of largest norm (over rows
    ``k..m-1``; the first one on ties), as LAPACK's ``dgeqp3`` (MATLAB's
    ``A\\b``) does, reflects it onto ``e_k`` and applies the same reflection
    to the columns after it and to ``B``.  Norms and dot products over rows are
    :func:`tree_sum` s; a column found entirely zero ends the factorisation.

    Parameters
    ----------
    A : (m, n) array-like
    B : (m, p) array-like

    Returns
    -------
    R : (min(m, n), n) float64 ndarray
        Upper triangular (in the pivoted column order).
    QtB : (min(m, n), p) float64 ndarray
        The first ``min(m, n)`` rows of ``Q^T B``.
    piv : (n,) intp ndarray
        Column ``j`` of ``R`` is column ``piv[j]`` of ``A``.
    """
    R = np.array(A, dtype=np.float64, copy=True)
    Q = np.array(B, dtype=np.float64, copy=True)
    m, n = R.shape
    piv = np.arange(n)
    steps = min(m, n)
    for k in range(steps):
        rest = R[k:, k:]
        norms2 = tree_sum(rest * rest, axis=0)
        j = k + int(np.argmax(norms2))
        if norms2[j - k] == 0:
            R[k:, k:] = 0.0
            break
        if j != k:
            R[:, [k, j]] = R[:, [j, k]]
            piv[[k, j]] = piv[[j, k]]
        x = R[k:, k].copy()
        alpha = float(np.sqrt(tree_sum(x * x)))
        sign = 1.0 if x[0] >= 0 else -1.0
        v = x
        v[0] = x[0] + sign * alpha
        vtv = float(tree_sum(v * v))
        for block in (R[k:, k + 1:], Q[k:]):
            if block.size:
                f = (2.0 * tree_sum(v[:, None] * block, axis=0)) / vtv
                block -= v[:, None] * f[None, :]
        R[k, k] = -sign * alpha
        R[k + 1:, k] = 0.0
    return np.triu(R[:steps]), Q[:steps], piv


def solve_upper(R, B) -> np.ndarray:
    """Solve ``R x = B`` for an upper triangular ``(r, r)`` ``R`` by back substitution.

    Row ``i`` (last first): ``x_i = (B_i - R_i,i+1 x_i+1 - R_i,i+2 x_i+2 - ...) / R_ii``,
    the products subtracted one at a time from ``j = i + 1`` upwards.
    """
    R = np.asarray(R, dtype=np.float64)
    B = np.asarray(B, dtype=np.float64)
    r = R.shape[0]
    X = np.zeros((r,) + B.shape[1:])
    for i in range(r - 1, -1, -1):
        acc = B[i].copy()
        for j in range(i + 1, r):
            acc -= R[i, j] * X[j]
        X[i] = acc / R[i, i]
    return X
