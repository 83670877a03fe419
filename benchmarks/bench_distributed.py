"""The Dask backend: detection throughput on 1 and 2 workers, task sizes, and the driver's memory on a stream.

Usage::

    python benchmarks/bench_distributed.py throughput [--images 200] [--size 320 240] [--model person]
                                                      [--from DIR [--pattern GLOB]] [--batch-seconds S ...]
    python benchmarks/bench_distributed.py stream [--images 200000] [--jobs 2] [--dask]
    python benchmarks/bench_distributed.py sizes

``throughput``: a folder of ``--images`` synthetic images (or links to real
ones, ``--from``); images per second of
``detect_files`` on a ``LocalCluster`` of 1 and of 2 single-threaded worker
processes (each run in alternation with the local backend's ``-j 1`` and
``-j 2``; the Dask backend once per ``--batch-seconds``), their ratio, and a
check that every backend gives the same boxes.

``stream``: ``dpm-detect --list`` over ``--images`` paths (a few tiny images
repeated) with a tiny model, written to a results file; the driver's RSS
(VmRSS) is sampled against the images done (read from ``FILE.resume``) and
fitted by a line: its slope per 10^5 images and its peak.  With ``--dask``
``dpm-detect`` runs with ``--scheduler`` of a ``LocalCluster`` started here
(the driver measured is ``dpm-detect``, the client; the scheduler is here).

``sizes``: the bytes a task, the model and a result take on the wire
(pickled), for detection with the person model and for the training tasks.
"""
import os

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import pickle  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _images(folder: Path, n: int, size, seed=0):
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    w, h = size
    paths = []
    for i in range(n):
        img = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        img[h // 4: 3 * h // 4, w // 3: w // 3 + w // 8] = 230   # something to find
        p = folder / f"{i:04d}.jpg"
        Image.fromarray(img).save(p, quality=90)
        paths.append(p)
    return paths


def _real_images(folder: Path, n: int, source: Path, pattern: str):
    """``n`` distinct paths (symbolic links in ``folder``) to the files of ``source`` matching ``pattern``, in turn."""
    files = sorted(source.glob(pattern))
    if not files:
        raise SystemExit(f"no files match {pattern} in {source}")
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / f"{i:04d}{files[i % len(files)].suffix}"
        p.symlink_to(files[i % len(files)].resolve())
        paths.append(p)
    return paths


def _timed(paths, model, **kw):
    from dpm.detection.batch import detect_files

    t = time.perf_counter()
    out = list(detect_files(paths, model, progress=False, threshold=-0.5, **kw))
    return time.perf_counter() - t, out


def throughput(args):
    from distributed import Client, LocalCluster

    from dpm.data import resolve_model
    from dpm.execution import DaskExecutor

    model = resolve_model(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        if args.source is not None:
            paths = _real_images(Path(tmp), args.images, args.source, args.pattern)
            what = f"{len(paths)} images (links to {args.pattern} of {args.source}, in turn)"
        else:
            paths = _images(Path(tmp), args.images, args.size)
            what = f"{len(paths)} synthetic images of {args.size[0]}x{args.size[1]} px"
        print(f"{what}, model {args.model}; load average {os.getloadavg()[0]:.2f} at start (the machine is shared)")
        results, rates = {}, {}
        dask_names = [f"dask b{b:g}" for b in args.batch_seconds]
        for workers in (1, 2):
            with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                              dashboard_address=None, silence_logs=40) as cl, \
                    Client(cl, set_as_default=False) as client:
                for name, b in zip(dask_names, args.batch_seconds):
                    ex = DaskExecutor(client, batch_seconds=b)
                    _timed(paths[:4], model, executor=ex)          # workers warm
                    secs, out = _timed(paths, model, executor=ex)
                    rates[f"{name} {workers}"] = len(paths) / secs
                    results[f"{name} {workers}"] = out
            time.sleep(3)   # the cluster's processes exit (tearing down) before the local backend is timed
            secs, out = _timed(paths, model, n_jobs=workers)
            rates[f"local -j {workers}"] = len(paths) / secs
            results[f"local -j {workers}"] = out
        for name, r in rates.items():
            print(f"  {name:14s} {r:7.2f} images/s")
        for name in dask_names:
            print(f"  {name}: 2 / 1 workers: {rates[name + ' 2'] / rates[name + ' 1']:.2f}x")
        print(f"  local -j 2 / -j 1: {rates['local -j 2'] / rates['local -j 1']:.2f}x")
        ref = results["local -j 1"]
        for name, out in results.items():
            same = all(np.array_equal(a.boxes, b.boxes) and np.array_equal(a.scores, b.scores)
                       for (_, a), (_, b) in zip(ref, out))
            print(f"  {name:12s} boxes identical to local -j 1: {same}")
        print(f"load average {os.getloadavg()[0]:.2f} at the end")


def _rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def stream(args):
    from dpm.model import save_model
    from dpm.training import initmodel

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = initmodel(np.array([[1, 1, 32, 48]], float), size=(6, 4))
        model.components[0].root[:] = np.random.default_rng(7).standard_normal(
            model.components[0].root.shape) * 0.01
        save_model(model, tmp / "tiny.npz")
        images = _images(tmp / "in", 8, (48, 64))
        listing = tmp / "list.txt"
        with open(listing, "w") as fh:
            for k in range(args.images):
                fh.write(f"{images[k % len(images)]}\n")
        out = tmp / "dets.csv"
        cmd = [sys.executable, str(REPO / "bin" / "dpm-detect"), str(tmp / "tiny.npz"), "--list", str(listing),
               "-o", str(out), "--threshold", "0.5", "-q"]
        with contextlib.ExitStack() as stack:
            if args.dask:
                from distributed import LocalCluster

                cluster = stack.enter_context(LocalCluster(n_workers=args.jobs, threads_per_worker=1,
                                                           processes=True, dashboard_address=None,
                                                           silence_logs=40))
                cmd += ["--scheduler", cluster.scheduler_address]
                backend = f"Dask LocalCluster of {args.jobs} workers"
            else:
                cmd += ["-j", str(args.jobs)]
                backend = f"-j {args.jobs}"
            samples, secs, returncode = _sample_driver(cmd, Path(str(out) + ".resume"))
        if len(samples) < 3:
            print("too few samples; use more images")
            return
        done = np.array([s[0] for s in samples], float)
        rss = np.array([s[1] for s in samples], float) / 1024
        keep = done >= done.max() * 0.1        # past start-up
        slope, icpt = np.polyfit(done[keep], rss[keep], 1)
        print(f"{args.images} paths, {backend}: {secs:.0f} s ({args.images / secs:.0f} images/s), "
              f"exit {returncode}; load average {os.getloadavg()[0]:.2f} (the machine is shared)")
        print(f"driver RSS: first sample {rss[0]:.1f} MiB at {int(done[0])} images, peak {rss.max():.1f} MiB, "
              f"last {rss[-1]:.1f} MiB at {int(done[-1])} images")
        print(f"slope {slope * 1e5:.2f} MiB per 10^5 images (fit over {keep.sum()} samples); "
              f"at 10^6 images: {icpt + slope * 1e6:.1f} MiB")


def _sample_driver(cmd, state):
    """Run ``cmd``; sample its RSS against the images done (from its resume file) every second."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=dict(os.environ, PYTHONPATH=str(REPO)))
    samples = []
    while proc.poll() is None:
        try:
            done = json.loads(state.read_text())["done"]
            samples.append((done, _rss_kib(proc.pid)))
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(1.0)
    return samples, time.perf_counter() - t0, proc.returncode


def sizes(args):
    from dpm.detection.batch import DetectTask
    from dpm.data import resolve_model
    from dpm.execution.base import model_payload
    from dpm.training.tasks import LatentTask, MineTask

    model = resolve_model("person")
    key, data = model_payload(model)
    print(f"model 'person' pickled: {len(data) / 1024:.0f} KiB (sent once per worker per model version)")
    path = "/data/VOC2007/JPEGImages/000034.jpg"
    task = DetectTask(Path(path), tuple(sorted(dict(threshold=None, upsample=1, nms=0.5,
                                                    bbox_prediction=True).items())))
    print(f"DetectTask: {len(pickle.dumps(task))} bytes")
    print(f"LatentTask: {len(pickle.dumps(LatentTask(1, path, (1.0, 2.0, 3.0, 4.0), 10, 0.7, 100.0)))} bytes")
    print(f"MineTask:   {len(pickle.dumps(MineTask(1, path, 5, -1.0002, 1000)))} bytes")
    dim = max(c.dim(model) for c in model.components)
    print(f"a hard negative (one example of the largest component): about {4 * dim + 28} bytes; "
          f"a MineTask result: at most 1000 of them, {1000 * (4 * dim + 28) / 2 ** 20:.1f} MiB")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    t = sub.add_parser("throughput")
    t.add_argument("--images", type=int, default=200)
    t.add_argument("--size", type=int, nargs=2, default=(320, 240), metavar=("W", "H"))
    t.add_argument("--model", default="person")
    t.add_argument("--from", dest="source", type=Path, default=None, metavar="DIR",
                   help="real images instead of synthetic ones: the files of DIR matching --pattern, in turn")
    t.add_argument("--pattern", default="*.jpg")
    t.add_argument("--batch-seconds", type=float, nargs="+", default=[0.25], metavar="S",
                   help="DaskExecutor's batch_seconds, each measured (0: every task alone)")
    s = sub.add_parser("stream")
    s.add_argument("--images", type=int, default=200_000)
    s.add_argument("--jobs", type=int, default=2, help="processes (-j), or Dask workers with --dask")
    s.add_argument("--dask", action="store_true",
                   help="run dpm-detect with --scheduler of a LocalCluster of --jobs workers started here")
    sub.add_parser("sizes")
    args = ap.parse_args()
    {"throughput": throughput, "stream": stream, "sizes": sizes}[args.what](args)


if __name__ == "__main__":
    main()
