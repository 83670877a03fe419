"""The execution layer: input order, one error boundary per task, dead workers, models by content."""
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import pytest

from dpm.execution import InProcess, LocalProcesses, TaskFailed, make_executor, resolve_jobs
from dpm.execution.window import RunAlone, in_order


@dataclass(frozen=True)
class Square:
    """Squares ``i`` and adds the model; some values fail on purpose."""

    i: int
    parent: int = 0          # pid of the test process (a kill only happens in a worker)
    kill: tuple = ()         # values whose worker process kills itself
    kill_flag: str = ""      # a file: if given, kill only while it does not exist (once)

    @property
    def label(self):
        return f"item{self.i}"

    def run(self, model):
        if self.i == 3:
            raise MemoryError()
        if self.i == 5:
            raise ValueError("cannot decode\nthis image")
        if self.i in self.kill and os.getpid() != self.parent:
            if not self.kill_flag or not os.path.exists(self.kill_flag):
                if self.kill_flag:
                    open(self.kill_flag, "w").close()
                os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(0.005)
        return self.i * self.i + model["add"]


@dataclass(frozen=True)
class Blob:
    """A task with a large result: ``mib`` MiB of bytes (a mining task's thousands of examples)."""

    i: int
    mib: int = 4

    @property
    def label(self):
        return f"blob{self.i}"

    def run(self, model):
        return bytes([self.i % 256]) * (self.mib << 20)


def _expected(i, add=1):
    return i * i + add


def _check(out, n, add=1, failed=(3, 5)):
    assert [t.i for t, _ in out] == list(range(n))
    for t, r in out:
        if t.i in failed:
            assert isinstance(r, TaskFailed) and f"item{t.i}" in str(r) and "\n" not in str(r)
        else:
            assert r == _expected(t.i, add)


@pytest.mark.parametrize("jobs", [1, 2, 3])
def test_results_in_input_order_with_failures_as_values(jobs):
    with make_executor(jobs) as ex:
        out = list(ex.map([Square(i) for i in range(30)], {"add": 1}))
        _check(out, 30)
        assert out[3][1].kind == "MemoryError" and "out of memory" in str(out[3][1])
        assert out[5][1].kind == "ValueError"
        # a second model in the same executor: nothing of the first one is reused
        out = list(ex.map((Square(i) for i in range(12)), {"add": 7}))
        _check(out, 12, add=7)


def test_a_worker_killed_once_costs_nothing(tmp_path):
    flag = str(tmp_path / "killed-once")
    with LocalProcesses(2) as ex:
        # the first of these a worker runs kills it (the caller runs some of them itself)
        tasks = [Square(i, parent=os.getpid(), kill=tuple(range(8, 40)), kill_flag=flag) for i in range(40)]
        out = list(ex.map(tasks, {"add": 1}))
    assert os.path.exists(flag)  # a worker did die
    _check(out, 40)


def test_a_task_that_always_kills_its_worker_fails_alone():
    with LocalProcesses(2) as ex:
        list(ex.map([Square(i) for i in range(4)], {"add": 1}))   # the worker is up
        tasks = [Square(i, parent=os.getpid(), kill=(9, 10, 11, 12, 13, 14)) for i in range(24)]
        out = list(ex.map(tasks, {"add": 1}))
    assert [t.i for t, _ in out] == list(range(24))
    assert any(isinstance(r, TaskFailed) and r.kind == "WorkerDied" for _, r in out)
    for t, r in out:
        if t.i in (3, 5):
            assert isinstance(r, TaskFailed)
        elif isinstance(r, TaskFailed):  # a killer that a worker ran: named, one line
            assert t.i in (9, 10, 11, 12, 13, 14) and r.kind == "WorkerDied" and f"item{t.i}" in str(r)
        else:
            assert r == _expected(t.i)  # innocent tasks, and killers the calling process ran


class _Round:
    """A fake cluster for ``in_order``: each wait finishes every future in flight at once; if one of
    them is a killer, the worker death is blamed on all of them (as Dask blames every task a dying
    worker held)."""

    def __init__(self, killers):
        self.killers, self.running, self.log = set(killers), [], []

    def submit(self, task):
        future = {"task": task, "done": False, "killed": False}
        self.log.append((task, [f["task"] for f in self.running]))   # what else was in flight
        self.running.append(future)
        return type("F", (), {"done": lambda _: future["done"], "state": future})()

    def wait_first(self, futures):
        killed = any(f["task"] in self.killers for f in self.running)
        for f in self.running:
            f["done"], f["killed"] = True, killed
        self.running = []

    def result(self, task, future, alone):
        if not future.state["killed"]:
            return task * task
        if not alone:
            raise RunAlone
        return "died"


def test_in_order_runs_blamed_tasks_again_alone_and_keeps_the_order():
    cluster = _Round(killers={7, 12})
    out = list(in_order(iter(range(20)), cluster.submit, cluster.result, cluster.wait_first, lambda fs: None,
                        lambda: 3, ahead=2))
    assert [t for t, _ in out] == list(range(20))
    assert [r for t, r in out] == [("died" if t in (7, 12) else t * t) for t in range(20)]
    resubmitted = [(t, others) for i, (t, others) in enumerate(cluster.log)
                   if t in [u for u, _ in cluster.log[:i]]]
    assert {t for t, _ in resubmitted} >= {6, 7, 8, 12}   # the killers and the neighbours they took down
    assert all(others == [] for _, others in resubmitted)  # each ran again with nothing else in flight
    assert all(len(others) < 3 for _, others in cluster.log)


