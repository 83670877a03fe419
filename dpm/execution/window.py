"""Futures in input order through a bounded window, and any ``concurrent.futures.Executor`` as a backend.

:func:`in_order` is the loop the Dask backend and :class:`FuturesExecutor`
share: it reads tasks lazily, keeps at most ``limit()`` of them running (and
at most ``ahead x limit`` not yet yielded), yields results in input order as
soon as the next one is ready, and cancels what is outstanding when it stops
early (Ctrl+C, an error, the caller closing the iterator).
"""
from __future__ import annotations

import concurrent.futures as cf
import logging
from collections import deque

from .base import Executor, run_guarded, task_failure

__all__ = ["in_order", "FuturesExecutor"]

log = logging.getLogger(__name__)


def in_order(tasks, submit, result, wait_first, cancel, limit, ahead: int = 4):
    """Yield ``(task, result)`` in input order.

    Parameters
    ----------
    tasks : iterator
        Read lazily.
    submit : callable
        ``submit(task) -> future`` (an object with ``done()``).
    result : callable
        ``result(task, future)``: the task's result or its ``TaskFailed``; never raises
        for a task's own failure.
    wait_first : callable
        ``wait_first(futures)`` returns once at least one of them is done.
    cancel : callable
        ``cancel(futures)`` for the futures still outstanding when the loop stops early.
    limit : callable
        ``limit() -> int``: how many futures may be running at once (read at each refill).
    """
    window: deque = deque()   # [task, future], in input order, not yet yielded
    exhausted = False
    try:
        while True:
            cap = max(1, int(limit()))
            running = sum(1 for _, f in window if not f.done())
            while not exhausted and running < cap and len(window) < ahead * cap:
                try:
                    task = next(tasks)
                except StopIteration:
                    exhausted = True
                    break
                window.append((task, submit(task)))
                running += 1
            if not window:
                return
            if window[0][1].done():
                task, future = window.popleft()
                yield task, result(task, future)
                continue
            wait_first([f for _, f in window if not f.done()])
    finally:
        outstanding = [f for _, f in window if not f.done()]
        if outstanding:
            cancel(outstanding)


class FuturesExecutor(Executor):
    """Any ``concurrent.futures.Executor`` (a thread pool, a process pool, ...) as a dpm executor.

    Each task is submitted as ``run_guarded(task, model)``: the model travels
    with every task (pickled per task by a process pool), so a backend that
    can keep the model on its workers (:class:`~dpm.execution.LocalProcesses`,
    :class:`~dpm.execution.DaskExecutor`) is the better choice for large runs.
    The pool belongs to the caller: :meth:`close` leaves it running.
    """

    def __init__(self, pool: cf.Executor, in_flight: int | None = None):
        self.pool = pool
        self.n_jobs = int(in_flight or getattr(pool, "_max_workers", 0) or 1)

    def _map(self, tasks, model):
        def result(task, future):
            try:
                return future.result()
            except cf.CancelledError as exc:
                return task_failure(task, RuntimeError(f"cancelled ({exc or 'the pool was shut down'})"))
            except Exception as exc:  # noqa: BLE001 - e.g. a broken pool: that task's failure
                return task_failure(task, exc)

        def cancel(futures):
            for f in futures:
                f.cancel()

        yield from in_order(tasks, lambda t: self.pool.submit(run_guarded, t, model), result,
                            lambda fs: cf.wait(fs, return_when=cf.FIRST_COMPLETED), cancel,
                            lambda: 2 * self.n_jobs)
