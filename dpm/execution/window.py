"""Futures in input order through a bounded window, and any ``concurrent.futures.Executor`` as a backend.

:func:`in_order` is the loop the Dask backend and :class:`FuturesExecutor`
share: it reads tasks lazily, keeps at most ``limit()`` of them running (and
at most ``ahead x limit`` not yet yielded), yields results in input order as
soon as the next one is ready, and cancels what is outstanding when it stops
early (Ctrl+C, an error, the caller closing the iterator).

A backend whose workers can die blames a task by raising :class:`RunAlone`
from its ``result`` function; :func:`in_order` then isolates the suspects, as
the local backend does: it submits nothing new, lets the other tasks in flight
finish, and runs each suspect again with nothing else of the map in flight,
one after the other, before it goes on.  A suspect that runs alone cannot be
blamed for another task's fault, so its verdict is its own.
"""
from __future__ import annotations

import concurrent.futures as cf
import logging
from collections import deque

from .base import Executor, run_guarded, task_failure

__all__ = ["in_order", "RunAlone", "FuturesExecutor"]

log = logging.getLogger(__name__)


class RunAlone(Exception):
    """Raised by ``result(task, future, alone=False)``: the task's worker died; run it again alone."""


_PENDING = object()


class _Slot:
    __slots__ = ("task", "future", "value", "alone")

    def __init__(self, task, future):
        self.task, self.future, self.value, self.alone = task, future, _PENDING, False


def in_order(tasks, submit, result, wait_first, cancel, limit, ahead: int = 4):
    """Yield ``(task, result)`` in input order.

    Parameters
    ----------
    tasks : iterator
        Read lazily.
    submit : callable
        ``submit(task) -> future`` (an object with ``done()``).
    result : callable
        ``result(task, future, alone)``: the task's result or its ``TaskFailed``; never
        raises for a task's own failure.  With ``alone=False`` it may raise
        :class:`RunAlone` to have the task run again with nothing else in flight
        (then it is called once more, for that run, with ``alone=True``).
    wait_first : callable
        ``wait_first(futures)`` returns once at least one of them is done.
    cancel : callable
        ``cancel(futures)`` for the futures still outstanding when the loop stops early.
    limit : callable
        ``limit() -> int``: how many futures may be running at once (read at each refill).
    """
    window: deque = deque()   # _Slot, in input order, not yet yielded
    exhausted = False

    def settle():
        # read every finished future: a suspect found anywhere in the window stops the refill
        for s in window:
            if s.future is None or not s.future.done():
                continue
            future, s.future = s.future, None
            try:
                s.value = result(s.task, future, s.alone)
            except RunAlone:
                if s.alone:
                    raise RuntimeError("result() raised RunAlone for a task that ran alone") from None
                s.alone = True   # waits, without a future, for its turn alone
                log.warning("%s: its worker died; run again alone", getattr(s.task, "label", "a task"))

    def fill():
        nonlocal exhausted
        running = sum(1 for s in window if s.future is not None)
        suspect = next((s for s in window if s.alone and s.future is None and s.value is _PENDING), None)
        if suspect is not None:
            if running == 0:   # nothing else of this map is in flight: the next suspect, alone
                suspect.future = submit(suspect.task)
            return
        cap = max(1, int(limit()))
        while not exhausted and running < cap and len(window) < ahead * cap:
            try:
                task = next(tasks)
            except StopIteration:
                exhausted = True
                break
            window.append(_Slot(task, submit(task)))
            running += 1

    try:
        while True:
            settle()
            fill()
            if window and window[0].value is not _PENDING:
                s = window.popleft()
                yield s.task, s.value
                continue
            if not window:
                return
            wait_first([s.future for s in window if s.future is not None])
    finally:
        outstanding = [s.future for s in window if s.future is not None]
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
        def result(task, future, alone):
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
