"""Detection today against detection in an earlier tree, side by side: the feature pyramid, or whole detections.

The star-cascade issue asked for a feature pyramid at least 1.5 times as fast
as detection's pyramid was then, and for cascade detection in at most a third
of exact detection's time.  ``bench_features.py`` and ``bench_cascade.py``
compare within today's tree, where the exact detector gained from the same
work (the fast features, the resize, the AVX2 builds).  This script measures
against the tree as it was:

1. checks out ``--against REV`` into a temporary git worktree and builds its
   extensions there (``python setup.py build_ext --inplace``; a few minutes);
2. starts one worker process on that tree and one on this one, each loading
   the images (and the built-in person model) once;
3. asks them in alternation, single-threaded, for

   * ``--what features`` (default): detection's pyramid as each tree computes
     it: the earlier tree's ``feature_pyramid(image, 8, 10, dtype=np.float32)``,
     this tree's ``detection_pyramid`` (the fast single-precision features) and
     its exact float32 pyramid;
   * ``--what detection``: ``detect(image, model)`` with the built-in person
     model (the same weights in both trees: the earlier tree's exact detector;
     this tree's default, the star-cascade the model now carries) and this
     tree's exact detector (``cascade=False``);

4. prints per image the best and median wall-clock times and the medians of
   the per-round ratios.

The feature work of the cascade issue started after commit ``806c7d8``
(``a02c6e4^``; its features unchanged since 2026-12-04 14:53), the default of
``--against``.

Usage::

    python benchmarks/bench_history.py [--what features|detection] [--against REV] [--repeat N] [--keep DIR]

Images: ``000034.jpg`` of ../shared/models/voc-release3.1 and ``pets_0001.jpg``
of ../shared/data/person-voc at ``--upsample 2`` (for the pyramid: the frame
upsampled twice, as detection sees it); each skipped with a message if absent
(``DPM_SHARED`` moves ../shared).
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

# The worker: loads the images, then answers "name call" lines with the wall-clock
# milliseconds of one evaluation of ``call`` (``image`` and ``up`` bound to the named
# image and its upsampling factor).
WORKER = r"""
import json, sys, time
import numpy as np
from dpm.data import resolve_models
from dpm.detection import detect
from dpm.features import feature_pyramid
try:
    from dpm.detection.pyramid import detection_pyramid
except ImportError:
    detection_pyramid = None
model = resolve_models("person")[0]
images = {name: (np.load(path), up) for name, (path, up) in json.loads(sys.argv[1]).items()}
print("ready", flush=True)
for line in sys.stdin:
    name, call = line.rstrip("\n").split(" ", 1)
    image, up = images[name]
    start = time.perf_counter()
    eval(call)
    print((time.perf_counter() - start) * 1e3, flush=True)
"""

# label -> (tree, call); the first is the earlier tree's, the ratios are taken against the second.
CALLS = {
    "features": {"earlier": ("old", "feature_pyramid(image, 8, 10, dtype=np.float32)"),
                 "fast": ("new", "detection_pyramid(image, 8, 10, np.float32, False)"),
                 "exact": ("new", "feature_pyramid(image, 8, 10, dtype=np.float32)")},
    "detection": {"earlier": ("old", "detect(image, model, upsample=up)"),
                  "cascade": ("new", "detect(image, model, upsample=up)"),
                  "exact": ("new", "detect(image, model, upsample=up, cascade=False)")},
}


def load_images(workdir: Path, what: str) -> dict:
    """{name: (path of a .npy, upsample)}: the demo image and a PETS frame, where present."""
    from PIL import Image

    out = {}
    demo = SHARED / "models" / "voc-release3.1" / "000034.jpg"
    frame = SHARED / "data" / "person-voc" / "JPEGImages" / "pets_0001.jpg"
    if demo.exists():
        out["000034.jpg"] = (np.asarray(Image.open(demo).convert("RGB")), 1)
    else:
        print(f"skipped 000034.jpg: {demo} not found", file=sys.stderr)
    if frame.exists():
        im = Image.open(frame).convert("RGB")
        if what == "features":   # the pyramid of the frame as detection at --upsample 2 computes it
            out["pets_0001.jpg-upsampled-2x"] = (
                np.asarray(im.resize((im.width * 2, im.height * 2), Image.BILINEAR)), 1)
        else:
            out["pets_0001.jpg-at-upsample-2"] = (np.asarray(im), 2)
    else:
        print(f"skipped the PETS frame: {frame} not found", file=sys.stderr)
    paths = {}
    for i, (name, (image, up)) in enumerate(out.items()):
        paths[name] = (str(workdir / f"image{i}.npy"), up)
        np.save(paths[name][0], np.ascontiguousarray(image))
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
    parser.add_argument("--what", choices=sorted(CALLS), default="features")
    parser.add_argument("--against", default=DEFAULT_AGAINST, help="the earlier tree (a git revision)")
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--keep", type=Path, help="build the earlier tree here and keep it (reused if present)")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="dpm-history-"))
    old_tree = args.keep if args.keep else tmp / "tree"
    made = False
    try:
        images = load_images(tmp, args.what)
        if not images:
            print("no images: nothing to measure", file=sys.stderr)
            return 0
        if not (old_tree / "setup.py").exists():
            worktree(args.against, old_tree)
            made = not args.keep
        workers = {"old": Worker(old_tree, images), "new": Worker(REPO, images)}
        calls = [(label, workers[tree], call) for label, (tree, call) in CALLS[args.what].items()]
        ref = calls[1][0]
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
                tree = "earlier tree" if label == "earlier" else "this tree"
                print(f"{label:8s} best {t[label].min():7.1f}  median {np.median(t[label]):7.1f}   {call}  ({tree})")
            for label, _, _ in calls:
                if label != ref:
                    print(f"{label} / {ref}: median of rounds {np.median(t[label] / t[ref]):.2f}, "
                          f"of bests {t[label].min() / t[ref].min():.2f}")
        for worker in workers.values():
            worker.close()
    finally:
        if made:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(old_tree)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
