"""Local backends' worker processes: ``LocalProcesses`` (``n_jobs=N``).

The calling process and ``N - 1`` worker processes (spawned once, kept for the
executor's life).  Models go to the workers through a private temporary file
per content key (:func:`dpm.execution.base.model_payload`); a worker keeps the
last few by key.  A worker process that dies costs only the tasks in flight:
they run again, one at a time, and a task whose worker dies twice while
running it alone fails with a one-line reason.  Results larger than a pipe's
atomic write travel through files (a worker killed mid-send cannot hang the
pool's reader).
"""
from __future__ import annotations

import logging
import os
import pickle
import tempfile
from collections import OrderedDict, deque
from concurrent.futures import FIRST_COMPLETED, CancelledError, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from .base import Executor, model_payload, run_guarded, task_failure, worker_died
from .environment import init_worker, worker_environment

__all__ = ["LocalProcesses"]

log = logging.getLogger(__name__)

# A worker keeps this many models (by content key).
_MODELS_PER_WORKER = 4
# Runs of a task alone in a fresh worker that may end with the worker's death
# before the task is reported as failed.
_SOLO_ATTEMPTS = 2


# --------------------------------------------------------------------------------------------
# Models in worker processes
# --------------------------------------------------------------------------------------------

_worker_models: "OrderedDict[str, Any]" = OrderedDict()


def _worker_model(key: str, path: str):
    model = _worker_models.get(key)
    if model is None:
        with open(path, "rb") as fh:
            model = pickle.load(fh)  # a private file this run wrote (mode 0600 in a 0700 folder)
        _worker_models[key] = model
        while len(_worker_models) > _MODELS_PER_WORKER:
            _worker_models.popitem(last=False)
    else:
        _worker_models.move_to_end(key)
    return model


# A result sent back through the pipe is at most this large: a worker killed
# while writing a larger message would leave half of it in the pipe, and the
# pool's reader would wait for the rest forever.  Writes of up to PIPE_BUF
# (4096 bytes on Linux) bytes are atomic, so a larger result goes through a
# file in the executor's private folder instead.
_INLINE_BYTES = 3500


def _run_in_worker(key, path, spill_dir, task):
    result = run_guarded(task, None if key is None else _worker_model(key, path))
    data = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
    if len(data) <= _INLINE_BYTES:
        return "inline", data
    fd, name = tempfile.mkstemp(prefix="result-", suffix=".pickle", dir=spill_dir)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return "file", name


def _received(message):
    """The result a worker sent: inline bytes or a file it wrote (read, then removed)."""
    how, payload = message
    if how == "file":
        name = payload
        try:
            with open(name, "rb") as fh:
                payload = fh.read()
        finally:
            os.unlink(name)
    return pickle.loads(payload)  # written by this run's own workers


class _ModelFiles:
    """Models written once per content to a private folder, for workers to load.

    The folder (mode 0700) also receives the workers' large results.
    """

    def __init__(self):
        self._dir = None
        self._paths: dict[str, str] = {}

    @property
    def directory(self) -> str:
        if self._dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix="dpm-run-")
        return self._dir.name

    def publish(self, model):
        if model is None:
            return None, None
        key, data = model_payload(model)
        if key not in self._paths:
            path = Path(self.directory) / f"model-{key}.pickle"
            path.write_bytes(data)
            self._paths[key] = str(path)
            while len(self._paths) > 2 * _MODELS_PER_WORKER:  # older versions are no longer needed
                old = next(iter(self._paths))
                Path(self._paths.pop(old)).unlink(missing_ok=True)
        return key, self._paths[key]

    def close(self):
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None
        self._paths.clear()


# --------------------------------------------------------------------------------------------
# Executors
# --------------------------------------------------------------------------------------------

class _Entry:
    __slots__ = ("task", "future", "generation", "result", "deaths")

    def __init__(self, task):
        self.task, self.future, self.generation, self.result, self.deaths = task, None, -1, _PENDING, 0


_PENDING = object()


