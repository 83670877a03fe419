"""Star-cascade detection vs exact detection: single-thread time, time split, pruning.

Usage::

    python benchmarks/bench_cascade.py [--model FILE] [--repeat 7] [--positives 60]

Reports, in one run, for ``000034.jpg`` (../shared/models/voc-release3.1/) and
a PETS frame of person-voc's test split detected at ``--upsample 2``:

* exact detection (:func:`dpm.detection.detect` with ``cascade=False``, its default float32
  responses and fast features) and cascade detection (:func:`dpm.detection.detect_cascade`)
  of the same image with the same model, features included, and exact
  detection with the original's double-precision features (``exact_features=True``,
  the detector before the cascade and the fast features existed), run in
  alternation; medians of wall and CPU time and the ratios cascade / exact;
* the same two without the feature pyramid (raw detections from a given
  pyramid), to show what the cascade does to the rest;
* the cascade's time split (features, projection, projected root, projected
  part stages, full stages, rest): medians over N extra runs with timing on;
* the fraction of visited root positions pruned before each stage, the
  number of part filter responses computed, and how many detections the two
  detectors agree on.

The model (default: the built-in person model) is used with its cascade when
it carries one (``model.cascade``).  Otherwise a CRUDE cascade is built here,
for timing only: PCA coefficients from the HOG cells of ``--positives``
person-voc training crops, part order by index, and §C.4's threshold rule
applied to the stage scores of the model's best detection (root box overlap
>= 0.5) on each of those crops, found with the unpruned cascade (so the
projected parts are placed in their windows, not freely as §C.2 asks, and
the positives are few).  Its accuracy says nothing about the real cascade's.
Timings on a loaded machine are indicative only.
"""
import os

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")  # single-threaded native code (set before numpy loads)

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from dpm import load_model, read_image  # noqa: E402
from dpm.boxes import iou  # noqa: E402
from dpm.cascade import Cascade, CascadeComponent  # noqa: E402
from dpm.detection.cascade import CascadeStats, detect_cascade, detect_cascade_raw  # noqa: E402
from dpm.detection import detect, detect_raw, detection_pyramid, upsampled  # noqa: E402
from dpm.features import feature_pyramid  # noqa: E402

HERE = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DPM_SHARED", HERE.parent / "shared"))
PERSON_VOC = SHARED / "data" / "person-voc"
INRIA_BOX = np.array([17.0, 17.0, 80.0, 144.0])   # the person in every inria_* crop (README)


def crude_cascade(model, positives: int, k: int = 5) -> Cascade:
    """A cascade for timing only (see the module docstring)."""
    ids = [i for i in (PERSON_VOC / "ImageSets" / "Main" / "train.txt").read_text().split() if i.startswith("inria")]
    images = [read_image(PERSON_VOC / "JPEGImages" / f"{i}.jpg") for i in ids[:positives]]
    cells = np.concatenate([level.reshape(-1, level.shape[2]) for img in images
                            for level in feature_pyramid(img, model.sbin, model.interval).levels])
    values, vectors = np.linalg.eigh(cells.T @ cells / len(cells))
    coeff = np.ascontiguousarray(vectors[:, np.argsort(values)[::-1][:k]])
    open_comps = [CascadeComponent(np.array(list(range(1 + len(c.parts))) * 2), np.full(4 * (1 + len(c.parts)), -np.inf))
                  for c in model.components]
    unpruned = Cascade(coeff, open_comps, -np.inf)
    rows = [[] for _ in model.components]
    for img in images:
        stats = CascadeStats(timing=False, blocks=True)
        dets = detect_cascade_raw(img, model, unpruned, -10.0, stats=stats)
        ok = np.flatnonzero(iou(INRIA_BOX, dets.root_boxes) >= 0.5) if len(dets) else []
        if len(ok):
            best = ok[np.argmax(dets.scores[ok])]
            if dets.scores[best] >= model.thresh:
                rows[dets.components[best]].append(stats.recorded[0][best])
    comps = []
    for c, comp in enumerate(model.components):
        n = 1 + len(comp.parts)
        if not rows[c]:
            comps.append(CascadeComponent(open_comps[c].order, np.full(4 * n, np.inf)))
            continue
        S = np.array(rows[c])[:, :2 * n].reshape(len(rows[c]), -1)
        t = np.empty(4 * n)
        t[:2 * n] = (np.cumsum(S, axis=1)[:, :2 * n] + comp.bias).min(axis=0)
        for j in range(2, 2 * n + 1):
            t[j + 2 * n - 2] = (S[:, j - 1:j + 2 * n - 1].sum(axis=1) + comp.bias).min()
        t[-1] = model.thresh
        comps.append(CascadeComponent(open_comps[c].order, t))
    print(f"crude cascade (timing only): PCA of {len(cells)} cells of {len(images)} person-voc crops, "
          f"thresholds from {[len(r) for r in rows]} positives per component")
    return Cascade(coeff, comps, model.thresh)


