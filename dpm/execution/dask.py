"""The Dask distributed backend: ``DaskExecutor(client)``.

Tasks run on the workers of a ``distributed.Client``; the guarantees are the
local backends' (:mod:`dpm.execution`):

* **Model once per content**: the model is pickled once, keyed by the SHA-256
  of its bytes (:func:`~dpm.execution.base.model_payload`), and submitted as
  one small task ``dpm-model-<sha256>`` that unpickles it; every task of the
  map depends on it, so a worker receives the model once (from the worker
  that made it, or a peer) and keeps it while tasks need it.  The bytes stay
  with the scheduler as that task's definition, so a model lost with a dead
  worker is simply made again.
* **Process-wide settings**: before its first task, a worker applies dpm's
  allocator settings (:func:`~dpm.execution.environment.init_dask_worker`).
* **One error boundary per task**: each task runs inside
  :func:`~dpm.execution.base.run_guarded` on the worker, so whatever it raises
  (an image the worker cannot read, a decoder error, ``MemoryError``) comes
  back as that task's :class:`~dpm.execution.TaskFailed`.
* **Worker loss, suspects isolated**: Dask itself runs again, elsewhere, the
  tasks of a worker that died (and recomputes results it held and the model).
  Dask blames every task a dying worker held, running or queued there, and
  gives up on a task after ``distributed.scheduler.allowed-failures`` (3 by
  default) such deaths with ``KilledWorker``: an innocent task queued next to
  one that kills its worker can be given up on too.  So ``KilledWorker`` only
  makes a task a suspect: the executor submits nothing new, lets the other
  tasks in flight finish, and submits each suspect again with nothing else of
  the map on the cluster, one after the other
  (:class:`~dpm.execution.window.RunAlone`).  An innocent suspect then
  completes; one that gets ``KilledWorker`` again while alone ends as a
  ``WorkerDied`` :class:`~dpm.execution.TaskFailed`, for that task only (a
  batch that dies alone runs again task by task, each alone, so that only the
  task that kills its worker fails).
* **Batches of short tasks**: a Dask task costs the client and the scheduler
  a few milliseconds of CPU (submitting, scheduling, reading its result back),
  which on a small cluster is taken from the workers.  So consecutive tasks
  travel together, as one Dask task of about ``batch_seconds`` (0.25 s by
  default): each map starts with one task per Dask task and sizes its batches
  from the seconds per task its workers report, at most :data:`MAX_BATCH`
  tasks, and so that a batch's results come to about :data:`BATCH_BYTES` at
  most (from the mean size of a result so far: a mining task that returns
  thousands of hard negatives travels alone).  Each task of a batch still has
  its own error boundary and its own result; ``batch_seconds=0`` sends every
  task alone.  Detection of 768x576 frames with the person model (about 70 ms
  each) goes in batches of 4, and 2 workers then give 1.74 to 1.85 times the
  images per second of 1 (1.58 to 1.75 times one by one; docs/cluster.md).
* **Bounded, in input order**: tasks are read lazily and submitted in input
  order; at most ``tasks_per_thread x`` (the cluster's worker threads) Dask
  tasks are in flight and at most four times that not yet yielded; results
  come back in input order and are released on the cluster as soon as they are
  read.
* **Cancellation**: Ctrl+C (or closing the result iterator) cancels the
  outstanding futures.

``distributed`` is imported only when this backend is used; without it,
:func:`import_distributed` raises :class:`~dpm.execution.MissingDependency`
saying how to install it.
"""
from __future__ import annotations

import errno
import itertools
import logging
import pickle
import threading
import time
import uuid
from pathlib import Path

from .base import Executor, MissingDependency, model_payload, one_line, run_guarded, task_failure, worker_died
from .environment import init_dask_worker
from .window import RunAlone, in_order

__all__ = ["DaskExecutor", "connect", "import_distributed", "is_dask_client", "CONNECT_TIMEOUT"]

log = logging.getLogger(__name__)

# Seconds to wait for a scheduler before giving up with one line.
CONNECT_TIMEOUT = 5.0
# How often the executor asks the scheduler how many worker threads there are.
_REFRESH_SECONDS = 2.0
# The most tasks sent as one Dask task.
MAX_BATCH = 32
# About the most bytes of results a batch is sized for (from the mean result so far).
BATCH_BYTES = 16 * 2 ** 20


def import_distributed():
    """The ``distributed`` package, or :class:`MissingDependency` naming the remedy."""
    try:
        import distributed
    except ImportError:
        raise MissingDependency("Dask is not installed: pip install 'dpm[distributed]'") from None
    return distributed


def is_dask_client(obj) -> bool:
    """Whether ``obj`` is a ``distributed.Client`` (without importing Dask when it is not loaded)."""
    import sys

    mod = sys.modules.get("distributed")
    return mod is not None and isinstance(obj, mod.Client)


