"""Release-5 star models with their published star-cascades vs the same models detected exactly.

Usage::

    python benchmarks/bench_release5_cascade.py [--model VOC2007/person_final.mat] [--image im_000034]
                                                [--repeat 7]

Reports, in one run, for the release-5 model (default VOC2007 person, loaded
from ../shared/models/voc-release5/ with the cascade of the published
statistics, :func:`dpm.model.release5_cascade.cascade_from_published`) on
``000034.jpg`` (the decoded pixels of ../shared/golden/release5/images_decoded_octave.mat):

* exact detection (:func:`dpm.detect` with ``cascade=False``) and cascade
  detection (the default), features and ``process.m``'s steps included,
  single thread, run in alternation; medians and the ratio;
* the cascade's time split from one extra run with timing on, the pruning
  per stage and the filter responses computed;
* the detections: raw detections above the threshold and the final ones
  (after clip, bboxpred, clip, nms) of both, matched by level, window and
  component (raw) or by box (final); each difference is put down to its
  cause by re-running the cascade with parts of its pruning switched off:
  root positions the cascade skips at the border (``skip_border``),
  deformation pruning (a part placed elsewhere in its window, or a hypothesis
  lost through that), hypothesis pruning; and the exact detections whose parts
  lie outside the cascade's window around their probe are counted (the exact
  detector's bounded distance transform has range 4, the window is 4).

Timings on a loaded machine are indicative only.
"""
import os

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")  # single-threaded native code (set before numpy loads)

import argparse  # noqa: E402
import copy  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

import dpm  # noqa: E402
from dpm.detection.cascade import CascadeStats  # noqa: E402
from dpm.detection.release5 import detect_raw_star, detect_raw_star_cascade, process_star  # noqa: E402
from dpm.detection.release5.parse import model_pyramid  # noqa: E402
from dpm.files import read_mat  # noqa: E402

HERE = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DPM_SHARED", HERE.parent / "shared"))
RELEASE5 = SHARED / "models" / "voc-release5"
IMAGES = SHARED / "golden" / "release5" / "images_decoded_octave.mat"


def opened(cascade, hypothesis: bool, deformation: bool):
    """The cascade with its hypothesis and/or deformation thresholds at -inf (the global one kept)."""
    out = copy.deepcopy(cascade)
    for c in out.components:
        t = c.thresholds
        if deformation:
            t[0:-1:2] = -np.inf
        if hypothesis:
            t[1:-1:2] = -np.inf
    return out


def keys(raw) -> dict:
    """Raw detection -> row, keyed by (level, window, component)."""
    return {(int(lev), tuple(np.round(d[:4], 6)), int(d[4])): i for i, (lev, d) in enumerate(zip(raw.levels, raw.ds))}


def parts_outside(raw, model, scales, window: int) -> int:
    """Raw detections with a part more than ``window`` cells from its probe (positions recovered from
    the boxes: 0-based cells of the padded levels)."""
    (pady, padx), count = model.padding, 0
    for lev, d, boxes in zip(raw.levels, raw.ds, raw.boxes):
        comp = model.components[int(d[4]) - 1]
        scale = model.sbin / scales[lev]
        rx = round((d[0] - 1) / scale + comp.shiftwindow[1] + padx)
        ry = round((d[1] - 1) / scale + comp.shiftwindow[0] + pady)
        fscale = model.sbin / scales[lev - model.interval]
        far = False
        for f, box in zip(comp.parts, boxes[1:]):
            px = round((box[0] - 1) / fscale + 2 * padx) - padx
            py = round((box[1] - 1) / fscale + 2 * pady) - pady
            probe_x, probe_y = 2 * rx + f.anchor[0] - padx, 2 * ry + f.anchor[1] - pady
            far |= abs(px - probe_x) > window or abs(py - probe_y) > window
        count += far
    return count


