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
  per-pair ratios exact / fast, in wall-clock and in CPU time (the process's
  own, less disturbed by other work on a shared machine), and both
  pyramids' split by stage (``--fast-only`` prints only this part, for the
  demo image and for a person-voc test frame upsampled twice, as detection
  with ``--upsample 2`` sees it: ``pets_0001.jpg`` of
  ../shared/data/person-voc, skipped if absent).

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
from dpm.features import kernels as feature_kernels  # noqa: E402
from dpm.features.kernels import gradients, hog_from_gradients, hog_shape, level_hog, reduce  # noqa: E402
from dpm.features.pyramid import octave_scale_count  # noqa: E402
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
    t_hog = [0.0]

    def features(scaled, sbins):
        t0 = time.perf_counter()
        if len(sbins) == 1:
            level_hog(scaled, sbin)
        elif 0 in hog_shape(*scaled.shape[:2], sbin // 2)[:2]:
            level_hog(scaled, sbin // 2)
            level_hog(scaled, sbin)
        else:
            magnitude, orientation = gradients(scaled)
            hog_from_gradients(magnitude, orientation, sbin // 2)
            hog_from_gradients(magnitude, orientation, sbin)
        t_hog[0] += time.perf_counter() - t0

    return _walk_pyramid(image, features, sbin, interval), t_hog[0] * 1e3


def _walk_pyramid(image, features, sbin, interval):
    """Resize ms of one single-threaded pyramid walked as ``feature_pyramid`` does, calling
    ``features(scaled, sbins)`` on each resized image (``sbins``: the cell sizes it is binned at)."""
    source = np.ascontiguousarray(image) if image.dtype == np.uint8 else None   # as feature_pyramid
    image = np.ascontiguousarray(image, dtype=np.float64)
    source = image if source is None else source
    h, w = image.shape[:2]
    sc = 2.0 ** (1.0 / interval)
    max_scale = octave_scale_count(h, w, sbin, interval)
    t_resize = 0.0
    for i in range(1, interval + 1):
        t0 = time.perf_counter()
        scaled = reduce(source, 1.0 / sc ** (i - 1)) if i > 1 else image
        t_resize += time.perf_counter() - t0
        features(scaled, (sbin, sbin // 2))
        for _ in range(i + interval, max_scale + 1, interval):
            t0 = time.perf_counter()
            scaled = reduce(scaled, 0.5)
            t_resize += time.perf_counter() - t0
            features(scaled, (sbin,))
    return t_resize * 1e3


def _cells(scaled, b):
    """``(by, bx)`` cells of size ``b`` of an image, or None if its HOG map is empty."""
    mround = feature_kernels.mround
    by, bx = mround(scaled.shape[0] / b), mround(scaled.shape[1] / b)
    return (by, bx) if by >= 3 and bx >= 3 else None


def fast_split(image, sbin=8, interval=10):
    """{stage: ms} of one single-threaded fast pyramid, step by step.

    ``gradients+binning`` is the fused kernel (``hog_cells``); ``of which
    gradients`` times the same gradient rows alone (``gradient_bins``, which
    writes them out as maps), an estimate of their share.
    """
    kernels = feature_kernels.hog_kernels(exact=False)
    t = {"gradients+binning": 0.0, "normalisation": 0.0, "of which gradients": 0.0}

    def features(scaled, sbins):
        sizes = [(b, _cells(scaled, b)) for b in sbins]
        hists = [np.zeros((c[0] + 2, c[1] + 2, 18), dtype=np.float32) for b, c in sizes if c]
        if not hists:
            return
        t0 = time.perf_counter()
        # The first histogram has the larger cells; the second, if any, half of them.
        kernels.hog_cells(scaled, [b for b, c in sizes if c][0], hists[0], hists[1] if len(hists) > 1 else None)
        t1 = time.perf_counter()
        for hist in hists:
            kernels.normalize_cells(hist, np.empty((hist.shape[0] - 4, hist.shape[1] - 4, 31), np.float32))
        t2 = time.perf_counter()
        kernels.gradient_bins(scaled, np.empty(scaled.shape[:2], np.float32), np.empty(scaled.shape[:2], np.uint8))
        t["gradients+binning"] += t1 - t0
        t["normalisation"] += t2 - t1
        t["of which gradients"] += time.perf_counter() - t2

    resize = _walk_pyramid(image, features, sbin, interval)
    return {"resize": resize, **{k: v * 1e3 for k, v in t.items()}}


def exact_split(image, sbin=8, interval=10):
    """{stage: ms} of one single-threaded exact float32 pyramid, step by step."""
    kernels = feature_kernels.hog_kernels()
    t = {"gradients": 0.0, "binning": 0.0, "normalisation": 0.0}

    def features(scaled, sbins):
        t0 = time.perf_counter()
        magnitude, orientation = gradients(scaled)
        t["gradients"] += time.perf_counter() - t0
        for b in sbins:
            cells = _cells(scaled, b)
            if cells is None:
                continue
            t0 = time.perf_counter()
            hist = np.zeros((cells[0] + 2, cells[1] + 2, 18))
            kernels.bin_cells(magnitude, orientation, b, hist)
            t1 = time.perf_counter()
            kernels.normalize_cells(hist, np.empty((cells[0] - 2, cells[1] - 2, 31), dtype=np.float32))
            t["binning"] += t1 - t0
            t["normalisation"] += time.perf_counter() - t1

    resize = _walk_pyramid(image, features, sbin, interval)
    return {"resize": resize, **{k: v * 1e3 for k, v in t.items()}}


def _print_split(label, splits):
    best = min(splits, key=lambda d: d["resize"] + sum(v for k, v in d.items() if k not in ("resize", "of which gradients")))
    total = sum(v for k, v in best.items() if k != "of which gradients")
    print(f"{label} " + ", ".join(f"{k} {v:.1f} ms ({100 * v / total:.0f}%)" for k, v in best.items())
          + f"; total {total:.1f} ms")


def bench_fast(name, image, repeat):
    """Exact against fast float32 pyramids, alternately; median of the per-pair ratios."""
    exact = lambda: feature_pyramid(image, 8, 10, dtype=np.float32)               # noqa: E731
    fast = lambda: feature_pyramid(image, 8, 10, dtype=np.float32, exact=False)   # noqa: E731
    exact()
    fast()
    wall = {"exact": [], "fast": []}
    cpu = {"exact": [], "fast": []}
    for _ in range(repeat):
        for key, fn in (("exact", exact), ("fast", fast)):
            w0, c0 = time.perf_counter(), time.process_time()
            fn()
            cpu[key].append(time.process_time() - c0)
            wall[key].append(time.perf_counter() - w0)
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    load = " ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    print(f"\n== {name} {image.shape[0]}x{image.shape[1]}: float32 pyramid, exact vs fast features "
          f"({repeat} pairs, CPUs {cpus}, load average {load})")
    for clock, t in (("wall", wall), ("CPU", cpu)):
        te, tf = np.array(t["exact"]) * 1e3, np.array(t["fast"]) * 1e3
        print(f"{clock:4} exact=True  median {np.median(te):7.1f} ms (best {te.min():.1f});  exact=False median "
              f"{np.median(tf):7.1f} ms (best {tf.min():.1f});  ratio exact / fast: median of pairs "
              f"{np.median(te / tf):.2f}, of bests {te.min() / tf.min():.2f}")
    n = max(3, repeat // 4)
    _print_split("exact split", [exact_split(image) for _ in range(n)])
    _print_split("fast split ", [fast_split(image) for _ in range(n)])


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
    hog_module = feature_kernels
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

    from PIL import Image

    demo = SHARED / "models" / "voc-release3.1" / "000034.jpg"
    frame = SHARED / "data" / "person-voc" / "JPEGImages" / "pets_0001.jpg"
    demo_image = np.asarray(Image.open(demo).convert("RGB")) if demo.exists() else None
    if demo_image is not None:
        bench_fast("000034.jpg", demo_image, args.repeat)
    else:
        print(f"skipping the demo image: {demo} is absent")
    if frame.exists():
        from dpm.image import upsample_image

        bench_fast("person-voc pets_0001.jpg upsampled 2x",
                   upsample_image(np.asarray(Image.open(frame).convert("RGB")), 2), max(3, args.repeat // 4))
    else:
        print(f"skipping the person-voc frame: {frame} is absent")
    if args.fast_only:
        return
    if demo_image is not None:
        bench("000034.jpg", demo_image, args.repeat)

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