def connect(address: str | None = None, *, scheduler_file=None, timeout: float = CONNECT_TIMEOUT):
    """A ``distributed.Client`` of the scheduler at ``address`` or named in ``scheduler_file``.

    With neither, Dask's own setting ``scheduler-address`` (the environment
    variable ``DASK_SCHEDULER_ADDRESS``) is used.  The client is not made
    Dask's default client.

    Raises
    ------
    MissingDependency
        Dask is not installed.
    FileNotFoundError
        ``scheduler_file`` does not exist.
    ValueError
        No scheduler given at all.
    OSError
        The scheduler cannot be reached within ``timeout`` seconds.
    """
    distributed = import_distributed()
    import dask

    if scheduler_file is not None:
        if not Path(scheduler_file).is_file():
            raise FileNotFoundError(errno.ENOENT, "no such scheduler file (the file 'dask scheduler "
                                    "--scheduler-file FILE' writes)", str(scheduler_file))
        where = f"the scheduler of {scheduler_file}"
    else:
        address = address or dask.config.get("scheduler-address", None)
        if not address:
            raise ValueError("no Dask scheduler given: pass address or scheduler_file "
                             "(or set DASK_SCHEDULER_ADDRESS)")
        where = f"the Dask scheduler at {address}"
    try:
        client = distributed.Client(address, scheduler_file=None if scheduler_file is None else str(scheduler_file),
                                    timeout=timeout, set_as_default=False)
    except (OSError, ValueError) as exc:
        why = "" if "timed out" in str(exc).lower() else f" ({one_line(exc)})"
        raise OSError(f"cannot reach {where} within {timeout:g} s{why}; is 'dask scheduler' running there, "
                      "and reachable from this machine?") from None
    n = sum(client.nthreads().values())
    log.info("connected to %s: %d worker(s), %d thread(s)", client.scheduler.address,
             len(client.nthreads()), n)
    if n == 0:
        log.warning("the scheduler %s has no workers yet: tasks wait until one connects",
                    client.scheduler.address)
    return client


def run_batch_on_dask_worker(tasks, model):
    """What a Dask worker runs: the process-wide settings once, then each task in its error boundary.

    Returns ``(seconds, nbytes, results)``: the time the tasks took and about
    how many bytes their results take (which size the map's next batches),
    and the results in order.
    """
    init_dask_worker()
    start = time.perf_counter()
    results = [run_guarded(task, model) for task in tasks]
    return time.perf_counter() - start, _size_of(results), results


def _size_of(obj) -> int:
    """About the bytes ``obj`` takes pickled, without copying its arrays (0 if it cannot be pickled)."""
    buffers = []
    try:
        head = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
    except Exception:  # noqa: BLE001 - Dask will report it; the size only sizes batches
        return 0
    return len(head) + sum(memoryview(b).nbytes for b in buffers)


class _Batch(tuple):
    """Consecutive tasks of a map that travel as one Dask task."""

    __slots__ = ()

    @property
    def label(self) -> str:
        first = str(getattr(self[0], "label", "a task"))
        if len(self) == 1:
            return first
        return f"{first} and the {len(self) - 1} task(s) after it"