def test_stream_is_read_lazily():
    seen = []

    def tasks():
        for i in range(10 ** 6):
            seen.append(i)
            yield Square(i + 6)

    with LocalProcesses(2) as ex:
        it = ex.map(tasks(), {"add": 0})
        first = [next(it) for _ in range(5)]
        it.close()
    assert [r for _, r in first] == [(i + 6) ** 2 for i in range(5)]
    assert len(seen) < 50


def test_resolve_jobs_and_bad_values():
    assert resolve_jobs(-1) == (os.cpu_count() or 1)
    assert isinstance(make_executor(1), InProcess)
    with pytest.raises(ValueError, match="n_jobs"):
        resolve_jobs(-3)
    with pytest.raises(ValueError, match="n_jobs"):
        resolve_jobs("many")
    with pytest.raises(ValueError, match="executor"):
        make_executor(2, executor=object())


def test_a_worker_killed_while_idle_is_replaced():
    with LocalProcesses(2) as ex:
        out = list(ex.map([Square(i) for i in range(8)], {"add": 1}))
        _check(out, 8)
        for p in list(ex._pool._processes.values()):
            p.kill()
            p.join()
        out = list(ex.map([Square(i) for i in range(12)], {"add": 2}))
        _check(out, 12, add=2)


@dataclass(frozen=True)
class Big:
    """A result larger than a pipe's atomic write (it travels through a file)."""

    i: int
    label: str = "big"

    def run(self, model):
        return bytes([self.i % 256]) * 100_000


def test_large_results_travel_through_files_and_are_removed():
    with LocalProcesses(3) as ex:
        out = list(ex.map([Big(i) for i in range(10)], None))
        folder = ex._models.directory
        assert [r for _, r in out] == [bytes([i]) * 100_000 for i in range(10)]
        assert [p for p in os.listdir(folder) if p.startswith("result-")] == []


# -- keeping the workers busy ------------------------------------------------------------------

@dataclass(frozen=True)
class Nap:
    """Sleeps; returns where and when it ran (and, with ``pad``, a result large enough for a file)."""

    i: int
    seconds: float = 0.04
    marks: str = ""          # a folder: each run leaves a file there
    pad: int = 0

    @property
    def label(self):
        return f"nap{self.i}"

    def run(self, model):
        if self.marks:
            open(os.path.join(self.marks, f"{self.i}-{os.getpid()}"), "w").close()
        t0 = time.monotonic()
        time.sleep(self.seconds)
        return os.getpid(), t0, time.monotonic(), b"x" * self.pad


class _CountingPool(ProcessPoolExecutor):
    """A process pool that records how many futures it holds at most."""

    lock = threading.Lock()
    now = peak = 0

    def submit(self, *args, **kwargs):
        future = super().submit(*args, **kwargs)
        with _CountingPool.lock:
            _CountingPool.now += 1
            _CountingPool.peak = max(_CountingPool.peak, _CountingPool.now)
        future.add_done_callback(_CountingPool.one_less)
        return future

    @staticmethod
    def one_less(_):
        with _CountingPool.lock:
            _CountingPool.now -= 1


def test_the_pool_holds_at_most_one_task_more_than_it_has_workers(monkeypatch):
    from dpm.execution import local

    monkeypatch.setattr(local, "ProcessPoolExecutor", _CountingPool)
    _CountingPool.now = _CountingPool.peak = 0
    with LocalProcesses(3) as ex:
        out = []
        for task, result in ex.map([Nap(i, 0.01) for i in range(40)], None):
            time.sleep(0.02)   # a slow caller: the pool is refilled without it
            out.append(task.i)
        assert out == list(range(40))
    assert _CountingPool.peak == ex.workers + 1


def test_the_pool_is_refilled_while_the_caller_is_busy_with_a_result():
    with LocalProcesses(2) as ex:
        list(ex.map([Nap(i, 0.0) for i in range(4)], None))   # the worker is up
        busy = None
        starts = []
        for k, (task, (pid, t0, t1, _)) in enumerate(ex.map([Nap(i) for i in range(24)], None)):
            starts.append((pid, t0))
            if k == 0:   # the caller spends 0.6 s on the first result: ~15 tasks' worth
                s0 = time.monotonic()
                time.sleep(0.6)
                busy = (s0, time.monotonic())
    workers = {pid for pid, _ in starts} - {os.getpid()}
    during = [t0 for pid, t0 in starts if pid in workers and busy[0] <= t0 <= busy[1]]
    # the pool itself holds 2 tasks (one running, one waiting): the worker goes on past them,
    # through the backlog the caller read ahead (8 per process, less the one or two it ran itself)
    assert len(during) >= 4, during


def test_stopping_a_map_stops_its_tasks_at_once_and_leaves_no_result_files(tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    with LocalProcesses(2) as ex:
        tasks = [Nap(i, 0.2, str(marks), pad=10_000) for i in range(200)]
        with pytest.raises(KeyboardInterrupt):
            for k, _ in enumerate(ex.map(tasks, None)):
                if k == 2:
                    raise KeyboardInterrupt
        stopped = time.monotonic()
        time.sleep(0.8)   # what was in the pool finishes; its replies are dropped
        started = len(os.listdir(marks))
        assert [p for p in os.listdir(ex._models.directory) if p.startswith("result-")] == []
    assert time.monotonic() - stopped < 0.8 + 2.0   # close() waits for the pool's few tasks only
    assert started <= 3 + 8 * ex.n_jobs   # the results yielded and the window read ahead, no more
    time.sleep(0.3)
    assert len(os.listdir(marks)) == started   # nothing ran after the executor closed
