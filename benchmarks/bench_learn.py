"""Time the latent-SVM learner on the original's first training stage.

Runs ``dpm.learn.fit_lsvm`` for the full 5,000,000 updates on
``../shared/golden/learn-stage1`` (4416 examples, 1210 weights, C = 0.002,
J = 1) for several seeds, and a plain per-update NumPy implementation of the
same loop for a fixed number of updates, in the same process, and prints the
time per update of both, their ratio, the objectives, and the original
learn.cc's recorded results.

Usage::

    python benchmarks/bench_learn.py [--seeds 1 2 3] [--updates 5000000] [--ref-updates 20000]
"""
import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dpm import learnfiles as lf  # noqa: E402
from dpm.learn import INCACHE, WAIT, collapse_examples, fit_lsvm, lsvm_objective  # noqa: E402

SHARED = Path(os.environ.get("DPM_SHARED", REPO.parent / "shared"))


def reference_sgd(X, y, layout, C, J, updates, seed):
    """learn.cc's gd written out per update with NumPy (dense rows, one member per group)."""
    rng = np.random.default_rng(seed)
    sizes = layout.sizes
    regw = np.repeat(layout.regmult * layout.learnmult, sizes)
    lrnw = np.repeat(layout.learnmult, sizes)
    w = np.zeros(X.shape[1])
    n = X.shape[0]
    W = np.zeros(n, dtype=np.int64)
    t = 0
    while t < updates:
        perm = rng.permutation(n)
        cnum = int(np.sum(W <= INCACHE))
        for i in perm:
            if W[i] > INCACHE:
                W[i] -= 1
                continue
            if t >= updates:
                break
            T = t + 1000.0
            rate_x, rate_r = cnum * C / T, 1.0 / T
            t += 1
            v = float(X[i] @ w)
            w -= rate_r * regw * w
            if y[i] * v < 1:
                W[i] = 0
                w += (J if y[i] > 0 else -1.0) * rate_x * lrnw * X[i]
            elif y[i] < 0:
                W[i] = WAIT if W[i] == INCACHE else W[i] + 1
        np.maximum(w, layout.lower_bounds, out=w)
    return w


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--updates", type=int, default=5_000_000)
    ap.add_argument("--ref-updates", type=int, default=20_000)
    args = ap.parse_args()

    d = SHARED / "golden" / "learn-stage1"
    if not d.exists():
        print(f"{d} is absent; nothing to benchmark")
        return 0
    t0 = time.perf_counter()
    hdr, layout = lf.read_layout(d / "person_stage1.hdr", d / "person_stage1.lob")
    ex = lf.read_dat(d / "person_stage1.dat", hdr)
    t_read = time.perf_counter() - t0
    runs = np.load(d / "learn_runs.npz")
    C, J = float(runs["C"]), float(runs["J"])
    print(f"learn-stage1: {len(ex)} examples, {layout.num_weights} weights, C={C}, J={J}; "
          f"files read in {t_read:.2f} s")

    # plain NumPy reference, timed per update
    col = collapse_examples(ex)
    assert col.members.size == col.group_y.size     # one member per group here
    off = layout.offsets
    X = np.zeros((len(ex), layout.num_weights), dtype=np.float32)
    for i in range(len(ex)):
        for b, vals in ex.example(i)[1]:
            X[i, off[b]:off[b + 1]] = vals
    y = ex.labels.astype(np.int64)
    t0 = time.perf_counter()
    w_ref = reference_sgd(X, y, layout, C, J, args.ref_updates, seed=0)
    ref_per_update = (time.perf_counter() - t0) / args.ref_updates
    print(f"NumPy reference: {args.ref_updates} updates, {1e6 * ref_per_update:.2f} us/update "
          f"(would take {ref_per_update * args.updates:.1f} s for {args.updates}); "
          f"objective after them {lsvm_objective(ex, layout, C, J, w_ref).objective:.6f}")

    objs, per_update = [], []
    for seed in args.seeds:
        c0 = time.process_time()
        res = fit_lsvm(ex, layout, C, J, seed=seed, max_updates=args.updates)
        cpu = time.process_time() - c0
        objs.append(res.objective)
        per_update.append(res.seconds / res.updates)
        print(f"fit_lsvm seed {seed}: {res.updates} updates in {res.seconds:.2f} s wall ({cpu:.2f} s CPU), "
              f"{1e6 * res.seconds / res.updates:.3f} us/update; objective {res.objective:.6f} "
              f"(reg {res.regularizer:.6f}, pos {res.loss_pos:.6f}, neg {res.loss_neg:.6f})")
    mean_pu = float(np.mean(per_update))
    print(f"speed-up over the NumPy reference: {ref_per_update / mean_pu:.0f}x per update")
    print(f"mean objective over seeds {args.seeds}: {np.mean(objs):.6f} (bar: <= 1.0810)")
    print("original learn.cc (learn_runs.npz): objectives "
          + ", ".join(f"{v:.6f}" for v in runs["objective"])
          + "; wall times " + ", ".join(f"{v:.2f}" for v in runs["wall_time_s"])
          + f" s (with file I/O); L-BFGS reference optimum {float(runs['objective_ref_lbfgs']):.6f}")
    print(f"time ratio to the original's mean wall time: {mean_pu * args.updates / np.mean(runs['wall_time_s']):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
