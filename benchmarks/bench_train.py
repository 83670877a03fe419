"""Training time and memory: ``dpm-train`` on a VOC-layout dataset, per stage, against the budget.

Usage::

    python benchmarks/bench_train.py [--voc ../shared/data/person-voc] [--jobs 2] [--compare-jobs 1]
                                     [--positives N --negatives M] [--updates U]

Runs the whole schedule (fresh checkpoints in a temporary folder) and reports:

* wall time per stage and in all, and its ratio to the 30-minute budget;
* peak resident memory of the driver process and of the largest worker
  process, against the 4 GiB budget;
* with ``--compare-jobs J``: the same run with ``J`` processes, and the
  ratio of the two wall times (how well latent search and mining use the
  cores; the learner is single-threaded in both).

``--positives/--negatives`` train on the first N positive images and M
negative images (a subset folder is written to the temporary folder with
links to the images) for a quick run.
"""
import argparse
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

SHARED = Path(os.environ.get("DPM_SHARED", Path(__file__).resolve().parents[2] / "shared"))
BUDGET_S = 30 * 60
BUDGET_BYTES = 4 * 2 ** 30


def subset_voc(src: Path, dst: Path, cls: str, n_pos: int, n_neg: int) -> Path:
    """A VOC folder with the first ``n_pos`` positive and ``n_neg`` negative images of ``src`` (symlinks)."""
    from voc import VOCDataset

    ds = VOCDataset(src)
    pos_ids = list(dict.fromkeys(p.image_id for p in ds.positives(cls, "trainval")))[:n_pos]
    neg_ids = [n.image_id for n in ds.negatives(cls, "train")][:n_neg]
    for sub in ("Annotations", "ImageSets/Main", "JPEGImages"):
        (dst / sub).mkdir(parents=True, exist_ok=True)
    for image_id in pos_ids + neg_ids:
        (dst / "Annotations" / f"{image_id}.xml").symlink_to(src / "Annotations" / f"{image_id}.xml")
        img = ds.image_path(image_id)
        (dst / "JPEGImages" / img.name).symlink_to(img)
    (dst / "ImageSets/Main/trainval.txt").write_text("\n".join(pos_ids + neg_ids) + "\n")
    (dst / "ImageSets/Main/train.txt").write_text("\n".join(pos_ids + neg_ids) + "\n")
    return dst


class TreeMemory(threading.Thread):
    """Samples the resident memory of this process plus all its descendants (Linux /proc)."""

    def __init__(self, every=0.2):
        super().__init__(daemon=True)
        self.every, self.peak, self.stop = every, 0, threading.Event()

    @staticmethod
    def _tree_rss():
        children = {}
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    with open(f"/proc/{d}/stat") as f:
                        ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                    children.setdefault(ppid, []).append(int(d))
                except (OSError, ValueError, IndexError):
                    pass
        total, todo = 0, [os.getpid()]
        while todo:
            pid = todo.pop()
            todo.extend(children.get(pid, []))
            try:
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            total += int(line.split()[1]) * 1024
            except OSError:
                pass
        return total

    def run(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, self._tree_rss())
            time.sleep(self.every)


def run(voc: Path, cls: str, jobs: int, updates, work: Path, components: int, box_scale):
    """One fresh training run in this process; returns (seconds, summary, model)."""
    from dpm.training import TrainConfig
    from dpm.training.schedule import train
    from voc import training_data

    t0 = time.perf_counter()
    model, summary = train(training_data(voc, cls), cls, components=components, out=work / f"model-j{jobs}.npz",
                           cache_dir=work / f"cache-j{jobs}", n_jobs=jobs, restart=True,
                           max_updates=updates, progress=False, config=TrainConfig(box_scale=tuple(box_scale)))
    return time.perf_counter() - t0, summary, model


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--voc", type=Path, default=SHARED / "data" / "person-voc")
    ap.add_argument("--cls", default="person")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--components", type=int, default=1)
    ap.add_argument("--box-scale", type=float, nargs=2, default=(1.0, 1.0))
    ap.add_argument("--keep", type=Path, default=None, help="copy the trained model here")
    ap.add_argument("--compare-jobs", type=int, default=None)
    ap.add_argument("--positives", type=int, default=None)
    ap.add_argument("--negatives", type=int, default=None)
    ap.add_argument("--updates", type=int, default=None, help="SGD updates per learner call (default 5,000,000)")
    args = ap.parse_args()
    if not args.voc.is_dir():
        sys.exit(f"bench_train: {args.voc}: no such dataset folder (set --voc or DPM_SHARED)")

    with tempfile.TemporaryDirectory(prefix="dpm-bench-train-") as tmp:
        work = Path(tmp)
        voc = args.voc
        if args.positives or args.negatives:
            voc = subset_voc(args.voc.resolve(), work / "voc", args.cls, args.positives or 10 ** 9,
                             args.negatives or 10 ** 9)
        results = {}
        monitor = TreeMemory() if os.path.isdir("/proc") else None
        if monitor:
            monitor.start()
        for jobs in [args.jobs] + ([args.compare_jobs] if args.compare_jobs else []):
            secs, summary, model = run(voc, args.cls, jobs, args.updates, work, args.components, args.box_scale)
            results[jobs] = secs
            if args.keep is not None and jobs == args.jobs:
                shutil.copyfile(work / f"model-j{jobs}.npz", args.keep)
            print(f"model: {len(model.components)} component(s), "
                  f"{sum(len(c.parts) for c in model.components)} parts, threshold {model.thresh:.4f}")
            print(f"\n== -j {jobs}: {secs:.1f} s in all ({secs / BUDGET_S:.2f} of the 30-minute budget)")
            print(summary.format())
        self_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        child_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
        total = self_peak + max(args.jobs, args.compare_jobs or 0) * child_peak
        print(f"\npeak resident memory: driver {self_peak / 2 ** 30:.2f} GiB, largest worker "
              f"{child_peak / 2 ** 30:.2f} GiB; driver + all workers at most {total / 2 ** 30:.2f} GiB "
              f"({total / BUDGET_BYTES:.2f} of the 4 GiB budget)")
        if monitor:
            monitor.stop.set()
            print(f"peak resident memory of the driver and its workers together (sampled every 0.2 s): "
                  f"{monitor.peak / 2 ** 30:.2f} GiB ({monitor.peak / BUDGET_BYTES:.2f} of the 4 GiB budget)")
        if args.compare_jobs:
            a, b = results[args.jobs], results[args.compare_jobs]
            print(f"-j {args.compare_jobs} / -j {args.jobs} wall time: {b / a:.2f}x")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
