"""Fault injection: a training run killed anywhere resumes to the byte-identical model.

Kills are real SIGKILLs of the whole process group (the driver and its worker
processes), at every checkpoint boundary (right after a commit, and right
before one with its data files written) and at random instants; a single
worker process killed mid-run costs nothing (its tasks run again).  The model
of every run is compared byte for byte with an uninterrupted run's.
"""
import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import make_voc

REPO = Path(__file__).resolve().parents[1]
DRIVER = str(REPO / "tests" / "train_driver.py")
SAVES = ["random", "hard-iter", "hard", "parts"] + ["parts2-iter"] * 5 + ["parts2", "mine", "bbox", "cascade"]


def _sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _env():
    return dict(os.environ, PYTHONPATH=str(REPO))


def _run(voc, out, cache, jobs, *extra, timeout=300):
    return subprocess.run([sys.executable, DRIVER, str(voc), str(out), str(cache), str(jobs), *map(str, extra)],
                          capture_output=True, text=True, env=_env(), cwd=str(REPO), timeout=timeout,
                          start_new_session=True)


@pytest.fixture(scope="module")
def voc(tmp_path_factory):
    return make_voc(tmp_path_factory.mktemp("voc") / "VOC")


@pytest.fixture(scope="module")
def reference(voc, tmp_path_factory):
    d = tmp_path_factory.mktemp("ref")
    r = _run(voc, d / "m.npz", d / "cache", 1)
    assert r.returncode == 0, r.stderr[-2000:]
    assert [line.split()[1] for line in r.stdout.splitlines() if line.startswith("saved")] == SAVES
    return _sha(d / "m.npz")


def _kill_then_resume(voc, tmp_path, reference, jobs, mode, n):
    out, cache = tmp_path / "m.npz", tmp_path / "cache"
    r = _run(voc, out, cache, jobs, mode, n)
    assert r.returncode == -signal.SIGKILL, (mode, n, r.stderr[-2000:])
    assert not out.exists()
    r = _run(voc, out, cache, jobs)
    assert r.returncode == 0, r.stderr[-2000:]
    assert _sha(out) == reference, f"{mode} {n} ({SAVES[n - 1]}): the resumed run wrote another model"


@pytest.mark.parametrize("n", [2, 3])
def test_kill_after_the_first_iteration_of_a_fresh_cache_stage(voc, tmp_path, reference, n):
    """'hard' does not continue the previous stage's examples; a resume after its first
    iteration must go on with the checkpointed ones, not with an empty set."""
    _kill_then_resume(voc, tmp_path, reference, 1, "--kill-after-save", n)


@pytest.mark.slow
@pytest.mark.parametrize("n", range(1, len(SAVES)))
@pytest.mark.parametrize("mode", ["--kill-after-save", "--kill-before-commit"])
def test_kill_at_every_checkpoint_boundary(voc, tmp_path, reference, mode, n):
    _kill_then_resume(voc, tmp_path, reference, 2 if n % 2 else 1, mode, n)


def _children(pid):
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                fields = (p / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(p.name))
    return out


def _workers(pid):
    out = []
    for c in _children(pid):
        try:
            if "resource_tracker" not in Path(f"/proc/{c}/cmdline").read_text(errors="replace"):
                out.append(c)
        except OSError:
            pass
    return out


def _kill_at_random_instant(voc, tmp_path, reference, rng, target, wait_for_worker=False):
    """SIGKILL the whole group or one worker at a random instant; finish (rerun if needed); compare."""
    out, cache = tmp_path / "m.npz", tmp_path / "cache"
    proc = subprocess.Popen([sys.executable, DRIVER, str(voc), str(out), str(cache), "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
                            cwd=str(REPO), start_new_session=True)
    time.sleep(rng.uniform(0.5, 4.0))
    if target == "worker" and wait_for_worker:  # a loaded machine may not have started one yet
        deadline = time.monotonic() + 60
        while not _workers(proc.pid) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
    killed = False
    if target == "group":
        try:
            os.killpg(proc.pid, signal.SIGKILL)
            killed = True
        except ProcessLookupError:
            pass
    else:
        workers = _workers(proc.pid)
        if workers:
            os.kill(rng.choice(workers), signal.SIGKILL)
            killed = True
    stdout, stderr = proc.communicate(timeout=300)
    if target == "worker":  # the run goes on by itself
        assert proc.returncode == 0, stderr[-2000:]
    elif proc.returncode != 0:
        assert proc.returncode == -signal.SIGKILL
        r = _run(voc, out, cache, 2)
        assert r.returncode == 0, r.stderr[-2000:]
    assert _sha(out) == reference
    return killed


def test_one_worker_killed_mid_run_costs_nothing(voc, tmp_path, reference):
    rng = random.Random(7)
    assert _kill_at_random_instant(voc, tmp_path, reference, rng, "worker", wait_for_worker=True)


@pytest.mark.slow
@pytest.mark.parametrize("k", range(32))
def test_kill_at_random_instants(voc, tmp_path, reference, k):
    """32 kill points: even k kill the whole group, odd k one worker process."""
    rng = random.Random(1000 + k)
    _kill_at_random_instant(voc, tmp_path, reference, rng, "group" if k % 2 == 0 else "worker")
