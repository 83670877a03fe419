"""All 20 VOC2007 classes on one image: one pass against 20 separate detections, single thread.

Usage::

    python benchmarks/bench_multiclass.py [--repeat 3] [--image PATH]

Runs, in alternation (so a change in the machine's load hits both alike),
``dpm.detect(image, models)`` with the 20 built-in ``voc2007`` models (one
feature pyramid for all) and 20 separate ``dpm.detection.detect(image, model)``
calls (one pyramid each), on ``000034.jpg`` of the original release by default;
reports the median of each, their ratio (one pass / separate), the time of one
feature pyramid, and whether every class's detections are identical.  Also
times one convolution pass with all models' filters stacked into one bank per
level (the largest padding for all) against each model's own bank and padding:
the alternative :mod:`dpm.detection.multiclass` does not use.
"""
import os

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")  # single-threaded native code (set before numpy loads)

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

import dpm  # noqa: E402
from dpm.convolve import FilterBank  # noqa: E402
from dpm.data import resolve_models  # noqa: E402
from dpm.detection import detect_one  # noqa: E402
from dpm.features import feature_pyramid  # noqa: E402

SHARED = Path(os.environ.get("DPM_SHARED", Path(__file__).resolve().parents[2] / "shared"))
FIELDS = ("boxes", "scores", "components", "root_boxes", "part_boxes", "levels")


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def convolutions(pyr, models, stacked: bool):
    """All root and part responses of every level: per model (own padding) or stacked (largest)."""
    iv = pyr.interval
    if stacked:
        py = max(m.padding[0] for m in models)
        px = max(m.padding[1] for m in models)
        banks = [(FilterBank([c.root for m in models for c in m.components], dtype=np.float32),
                  FilterBank([p.filter for m in models for c in m.components for p in c.parts],
                             dtype=np.float32), (py, px))]
    else:
        banks = [(FilterBank([c.root for c in m.components], dtype=np.float32),
                  FilterBank([p.filter for c in m.components for p in c.parts], dtype=np.float32), m.padding)
                 for m in models]
    for lev in range(iv, len(pyr.levels)):
        for roots, parts, (py, px) in banks:
            roots.convolve(pyr.levels[lev], pad=(py, px), allow_empty=True)
            parts.convolve(pyr.levels[lev - iv], pad=(2 * py, 2 * px), allow_empty=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--image", type=Path, default=SHARED / "models" / "voc-release3.1" / "000034.jpg")
    args = ap.parse_args()
    image = dpm.read_image(args.image)
    models = resolve_models("voc2007")
    print(f"image {args.image.name} {image.shape[1]}x{image.shape[0]}, {len(models)} models, single thread "
          f"(OMP/OPENBLAS/MKL_NUM_THREADS={os.environ['OMP_NUM_THREADS']})")
    one_pass, separate, same = [], [], True
    for _ in range(args.repeat):
        t, multi = timed(lambda: dpm.detect(image, models))
        one_pass.append(t)
        t, alone = timed(lambda: [detect_one(image, m) for m in models])
        separate.append(t)
        for m, a in zip(models, alone):
            d = multi[m.class_name]
            same &= len(d) == len(a) and all(np.array_equal(getattr(d, f), getattr(a, f)) for f in FIELDS)
    a, b = statistics.median(one_pass), statistics.median(separate)
    print(f"one pass           {a:8.3f} s   (runs: {', '.join(f'{v:.2f}' for v in one_pass)})")
    print(f"20 separate        {b:8.3f} s   (runs: {', '.join(f'{v:.2f}' for v in separate)})")
    print(f"ratio one pass / separate: {a / b:.3f}")
    print(f"detections identical per class: {same}")
    pyr_t = statistics.median(timed(lambda: feature_pyramid(image, 8, 10, dtype=np.float32, exact=False))[0]
                              for _ in range(args.repeat))
    pyr = feature_pyramid(image, 8, 10, dtype=np.float32, exact=False)
    n = len(models)
    per_model = (a - pyr_t) / n
    print(f"one feature pyramid (fast features, the default) {pyr_t:.3f} s; the rest of one pass per model "
          f"{per_model:.3f} s ({per_model / pyr_t:.1f} pyramids)")
    print(f"with the pyramid shared and nothing else, one pass / separate = (F + {n} M) / ({n} F + {n} M) = "
          f"{(pyr_t + n * per_model) / (n * pyr_t + n * per_model):.3f} (0.5 needs M <= {(n - 2) / n:.2f} F)")
    own, stk = [], []
    for _ in range(args.repeat):
        own.append(timed(lambda: convolutions(pyr, models, stacked=False))[0])
        stk.append(timed(lambda: convolutions(pyr, models, stacked=True))[0])
    c, d = statistics.median(own), statistics.median(stk)
    print(f"convolutions, each model's bank and padding {c:.3f} s; all stacked, largest padding {d:.3f} s "
          f"(ratio stacked / own {d / c:.3f})")


if __name__ == "__main__":
    main()