def compare(name, image, model, cascade, repeat, upsample):
    runs = {"exact": lambda: detect(image, model, upsample=upsample, cascade=False),
            "exact, exact features": lambda: detect(image, model, upsample=upsample, cascade=False,
                                                    exact_features=True),
            "cascade": lambda: detect_cascade(image, model, cascade, upsample=upsample)}
    for run in runs.values():   # warm up
        run()
    wall = {k: [] for k in runs}
    cpu = {k: [] for k in runs}
    out = {}
    for _ in range(repeat):  # in alternation, so that load changes affect all alike
        for key, run in runs.items():
            t, c = time.perf_counter(), time.process_time()
            out[key] = run()
            cpu[key].append(time.process_time() - c)
            wall[key].append(time.perf_counter() - t)
    exact, found = out["exact"], out["cascade"]
    h, w = image.shape[:2]
    print(f"\n{name} ({w}x{h}, upsample {upsample}), {repeat} alternating runs, single thread "
          f"(load average {os.getloadavg()[0]:.1f}):")
    for key in runs:
        print(f"  {key:22s} {statistics.median(wall[key]) * 1000:8.1f} ms wall, "
              f"{statistics.median(cpu[key]) * 1000:8.1f} ms CPU   {len(out[key])} detections")
    for ref, what in (("exact", "exact (fast features, the default)"),
                      ("exact, exact features", "exact with the original's double-precision features")):
        rw = statistics.median(b / a for a, b in zip(wall[ref], wall["cascade"]))
        rc = statistics.median(b / a for a, b in zip(cpu[ref], cpu["cascade"]))
        print(f"  cascade / {what}: {rw:.3f} wall, {rc:.3f} CPU (medians of per-run ratios; 1/{1 / rc:.1f})")
    # The same without the feature pyramid (the one detection builds, given to both).
    work = upsampled(image, upsample)
    pyr32 = detection_pyramid(work, model.sbin, model.interval)
    exact_r, cascade_r = [], []
    for _ in range(repeat):
        t = time.perf_counter()
        detect_raw(work, model, pyramid=pyr32)
        exact_r.append(time.perf_counter() - t)
        t = time.perf_counter()
        detect_cascade_raw(work, model, cascade, pyramid=pyr32)
        cascade_r.append(time.perf_counter() - t)
    e, c = statistics.median(exact_r), statistics.median(cascade_r)
    print(f"  features excluded (raw detections from a given pyramid): exact {e * 1000:.1f} ms, "
          f"cascade {c * 1000:.1f} ms, cascade / exact {c / e:.3f} (1/{e / c:.1f})")
    same = sum(bool(np.any(np.all(np.abs(exact.boxes - b) < 1e-6, axis=1))) for b in found.boxes)
    print(f"  cascade detections with an identical exact box: {same} of {len(found)}")
    # The split: the median of each part over `repeat` runs with timing on (one run alone can
    # catch a slow pyramid: a page-faulting heap after the runs above).
    splits, totals = [], []
    for _ in range(repeat):
        stats = CascadeStats(timing=True)
        t = time.perf_counter()
        detect_cascade(image, model, cascade, upsample=upsample, stats=stats)
        totals.append(time.perf_counter() - t)
        splits.append(stats.seconds)
    total = statistics.median(totals)
    print(f"  time split, medians of {repeat} runs with timing on (total {total * 1000:.1f} ms):")
    for key in splits[0]:
        sec = statistics.median(sp[key] for sp in splits)
        print(f"    {key:15s} {sec * 1000:8.1f} ms  {100 * sec / total:5.1f}%")
    full, proj = stats.responses
    print(f"  part responses computed: {full} full, {proj} projected")
    for ci, (fractions, row) in enumerate(zip(stats.pruned(), stats.passed)):
        print(f"  component {ci}: {row[0]} root positions; pruned before stage s=1..{len(fractions)}: "
              + " ".join(f"{f:.3f}" for f in fractions) + f"; completed {row[len(fractions) + 1] / row[0]:.4f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, default=HERE / "dpm" / "data" / "person.npz")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--positives", type=int, default=60, help="person-voc crops for the crude cascade")
    ap.add_argument("--pets", default="pets_0001", help="the PETS frame detected at upsample 2")
    args = ap.parse_args()
    demo = SHARED / "models" / "voc-release3.1" / "000034.jpg"
    if not demo.exists() or not PERSON_VOC.exists():
        sys.exit(f"{demo} or {PERSON_VOC} is absent: this benchmark needs ../shared")
    model = load_model(args.model)
    cascade = getattr(model, "cascade", None) or crude_cascade(model, args.positives)
    print(f"model {args.model.name}: {model}")
    compare("000034.jpg", read_image(demo), model, cascade, args.repeat, 1)
    compare(f"{args.pets}.jpg", read_image(PERSON_VOC / "JPEGImages" / f"{args.pets}.jpg"), model, cascade,
            args.repeat, 2)


if __name__ == "__main__":
    main()
