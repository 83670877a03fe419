"""Speed of VOC average precision: ``voc.evaluate`` against the devkit's per-detection loop.

Usage::

    python benchmarks/bench_ap.py [--detections 100000] [--images 5000] [--repeat 5]

Builds a synthetic problem (about 2.5 ground-truth boxes per image, 10% of
them difficult; detections jittered around boxes or random, scores with
ties), then in the same run times

* ``voc.evaluate`` (vectorised), median of ``--repeat`` runs, including the
  conversion of the image ids;
* a plain Python port of ``VOCevaldet.m``'s loop, one detection at a time
  (NumPy for the overlaps of one detection with the boxes of its image, as the
  MATLAB code does), run once;

checks that both give the same true/false positives and AP, and prints the
ratio. The target is under 1 s for 100,000 detections over 5,000 images.
Also times writing and reading the same detections as a results file.
"""
import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import voc  # noqa: E402


def make_problem(n_images, n_dets, seed=0):
    rng = np.random.default_rng(seed)
    ids = [f"{k:06d}" for k in range(n_images)]
    counts = rng.poisson(2.5, n_images)
    gt_boxes, gt_diff = [], []
    for n in counts:
        xy = rng.uniform(1, 400, (n, 2))
        gt_boxes.append(np.c_[xy, xy + rng.uniform(20, 200, (n, 2))])
        gt_diff.append(rng.random(n) < 0.1)
    gt = voc.GroundTruth.from_arrays(ids, gt_boxes, gt_diff)
    det_img = rng.integers(0, n_images, n_dets)
    boxes = np.empty((n_dets, 4))
    for k, i in enumerate(det_img):
        g = gt_boxes[i]
        if len(g) and rng.random() < 0.6:
            boxes[k] = g[rng.integers(len(g))] + rng.normal(0, 10, 4)
        else:
            xy = rng.uniform(1, 400)
            boxes[k] = np.r_[xy, xy, xy, xy] + np.r_[0, 0, rng.uniform(20, 200, 2)]
    boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2])
    scores = np.round(rng.normal(size=n_dets), 3)        # ties on purpose
    return [ids[i] for i in det_img], scores, boxes, gt


def devkit_loop(det_ids, scores, boxes, gt):
    """VOCevaldet.m, one detection at a time."""
    index = {i: k for k, i in enumerate(gt.image_ids)}
    taken = np.zeros(len(gt.boxes), dtype=bool)
    npos = int((~gt.difficult).sum())
    order = np.argsort(-scores, kind="stable")
    tp = np.zeros(len(order))
    fp = np.zeros(len(order))
    for d, k in enumerate(order):
        i = index[det_ids[k]]
        lo, hi = gt.offsets[i], gt.offsets[i + 1]
        bb = boxes[k]
        g = gt.boxes[lo:hi]
        ovmax, jmax = -np.inf, -1
        if hi > lo:
            iw = np.minimum(bb[2], g[:, 2]) - np.maximum(bb[0], g[:, 0]) + 1
            ih = np.minimum(bb[3], g[:, 3]) - np.maximum(bb[1], g[:, 1]) + 1
            ua = ((bb[2] - bb[0] + 1) * (bb[3] - bb[1] + 1)
                  + (g[:, 2] - g[:, 0] + 1) * (g[:, 3] - g[:, 1] + 1) - iw * ih)
            ov = np.where((iw > 0) & (ih > 0), iw * ih / ua, -np.inf)
            j = int(np.argmax(ov))
            ovmax, jmax = ov[j], lo + j
        if ovmax >= 0.5:
            if not gt.difficult[jmax]:
                if not taken[jmax]:
                    tp[d] = 1
                    taken[jmax] = True
                else:
                    fp[d] = 1
        else:
            fp[d] = 1
    ctp, cfp = np.cumsum(tp), np.cumsum(fp)
    with np.errstate(invalid="ignore"):
        prec = ctp / (ctp + cfp)
    rec = ctp / npos
    return tp.astype(bool), fp.astype(bool), voc.voc07_ap(rec, prec), voc.area_ap(rec, prec)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--detections", type=int, default=100_000)
    ap.add_argument("--images", type=int, default=5_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    det_ids, scores, boxes, gt = make_problem(args.images, args.detections)
    print(f"{args.detections} detections over {args.images} images, {len(gt.boxes)} ground-truth "
          f"boxes ({gt.n_positives} non-difficult)")

    times = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        res = voc.evaluate((det_ids, scores, boxes), gt)
        times.append(time.perf_counter() - t)
    ours = statistics.median(times)

    t = time.perf_counter()
    tp, fp, ap11, ap_area = devkit_loop(det_ids, scores, boxes, gt)
    ref = time.perf_counter() - t

    same = (np.array_equal(tp, res.tp) and np.array_equal(fp, res.fp)
            and abs(ap11 - res.ap) < 1e-12 and abs(ap_area - res.ap_area) < 1e-12)
    print(f"AP {res.ap:.4f} (11-point), {res.ap_area:.4f} (area); TP {res.n_true_positives}, "
          f"FP {res.n_false_positives}, ignored {res.n_ignored}; reference agrees: {same}")
    print(f"voc.evaluate (median of {args.repeat}): {ours:.3f} s   [min {min(times):.3f} s]")
    print(f"per-detection loop (devkit port):  {ref:.3f} s")
    print(f"speed-up: {ref / ours:.1f}x   target < 1 s: {'met' if ours < 1 else 'MISSED'}")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "comp3_det_test_x.txt"
        t = time.perf_counter()
        voc.write_results(path, (det_ids, scores, boxes))
        t_write = time.perf_counter() - t
        t = time.perf_counter()
        back = voc.read_results(path, image_ids=gt.image_ids)
        t_read = time.perf_counter() - t
        same = same and np.array_equal(back.boxes, boxes) and np.array_equal(back.scores, scores)
    print(f"results file, {args.detections} lines: write {t_write:.3f} s, read {t_read:.3f} s "
          "(exact round trip)")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
