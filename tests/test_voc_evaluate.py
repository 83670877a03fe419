"""Average precision with the VOC devkit's rules, PR curves and report tables."""
import math

import numpy as np
import pytest

import voc
from voc import matching
from voc.ap import VOC07_RECALL_LEVELS
from voc.evaluate import GroundTruth, area_ap, evaluate, voc07_ap

from conftest import shared_path



# -- plain per-detection reference (VOCevaldet.m / VOCap.m, written as loops) -----

def reference_evaldet(ids, scores, boxes, gt, thr=0.5, inclusive=True):
    """The devkit's loop, one detection at a time. ``gt``: {id: (boxes, difficult)}."""
    one = 1.0 if inclusive else 0.0
    order = sorted(range(len(scores)), key=lambda k: -scores[k])  # Python's sort is stable
    det = {i: [False] * len(b) for i, (b, _) in gt.items()}
    npos = sum(int(np.sum(~np.asarray(d, bool))) for _, d in gt.values())
    tp, fp = [], []
    for k in order:
        gboxes, gdiff = gt[ids[k]]
        bb = boxes[k]
        ovmax, jmax = -math.inf, -1
        for j, g in enumerate(gboxes):
            iw = min(bb[2], g[2]) - max(bb[0], g[0]) + one
            ih = min(bb[3], g[3]) - max(bb[1], g[1]) + one
            if iw > 0 and ih > 0:
                ua = ((bb[2] - bb[0] + one) * (bb[3] - bb[1] + one)
                      + (g[2] - g[0] + one) * (g[3] - g[1] + one) - iw * ih)
                ov = iw * ih / ua
                if ov > ovmax:
                    ovmax, jmax = ov, j
        t = f = 0
        if ovmax >= thr:
            if not gdiff[jmax]:
                if not det[ids[k]][jmax]:
                    t = 1
                    det[ids[k]][jmax] = True
                else:
                    f = 1
        else:
            f = 1
        tp.append(t)
        fp.append(f)
    ctp, cfp = np.cumsum(tp, dtype=float), np.cumsum(fp, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        rec = ctp / npos
        prec = ctp / (ctp + cfp)
    return np.array(tp, bool), np.array(fp, bool), rec, prec


def reference_ap11(rec, prec):
    ap = 0.0
    for k in range(11):
        t = k * 0.1 if k < 5 else (0.5 if k == 5 else 1.0 - (10 - k) * 0.1)  # MATLAB 0:0.1:1
        p = [q for r, q in zip(rec, prec) if r >= t and not math.isnan(q)]
        ap += (max(p) if p else 0.0) / 11
    return ap


def reference_ap_area(rec, prec):
    mrec = [0.0] + list(rec) + [1.0]
    mpre = [0.0] + list(prec) + [0.0]
    for i in range(len(mpre) - 2, -1, -1):
        if math.isnan(mpre[i]) or mpre[i + 1] > mpre[i]:
            mpre[i] = mpre[i + 1]
    return sum((mrec[i] - mrec[i - 1]) * mpre[i] for i in range(1, len(mrec)) if mrec[i] != mrec[i - 1])


def random_problem(rng, n_images=40, n_dets=400, max_gt=4, tie_scores=True):
    gt, ids = {}, [f"im{k:03d}" for k in range(n_images)]
    for i in ids:
        n = int(rng.integers(0, max_gt + 1))
        xy = rng.integers(1, 60, size=(n, 2)).astype(float)
        wh = rng.integers(5, 40, size=(n, 2)).astype(float)
        gt[i] = (np.c_[xy, xy + wh], rng.random(n) < 0.2)
    det_ids = [ids[k] for k in rng.integers(0, n_images, n_dets)]
    boxes = []
    for i in det_ids:
        g = gt[i][0]
        if len(g) and rng.random() < 0.7:   # near a ground-truth box
            b = g[rng.integers(len(g))] + rng.normal(0, 4, 4)
        else:
            xy = rng.uniform(1, 60, 2)
            b = np.r_[xy, xy + rng.uniform(5, 40, 2)]
        b[2:] = np.maximum(b[2:], b[:2])
        boxes.append(b)
    scores = rng.integers(0, 50, n_dets) / 10.0 if tie_scores else rng.normal(size=n_dets)
    return det_ids, scores, np.array(boxes), gt


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("inclusive", [True, False])
def test_evaluate_matches_reference_loop(seed, inclusive):
    rng = np.random.default_rng(seed)
    ids, scores, boxes, gt = random_problem(rng, tie_scores=seed % 2 == 0)
    thr = [0.5, 0.3, 0.7][seed % 3]
    res = evaluate((ids, scores, boxes), GroundTruth.from_mapping(gt), iou_threshold=thr,
                   inclusive=inclusive)
    tp, fp, rec, prec = reference_evaldet(ids, scores, boxes, gt, thr, inclusive)
    np.testing.assert_array_equal(res.tp, tp)
    np.testing.assert_array_equal(res.fp, fp)
    np.testing.assert_array_equal(res.recall, rec)
    np.testing.assert_array_equal(res.precision, prec)
    assert res.ap == pytest.approx(reference_ap11(rec, prec), abs=1e-12)
    assert res.ap_area == pytest.approx(reference_ap_area(rec, prec), abs=1e-12)
    assert res.n_true_positives > 0 and res.n_false_positives > 0


def test_evaluate_chunking_gives_same_answer(monkeypatch):
    rng = np.random.default_rng(7)
    ids, scores, boxes, gt = random_problem(rng, n_images=10, n_dets=300, max_gt=6)
    g = GroundTruth.from_mapping(gt)
    full = evaluate((ids, scores, boxes), g)
    monkeypatch.setattr(matching, "PAIRS_PER_CHUNK", 7)
    chunked = evaluate((ids, scores, boxes), g)
    np.testing.assert_array_equal(full.tp, chunked.tp)
    np.testing.assert_array_equal(full.fp, chunked.fp)
    assert full.ap == chunked.ap


# -- the published fixture ---------------------------------------------------------

def _read_xywh(path, with_score):
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    vals = np.array([[float(v) for v in r[1:]] for r in rows]).reshape(-1, 5 if with_score else 4)
    xywh = vals[:, 1:] if with_score else vals
    boxes = np.c_[xywh[:, :2], xywh[:, :2] + xywh[:, 2:]]   # x2 = x + w (the fixture's corners)
    return (vals[:, 0] if with_score else None), boxes


@pytest.fixture(scope="module")
def padilla():
    root = shared_path("fixtures", "ap-rafaelpadilla")
    gt = {f.stem: _read_xywh(f, False)[1] for f in sorted((root / "groundtruths").glob("*.txt"))}
    ids, scores, boxes = [], [], []
    for f in sorted((root / "detections").glob("*.txt")):
        s, b = _read_xywh(f, True)
        ids += [f.stem] * len(s)
        scores.append(s)
        boxes.append(b)
    return (ids, np.concatenate(scores), np.concatenate(boxes)), GroundTruth.from_mapping(gt)


@pytest.mark.parametrize("thr, inclusive, ap_area, n_tp, ap11", [
    (0.3, True, 0.2457, 7, 0.2684),
    (0.3, False, 0.2254, 6, 0.2684),
    (0.5, True, 0.0222, None, 0.0303),
    (0.5, False, 0.0222, None, 0.0303),
])
def test_rafaelpadilla_fixture(padilla, thr, inclusive, ap_area, n_tp, ap11):
    dets, gt = padilla
    assert gt.n_positives == 15 and len(dets[0]) == 24
    res = evaluate(dets, gt, iou_threshold=thr, inclusive=inclusive)
    assert res.ap_area == pytest.approx(ap_area, abs=1e-4)
    assert res.ap == pytest.approx(ap11, abs=1e-4)
    if n_tp is not None:
        assert res.n_true_positives == n_tp


def test_rafaelpadilla_published_curve(padilla):
    # results/results.txt: recall and precision (2 decimals) after each detection
    root = shared_path("fixtures", "ap-rafaelpadilla")
    text = (root / "results" / "results.txt").read_text()
    lists = [line.split(":", 1)[1] for line in text.splitlines()
             if line.startswith(("Precision:", "Recall:"))]
    prec, rec = (np.array([float(v.strip(" '")) for v in s.strip(" []").split(",")]) for s in lists)
    dets, gt = padilla
    res = evaluate(dets, gt, iou_threshold=0.3, inclusive=True)
    np.testing.assert_allclose(res.precision, prec, atol=0.005 + 1e-12)
    np.testing.assert_allclose(res.recall, rec, atol=0.005 + 1e-12)


# -- the devkit's rules, one by one ------------------------------------------------

def _gt():
    return GroundTruth.from_mapping({
        "a": (np.array([[10, 10, 50, 90], [100, 10, 140, 90]], float), [False, False]),
        "b": (np.array([[20, 20, 60, 100], [200, 20, 240, 100]], float), [False, True]),
        "c": np.zeros((0, 4)),
    })


def test_perfect_detections_give_ap_one():
    gt = _gt()
    res = evaluate({"a": np.array([[10, 10, 50, 90, 2.0], [100, 10, 140, 90, 1.5]]),
                    "b": np.array([[20, 20, 60, 100, 1.0]])}, gt)
    assert res.n_positives == 3
    assert res.ap == 1.0 and res.ap_area == 1.0 and res.max_recall == 1.0
    assert res.n_true_positives == 3 and res.n_false_positives == 0


def test_detections_on_difficult_boxes_leave_ap_unchanged():
    gt = _gt()
    base = {"a": np.array([[10, 10, 50, 90, 2.0], [300, 300, 340, 380, 1.8],
                           [100, 10, 140, 90, 0.5]]),
            "b": np.array([[20, 20, 60, 100, 1.0]])}
    without = evaluate(base, gt)
    with_diff = dict(base)
    with_diff["b"] = np.array([[20, 20, 60, 100, 1.0], [200, 20, 240, 100, 1.9],
                               [201, 21, 240, 100, 0.7], [200, 20, 240, 101, 0.1]])
    res = evaluate(with_diff, gt)
    assert without.ap < 1
    assert res.ap == without.ap and res.ap_area == without.ap_area
    assert res.n_ignored == 3 and res.n_false_positives == without.n_false_positives
    assert res.n_detections == without.n_detections + 3


def test_duplicate_is_false_positive():
    gt = _gt()
    res = evaluate({"a": np.array([[10, 10, 50, 90, 2.0], [11, 10, 50, 90, 1.0]])}, gt)
    np.testing.assert_array_equal(res.tp, [True, False])
    np.testing.assert_array_equal(res.fp, [False, True])
    np.testing.assert_allclose(res.precision, [1.0, 0.5])
    np.testing.assert_allclose(res.recall, [1 / 3, 1 / 3])


def test_image_without_ground_truth_adds_only_false_positives():
    gt = _gt()
    base = {"a": np.array([[10, 10, 50, 90, 2.0]])}
    res0 = evaluate(base, gt)
    res = evaluate({**base, "c": np.array([[10, 10, 50, 90, 3.0], [1, 1, 5, 5, 1.0]])}, gt)
    assert res.n_false_positives == 2 and res.n_true_positives == 1
    np.testing.assert_array_equal(res.fp, [True, False, True])
    assert res.ap < res0.ap


def test_best_overlap_box_wins_even_if_taken():
    # Detection 2 overlaps box 0 best (already taken) and box 1 a bit: the devkit
    # does not fall back to box 1, it counts a duplicate.
    gt = GroundTruth.from_mapping({"x": np.array([[0, 0, 99, 99], [40, 0, 139, 99]], float)})
    res = evaluate({"x": np.array([[0, 0, 99, 99, 2.0], [5, 0, 104, 99, 1.0]])}, gt)
    np.testing.assert_array_equal(res.tp, [True, False])


def test_equal_overlap_takes_first_box():
    gt = GroundTruth.from_mapping({"x": (np.array([[0, 0, 9, 9], [0, 0, 9, 9]], float),
                                         [True, False])})
    res = evaluate({"x": np.array([[0, 0, 9, 9, 1.0]])}, gt)
    assert res.n_ignored == 1      # matched the first (difficult) copy


def test_threshold_is_inclusive():
    # IoU exactly 0.5 (inclusive pixels): 10x10 box vs 10x20 box sharing half
    gt = GroundTruth.from_mapping({"x": np.array([[1, 1, 10, 20]], float)})
    res = evaluate({"x": np.array([[1, 1, 10, 10, 1.0]])}, gt)
    assert res.n_true_positives == 1
    res = evaluate({"x": np.array([[1, 1, 10, 10, 1.0]])}, gt, iou_threshold=0.5000001)
    assert res.n_true_positives == 0


def test_ties_keep_input_order():
    gt = GroundTruth.from_mapping({"x": np.array([[0, 0, 9, 9]], float)})
    res = evaluate((["x", "x"], [1.0, 1.0], [[0, 0, 9, 9], [0, 0, 9, 8]]), gt)
    np.testing.assert_array_equal(res.order, [0, 1])
    np.testing.assert_array_equal(res.tp, [True, False])
    res = evaluate((["x", "x"], [1.0, 1.0], [[0, 0, 9, 8], [0, 0, 9, 9]]), gt)
    np.testing.assert_array_equal(res.tp, [True, False])


def test_no_detections_and_no_ground_truth():
    gt = _gt()
    res = evaluate({}, gt)
    assert res.ap == 0 and res.ap_area == 0 and res.n_detections == 0 and res.max_recall == 0
    empty = GroundTruth.from_mapping({"c": np.zeros((0, 4))})
    res = evaluate({"c": np.array([[1, 1, 5, 5, 1.0]])}, empty)
    assert math.isnan(res.ap) and math.isnan(res.ap_area)


def test_accepts_objects_with_boxes_and_scores():
    class Dets:
        def __init__(self, boxes, scores):
            self.boxes, self.scores = np.asarray(boxes, float), np.asarray(scores, float)
    gt = _gt()
    a = evaluate({"a": Dets([[10, 10, 50, 90]], [1.0])}, gt)
    b = evaluate({"a": np.array([[10, 10, 50, 90, 1.0]])}, gt)
    assert a.ap == b.ap and a.n_true_positives == 1


def test_evaluate_errors():
    gt = _gt()
    with pytest.raises(ValueError, match="'zzz'.*not in the evaluation set"):
        evaluate({"zzz": np.array([[1, 1, 5, 5, 1.0]])}, gt)
    with pytest.raises(ValueError, match="x2 < x1"):
        evaluate((["a"], [1.0], [[10, 1, 5, 5]]), gt)
    with pytest.raises(ValueError, match="NaN"):
        evaluate((["a"], [np.nan], [[1, 1, 5, 5]]), gt)
    with pytest.raises(ValueError, match="1 image ids but 2 scores"):
        evaluate((["a"], [1.0, 2.0], [[1, 1, 5, 5]]), gt)
    with pytest.raises(ValueError, match="iou_threshold"):
        evaluate({}, gt, iou_threshold=0)
    with pytest.raises(ValueError, match="appears more than once"):
        GroundTruth.from_arrays(["a", "a"], [np.zeros((0, 4)), np.zeros((0, 4))])
    with pytest.raises(ValueError, match="x2 < x1"):
        GroundTruth.from_mapping({"a": np.array([[5, 1, 1, 5]], float)})


# -- AP from a curve ---------------------------------------------------------------

def test_voc07_thresholds_follow_matlab_colon():
    # MATLAB's 0:0.1:1 has 3*0.1 = 0.30000000000000004 as its fourth element,
    # so a recall of exactly 0.3 (3 of 10) does not reach it.
    np.testing.assert_array_equal(VOC07_RECALL_LEVELS[:5], [0.0, 0.1, 0.2, 3 * 0.1, 4 * 0.1])
    assert VOC07_RECALL_LEVELS[6] == 1 - 4 * 0.1
    assert voc07_ap([3 / 10], [1.0]) == pytest.approx(3 / 11)
    assert voc07_ap([0.4], [1.0]) == pytest.approx(5 / 11)


def test_area_ap_simple_curve():
    # recall steps 0.5 -> 1.0 with precision 1 then 0.5: area = 0.5 + 0.25
    assert area_ap([0.5, 0.5, 1.0], [1.0, 0.5, 2 / 3]) == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert voc.average_precision([1.0], [1.0], metric="area") == 1.0
    with pytest.raises(ValueError, match="metric"):
        voc.average_precision([1.0], [1.0], metric="11")


def test_ap_skips_nan_precision():
    # the first detection is ignored (matched a difficult box): precision NaN
    rec, prec = np.array([0.0, 0.5, 1.0]), np.array([np.nan, 1.0, 1.0])
    assert voc07_ap(rec, prec) == 1.0 and area_ap(rec, prec) == 1.0


# -- plots and tables ----------------------------------------------------------------

def test_plot_pr_curves_png(tmp_path):
    PIL = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(3)
    ids, scores, boxes, gt = random_problem(rng)
    g = GroundTruth.from_mapping(gt)
    a = evaluate((ids, scores, boxes), g, cls="thing")
    b = evaluate((ids, -scores, boxes), g, cls="thing")
    out = voc.plot_pr_curves({"model A": a, "model B": b}, tmp_path / "pr.png", metric="both")
    with PIL.open(out) as im:
        assert im.format == "PNG" and im.size == (600, 500)
        pixels = np.asarray(im.convert("RGB"))
    assert pixels.std() > 10           # something was drawn
    one = voc.plot_pr_curves(a, tmp_path / "one.png")
    assert one.stat().st_size > 1000
    with pytest.raises(ValueError, match="no curves"):
        voc.plot_pr_curves([], tmp_path / "none.png")


def test_report_tables():
    results = {"model A": {"person": 0.5, "car": 0.25}, "model B": {"person": 0.75}}
    text = voc.format_table(results)
    lines = text.splitlines()
    assert lines[0].split() == ["person", "car", "mean"]
    assert lines[1].split() == ["model", "A", "0.500", "0.250", "0.375"]
    assert lines[2].split() == ["model", "B", "0.750", "-", "-"]
    md = voc.format_table(results, fmt="markdown", percent=True, digits=1)
    assert md.splitlines()[0] == "|  | person | car | mean |"
    assert md.splitlines()[2] == "| model A | 50.0 | 25.0 | 37.5 |"
    classes, rows = voc.ap_table({"person": 0.5, "car": 1.0})
    assert classes == ["person", "car"] and rows == [("", [0.5, 1.0, 0.75])]
    with pytest.raises(ValueError, match="fmt"):
        voc.format_table(results, fmt="html")
    # a class without a value left out of the mean (dpm-eval: classes without ground truth)
    lines = voc.format_table(results, skip_missing=True).splitlines()
    assert lines[1].split()[-1] == "0.375" and lines[2].split() == ["model", "B", "0.750", "-", "0.750"]
    _, rows = voc.ap_table({"m": {"person": float("nan")}}, skip_missing=True)
    assert math.isnan(rows[0][1][-1])


def test_report_takes_ap_results():
    gt = _gt()
    res = evaluate({"a": np.array([[10, 10, 50, 90, 2.0]])}, gt, cls="person")
    t07 = voc.format_table({"m": {"person": res}}, digits=4)
    tarea = voc.format_table({"m": {"person": res}}, metric="area", digits=4)
    assert f"{res.ap:.4f}" in t07 and f"{res.ap_area:.4f}" in tarea