def compare(raw_exact, raw_casc, model, image, variants, scales, window):
    ke, kc = keys(raw_exact), keys(raw_casc)
    missing = set(ke) - set(kc)
    extra = set(kc) - set(ke)
    common = set(ke) & set(kc)
    changed = {k for k in common if abs(raw_exact.ds[ke[k], 5] - raw_casc.ds[kc[k], 5]) > 1e-9
               or np.abs(raw_exact.bs[ke[k]] - raw_casc.bs[kc[k]]).max() > 1e-6}
    kb, kd = keys(variants["no border skip"]), keys(variants["no border skip, no deformation pruning"])
    cause = {"border": 0, "deformation pruning": 0, "hypothesis pruning": 0}
    for k in missing:
        if k in kb:
            cause["border"] += 1
        elif k in kd:
            cause["deformation pruning"] += 1
        else:
            cause["hypothesis pruning"] += 1
    drop = max((raw_exact.ds[ke[k], 5] - raw_casc.ds[kc[k], 5] for k in changed), default=0)
    print(f"raw detections above the threshold: exact {len(ke)}, cascade {len(kc)}; the same (level, window, "
          f"component) {len(common)}, of which {len(common) - len(changed)} identical (score within 1e-9, boxes "
          f"within 1e-6) and {len(changed)} with a part placed elsewhere in its window (deformation pruning; "
          f"score lower by up to {drop:.4f})")
    print(f"  missing from the cascade: {len(missing)} (border positions skipped {cause['border']}, deformation "
          f"pruning {cause['deformation pruning']}, hypothesis pruning {cause['hypothesis pruning']}); best missing "
          f"score {max((raw_exact.ds[ke[k], 5] for k in missing), default=float('nan')):.4f}")
    print(f"  only in the cascade: {len(extra)} (a root position where the exact detector's best component was "
          "pruned, so another component reports it)")
    print(f"  exact detections with a part outside the cascade's window ({window} cells): "
          f"{parts_outside(raw_exact, model, scales, window)}")
    fe = process_star(raw_exact, model, image.shape[:2])
    fc = process_star(raw_casc, model, image.shape[:2])
    de, dc = fe.final[0], fc.final[0]
    same = [i for i in range(len(de)) if len(dc) and np.abs(dc - de[i]).max(axis=1).min() <= 1e-6]
    print(f"final detections (clip, bboxpred, clip, nms): exact {len(de)}, cascade {len(dc)}, identical (box and "
          f"score within 1e-6) {len(same)}")
    lost = [i for i in range(len(de)) if i not in same]
    if lost:
        print("  exact final detections without an identical one in the cascade's (their scores): "
              + ", ".join(f"{de[i, 4]:.3f}" for i in lost))
    top = min(len(de), len(dc))
    k = 0
    while k < top and np.abs(de[k] - dc[k]).max() <= 1e-6:
        k += 1
    print(f"  the first {k} final detections are the same, in the same order")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="VOC2007/person_final.mat", help="under ../shared/models/voc-release5/")
    ap.add_argument("--image", default="im_000034", help="a variable of images_decoded_octave.mat")
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    if not (RELEASE5 / args.model).is_file() or not IMAGES.is_file():
        sys.exit(f"needs {RELEASE5 / args.model} and {IMAGES}")
    model = dpm.load_model(RELEASE5 / args.model)
    if model.cascade is None:
        sys.exit(f"{args.model}: no published cascade statistics found beside it")
    image = np.asarray(read_mat(IMAGES, what="images")[args.image], dtype=np.float64)
    print(f"{model}\nimage {args.image} {image.shape[1]}x{image.shape[0]}; threshold "
          f"{model.cascade.threshold:.4f}; window {model.cascade.window}; single thread")

    dpm.detect(image, model)  # warm up both
    dpm.detect(image, model, cascade=False)
    times = {"exact": [], "cascade": []}
    for _ in range(args.repeat):
        for name, flag in (("exact", False), ("cascade", None)):
            t0 = time.perf_counter()
            dpm.detect(image, model, cascade=flag)
            times[name].append(time.perf_counter() - t0)
    me, mc = statistics.median(times["exact"]), statistics.median(times["cascade"])
    print(f"\ndpm.detect, features and process.m included, median of {args.repeat} alternating runs: exact {me:.3f} s, "
          f"cascade {mc:.3f} s; exact / cascade = {me / mc:.2f}x")

    stats = CascadeStats(timing=True)
    raw_casc = detect_raw_star_cascade(image, model, stats=stats)
    total = sum(stats.seconds.values())
    print("cascade time split (one run, timing on): " + ", ".join(
        f"{k} {v:.3f} s ({100 * v / total:.0f}%)" for k, v in stats.seconds.items()))
    print(f"filter responses computed: full {stats.responses[0]}, projected {stats.responses[1]}")
    for ci, row in enumerate(stats.pruned()):
        print(f"  component {ci}: fraction of root positions pruned before stages 1..: "
              + " ".join(f"{p:.3f}" for p in row))

    pyramid = model_pyramid(image, model)
    raw_exact = detect_raw_star(image, model, pyramid=pyramid)
    variants = {"no border skip": detect_raw_star_cascade(image, model, pyramid=pyramid, skip_border=False),
                "no border skip, no deformation pruning": detect_raw_star_cascade(
                    image, model, opened(model.cascade, False, True), pyramid=pyramid, skip_border=False)}
    print()
    compare(raw_exact, raw_casc, model, image, variants, pyramid.scales, model.cascade.window)
    unpruned = detect_raw_star_cascade(image, model, opened(model.cascade, True, True), pyramid=pyramid,
                                       skip_border=False)
    same = (len(unpruned) == len(raw_exact) and np.abs(unpruned.ds - raw_exact.ds).max() <= 1e-9
            and np.abs(unpruned.bs - raw_exact.bs).max() <= 1e-6)
    print(f"\nevery threshold at -inf, skip_border=False: {len(unpruned)} raw detections, "
          f"{'identical to' if same else 'NOT identical to'} the exact detector's (order, windows, boxes, scores)")


if __name__ == "__main__":
    main()
