"""The local backend: ``LocalProcesses`` (``n_jobs=N``), the calling process and ``N - 1`` worker processes.

The workers are spawned once and kept for the executor's life; models and
large results travel through private files (:mod:`dpm.execution.transport`).

How the workers are kept busy
-----------------------------
* **The pool holds at most ``workers + 1`` tasks**: one running per worker
  and one waiting, which is what the process pool's call queue holds.  A task
  there can no longer be cancelled, so nothing cancellable ever waits inside
  the pool, and the executor never cancels a future: Python 3.11's pool,
  when a worker dies, tries to mark a cancelled future that is still in its
  queue as broken, fails, and hangs.
* **The backlog is on the caller's side**: a map reads its tasks ahead (at
  most ``8 x n_jobs`` not yet yielded: eight per process that runs tasks)
  into a queue of its own.
* **A done-callback refills the pool**: when a task finishes, the pool's own
  thread submits the next task of the backlog at once, so a worker never
  waits for the calling process, however long that takes over a result
  (training appends examples) or over a task of its own.
* **The caller works too**: when the next result in input order is not
  ready, the calling process runs the *last* task of the backlog itself (the
  one the workers would reach last).

A worker process that dies breaks the pool: the pool is replaced, and the
tasks that were in it (the one that killed its worker, and its innocent
neighbours, which the pool fails with it) become suspects.  Each suspect runs
again alone, with nothing else of its map in the pool; a suspect whose worker
dies twice while it runs alone fails with a one-line reason, and only it.
"""
from __future__ import annotations

import functools
import logging
import threading
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context

from .base import Executor, run_guarded, task_failure, worker_died
from .environment import init_worker, worker_environment
from .transport import ModelFiles, discard, received, run_in_worker

__all__ = ["LocalProcesses"]

log = logging.getLogger(__name__)

# Tasks a map reads ahead of the last result it yielded, per process that runs
# tasks (the caller too): room for the workers to go on while the caller holds
# the next result in order, or works on a long task of its own.
_AHEAD = 8
# Runs of a task alone in a fresh worker that may end with the worker's death
# before the task is reported as failed.
_SOLO_ATTEMPTS = 2
# Pools that may break, one after the other, before their first task is
# taken: then workers die as they start.
_START_ATTEMPTS = 5
# Seconds between the caller's checks while it waits (callbacks wake it sooner).
_WAIT = 0.5

# Where an entry is.
_BACKLOG, _CALLER, _POOL, _DONE, _DIED, _SUSPECT = range(6)


class _Entry:
    """One task of a map, from the moment it is read until it is yielded."""

    __slots__ = ("task", "state", "future", "generation", "reply", "result", "deaths")

    def __init__(self, task):
        self.task, self.state, self.future, self.generation = task, _BACKLOG, None, -1
        self.reply = None      # the finished future, read by the caller when it yields the entry
        self.result = None     # what the caller computed itself
        self.deaths = 0        # worker deaths it was in the pool for


class _Feed:
    """What one map has in and for the pool.  Guarded by the executor's lock."""

    __slots__ = ("args", "backlog", "suspects", "alone", "in_pool", "triage", "stopped")

    def __init__(self, args):
        self.args = args          # (model key, model file, folder for large results)
        self.backlog = deque()    # read, neither submitted nor taken by the caller; input order
        self.suspects = deque()   # in the pool when it broke: each runs again alone
        self.alone = None         # the suspect running alone now
        self.in_pool = 0
        self.triage = False       # its pool broke: it submits nothing until the caller has sorted it
        self.stopped = False


