"""Detection of a very large photo in bounded memory (dpm.detection.bands).

1. Builds a 12000 x 12000 JPEG by tiling a demo image (default: voc-release3.1's
   ``000034.jpg`` from ../shared; skipped if absent), runs ``dpm-detect`` on it
   in a child process with the default memory bound, and reports the time and
   the peak memory of the whole process tree: the sum of ``VmRSS`` over the
   child and its descendants, sampled every 20 ms from ``/proc``, and the
   child's own ``VmHWM`` (``ru_maxrss`` of ``RUSAGE_CHILDREN``).
2. On a 3000 x 3000 crop of the same tiling, compares the bounded path (forced
   with a small ``max_memory``) with the unbounded one: every field of every
   detection, raw (no suppression) and final, with the model's star-cascade
   if it has one (a release-5 model: its published cascade) or, with
   ``--exact``, the exact detector (release-5 models have no banded exact
   detector: they refuse the image).

Usage::

    PYTHONPATH=$PWD python benchmarks/bench_large_image.py [--model voc2007/person] [--size 12000]
        [--image PATH] [--keep DIR] [--exact]
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEMO = ROOT.parent / "shared" / "models" / "voc-release3.1" / "000034.jpg"
FIELDS = ("boxes", "scores", "components", "root_boxes", "part_boxes", "levels")


def tiled(image: np.ndarray, size: int) -> np.ndarray:
    """``size x size`` image made of copies of ``image``, every other copy mirrored (no seams)."""
    h, w = image.shape[:2]
    block = np.concatenate([image, image[:, ::-1]], axis=1)
    block = np.concatenate([block, block[::-1]], axis=0)
    reps = (-(-size // (2 * h)), -(-size // (2 * w)), 1)
    return np.ascontiguousarray(np.tile(block, reps)[:size, :size])


def tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and its descendants (from /proc)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
            with open(f"/proc/{p}/task/{p}/children") as fh:
                todo.extend(int(c) for c in fh.read().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def run_measured(cmd, env):
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, tree_rss(proc.pid))
        time.sleep(0.02)
    out, err = proc.communicate()
    seconds = time.perf_counter() - t0
    hwm = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    return proc.returncode, out, err, seconds, peak, hwm


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="voc2007/person")
    ap.add_argument("--image", type=Path, default=DEMO)
    ap.add_argument("--size", type=int, default=12000)
    ap.add_argument("--compare-size", type=int, default=3000)
    ap.add_argument("--keep", type=Path, help="write the generated images and results here")
    ap.add_argument("--skip-large", action="store_true")
    ap.add_argument("--skip-compare", action="store_true")
    ap.add_argument("--exact", action="store_true", help="the exact detector, not the model's star-cascade")
    args = ap.parse_args(argv)
    if not args.image.exists():
        print(f"skipped: {args.image} not found")
        return 0
    from PIL import Image

    from dpm.image import read_image

    demo = read_image(args.image)
    work = Path(tempfile.mkdtemp()) if args.keep is None else args.keep
    work.mkdir(parents=True, exist_ok=True)
    if not args.skip_large:
        big = work / f"tiled-{args.size}.jpg"
        if not big.exists():
            Image.fromarray(tiled(demo, args.size)).save(big, quality=92)
        env = dict(os.environ, PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1")
        env.pop("DPM_MAX_MEMORY", None)
        out_csv = work / f"tiled-{args.size}.csv"
        cmd = [sys.executable, str(ROOT / "bin" / "dpm-detect"), args.model, str(big), "-o", str(out_csv), "-q"]
        cmd += ["--exact"] if args.exact else []
        rc, out, err, seconds, peak, hwm = run_measured(cmd, env)
        n = sum(1 for _ in open(out_csv)) - 1 if out_csv.exists() else -1
        how = "exact detector" if args.exact else "default detector"
        print(f"{args.size}x{args.size} ({big.stat().st_size / 2**20:.1f} MiB JPEG), {args.model} ({how}), default bound: "
              f"exit {rc}, {seconds:.1f} s, peak RSS of the process tree {peak / 2**30:.3f} GiB "
              f"(sampled), VmHWM {hwm / 2**30:.3f} GiB, {n} detections")
        if rc:
            print(err.strip().splitlines()[-1] if err.strip() else "")
    if not args.skip_compare:
        compare(demo, args.model, args.compare_size, exact=args.exact)
    return 0


def compare(demo, model_name, size, exact=False):
    from dpm.data import resolve_models
    from dpm.detection import detect

    model = resolve_models(model_name)[0]
    image = tiled(demo, size)
    cascade = False if exact else None
    how = "exact detector" if exact or getattr(model, "cascade", None) is None else "star-cascade"
    for nms in (None, 0.5):
        t0 = time.perf_counter()
        ref = detect(image, model, nms=nms, max_memory=2 ** 40, cascade=cascade)
        t1 = time.perf_counter()
        got = detect(image, model, nms=nms, max_memory=256 * 2 ** 20, cascade=cascade)
        t2 = time.perf_counter()
        same = len(ref) == len(got) and all(np.array_equal(getattr(ref, f), getattr(got, f)) for f in FIELDS)
        print(f"{size}x{size}, {model_name} ({how}), nms={nms}: unbounded {len(ref)} detections in {t1 - t0:.1f} s, "
              f"bounded (max_memory 256 MiB) {len(got)} in {t2 - t1:.1f} s: "
              f"{'identical' if same else 'DIFFERENT'} (every field)")


if __name__ == "__main__":
    sys.exit(main())
