"""Process-wide settings of worker processes, in one place.

* :func:`worker_environment`: thread variables of native libraries (BLAS,
  OpenMP), read when a local worker process starts: one thread each, since
  parallelism comes from the processes.  Variables the user set are kept.
* :func:`init_worker`: allocator settings (:func:`dpm._alloc.tune_malloc`),
  applied once when a local worker process starts.

Dask workers are started by their own nanny, which sets ``OMP_NUM_THREADS``,
``MKL_NUM_THREADS``, ``OPENBLAS_NUM_THREADS`` to 1 and ``MALLOC_TRIM_THRESHOLD_``
(``distributed.nanny.pre-spawn-environ``); :func:`dpm._alloc.tune_malloc`
leaves an allocator the environment already tunes alone, so nothing more is
done there (see docs/cluster.md).
"""
from __future__ import annotations

import os
from contextlib import contextmanager

__all__ = ["THREAD_VARS", "worker_environment", "init_worker"]

# Native thread pools that would otherwise compete with the worker processes.
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


@contextmanager
def worker_environment():
    """Ask native libraries in worker processes started inside the block for one thread each.

    Worker processes are single-threaded by design (parallelism comes from the
    processes); without this, each would start a BLAS/OpenMP thread pool the
    size of the machine.  Variables the user has set are kept; the parent's
    environment is restored afterwards.
    """
    saved = {k: os.environ.get(k) for k in THREAD_VARS}
    for k in THREAD_VARS:
        os.environ.setdefault(k, "1")
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