class LocalProcesses(Executor):
    """The calling process and ``n_jobs - 1`` worker processes (started on first use, kept).

    See the module docstring for how tasks reach the workers.
    """

    def __init__(self, n_jobs: int):
        self.n_jobs = max(2, int(n_jobs))
        self.workers = self.n_jobs - 1
        self._pool = None
        self._generation = 0       # counts the pools: a future of an old pool concerns that pool only
        self._in_pool = 0          # this executor's futures in the current pool, not yet finished
        self._broken = False       # the current pool is broken (a worker died)
        self._start_failures = 0   # submits in a row that found a broken pool
        self._lock = threading.Condition()
        self._feeds: list[_Feed] = []
        self._models = ModelFiles()

    # -- the pool side (any thread) -----------------------------------------------------------

    def _refill(self, caller: bool = False):
        """Submit what may go to the pool now.  ``caller``: the map's own thread, which may start a pool."""
        submitted = []
        with self._lock:
            if self._pool is None and caller and not self._broken and self._feeds:
                with worker_environment():
                    self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=get_context("spawn"),
                                                     initializer=init_worker)
            room = self.workers + 1
            for feed in self._feeds:
                while self._pool is not None and not (self._broken or feed.triage or feed.stopped):
                    if feed.alone is not None:
                        break
                    if self._in_pool >= room:
                        break
                    if feed.suspects:
                        if feed.in_pool:
                            break
                        queue = feed.suspects
                    elif feed.backlog:
                        queue = feed.backlog
                    else:
                        break
                    e = queue[0]
                    try:
                        with worker_environment():   # a worker may start during the submit
                            future = self._pool.submit(run_in_worker, *feed.args, e.task)
                    except (BrokenProcessPool, OSError, RuntimeError) as exc:
                        # a worker died while idle, or while the pool was starting another
                        self._pool_broke()
                        if caller:
                            self._start_failures += 1
                            if self._start_failures > _START_ATTEMPTS:
                                raise RuntimeError(f"worker processes die as soon as they start ({exc}); "
                                                   "run with n_jobs=1 to see why") from None
                        break
                    self._start_failures = 0
                    queue.popleft()
                    if queue is feed.suspects:
                        feed.alone = e
                    e.state, e.future, e.generation = _POOL, future, self._generation
                    feed.in_pool += 1
                    self._in_pool += 1
                    submitted.append((feed, e, future, self._generation))
        for feed, e, future, generation in submitted:
            future.add_done_callback(functools.partial(self._done, feed, e, generation))

    def _done(self, feed, e, generation, future):
        """A future of this executor finished (called in the pool's thread): note it, refill the pool."""
        drop = False
        with self._lock:
            if generation == self._generation:
                self._in_pool -= 1
            if e.future is not future:     # given up on with its pool; it ran again meanwhile
                drop = True
            else:
                e.future = None
                feed.in_pool -= 1
                if feed.alone is e:
                    feed.alone = None
                if not future.cancelled() and isinstance(future.exception(), BrokenProcessPool):
                    e.state = _DIED
                    if generation == self._generation:
                        self._pool_broke()
                elif feed.stopped:
                    drop = True
                else:
                    e.reply, e.state = future, _DONE
            self._lock.notify_all()
        if drop:
            _drop(future)
        self._refill()

    def _pool_broke(self):
        self._broken = True
        for feed in self._feeds:
            feed.triage = True
        self._lock.notify_all()

    # -- the caller's side --------------------------------------------------------------------

    def _recover(self, feed, window):
        """After a worker died: a new pool (once), and this map's lost tasks become suspects."""
        with self._lock:
            if self._broken:
                self._retire_pool(wait=False)
            if not feed.triage:
                return
            feed.triage = False
            lost = [e for e in window
                    if e.state == _DIED or (e.state == _POOL and e.generation < self._generation)]
            solo = len(lost) == 1 and lost[0].deaths > 0
            retry = []
            for e in lost:
                if e.future is not None:
                    e.future = None
                    feed.in_pool -= 1
                if feed.alone is e:
                    feed.alone = None
                if solo:
                    e.deaths += 1
                    if e.deaths > _SOLO_ATTEMPTS:
                        e.result, e.state = worker_died(e.task), _DONE
                        continue
                else:
                    e.deaths = max(e.deaths, 1)
                e.state = _SUSPECT
                retry.append(e)
            if retry:
                log.warning("a worker process died; %d task(s) run again, each alone", len(retry))
            for e in reversed(retry):
                feed.suspects.appendleft(e)

    def _map(self, tasks, model):
        key, path = self._models.publish(model)
        feed = _Feed((key, path, self._models.directory))
        window: deque[_Entry] = deque()   # entries in input order, not yet yielded
        ahead = _AHEAD * self.n_jobs
        exhausted = False
        with self._lock:
            self._feeds.append(feed)
        try:
            while True:
                while not exhausted and len(window) < ahead:   # read ahead, lazily
                    try:
                        e = _Entry(next(tasks))
                    except StopIteration:
                        exhausted = True
                        break
                    window.append(e)
                    with self._lock:
                        feed.backlog.append(e)
                    self._refill(caller=True)
                self._recover(feed, window)
                self._refill(caller=True)
                if window and window[0].state == _DONE:
                    e = window.popleft()
                    yield e.task, _result(e)
                    continue
                if not window:
                    return
                steal = None
                with self._lock:
                    if window[0].state != _DONE and not (self._broken or feed.triage):
                        if feed.backlog and not feed.suspects and feed.alone is None:
                            steal = feed.backlog.pop()   # the task the workers would reach last
                            steal.state = _CALLER
                        else:
                            self._lock.wait(_WAIT)
                if steal is not None:
                    steal.result = run_guarded(steal.task, model)
                    steal.state = _DONE
        finally:
            with self._lock:
                feed.stopped = True
                self._feeds.remove(feed)
                feed.backlog.clear()
                feed.suspects.clear()
                unread = [e.reply for e in window if e.reply is not None]
            for future in unread:
                _drop(future)

    def _retire_pool(self, wait: bool):
        """Forget the current pool (its futures' callbacks no longer count) and shut it down."""
        with self._lock:
            pool, self._pool = self._pool, None
            self._generation += 1
            self._in_pool, self._broken = 0, False
        if pool is not None:
            pool.shutdown(wait=wait)

    def close(self):
        self._retire_pool(wait=True)
        self._models.close()


def _result(e: _Entry):
    """The entry's result or its TaskFailed, read from its worker's reply if it has one."""
    future, e.reply = e.reply, None
    if future is None:
        return e.result
    if future.cancelled():
        return task_failure(e.task, RuntimeError("cancelled (the pool was shut down)"))
    try:
        return received(future.result())
    except Exception as exc:  # noqa: BLE001 - e.g. a task or result that cannot be pickled
        return task_failure(e.task, exc)


def _drop(future):
    """Forget a finished future's reply (its map stopped, or it ran again)."""
    if future.cancelled() or future.exception() is not None:
        return
    try:
        discard(future.result())
    except OSError as exc:
        log.debug("cannot remove a result file: %s", exc)
