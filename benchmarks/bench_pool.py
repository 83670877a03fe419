"""How busy the local backend keeps its worker processes: idle fraction and the -j 2 / -j 1 speedup.

Usage::

    python benchmarks/bench_pool.py detect [--images 40] [--jobs 2] [--rounds 3] [--model person]
                                           [--against TREE]
    python benchmarks/bench_pool.py train [--positives 20] [--negatives 20] [--updates 20000]
                                          [--jobs 2] [--rounds 1] [--against TREE]

``detect``: ``detect_files`` (what ``dpm-detect MODEL FOLDER -j N`` runs) on
``--images`` images of person-voc (PETS frames of 768x576 and photos of
many sizes, interleaved, so task times vary from 0.05 to 1 s as in real
batches), with ``-j 1`` and ``-j N``.  ``train``: the whole training schedule
(``dpm.training.schedule.train``) on a subset of person-voc.

Every task is timed where it runs (start and end on the system-wide monotonic
clock, and the process id), and every map of the executor is timed in the
calling process.  Reported, per run:

* **worker idle**: 1 - (time the worker processes spent in tasks during maps)
  / (number of worker processes x the maps' wall time).  The maps' wall time
  includes what the caller does with each result (training appends examples)
  and, in a fresh process, the workers' start;
* **worker idle while tasks waited**: the part of that idle time (after the
  workers' start) during which a task of the same map had not started yet:
  what scheduling can save.  The rest is each map's tail, when every task
  has started and the workers wait for the caller to finish its own task or
  to deal with the last results;
* **caller busy**: the share of the maps' wall time the calling process spent
  in tasks itself (the local backend's caller works too);
* wall time of the whole run, and the ratio -j 1 / -j N;
* a digest of the results (detections, or the model file's bytes), which must
  be the same for every run.

Each run is a fresh process.  ``--against TREE`` also runs the same
measurements with another checkout of the project (a folder with its
compiled extensions, e.g. the code before a change) in alternation with this
one, round by round, so a shared machine's load falls on both alike.
Figures are medians over ``--rounds``.
"""
import argparse
import hashlib
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DPM_SHARED", REPO.parent / "shared"))


# -- the instrumentation (in the measured process and its workers) -------------------------------

@dataclass(frozen=True)
class Timed:
    """A task whose result carries where and when it ran."""

    task: object

    @property
    def label(self):
        return self.task.label

    def run(self, model):
        t0 = time.monotonic()
        result = self.task.run(model)
        return result, (os.getpid(), t0, time.monotonic())


def instrument(log):
    """Time every task and every map of every executor; ``log`` receives the records."""
    from dpm.execution import Executor, TaskFailed

    real_map = Executor.map

    def timed_map(self, tasks, model=None, **kwargs):
        start = time.monotonic()
        try:
            for timed, result in real_map(self, (Timed(t) for t in tasks), model, **kwargs):
                if not isinstance(result, TaskFailed):
                    result, stamp = result
                    log["tasks"].append(stamp)
                yield timed.task, result
        finally:
            log["maps"].append((start, time.monotonic(), getattr(self, "n_jobs", 1)))

    Executor.map = timed_map


def summary(log, wall, digest):
    me = os.getpid()
    maps = log["maps"]
    inside = [(pid, a, b) for pid, a, b in log["tasks"] if any(s <= a and b <= e for s, e, _ in maps)]
    map_time = sum(e - s for s, e, _ in maps)
    workers = max((n for _, _, n in maps), default=1) - 1
    worker_busy = sum(b - a for pid, a, b in inside if pid != me)
    caller_busy = sum(b - a for pid, a, b in inside if pid == me)
    # the same from the moment the first worker started its first task (the workers' start left out)
    warm = min((a for pid, a, _ in inside if pid != me), default=None)
    warm_time = sum(max(0.0, e - max(s, warm)) for s, e, _ in maps) if warm is not None else 0.0
    # idle while a task of the same map had not started yet (the rest is a map's tail: every task
    # started, the workers done, the caller finishing its own task or dealing with results)
    waiting = 0.0
    for s, e, _ in maps:
        mine = [(pid, a, b) for pid, a, b in inside if s <= a and b <= e]
        if not mine:
            continue
        last_start = max(a for _, a, _ in mine)
        lo = s if warm is None else max(s, warm)
        for pid in {pid for pid, _, _ in inside if pid != me}:
            t = lo
            for _, a, b in sorted(x for x in mine if x[0] == pid):
                waiting += max(0.0, min(a, last_start) - t)
                t = max(t, b)
            waiting += max(0.0, last_start - t)
    return {"wall": wall, "map_time": map_time, "maps": len(maps), "tasks": len(inside),
            "worker_idle_waiting": waiting / (workers * warm_time) if workers and warm_time else None,
            "worker_idle": (1 - worker_busy / (workers * map_time)) if workers and map_time else None,
            "worker_idle_warm": (1 - worker_busy / (workers * warm_time)) if workers and warm_time else None,
            "caller_busy": caller_busy / map_time if map_time else None,
            "worker_tasks": sum(1 for pid, _, _ in inside if pid != me), "digest": digest}


