"""Process-wide settings of worker processes, in one place.

* :func:`worker_environment`: thread variables of native libraries (BLAS,
  OpenMP), read when a local worker process starts: one thread each, since
  parallelism comes from the processes.  Variables the user set are kept.
  The allocator variables are the ones this process started with
  (:func:`dpm._alloc.start_environment`): a value a library put into
  ``os.environ`` since (a Dask ``LocalCluster`` in this process leaves Dask's
  trim threshold there) is not passed on as if it were the user's.
* :func:`init_worker`: allocator settings (:func:`dpm._alloc.tune_malloc`),
  applied once when a local worker process starts.

* :func:`init_dask_worker`: the same allocator settings in a Dask worker,
  applied before the first task ``dpm`` runs there.

Dask workers are started by their own nanny, which sets ``OMP_NUM_THREADS``,
``MKL_NUM_THREADS``, ``OPENBLAS_NUM_THREADS`` to 1 and ``MALLOC_TRIM_THRESHOLD_``
to 65536 (``distributed.nanny.pre-spawn-environ``).  The thread variables are
kept.  The trim threshold is Dask's default, not the user's: with it a
detection faults its working memory in again every time (about 4,000 page
faults and 12 to 15 ms of system time per 320x240 image with the person model,
against under 20 faults and 3 ms with dpm's settings), so
:func:`init_dask_worker` applies dpm's settings over it.  Any other allocator
variable, or another trim threshold, is the user's and wins (docs/cluster.md).
"""
from __future__ import annotations

import os
import threading
from contextlib import contextmanager

__all__ = ["THREAD_VARS", "worker_environment", "init_worker", "init_dask_worker"]

# What a Dask nanny puts in its workers' environment by default (distributed.nanny.pre-spawn-environ).
DASK_NANNY_MALLOC = {"MALLOC_TRIM_THRESHOLD_": "65536"}

# The local backend submits from the pool's thread too (a worker may start
# there): one block at a time, so the parent's environment is always restored.
_environment_lock = threading.RLock()

# Native thread pools that would otherwise compete with the worker processes.
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


@contextmanager
def worker_environment():
    """Ask native libraries in worker processes started inside the block for one thread each.

    Worker processes are single-threaded by design (parallelism comes from the
    processes); without this, each would start a BLAS/OpenMP thread pool the
    size of the machine.  Variables the user has set are kept; the parent's
    environment is restored afterwards.  Safe to use from several threads.
    """
    from .._alloc import ALLOCATOR_VARS, start_environment

    with _environment_lock:
        saved = {k: os.environ.get(k) for k in THREAD_VARS + ALLOCATOR_VARS}
        for k in THREAD_VARS:
            os.environ.setdefault(k, "1")
        start = start_environment()
        for k in ALLOCATOR_VARS:
            if k in start:
                os.environ[k] = start[k]
            else:
                os.environ.pop(k, None)
        try:
            yield
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def init_worker():
    """Process-wide settings of a worker process, applied once when it starts."""
    from .._alloc import tune_malloc

    tune_malloc()


_dask_worker_ready = False


def init_dask_worker() -> bool:
    """Process-wide settings of a Dask worker, once per process; True if dpm's allocator settings hold.

    Dask's own default trim threshold (:data:`DASK_NANNY_MALLOC`) does not count
    as the user's tuning; see the module docstring.
    """
    global _dask_worker_ready
    from .._alloc import tune_malloc

    if not _dask_worker_ready:
        _dask_worker_ready = True
        return tune_malloc(DASK_NANNY_MALLOC)
    return tune_malloc()
