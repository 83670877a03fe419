"""Detection's feature pyramid today against the same pyramid in an earlier tree, side by side.

The star-cascade issue asked for a feature pyramid at least 1.5 times as fast
as detection's pyramid was then; ``bench_features.py`` compares today's fast
features with today's exact ones, which gained from the same work (the resize
and the AVX2 builds serve both).  This script measures the first comparison:

1. checks out ``--against REV`` into a temporary git worktree and builds its
   extensions there (``python setup.py build_ext --inplace``; a few minutes);
2. starts one worker process on that tree and one on this one, each loading
   the images once;
3. asks them in alternation for detection's default pyramid of each image,
   single-threaded, as each tree computes it: the earlier tree's
   ``feature_pyramid(image, sbin, interval, dtype=np.float32)`` (pass
   ``--old-call`` to change it), and this tree's ``detection_pyramid`` (the
   fast single-precision features) and its exact float32 pyramid;
4. prints per image the best and median wall-clock times and the median of
   the per-round ratios earlier / fast and exact / fast.

The feature work of the cascade issue started after commit ``806c7d8``
(``a02c6e4^``, the tree's features unchanged since 2026-12-04 14:53); that is the
default of ``--against``.

Usage::

    python benchmarks/bench_features_history.py [--against REV] [--repeat N] [--keep DIR]

Images: ``000034.jpg`` of ../shared/models/voc-release3.1 and ``pets_0001.jpg``
of ../shared/data/person-voc upsampled twice (as ``dpm-detect --upsample 2``
sees it); each skipped with a message if absent (``DPM_SHARED`` moves
../shared).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DPM_SHARED", REPO.parent / "shared"))
DEFAULT_AGAINST = "a02c6e4^"
OLD_CALL = "feature_pyramid(image, 8, 10, dtype=np.float32)"

# The worker: loads the images, then answers "name call" lines with the wall-clock
# milliseconds of one evaluation of ``call`` (``image`` bound to the named image).
WORKER = r"""
import json, sys, time
import numpy as np
from dpm.features import feature_pyramid
try:
    from dpm.detection.pyramid import detection_pyramid
except ImportError:
    detection_pyramid = None
images = {name: np.load(path) for name, path in json.loads(sys.argv[1]).items()}
print("ready", flush=True)
for line in sys.stdin:
    name, call = line.rstrip("\n").split(" ", 1)
    image = images[name]
    start = time.perf_counter()
    eval(call)
    print((time.perf_counter() - start) * 1e3, flush=True)
"""

NEW_CALLS = {
    "fast": "detection_pyramid(image, 8, 10, np.float32, False)",
    "exact": "feature_pyramid(image, 8, 10, dtype=np.float32)",
}


def load_images(workdir: Path) -> dict:
    """{name: path of a .npy}: the demo image and a PETS frame upsampled twice, where present."""
    from PIL import Image

    out = {}
    demo = SHARED / "models" / "voc-release3.1" / "000034.jpg"
    frame = SHARED / "data" / "person-voc" / "JPEGImages" / "pets_0001.jpg"
    if demo.exists():
        out["000034.jpg"] = np.asarray(Image.open(demo).convert("RGB"))
    else:
        print(f"skipped 000034.jpg: {demo} not found", file=sys.stderr)
    if frame.exists():
        im = Image.open(frame).convert("RGB")
        out["pets_0001.jpg-upsampled-2x"] = np.asarray(im.resize((im.width * 2, im.height * 2), Image.BILINEAR))
    else:
        print(f"skipped the PETS frame: {frame} not found", file=sys.stderr)
    paths = {}
    for i, (name, image) in enumerate(out.items()):
        paths[name] = str(workdir / f"image{i}.npy")
        np.save(paths[name], np.ascontiguousarray(image))
    return paths


def worktree(rev: str, where: Path) -> Path:
    """A built checkout of ``rev`` at ``where``."""
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(where), rev], check=True,
                   stdout=subprocess.DEVNULL)
    print(f"building the extensions of {rev} in {where} ...", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace", "-j", "2"], cwd=where, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return where


class Worker:
    def __init__(self, tree: Path, images: dict):
        env = dict(os.environ, PYTHONPATH=str(tree), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
        self.proc = subprocess.Popen([sys.executable, "-c", WORKER, json.dumps(images)], cwd=tree, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the worker on {tree} did not start")

    def time(self, name: str, call: str) -> float:
        self.proc.stdin.write(f"{name} {call}\n")
        self.proc.stdin.flush()
        return float(self.proc.stdout.readline())

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", default=DEFAULT_AGAINST, help="the earlier tree (a git revision)")
    parser.add_argument("--old-call", default=OLD_CALL, help="the earlier tree's detection pyramid")
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--keep", type=Path, help="build the earlier tree here and keep it (reused if present)")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="dpm-history-"))
    old_tree = args.keep if args.keep else tmp / "tree"
    made = False
    try:
        images = load_images(tmp)
        if not images:
            print("no images: nothing to measure", file=sys.stderr)
            return 0
        if not (old_tree / "setup.py").exists():
            worktree(args.against, old_tree)
            made = not args.keep
        old, new = Worker(old_tree, images), Worker(REPO, images)
        calls = [("earlier", old, args.old_call)] + [(k, new, v) for k, v in NEW_CALLS.items()]
        for name in images:
            for _, worker, call in calls:
                worker.time(name, call)                      # warm-up
            times = {label: [] for label, _, _ in calls}
            for _ in range(args.repeat):
                for label, worker, call in calls:
                    times[label].append(worker.time(name, call))
            t = {k: np.asarray(v) for k, v in times.items()}
            print(f"\n== {name}: {args.repeat} rounds, single thread, wall clock (ms)")
            for label, _, call in calls:
                print(f"{label:8s} best {t[label].min():7.1f}  median {np.median(t[label]):7.1f}   {call}")
            print(f"earlier / fast: median of rounds {np.median(t['earlier'] / t['fast']):.2f}, "
                  f"of bests {t['earlier'].min() / t['fast'].min():.2f}")
            print(f"exact / fast:   median of rounds {np.median(t['exact'] / t['fast']):.2f}, "
                  f"of bests {t['exact'].min() / t['fast'].min():.2f}")
        old.close()
        new.close()
    finally:
        if made:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(old_tree)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
