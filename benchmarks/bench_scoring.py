"""Training's scoring with the fixed-order convolution against BLAS, side by side.

Usage::

    python benchmarks/bench_scoring.py [--voc ../shared/data/person-voc] [--model dpm/data/person.npz]
                                       [--positives 120] [--negatives 120] [--repeats 5]

Training scores every image of latent search (positives, cropped as
``croppos.m`` does, and their mirrors) and of hard-negative mining with float64
filter responses in the fixed summation order (``exact_order=True``, the same
bits on every machine).  This runs that workload -- ``detect_latent`` on the
first N positives and ``iter_placements`` at the mining threshold on the first
M negative images, with the stages' intervals, at most 1,000 placements per
image as a mining worker sends back -- once with the fixed-order kernel and
once with BLAS (``exact_order=False``, what training used before), alternating
which goes first, and reports both times and their ratio.  Images are decoded
once beforehand; everything runs in this process (one core), OpenBLAS limited
to one thread as in training's workers.

The ratio applies to latent search and mining only; the learner (about two
thirds of a ``dpm-train`` run on person-voc) and the rest do not change.  The
whole run's ratio is therefore roughly ``1 + (ratio - 1) * share`` where
``share`` is the scoring's part of the run's time.
"""
import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

SHARED = Path(os.environ.get("DPM_SHARED", Path(__file__).resolve().parents[2] / "shared"))
REPO = Path(__file__).resolve().parents[1]


def load_items(voc: Path, cls: str, n_pos: int, n_neg: int):
    """Decoded images: [("pos", crop, box)] for positives (and mirrors), [("neg", image, None)]."""
    from dpm.image import read_image
    from dpm.training.tasks import croppos
    from voc import VOCDataset

    ds = VOCDataset(voc)
    items = []
    for p in list(ds.positives(cls, "trainval"))[:n_pos]:
        crop, box = croppos(read_image(p.path), p.box)
        w = crop.shape[1]
        mirrored = np.array([w - box[2] + 1, box[1], w - box[0] + 1, box[3]])
        items.append(("pos", crop, box))
        items.append(("pos", np.ascontiguousarray(crop[:, ::-1]), mirrored))
    for n in list(ds.negatives(cls, "train"))[:n_neg]:
        items.append(("neg", read_image(ds.image_path(n.image_id)), None))
    return items


def workload(items, model, config, exact: bool):
    """Latent search and mining over ``items``; returns (seconds, placements found)."""
    from dpm.latent import detect_latent, iter_placements

    found = 0
    t0 = time.perf_counter()
    for kind, image, box in items:
        if kind == "pos":
            p = detect_latent(image, model, box, config.overlap, interval=config.latent_interval,
                              exact_order=exact)
            found += p is not None
        else:
            for k, _ in enumerate(iter_placements(image, model, config.hard_negative_threshold,
                                                  interval=config.mining_interval, exact_order=exact)):
                found += 1
                if k + 1 >= 1000:
                    break
    return time.perf_counter() - t0, found


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--voc", type=Path, default=SHARED / "data" / "person-voc")
    ap.add_argument("--cls", default="person")
    ap.add_argument("--model", type=Path, default=REPO / "dpm" / "data" / "person.npz")
    ap.add_argument("--positives", type=int, default=120)
    ap.add_argument("--negatives", type=int, default=120)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    if not args.voc.is_dir():
        sys.exit(f"bench_scoring: {args.voc}: no such dataset folder (set --voc or DPM_SHARED)")

    from dpm import _cpu
    from dpm.convolve import limit_blas_threads
    from dpm.model import load_model
    from dpm.training import TrainConfig

    model = load_model(args.model)
    config = TrainConfig()
    items = load_items(args.voc, args.cls, args.positives, args.negatives)
    times = {True: [], False: []}
    found = {}
    with limit_blas_threads(1):
        workload(items[:4], model, config, True)   # warm-up: imports, allocator
        workload(items[:4], model, config, False)
        for r in range(args.repeats):
            for exact in ((True, False) if r % 2 == 0 else (False, True)):
                secs, n = workload(items, model, config, exact)
                times[exact].append(secs)
                found[exact] = n
    n_pos = sum(k == "pos" for k, _, _ in items)
    print(f"{n_pos} positive crops (with mirrors) and {len(items) - n_pos} negative images, "
          f"{args.repeats} repeats, AVX2 build: {_cpu.have_avx2()}, load average {os.getloadavg()[0]:.2f}")
    for exact, name in ((True, "fixed order"), (False, "BLAS")):
        t = times[exact]
        print(f"{name:12s} median {statistics.median(t):7.3f} s  min {min(t):7.3f} s  "
              f"({found[exact]} placements)")
    ratio = statistics.median(times[True]) / statistics.median(times[False])
    best = min(times[True]) / min(times[False])
    print(f"fixed order / BLAS: {ratio:.3f} (medians), {best:.3f} (minima)")


if __name__ == "__main__":
    main()
