"""Detection speed: single-thread time per image with its split, and -j scaling.

Usage::

    python benchmarks/bench_detect.py [--repeat 7] [--images 32]

Reports, in one run:

* single-thread detection of ``000034.jpg`` with the VOC2007 person model
  (median of ``--repeat`` runs) next to the original code's time for the
  same image and model: the Octave run recorded in ``../shared/golden``
  (``p034_time``) and the ~0.9 s of the original's fastest convolution
  variant (fconvblas) on this kind of machine; ratios of both;
* the same with ``dtype=np.float64`` (the original's precision for the
  filter responses), run in alternation with the default float32, and the
  ratio of the two;
* where the time goes: feature pyramid, convolution, distance transform, rest;
* parity of that run with the golden boxes (count and max deviation);
* images per second over a folder with ``-j 1`` and ``-j 2`` (``detect_files``),
  and their ratio;
* with ``--against DIR`` (another checkout of the package, built in place), the
  single-thread time of that tree and of this one, each in fresh processes run
  in alternation, and their ratio (this tree / DIR).
"""
import os

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")  # single-threaded native code (set before numpy loads)

import argparse  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

import dpm.detection as D  # noqa: E402
from dpm import load_model, read_image  # noqa: E402
from dpm.detection.batch import detect_files  # noqa: E402

SHARED = Path(os.environ.get("DPM_SHARED", Path(__file__).resolve().parents[2] / "shared"))
ORIGINAL_FASTEST_S = 0.9  # the original's per-image time with fconvblas on this kind of machine


class Timer:
    """Accumulates the time spent in wrapped functions."""

    def __init__(self):
        self.total = {}

    def wrap(self, name, fn):
        def timed(*a, **k):
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                self.total[name] = self.total.get(name, 0.0) + time.perf_counter() - t
        return timed


def split_times(image, model, **kwargs):
    """One detection with the stages timed (wrapping adds a little overhead)."""
    timer = Timer()
    saved = (D.feature_pyramid, D.FilterBank.convolve, D._part_dt)
    D.feature_pyramid = timer.wrap("features", saved[0])
    D.FilterBank.convolve = timer.wrap("convolution", saved[1])
    D._part_dt = timer.wrap("distance transform", saved[2])
    try:
        t = time.perf_counter()
        D.detect(image, model, **kwargs)
        total = time.perf_counter() - t
    finally:
        D.feature_pyramid, D.FilterBank.convolve, D._part_dt = saved
    rest = total - sum(timer.total.values())
    return total, {**timer.total, "rest (scores, boxes, nms)": rest}


def median_split(image, model, repeat, **kwargs):
    """Median total and per-stage medians over ``repeat`` timed detections."""
    runs = [split_times(image, model, **kwargs) for _ in range(repeat)]
    total = statistics.median(r[0] for r in runs)
    return total, {k: statistics.median(r[1][k] for r in runs) for k in runs[0][1]}


_CHILD = """
import statistics, sys, time
import dpm.detection as D
from dpm import load_model, read_image
model = load_model(sys.argv[1])
image = read_image(sys.argv[2])
D.detect(image, model)
times = []
for _ in range(int(sys.argv[3])):
    t = time.perf_counter()
    D.detect(image, model)
    times.append(time.perf_counter() - t)
print(statistics.median(times))
"""


