"""Tests of dpm.training.bbox (trainbox.m / getboxes.m bounding-box regression)."""
import numpy as np
import pytest
from numpy.testing import assert_allclose

from dpm.training import initmodel
from dpm.training.bbox import (backslash, bbox_features, bbox_features_from_detections, fit_bbox_regressor,
                               fit_model_regressors, predict_boxes)


def synthetic(n, parts, rng, noise=0.0):
    """Detections with a known linear map from getboxes features to the true box."""
    roots = np.empty((n, 4))
    roots[:, 0] = rng.uniform(0, 300, n)
    roots[:, 1] = rng.uniform(0, 200, n)
    width = rng.uniform(40, 160, n)
    roots[:, 2] = roots[:, 0] + width
    roots[:, 3] = roots[:, 1] + 2 * width
    pb = np.empty((n, parts, 4))
    pb[:, :, 0] = roots[:, :1] + rng.uniform(0, 30, (n, parts))
    pb[:, :, 1] = roots[:, 1:2] + rng.uniform(0, 60, (n, parts))
    pb[:, :, 2] = pb[:, :, 0] + 20
    pb[:, :, 3] = pb[:, :, 1] + 20
    A = bbox_features(roots, pb)
    true = rng.normal(0, 0.1, (4, 3 + 2 * parts))
    true[0, 1] += 1.0     # x1 ~ root x1
    true[1, 2] += 1.0     # y1 ~ root y1
    true[2, :2] += 1.0    # x2 ~ root x1 + width
    true[3, 2] += 1.0
    true[3, 0] += 2.0     # y2 ~ root y1 + 2 * width
    targets = A @ true.T + rng.normal(0, noise, (n, 4))
    return roots, pb, A, true, targets


def test_bbox_features_layout():
    roots = np.array([[10.0, 20.0, 50.0, 100.0]])
    parts = np.array([[[11, 21, 19, 29], [30, 40, 38, 48]]], dtype=float)
    A = bbox_features(roots, parts)
    assert A.tolist() == [[40.0, 10.0, 20.0, 11.0, 21.0, 30.0, 40.0]]   # x2 - x1 without the +1
    rows = np.concatenate([roots, parts.reshape(1, -1), [[1, 0.5]]], axis=1)
    np.testing.assert_array_equal(bbox_features_from_detections(rows, 2), A)
    assert bbox_features(roots, np.zeros((1, 0, 4))).shape == (1, 3)
    with pytest.raises(ValueError, match="shape"):
        bbox_features_from_detections(rows, 3)


@pytest.mark.parametrize("parts", [0, 2, 6])
def test_fit_recovers_a_known_regressor(parts, rng):
    _, _, A, true, targets = synthetic(200, parts, rng)
    reg = fit_bbox_regressor(A, targets)
    assert reg.shape == (4, 3 + 2 * parts)
    np.testing.assert_allclose(reg, true, atol=1e-8)
    np.testing.assert_allclose(predict_boxes(reg, A), targets, atol=1e-6)


def test_fit_is_least_squares_with_noise(rng):
    _, _, A, true, targets = synthetic(500, 2, rng, noise=2.0)
    reg = fit_bbox_regressor(A, targets)
    ref = np.linalg.lstsq(A, targets, rcond=None)[0].T
    np.testing.assert_allclose(reg, ref, rtol=1e-9, atol=1e-9)
    # the residual is orthogonal to the features (normal equations)
    resid = targets - A @ reg.T
    assert np.abs(A.T @ resid).max() < 1e-6 * np.abs(A).max() * np.abs(targets).max()
    assert np.abs(reg - true).max() < 0.1


def test_backslash_rank_deficient_gives_basic_solution(rng):
    # Two identical part columns (like two parts at one anchor): MATLAB's A\\b puts a
    # zero on one of them instead of splitting the weight (numpy's minimum-norm answer).
    A = rng.normal(size=(50, 4))
    A = np.concatenate([A, A[:, 3:4]], axis=1)
    b = A[:, :4] @ np.array([1.0, 2.0, -1.0, 3.0])
    x = backslash(A, b)
    assert (x == 0).sum() == 1 and x[3] + x[4] == pytest.approx(3.0)
    np.testing.assert_allclose(A @ x, b, atol=1e-9)
    np.testing.assert_allclose(x[:3], [1.0, 2.0, -1.0], atol=1e-9)