def images(n):
    """``n`` images of person-voc: PETS frames (768x576) and photos of many sizes, interleaved."""
    folder = SHARED / "data" / "person-voc" / "JPEGImages"
    out = []
    for pattern, k in (("pets_*.jpg", (n + 1) // 2), ("photo_*.jpg", n // 2)):
        files = sorted(folder.glob(pattern))
        out.append([files[i * len(files) // k] for i in range(k)] if k else [])
    pets, photos = out
    return [p for pair in zip(pets, photos) for p in pair] + pets[len(photos):]


def one_detect(args, log):
    from dpm.data import resolve_model
    from dpm.detection.batch import detect_files

    model = resolve_model(args.model)
    paths = images(args.images)
    t = time.monotonic()
    out = list(detect_files(paths, model, n_jobs=args.jobs, progress=False))
    wall = time.monotonic() - t
    digest = hashlib.sha256(pickle.dumps([(str(p), repr(r)) for p, r in out])).hexdigest()[:16]
    return wall, digest


def one_train(args, log):
    from dpm.training.schedule import train
    from voc import training_data

    with tempfile.TemporaryDirectory(prefix="dpm-bench-pool-") as tmp:
        out = Path(tmp) / "m.npz"
        t = time.monotonic()
        train(training_data(args.voc, "person"), "person", out=out, cache_dir=Path(tmp) / "cache",
              n_jobs=args.jobs, max_updates=args.updates, progress=False)
        wall = time.monotonic() - t
        digest = hashlib.sha256(out.read_bytes()).hexdigest()[:16]
    return wall, digest


def measure_here(args):
    log = {"tasks": [], "maps": []}
    instrument(log)
    wall, digest = (one_detect if args.what == "detect" else one_train)(args, log)
    print(json.dumps(summary(log, wall, digest)))


# -- the driver ---------------------------------------------------------------------------------

def run_one(tree, what, jobs, args, voc=None):
    cmd = [sys.executable, str(Path(__file__).resolve()), what, "--one", "--jobs", str(jobs)]
    if what == "detect":
        cmd += ["--images", str(args.images), "--model", args.model]
    else:
        cmd += ["--voc", str(voc), "--updates", str(args.updates)]
    env = dict(os.environ, PYTHONPATH=str(tree))
    for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(v, "1")
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=str(tree))
    if r.returncode != 0:
        sys.exit(f"bench_pool: a run failed ({tree}, -j {jobs}):\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def fmt(x, spec):
    return "-" if x is None else format(x, spec)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=("detect", "train"))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=None, help="default 3 (detect) or 1 (train)")
    ap.add_argument("--against", type=Path, default=None, help="another checkout, measured in alternation")
    ap.add_argument("--images", type=int, default=40)
    ap.add_argument("--model", default="person")
    ap.add_argument("--positives", type=int, default=20)
    ap.add_argument("--negatives", type=int, default=20)
    ap.add_argument("--updates", type=int, default=20000)
    ap.add_argument("--voc", type=Path, default=None)
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        return measure_here(args)
    if not (SHARED / "data" / "person-voc").is_dir():
        sys.exit(f"bench_pool: {SHARED / 'data' / 'person-voc'}: no such folder (set DPM_SHARED)")
    rounds = args.rounds or (3 if args.what == "detect" else 1)
    trees = [REPO] + ([args.against.resolve()] if args.against else [])
    names = {REPO: "this tree"} | ({trees[1]: str(trees[1])} if args.against else {})
    print(f"{args.what}: load average {os.getloadavg()[0]:.2f} at start; {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="dpm-bench-pool-voc-") as tmp:
        voc = None
        if args.what == "train":
            sys.path.insert(0, str(REPO))
            from bench_train import subset_voc

            voc = subset_voc((SHARED / "data" / "person-voc").resolve(), Path(tmp) / "voc", "person",
                             args.positives, args.negatives)
        runs = {(t, j): [] for t in trees for j in (1, args.jobs)}
        for k in range(rounds):
            for tree in (trees if k % 2 == 0 else trees[::-1]):
                for jobs in (1, args.jobs):
                    r = run_one(tree, args.what, jobs, args, voc)
                    runs[tree, jobs].append(r)
                    print(f"round {k + 1}  {names[tree]:>24}  -j {jobs}:  wall {r['wall']:7.2f} s  "
                          f"maps {r['map_time']:7.2f} s ({r['maps']})  worker idle {fmt(r['worker_idle'], '.3f')} "
                          f"(after start {fmt(r['worker_idle_warm'], '.3f')}, while tasks waited "
                          f"{fmt(r['worker_idle_waiting'], '.3f')})  "
                          f"caller busy {fmt(r['caller_busy'], '.3f')}  tasks by workers "
                          f"{r['worker_tasks']}/{r['tasks']}  digest {r['digest']}  "
                          f"(load {os.getloadavg()[0]:.2f})", flush=True)
    digests = {r["digest"] for rs in runs.values() for r in rs}
    print(f"\nresults identical in every run: {'yes' if len(digests) == 1 else 'NO: ' + ', '.join(digests)}")
    for tree in trees:
        one = statistics.median(r["wall"] for r in runs[tree, 1])
        many = statistics.median(r["wall"] for r in runs[tree, args.jobs])
        idle = statistics.median(r["worker_idle"] for r in runs[tree, args.jobs])
        warm = statistics.median(r["worker_idle_warm"] for r in runs[tree, args.jobs])
        waiting = statistics.median(r["worker_idle_waiting"] for r in runs[tree, args.jobs])
        busy = statistics.median(r["caller_busy"] for r in runs[tree, args.jobs])
        print(f"{names[tree]}: median wall -j 1 {one:.2f} s, -j {args.jobs} {many:.2f} s, speedup "
              f"{one / many:.2f}x; worker idle {idle:.3f} of map time ({warm:.3f} after the workers' start, "
              f"{waiting:.3f} while tasks of the map waited), "
              f"caller busy {busy:.3f}")


if __name__ == "__main__":
    main()