def fresh_process_time(tree, model_path, image_path, repeat):
    """Median single-thread detection time in a new process importing ``dpm`` from ``tree``."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    out = subprocess.run([sys.executable, "-c", _CHILD, str(model_path), str(image_path), str(repeat)],
                         env=env, cwd=tempfile.gettempdir(), check=True, capture_output=True, text=True)
    return float(out.stdout.split()[-1])


def compare_trees(other, model_path, image_path, rounds, repeat=5):
    """This tree vs ``other``: fresh processes in alternation, medians and the ratio."""
    here = Path(__file__).resolve().parents[1]
    ours, theirs = [], []
    for _ in range(rounds):
        theirs.append(fresh_process_time(other, model_path, image_path, repeat))
        ours.append(fresh_process_time(here, model_path, image_path, repeat))
    a, b = statistics.median(theirs), statistics.median(ours)
    ratios = statistics.median(o / t for o, t in zip(ours, theirs))
    print(f"this tree vs {other} ({rounds} alternating process pairs, {repeat} detections each): "
          f"{b * 1000:.1f} ms vs {a * 1000:.1f} ms; median per-pair ratio {ratios:.3f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--images", type=int, default=32, help="folder size for the -j test (0: skip it)")
    ap.add_argument("--against", type=Path, help="another checkout to compare with (single-thread time)")
    ap.add_argument("--rounds", type=int, default=7, help="process pairs for --against")
    args = ap.parse_args()
    models = SHARED / "models" / "voc-release3.1"
    if not models.exists():
        sys.exit(f"{models} is absent: this benchmark needs the original models and demo images")
    model = load_model(models / "VOC2007" / "person_final.mat")
    image = read_image(models / "000034.jpg")
    if args.against is not None:
        compare_trees(args.against, models / "VOC2007" / "person_final.mat", models / "000034.jpg", args.rounds)

    D.detect(image, model)  # warm up
    D.detect(image, model, dtype=np.float64)
    times, times64 = [], []
    for _ in range(args.repeat):  # in alternation, so that load changes affect both alike
        t = time.perf_counter()
        dets = D.detect(image, model)
        times.append(time.perf_counter() - t)
        t = time.perf_counter()
        dets64 = D.detect(image, model, dtype=np.float64)
        times64.append(time.perf_counter() - t)
    ours = statistics.median(times)
    ours64 = statistics.median(times64)
    print(f"single-thread detect, person model, 000034.jpg {image.shape[1]}x{image.shape[0]}: "
          f"median {ours * 1000:.1f} ms over {args.repeat} runs (min {min(times) * 1000:.1f} ms)")
    print(f"  with dtype=float64 (the original's precision): median {ours64 * 1000:.1f} ms "
          f"(min {min(times64) * 1000:.1f} ms); float64 / float32 = {ours64 / ours:.2f}x")
    golden = SHARED / "golden" / "detect.npz"
    if golden.exists():
        g = np.load(golden)
        octave = float(g["p034_time"])
        print(f"  original, Octave run recorded in golden (p034_time): {octave:.3f} s -> ours is "
              f"{ours / octave:.3f} of it ({octave / ours:.1f}x faster)")
        ref = g["p034_clip"]
        ok = len(ref) == len(dets) and np.allclose(np.column_stack([dets.boxes, dets.scores]), ref, atol=1e-3)
        dev = np.abs(np.column_stack([dets.boxes, dets.scores]) - ref).max() if len(ref) == len(dets) else np.nan
        print(f"  parity with the original's final boxes: {'yes' if ok else 'NO'} "
              f"({len(dets)} vs {len(ref)} boxes, max deviation {dev:.2e})")
        ok64 = len(ref) == len(dets64) and np.allclose(np.column_stack([dets64.boxes, dets64.scores]), ref,
                                                       atol=1e-3)
        print(f"  parity with dtype=float64: {'yes' if ok64 else 'NO'} ({len(dets64)} boxes)")
    print(f"  original, fastest convolution variant (~{ORIGINAL_FASTEST_S} s): ours is "
          f"{ours / ORIGINAL_FASTEST_S:.3f} of it ({ORIGINAL_FASTEST_S / ours:.1f}x faster); "
          f"target <= 0.200 of it")

    for label, kwargs in (("float32", {}), ("float64", {"dtype": np.float64})):
        total, split = median_split(image, model, max(3, args.repeat // 2), **kwargs)
        print(f"time split, {label} responses (medians; total {total * 1000:.1f} ms):")
        for name, secs in split.items():
            print(f"  {name:38s} {secs * 1000:7.1f} ms  {100 * secs / total:5.1f}%")

    if args.images <= 0:
        return
    with tempfile.TemporaryDirectory() as tmp:
        names = ["000034.jpg", "000061.jpg", "000084.jpg"]
        paths = []
        for i in range(args.images):
            dst = Path(tmp) / f"img{i:03d}.jpg"
            shutil.copy(models / names[i % 3], dst)
            paths.append(dst)
        rates, steady = {}, {}
        for jobs in (1, 2):
            list(detect_files(paths[:2], model, n_jobs=jobs, progress=False))  # warm the file cache
            t = time.perf_counter()
            first = None
            n = 0
            for _ in detect_files(paths, model, n_jobs=jobs, progress=False):
                n += 1
                if first is None:
                    first = time.perf_counter()
            end = time.perf_counter()
            rates[jobs] = n / (end - t)
            steady[jobs] = (n - 1) / (end - first) if n > 1 else float("nan")
            print(f"-j {jobs}: {rates[jobs]:.2f} images/s over {n} images including worker start-up; "
                  f"{steady[jobs]:.2f} images/s after the first result")
        print(f"-j 2 / -j 1 throughput: {rates[2] / rates[1]:.2f}x with start-up, "
              f"{steady[2] / steady[1]:.2f}x after the first result (target >= 1.7x)")


if __name__ == "__main__":
    main()