class _Pace:
    """Batch sizes from the seconds per task and the result bytes that a map's workers report."""

    __slots__ = ("target", "seconds", "nbytes", "count")

    def __init__(self, target: float):
        self.target, self.seconds, self.nbytes, self.count = target, 0.0, 0, 0

    def add(self, seconds: float, nbytes: int, count: int):
        self.seconds += max(0.0, seconds)
        self.nbytes += max(0, nbytes)
        self.count += count

    def size(self) -> int:
        if self.target <= 0 or self.count == 0:
            return 1
        per_task = self.seconds / self.count
        n = MAX_BATCH if per_task <= 0 else round(self.target / per_task)
        if self.nbytes > 0:
            n = min(n, BATCH_BYTES * self.count // self.nbytes)
        return max(1, min(MAX_BATCH, n))


class DaskExecutor(Executor):
    """Run tasks on a Dask cluster through ``client``; see the module docstring.

    Parameters
    ----------
    client : distributed.Client
        Kept open by :meth:`close` unless ``own_client``.
    tasks_per_thread : int, default 2
        Dask tasks in flight per worker thread of the cluster.
    batch_seconds : float, default 0.25
        Consecutive tasks travel together as one Dask task of about this many
        seconds (see the module docstring); 0 sends every task alone.
    own_client : bool, default False
        Close ``client`` in :meth:`close` (the executor made it, e.g. :meth:`connect`).
    """

    def __init__(self, client, *, tasks_per_thread: int = 2, batch_seconds: float = 0.25,
                 own_client: bool = False):
        if not is_dask_client(client):
            raise ValueError(f"client must be a distributed.Client, got {type(client).__name__}")
        if int(tasks_per_thread) < 1:
            raise ValueError(f"tasks_per_thread must be at least 1, got {tasks_per_thread}")
        if not batch_seconds >= 0:
            raise ValueError(f"batch_seconds must be 0 or more, got {batch_seconds!r}")
        self.client = client
        self.tasks_per_thread = int(tasks_per_thread)
        self.batch_seconds = float(batch_seconds)
        self._own = own_client
        self._threads, self._asked = 1, float("-inf")

    @classmethod
    def connect(cls, address: str | None = None, *, scheduler_file=None, timeout: float = CONNECT_TIMEOUT,
                **kwargs) -> "DaskExecutor":
        """An executor on its own client of a running scheduler (see :func:`connect`)."""
        return cls(connect(address, scheduler_file=scheduler_file, timeout=timeout), own_client=True, **kwargs)

    @property
    def n_jobs(self) -> int:
        return self._cluster_threads()

    def _cluster_threads(self) -> int:
        now = time.monotonic()
        if now - self._asked > _REFRESH_SECONDS:
            try:
                self._threads = max(1, sum(self.client.nthreads().values()))
            except Exception as exc:  # noqa: BLE001 - keep the last count; results will tell
                log.debug("cannot ask the scheduler for its workers: %s", exc)
            self._asked = now
        return self._threads

    def _map(self, tasks, model):
        distributed = import_distributed()
        client = self.client
        model_ref = None
        finished = threading.Event()   # set whenever a future of this map is done
        pace = _Pace(self.batch_seconds)
        if model is not None:
            key, data = model_payload(model)
            model_ref = client.submit(pickle.loads, data, key=f"dpm-model-{key}", pure=False)

        def batches():
            while True:
                batch = _Batch(itertools.islice(tasks, pace.size()))
                if not batch:
                    return
                yield batch

        def submit(batch):
            nonlocal model_ref
            if model_ref is not None and model_ref.status == "error":
                # the model's own task was blamed for worker deaths (it was on the dying worker
                # too often): make it again under a fresh key, or every task would inherit that
                model_ref.release()
                model_ref = client.submit(pickle.loads, data, key=f"dpm-model-{key}-{uuid.uuid4().hex[:8]}",
                                          pure=False)
            future = client.submit(run_batch_on_dask_worker, tuple(batch), model_ref, pure=False,
                                   key=f"dpm-{type(batch[0]).__name__}-{uuid.uuid4().hex}")
            # one callback per future (each costs a coroutine and a thread hand-off in the client)
            future.add_done_callback(lambda _: finished.set())
            return future

        def failed(batch, exc):
            if client.status not in ("running", "connecting"):
                raise OSError(f"lost the connection to the Dask scheduler {client.scheduler.address} "
                              f"({client.status})") from None
            return [task_failure(task, exc) for task in batch]

        def one_by_one(batch):
            # the batch killed its worker while alone: each of its tasks runs alone, so only the
            # task that kills its worker fails
            log.warning("%s: their worker died while they ran alone; each runs again alone", batch.label)
            results = []
            for task in batch:
                future = submit(_Batch((task,)))
                try:
                    results.extend(result(_Batch((task,)), future, alone=True))
                finally:
                    if not future.done():
                        cancel([future])
            return results

        def result(batch, future, alone):
            try:
                seconds, nbytes, results = future.result()
            except distributed.KilledWorker as exc:
                # Dask blames every task a dying worker held: only a run alone convicts
                log.debug("%s", exc)
                if not alone:
                    raise RunAlone from None
                if len(batch) > 1:
                    return one_by_one(batch)
                return [worker_died(batch[0], ", also when it ran alone on the cluster")]
            except Exception as exc:  # noqa: BLE001 - cancelled, lost, cannot be read back
                return failed(batch, exc)
            finally:
                future.release()
            pace.add(seconds, nbytes, len(batch))
            return results

        def wait_first(futures):
            # distributed.wait would use Dask's default client, which need not be this one
            while True:
                finished.clear()   # before the check: a future done after it sets it again
                if any(f.done() for f in futures):
                    return
                finished.wait(0.5)

        def cancel(futures):
            try:
                client.cancel(futures)
            except Exception as exc:  # noqa: BLE001 - the connection may be gone already
                log.debug("cannot cancel %d task(s): %s", len(futures), exc)

        try:
            for batch, results in in_order(batches(), submit, result, wait_first, cancel,
                                           lambda: self.tasks_per_thread * self._cluster_threads()):
                yield from zip(batch, results)
        finally:
            if model_ref is not None:
                model_ref.release()

    def close(self):
        if self._own:
            self.client.close()
