import numpy as np
import pytest

from dpm.boxes import box_area, clip_boxes, iou, nms, nms_indices, predict_boxes


def nms_reference(boxes, overlap):
    """Literal port of voc-release3.1 nms.m (loops, MATLAB stable ascending sort)."""
    if len(boxes) == 0:
        return []
    x1, y1, x2, y2, s = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3], boxes[:, -1]
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = list(np.argsort(s, kind="stable"))
    pick = []
    while order:
        last = len(order) - 1
        i = order[last]
        pick.append(i)
        suppress = [last]
        for pos in range(last):
            j = order[pos]
            w = min(x2[i], x2[j]) - max(x1[i], x1[j]) + 1
            h = min(y2[i], y2[j]) - max(y1[i], y1[j]) + 1
            if w > 0 and h > 0 and w * h / area[j] > overlap:
                suppress.append(pos)
        order = [o for k, o in enumerate(order) if k not in set(suppress)]
    return pick


@pytest.mark.parametrize("overlap", [0.0, 0.3, 0.5, 0.9])
def test_nms_matches_reference_with_ties(rng, overlap):
    for _ in range(20):
        n = int(rng.integers(1, 40))
        xy = rng.uniform(1, 100, size=(n, 2))
        wh = rng.uniform(1, 40, size=(n, 2))
        scores = rng.integers(0, 5, size=n).astype(float)  # many ties
        boxes = np.column_stack([xy, xy + wh, scores])
        assert list(nms_indices(boxes[:, :4], boxes[:, 4], overlap)) == nms_reference(boxes, overlap)


def test_nms_uses_area_of_suppressed_box_not_iou():
    big = [1, 1, 100, 100, 2.0]
    small = [10, 10, 20, 20, 1.0]  # fully inside: IoU ~0.012, but intersection/area(small) = 1
    kept = nms(np.array([big, small]), 0.5)
    assert kept.shape == (1, 5) and kept[0, -1] == 2.0
    # the other way round the small box does not suppress the big one
    kept = nms(np.array([[1, 1, 100, 100, 1.0], [10, 10, 20, 20, 2.0]]), 0.5)
    assert kept.shape == (2, 5)


def test_nms_idempotent_and_empty(rng):
    xy = rng.uniform(1, 50, size=(30, 2))
    boxes = np.column_stack([xy, xy + 20, rng.random(30)])
    once = nms(boxes, 0.5)
    np.testing.assert_array_equal(nms(once, 0.5), once)
    assert nms(np.zeros((0, 5)), 0.5).shape == (0, 5)


def test_nms_rejects_bad_overlap():
    with pytest.raises(ValueError, match="overlap"):
        nms_indices(np.zeros((1, 4)), np.zeros(1), 1.5)


def test_clip_boxes_clamps_to_image():
    b = np.array([[-5.5, 0.2, 700.0, 400.0], [10, 20, 30, 40]])
    c = clip_boxes(b, (300, 640))
    np.testing.assert_array_equal(c, [[1, 1, 640, 300], [10, 20, 30, 40]])
    assert b[0, 0] == -5.5  # input untouched


def test_box_area_and_iou_are_inclusive():
    assert box_area(np.array([1, 1, 10, 10])) == 100
    np.testing.assert_allclose(iou([1, 1, 10, 10], [[1, 1, 10, 10], [6, 1, 15, 10], [11, 11, 20, 20]]),
                               [1.0, 50 / 150, 0.0])


def test_predict_boxes_is_linear_regressor_without_bias(rng):
    n, p = 5, 2
    root = rng.uniform(1, 100, size=(n, 4))
    parts = rng.uniform(1, 100, size=(n, p, 4))
    reg = rng.normal(size=(4, 3 + 2 * p))
    comps = np.array([0, 1, 0, 1, 1])
    out = predict_boxes(root, parts, comps, [reg, None])
    a = np.column_stack([root[:, 2] - root[:, 0], root[:, 0], root[:, 1], parts[:, 0, 0], parts[:, 0, 1],
                         parts[:, 1, 0], parts[:, 1, 1]])
    np.testing.assert_allclose(out[comps == 0], a[comps == 0] @ reg.T)
    np.testing.assert_array_equal(out[comps == 1], root[comps == 1])  # no regressor: root boxes


@pytest.mark.parametrize("overlap", [0.0, 0.5, 0.9])
def test_nms_of_many_boxes_on_a_grid_makes_the_same_picks(overlap, monkeypatch):
    import dpm.boxes as boxes_module

    rng = np.random.default_rng(3)
    n = 6000
    x1 = rng.integers(1, 4000, n) + np.where(rng.random(n) < 0.3, rng.random(n), 0.0)
    y1 = rng.integers(1, 3000, n).astype(float)
    b = np.stack([x1, y1, x1 + rng.integers(0, 300, n), y1 + rng.integers(0, 300, n)], axis=1)
    b[:50, 2] = b[:50, 0] - 0.5       # boxes meeting others only within a pixel
    b[50:80, 2:] += 3000              # a few large boxes
    b[80:90, 2] = b[80:90, 0] - 40    # inverted boxes (bounding-box prediction can make them)
    b[90:95, 3] = b[90:95, 1] - 1.5
    scores = np.round(rng.standard_normal(n), 1)  # many ties
    monkeypatch.setattr(boxes_module, "_GRID_NMS_FROM", 100)
    fast = boxes_module.nms_indices(b, scores, overlap)
    monkeypatch.setattr(boxes_module, "_GRID_NMS_FROM", 10 ** 9)
    assert np.array_equal(fast, boxes_module.nms_indices(b, scores, overlap))
