"""Time the feature pyramid against the plain-NumPy reference, and split it.

Usage::

    python benchmarks/bench_features.py [--repeat N] [--fast-only]
    taskset -c 0 python benchmarks/bench_features.py --fast-only   # one core

For the demo image 000034.jpg (read from ../shared/models/voc-release3.1/,
skipped with a message if absent; override the location with DPM_SHARED) and
a synthetic 480x640 image, prints

* ``feature_pyramid`` (sbin 8, interval 10) with n_jobs=1 and n_jobs=2,
* the same pyramid computed by the plain-NumPy references of the tests
  (``tests/test_pyramid.py``: ``resize_reference`` + ``hog_reference``), and the
  ratio,
* ``hog`` alone at scale 1 against ``hog_reference``,
* the split of the single-threaded pyramid into resizing and HOG (gradients,
  binning, normalisation), measured by running the same steps one by one,
* detection's float32 pyramid, exact features (``exact=True``, the float64
  computation rounded once) against the fast single-precision ones
  (``exact=False``), run alternately in one process: the median of the
  per-pair ratios exact / fast, and the fast path's split by stage
  (``--fast-only`` prints only this part).

Times are the best of N runs (wall clock, ms), after one warm-up run; the
variants being compared are run in alternation so that a change in the load of
a shared machine affects them alike.  Medians are printed too.
"""
import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from dpm.features import feature_pyramid, hog  # noqa: E402
from dpm.features.hog import _gradients, _hog, _hog_from_gradients, _resize, hog_shape  # noqa: E402
from dpm.features.pyramid import _max_scale  # noqa: E402
from test_hog import hog_reference  # noqa: E402
from test_pyramid import pyramid_reference  # noqa: E402

SHARED = Path(os.environ.get("DPM_SHARED", REPO.parent / "shared"))


def timed(functions, repeat):
    """[(best ms, median ms)] of each function, run in alternation."""
    for fn in functions:
        fn()                                   # warm-up
    times = [[] for _ in functions]
    for _ in range(repeat):
        for fn, t in zip(functions, times):
            start = time.perf_counter()
            fn()
            t.append(time.perf_counter() - start)
    return [(min(t) * 1e3, float(np.median(t)) * 1e3) for t in times]


