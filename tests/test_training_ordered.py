"""Fixed-order arithmetic of dpm.training.ordered: the documented orders, and agreement with LAPACK."""
import numpy as np
import pytest
from scipy.linalg import lstsq, qr

from dpm.training.ordered import householder_qr, ordered_matmul, ordered_sum, solve_upper, tree_sum


def test_ordered_sum_adds_first_to_last():
    x = np.array([1e16, 1.0, -1e16, 1.0])
    # ((1e16 + 1) - 1e16) + 1 = (1e16 - 1e16) + 1 = 1: the 1.0 added to 1e16 is lost
    assert ordered_sum(x) == 1.0
    np.testing.assert_array_equal(ordered_sum(np.stack([x, x[::-1]]), axis=1), [1.0, 0.0])
    assert ordered_sum(np.zeros(0)) == 0.0


def test_tree_sum_adds_pairs():
    x = np.array([1e16, 1.0, -1e16, 1.0, 3.0])
    # pairs (1e16 + 1) and (-1e16 + 1) each lose their 1, then (1e16 - 1e16) + (3 + 0) = 3
    assert tree_sum(x) == 3.0
    m = np.arange(12.0).reshape(6, 2)
    np.testing.assert_array_equal(tree_sum(m, axis=0), m.sum(axis=0))
    assert tree_sum(np.zeros((0, 3)), axis=0).shape == (3,)


def test_ordered_matmul_matches_numpy(rng):
    a, b = rng.standard_normal((50, 7)), rng.standard_normal((7, 4))
    np.testing.assert_allclose(ordered_matmul(a, b), a @ b, rtol=1e-13, atol=1e-13)
    with pytest.raises(ValueError, match="cannot multiply"):
        ordered_matmul(a, b.T)


def test_householder_qr_factorises_with_pivoting(rng):
    A = rng.standard_normal((40, 6)) * [1, 100, 3, 0.1, 10, 2]
    B = rng.standard_normal((40, 2))
    R, QtB, piv = householder_qr(A, B)
    assert R.shape == (6, 6) and np.allclose(R, np.triu(R))
    # |R| diagonal is LAPACK's (the pivoting picks the same columns on distinct norms)
    _, R_ref, piv_ref = qr(A, mode="economic", pivoting=True)
    np.testing.assert_array_equal(piv, piv_ref)
    np.testing.assert_allclose(np.abs(np.diag(R)), np.abs(np.diag(R_ref)), rtol=1e-12)
    # R x = Q^T b solves the least-squares problem
    x = np.zeros((6, 2))
    x[piv] = solve_upper(R, QtB)
    np.testing.assert_allclose(x, lstsq(A, B)[0], rtol=1e-10, atol=1e-12)


def test_solve_upper_back_substitutes():
    R = np.array([[2.0, 1.0, -1.0], [0.0, 4.0, 2.0], [0.0, 0.0, 0.5]])
    x = np.array([[1.0], [-2.0], [3.0]])
    np.testing.assert_allclose(solve_upper(R, R @ x), x, rtol=1e-15)
