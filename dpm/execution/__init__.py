"""One execution layer for every parallel job: detection, evaluation and training.

A job is a stream of *tasks*: small picklable objects with a ``label`` (what a
failure names, usually an image path) and a ``run(model)`` method.  An
:class:`Executor` runs them with one model and yields ``(task, result)`` pairs
**in input order**, whatever the backend:

``InProcess``          ``n_jobs=1``: in the calling process.
``LocalProcesses``     ``n_jobs=N``: the calling process and ``N - 1`` worker
                       processes (spawned once, kept for the executor's life;
                       a done-callback refills their pool the moment a task
                       finishes, see :mod:`dpm.execution.local`).
``DaskExecutor``       the workers of a Dask ``distributed.Client``
                       (``pip install "dpm[distributed]"``; docs/cluster.md).
``FuturesExecutor``    any ``concurrent.futures.Executor``.

Guarantees, the same for every backend:

* **One error boundary per task.**  Any exception a task raises (a corrupt or
  hostile image, an image a worker cannot see, ``MemoryError``, a
  decompression bomb, a bug) becomes a :class:`TaskFailed` result for that
  task alone; the others go on.  A worker process that dies (killed, out of
  memory, a lost node) costs only the tasks it was running: they run again,
  and a task whose workers keep dying while running it fails with a one-line
  reason.  Retried tasks give the same results (tasks are deterministic), so
  results never depend on such faults.
* **Models are shipped once per content**: the model is serialised once per
  map call, keyed by the SHA-256 of its bytes; a worker meets it once per key
  (nothing global that a second model could clobber).
* **Bounded**: a few tasks per worker are in flight and the task iterator is
  read lazily, so a stream of millions of tasks costs the caller memory for
  the window only.
* Progress with the time left (``progress=True``); Ctrl+C or closing the
  result iterator early submits nothing more (the local backend lets the few
  tasks already in its pool finish and drops their results; the Dask backend
  cancels what is outstanding).

Process-wide settings of worker processes are made in one place,
:mod:`dpm.execution.environment`.
"""
from __future__ import annotations

import concurrent.futures as cf

from .base import Executor, InProcess, MissingDependency, Task, TaskFailed, resolve_jobs, run_guarded
from .dask import DaskExecutor, connect, is_dask_client
from .environment import init_dask_worker, init_worker, worker_environment
from .local import LocalProcesses
from .window import FuturesExecutor

__all__ = ["Task", "TaskFailed", "Executor", "InProcess", "LocalProcesses", "DaskExecutor", "FuturesExecutor",
           "MissingDependency", "make_executor", "connect", "worker_environment", "init_worker", "init_dask_worker",
           "resolve_jobs", "run_guarded"]


def make_executor(n_jobs=1, *, executor=None) -> Executor:
    """The executor for ``n_jobs`` processes (``-1``: one per core), or for ``executor`` if given.

    ``executor`` may be a :class:`Executor` (returned as is), a
    ``distributed.Client`` (a :class:`DaskExecutor` on it) or any
    ``concurrent.futures.Executor`` (a :class:`FuturesExecutor`); the caller
    keeps ownership of the client or pool.
    """
    if executor is not None:
        if isinstance(executor, Executor):
            return executor
        if is_dask_client(executor):
            return DaskExecutor(executor)
        if isinstance(executor, cf.Executor):
            return FuturesExecutor(executor)
        raise ValueError("executor must be a dpm.execution.Executor, a distributed.Client or a "
                         f"concurrent.futures.Executor, got {type(executor).__name__}")
    n = resolve_jobs(n_jobs)
    return InProcess() if n == 1 else LocalProcesses(n)