def test_fit_rejects_bad_input():
    with pytest.raises(ValueError, match="without examples"):
        fit_bbox_regressor(np.zeros((0, 5)), np.zeros((0, 4)))
    with pytest.raises(ValueError, match="targets"):
        fit_bbox_regressor(np.zeros((3, 5)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="3 \\+ 2P"):
        fit_bbox_regressor(np.zeros((3, 4)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="non-finite"):
        fit_bbox_regressor(np.full((3, 5), np.nan), np.zeros((3, 4)))


def test_fit_model_regressors_per_component(rng):
    m = initmodel(np.array([[1, 1, 48, 104]], float))
    m.components.append(initmodel(np.array([[1, 1, 48, 104]], float), size=(6, 13)).components[0])
    _, _, A0, t0, y0 = synthetic(60, 0, rng)
    _, _, A1, t1, y1 = synthetic(60, 0, rng)
    comps = np.r_[np.zeros(60, int), np.ones(60, int)]
    new = fit_model_regressors(m, comps, np.r_[A0, A1], np.r_[y0, y1])
    np.testing.assert_allclose(new.components[0].bbox_regressor, t0, atol=1e-8)
    np.testing.assert_allclose(new.components[1].bbox_regressor, t1, atol=1e-8)
    assert m.components[0].bbox_regressor is None
    only0 = fit_model_regressors(m, np.zeros(60, int), A0, y0)
    assert only0.components[1].bbox_regressor is None
    with pytest.raises(ValueError, match="component indices"):
        fit_model_regressors(m, np.full(60, 2), A0, y0)


def _equivariant_regressor(rng, P):
    # random relative coefficients, mapped to the absolute form
    W = rng.normal(size=(1 + 2 * P, 4))
    R = np.zeros((4, 3 + 2 * P))
    R[:, [0] + [3 + 2 * j for j in range(P)] + [4 + 2 * j for j in range(P)]] = W.T
    R[:, 1] = -R[:, 3::2].sum(axis=1)
    R[:, 2] = -R[:, 4::2].sum(axis=1)
    R[[0, 2], 1] += 1
    R[[1, 3], 2] += 1
    return R


def _shift(A, dx, dy):
    B = A.copy()
    B[:, 1] += dx
    B[:, 3::2] += dx
    B[:, 2] += dy
    B[:, 4::2] += dy
    return B


@pytest.mark.parametrize("P", [0, 2, 6])
def test_translation_invariant_fit_recovers_an_equivariant_regressor(rng, P):
    R = _equivariant_regressor(rng, P)
    A = np.abs(rng.normal(50, 20, size=(40, 3 + 2 * P)))
    T = A @ R.T
    got = fit_bbox_regressor(A, T, translation_invariant=True)
    assert_allclose(got, R, atol=1e-9)
    # predictions move with the detection
    assert_allclose(predict_boxes(got, _shift(A, 37.0, -12.5)), T + [37.0, -12.5, 37.0, -12.5], atol=1e-8)


def test_translation_invariant_fit_when_every_box_sits_at_one_place(rng):
    # fixed-size crops: the ground truth is the same box in every crop, detections jitter around it
    P = 2
    n = 30
    gt = np.tile([17.0, 17.0, 80.0, 144.0], (n, 1))
    roots = gt + rng.normal(0, 2, size=(n, 4))
    parts = roots[:, None, :2] + rng.normal([10, 20], 2, size=(n, P, 2))
    A = bbox_features(roots, np.concatenate([parts, parts + 10], axis=2))
    absolute = fit_bbox_regressor(A, gt)
    relative = fit_bbox_regressor(A, gt, translation_invariant=True)
    moved = _shift(A, 400.0, 200.0)
    expected = gt + [400.0, 200.0, 400.0, 200.0]
    # the original's fit predicts the crop's box wherever the person is; the relative fit follows
    assert np.abs(predict_boxes(absolute, moved) - expected).max() > 50
    assert np.abs(predict_boxes(relative, moved) - expected).max() < 10
    assert_allclose(predict_boxes(relative, moved), predict_boxes(relative, A) + [400, 200, 400, 200], atol=1e-8)
