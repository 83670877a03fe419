"""Full training on a Dask LocalCluster against the local backend: wall time and model bytes.

Usage::

    python benchmarks/bench_train_cluster.py [--rounds 1] [--backends j2,cluster] [--voc PATH]

Trains ``dpm-train person --voc person-voc --components 1 --box-scale 0.6 0.75``
(seed 0, the command of docs/training.md) once per backend and round, the
backends in alternation so that a change in the machine's load hits them
alike:

* ``j1``: ``-j 1``, in-process;
* ``j2``: ``-j 2``, the local process backend;
* ``cluster``: ``--scheduler`` of a ``LocalCluster`` of 2 single-threaded
  worker processes started here (no nanny memory limit), the learner on the
  client.

Prints each run's wall time and the sha256 of its model file, the ratio of
every backend's median to the first one's, and whether all models are
byte-identical.

``--kill-worker T [T ...]``: in every ``cluster`` run, SIGKILL one of the
cluster's worker processes T seconds after the run starts (the nanny starts a
new one); the training's log (stage times) goes to ``--log-dir``, and each
kill is printed with the stage that was running, so the model of a run that
lost a worker mid-stage is compared with the others.  Meant for an otherwise idle machine (2 cores: the cluster's
scheduler and the driver share them with the workers).
"""
import argparse
import hashlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DPM_SHARED", REPO.parent / "shared"))


def _kill_one_worker(client, at: float, t0: float, log: Path | None):
    time.sleep(max(0.0, at - (time.perf_counter() - t0)))
    pids = sorted(client.run(os.getpid).values())
    if not pids:
        return
    os.kill(pids[0], signal.SIGKILL)
    stages = [ln for ln in log.read_text().splitlines() if "stage " in ln and " done in " in ln] if log else []
    after = stages[-1].split("stage ", 1)[1].split(" done")[0] if stages else "(none)"
    print(f"  killed worker pid {pids[0]} at {time.perf_counter() - t0:.1f} s "
          f"(stages done so far: {len(stages)}, the last: {after})", flush=True)


def train(out: Path, voc: Path, backend: str, scheduler: str | None, client=None, kills=(),
          log: Path | None = None) -> float:
    cmd = [sys.executable, str(REPO / "bin" / "dpm-train"), "person", "--voc", str(voc), "--components", "1",
           "--box-scale", "0.6", "0.75", "--seed", "0", "--out", str(out)]
    cmd += [] if log is not None else ["-q"]
    if backend == "cluster":
        cmd += ["--scheduler", scheduler]
    else:
        cmd += ["-j", backend[1:]]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    t = time.perf_counter()
    killers = [threading.Thread(target=_kill_one_worker, args=(client, at, t, log), daemon=True)
               for at in (kills if backend == "cluster" else ())]
    with open(log if log is not None else os.devnull, "w") as err:
        proc = subprocess.Popen(cmd, env=env, cwd=out.parent, stderr=err)
        for k in killers:
            k.start()
        code = proc.wait()
    for k in killers:
        k.join()
    if code:
        raise SystemExit(f"dpm-train ({backend}) exited with {code}" + (f"; its log: {log}" if log else ""))
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--backends", default="j2,cluster", help="comma-separated: j1, j2, cluster")
    ap.add_argument("--voc", type=Path, default=SHARED / "data" / "person-voc")
    ap.add_argument("--kill-worker", type=float, nargs="+", default=(), metavar="T",
                    help="SIGKILL one cluster worker T seconds into each cluster run")
    ap.add_argument("--log-dir", type=Path, default=None, help="keep each run's training log here")
    args = ap.parse_args()
    if args.log_dir is not None:
        args.log_dir.mkdir(parents=True, exist_ok=True)
    backends = args.backends.split(",")
    cluster = client = None
    address = None
    if "cluster" in backends:
        from dask.distributed import Client, LocalCluster

        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, memory_limit=0,
                               dashboard_address=None)
        client = Client(cluster)
        address = cluster.scheduler_address
        print(f"LocalCluster at {address}: 2 worker processes, 1 thread each")
    times = {b: [] for b in backends}
    digests = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for r in range(args.rounds):
                for b in backends:
                    out = Path(tmp) / f"{b}-{r}.npz"
                    log = args.log_dir / f"{b}-{r}.log" if args.log_dir is not None else None
                    sec = train(out, args.voc, b, address, client, args.kill_worker, log)
                    digest = hashlib.sha256(out.read_bytes()).hexdigest()
                    times[b].append(sec)
                    digests[(b, r)] = digest
                    print(f"round {r} {b:8s} {sec:8.1f} s  sha256 {digest[:16]}  "
                          f"(load average {os.getloadavg()[0]:.1f})", flush=True)
    finally:
        if client is not None:
            client.close()
            cluster.close()
    first = statistics.median(times[backends[0]])
    for b in backends:
        m = statistics.median(times[b])
        print(f"{b:8s} median {m:8.1f} s   / {backends[0]}: {m / first:.3f}")
    print(f"models byte-identical: {len(set(digests.values())) == 1}")


if __name__ == "__main__":
    main()