def split(image, sbin=8, interval=10):
    """(resize ms, hog ms) of one single-threaded pyramid, step by step."""
    image = np.ascontiguousarray(image, dtype=np.float64)
    h, w = image.shape[:2]
    sc = 2.0 ** (1.0 / interval)
    max_scale = _max_scale(h, w, sbin, interval)
    t_resize = t_hog = 0.0
    for i in range(1, interval + 1):
        t0 = time.perf_counter()
        scaled = _resize(image, 1.0 / sc ** (i - 1)) if i > 1 else image
        t1 = time.perf_counter()
        if 0 in hog_shape(*scaled.shape[:2], sbin // 2)[:2]:
            _hog(scaled, sbin // 2)
            _hog(scaled, sbin)
        else:
            magnitude, orientation = _gradients(scaled)
            _hog_from_gradients(magnitude, orientation, sbin // 2)
            _hog_from_gradients(magnitude, orientation, sbin)
        t2 = time.perf_counter()
        t_resize += t1 - t0
        t_hog += t2 - t1
        for _ in range(i + interval, max_scale + 1, interval):
            t0 = time.perf_counter()
            scaled = _resize(scaled, 0.5)
            t1 = time.perf_counter()
            _hog(scaled, sbin)
            t2 = time.perf_counter()
            t_resize += t1 - t0
            t_hog += t2 - t1
    return t_resize * 1e3, t_hog * 1e3


def fast_split(image, sbin=8, interval=10):
    """{stage: ms} of one single-threaded fast pyramid, step by step."""
    hog_module = sys.modules["dpm.features.hog"]
    image = np.ascontiguousarray(image, dtype=np.float64)
    h, w = image.shape[:2]
    sc = 2.0 ** (1.0 / interval)
    max_scale = _max_scale(h, w, sbin, interval)
    t = dict(resize=0.0, gradients=0.0, binning=0.0, normalisation=0.0)
    kernels = hog_module._fast_kernels

    def features(scaled, sbins):
        t0 = time.perf_counter()
        magnitude, orientation = _gradients(scaled, fast=True)
        t["gradients"] += time.perf_counter() - t0
        for b in sbins:
            by, bx = hog_module.mround(h_ / b), hog_module.mround(w_ / b)
            if by < 3 or bx < 3:
                continue
            t0 = time.perf_counter()
            hist = np.zeros((by + 2, bx + 2, 18), dtype=np.float32)
            kernels.bin_cells(magnitude, orientation, b, hist)
            t1 = time.perf_counter()
            kernels.normalize_cells(hist, np.empty((by - 2, bx - 2, 31), dtype=np.float32))
            t["binning"] += t1 - t0
            t["normalisation"] += time.perf_counter() - t1

    for i in range(1, interval + 1):
        t0 = time.perf_counter()
        scaled = _resize(image, 1.0 / sc ** (i - 1)) if i > 1 else image
        t["resize"] += time.perf_counter() - t0
        h_, w_ = scaled.shape[:2]
        features(scaled, (sbin // 2, sbin))
        for _ in range(i + interval, max_scale + 1, interval):
            t0 = time.perf_counter()
            scaled = _resize(scaled, 0.5)
            t["resize"] += time.perf_counter() - t0
            h_, w_ = scaled.shape[:2]
            features(scaled, (sbin,))
    return {k: v * 1e3 for k, v in t.items()}


def bench_fast(name, image, repeat):
    """Exact against fast float32 pyramids, alternately; median of the per-pair ratios."""
    exact = lambda: feature_pyramid(image, 8, 10, dtype=np.float32)               # noqa: E731
    fast = lambda: feature_pyramid(image, 8, 10, dtype=np.float32, exact=False)   # noqa: E731
    exact()
    fast()
    te, tf = [], []
    for _ in range(repeat):
        for fn, out in ((exact, te), (fast, tf)):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    te, tf = np.array(te) * 1e3, np.array(tf) * 1e3
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    print(f"\n== {name}: float32 pyramid, exact vs fast features ({repeat} pairs, CPUs {cpus})")
    print(f"exact=True   median {np.median(te):7.1f} ms  (best {te.min():.1f})")
    print(f"exact=False  median {np.median(tf):7.1f} ms  (best {tf.min():.1f})")
    print(f"ratio exact / fast: median of pairs {np.median(te / tf):.2f}, "
          f"of medians {np.median(te) / np.median(tf):.2f}")
    splits = [fast_split(image) for _ in range(max(3, repeat // 4))]
    best = min(splits, key=lambda d: sum(d.values()))
    total = sum(best.values())
    print("fast split   " + ", ".join(f"{k} {v:.1f} ms ({100 * v / total:.0f}%)" for k, v in best.items())
          + f"; total {total:.1f} ms")


def bench(name, image, repeat):
    h, w = image.shape[:2]
    print(f"\n== {name}: {h}x{w}, sbin 8, interval 10 "
          f"({len(feature_pyramid(image).levels)} levels)")
    (one, one_med), (two, two_med) = timed(
        [lambda: feature_pyramid(image), lambda: feature_pyramid(image, n_jobs=2)], repeat)
    [(ref, ref_med)] = timed([lambda: pyramid_reference(image, 8, 10)], max(1, repeat // 10))
    print(f"feature_pyramid n_jobs=1   {one:8.1f} ms  (median {one_med:.1f})")
    print(f"feature_pyramid n_jobs=2   {two:8.1f} ms  (median {two_med:.1f})")
    print(f"NumPy reference pyramid    {ref:8.1f} ms  (median {ref_med:.1f})")
    print(f"ratio reference / n_jobs=1 {ref / one:8.1f}x")
    [(fast, _)] = timed([lambda: hog(image, 8)], repeat)
    [(slow, _)] = timed([lambda: hog_reference(image, 8)], max(1, repeat // 5))
    print(f"hog(image, 8)              {fast:8.2f} ms;  hog_reference {slow:.1f} ms;"
          f"  ratio {slow / fast:.1f}x")
    # The HOG kernels' builds, in alternation (the default is the last).
    import importlib
    hog_module = importlib.import_module("dpm.features.hog")
    default = hog_module._hog_kernels
    builds = ["dpm.features._hog"] + (
        [default.__name__] if default.__name__ != "dpm.features._hog" else [])
    if len(builds) > 1:
        modules = [importlib.import_module(b) for b in builds]

        def with_build(module):
            def run():
                hog_module._hog_kernels = module
                feature_pyramid(image)
            return run
        results = timed([with_build(m) for m in modules], repeat)
        hog_module._hog_kernels = default
        print("pyramid per HOG build      " + "; ".join(
            f"{b.rsplit('.', 1)[1]} {t:.1f} ms (median {med:.1f})" for b, (t, med) in zip(builds, results))
            + f"; ratio {results[1][1] / results[0][1]:.2f} (medians)")
    splits = [split(image) for _ in range(repeat)]
    r, g = min(splits, key=lambda t: t[0] + t[1])
    print(f"split of one pyramid       resize {r:.1f} ms + HOG {g:.1f} ms = {r + g:.1f} ms "
          f"(resize {100 * r / (r + g):.0f}%)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=20, help="runs per timing (default 20)")
    parser.add_argument("--fast-only", action="store_true",
                        help="only the exact-against-fast features comparison")
    args = parser.parse_args(argv)

    demo = SHARED / "models" / "voc-release3.1" / "000034.jpg"
    if demo.exists():
        from PIL import Image
        demo_image = np.asarray(Image.open(demo).convert("RGB"))
        bench_fast("000034.jpg", demo_image, args.repeat)
        if args.fast_only:
            return
        bench("000034.jpg", demo_image, args.repeat)
    else:
        print(f"skipping the demo image: {demo} is absent")
        if args.fast_only:
            return

    # Synthetic 480x640: smooth waves, a few discs, and noise.
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:480, 0:640]
    base = 120 + 60 * np.sin(x / 23.0) * np.cos(y / 31.0)
    for cy, cx, r in [(120, 200, 60), (300, 450, 90), (400, 100, 40)]:
        base = base + 50 * (np.hypot(y - cy, x - cx) < r)
    image = np.clip(base[:, :, None] + rng.normal(0, 8, size=(480, 640, 3)), 0, 255)
    bench("synthetic", np.round(image).astype(np.uint8), args.repeat)


if __name__ == "__main__":
    main()
