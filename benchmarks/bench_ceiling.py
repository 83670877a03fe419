"""What the machine allows: detection images/s of 1 process against 2 independent processes, no framework.

Usage::

    python benchmarks/bench_ceiling.py [--from DIR] [--pattern GLOB] [--images 100] [--model person]

Each process loads the model, waits until all are ready, then detects in
``--images`` files of DIR matching GLOB (in turn; default: person-voc's PETS
frames) with ``dpm.detect`` in a plain loop.  Prints the images per second of
1 and of 2 such processes (two rounds, in alternation) and the ratio of the
best: the ceiling against which ``bench_distributed.py throughput`` (Dask and
the local backend, same images) is read.
"""
import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
SHARED = Path(os.environ.get("DPM_SHARED", Path(__file__).resolve().parents[2] / "shared"))


def child(files, n, model_name):
    import dpm
    from dpm.data import resolve_model

    model = resolve_model(model_name)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    sys.stdin.readline()
    for i in range(n):
        dpm.detect(dpm.read_image(files[i % len(files)]), model, threshold=-0.5)


def run(k, args):
    cmd = [sys.executable, __file__, "--child", "--from", str(args.source), "--pattern", args.pattern,
           "--images", str(args.images), "--model", args.model]
    procs = [subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for _ in range(k)]
    for p in procs:
        p.stdout.readline()
    t = time.perf_counter()
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    for p in procs:
        p.wait()
    return k * args.images / (time.perf_counter() - t)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--from", dest="source", type=Path, default=SHARED / "data" / "person-voc" / "JPEGImages")
    ap.add_argument("--pattern", default="pets_*.jpg")
    ap.add_argument("--images", type=int, default=100)
    ap.add_argument("--model", default="person")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    files = sorted(args.source.glob(args.pattern))
    if not files:
        raise SystemExit(f"no files match {args.pattern} in {args.source}")
    if args.child:
        return child(files, args.images, args.model)
    rates = {1: [], 2: []}
    for _ in range(2):
        for k in (1, 2):
            rates[k].append(run(k, args))
    print(f"{args.images} images per process ({args.pattern} of {args.source}, model {args.model}); "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"1 process: {', '.join(f'{r:.2f}' for r in rates[1])} images/s; "
          f"2 processes: {', '.join(f'{r:.2f}' for r in rates[2])} images/s; "
          f"ratio of the best {max(rates[2]) / max(rates[1]):.2f}")


if __name__ == "__main__":
    main()