class LocalProcesses(Executor):
    """The calling process and ``n_jobs - 1`` worker processes (started on first use, kept).

    When the next result in order is not ready, the calling process runs the
    next task itself, so it works while the workers start and between results.
    """

    def __init__(self, n_jobs: int):
        self.n_jobs = max(2, int(n_jobs))
        self.workers = self.n_jobs - 1
        self._pool = None
        self._generation = 0   # counts the pools: a result of an old pool's death concerns that pool only
        self._models = _ModelFiles()

    def _executor(self):
        if self._pool is None:
            with worker_environment():
                self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=get_context("spawn"),
                                                 initializer=init_worker)
        return self._pool

    def _restart(self):
        pool, self._pool = self._pool, None
        self._generation += 1
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def _submit(self, entry, ref):
        error = None
        for _ in range(5):
            try:
                with worker_environment():  # workers start during the first submits
                    entry.future = self._executor().submit(_run_in_worker, *ref, self._models.directory,
                                                           entry.task)
                entry.generation = self._generation
                return
            except (BrokenProcessPool, OSError, RuntimeError) as exc:
                # a worker died while idle, or while the pool was starting another: a new pool
                self._restart()
                error = exc
        raise RuntimeError(f"worker processes die as soon as they start ({error}); "
                           "run with n_jobs=1 to see why")

    def _map(self, tasks, model):
        ref = self._models.publish(model)
        window: deque[_Entry] = deque()   # entries in input order, not yet yielded
        queue: deque[_Entry] = deque()    # entries to run again after a worker died
        exhausted = False
        limit = 2 * self.workers

        def in_pool():
            return sum(1 for e in window if e.future is not None and e.result is _PENDING)

        def suspects():
            return any(e.deaths and e.result is _PENDING for e in window)

        def fill():
            nonlocal exhausted
            cap = 1 if suspects() else limit  # isolate a task that may kill its worker
            while in_pool() < cap:
                if queue:
                    e = queue.popleft()
                elif not exhausted and len(window) < 4 * limit:
                    try:
                        e = _Entry(next(tasks))
                    except StopIteration:
                        exhausted = True
                        break
                    window.append(e)
                else:
                    break
                self._submit(e, ref)

        def collect():
            died = False
            for e in window:
                f = e.future
                if f is None or e.result is not _PENDING or not f.done():
                    continue
                try:
                    e.result = _received(f.result())
                    continue
                except (BrokenProcessPool, CancelledError):
                    pass
                except Exception as exc:  # noqa: BLE001 - e.g. a result that cannot be sent back
                    e.result = task_failure(e.task, exc)
                    continue
                if e.generation == self._generation:  # the current pool broke
                    self._restart()
                died = True
            if died:
                self._after_death(window, queue)

        try:
            while True:
                fill()
                collect()
                while window and window[0].result is not _PENDING:
                    e = window.popleft()
                    yield e.task, e.result
                    fill()
                if not window and exhausted and not queue:
                    return
                if not exhausted and not queue and len(window) < 4 * limit and not suspects():
                    try:  # the caller works too while it waits for the next result
                        e = _Entry(next(tasks))
                    except StopIteration:
                        exhausted = True
                        continue
                    window.append(e)
                    e.result = run_guarded(e.task, model)
                    continue
                pending = [e.future for e in window if e.future is not None and e.result is _PENDING]
                if pending:
                    wait(pending, return_when=FIRST_COMPLETED)
        finally:
            for e in window:
                if e.future is not None and e.result is _PENDING:
                    e.future.cancel()

    def _after_death(self, window, queue):
        """Workers died: run again, alone, the tasks that were in flight in their pool."""
        lost = [e for e in window
                if e.result is _PENDING and e.future is not None and e.generation < self._generation]
        solo = len(lost) == 1 and lost[0].deaths > 0
        for e in lost:
            e.future = None
            if solo:
                e.deaths += 1
                if e.deaths > _SOLO_ATTEMPTS:
                    e.result = worker_died(e.task)
                    continue
            else:
                e.deaths = max(e.deaths, 1)
        retry = [e for e in lost if e.result is _PENDING]
        if retry:
            log.warning("a worker process died; %d task(s) run again", len(retry))
        for e in reversed(retry):
            if e in queue:
                queue.remove(e)
            queue.appendleft(e)

    def close(self):
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._models.close()
