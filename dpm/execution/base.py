"""What every backend shares: tasks, the per-task error boundary, the executor's contract."""
from __future__ import annotations

import hashlib
import os
import pickle
from typing import Any, Iterable, Iterator, Protocol

from ..progress import progress_bar

__all__ = ["Task", "TaskFailed", "MissingDependency", "Executor", "InProcess", "run_guarded", "task_failure", "resolve_jobs",
           "one_line", "model_payload", "worker_died"]


class Task(Protocol):
    """What an executor runs: ``label`` names the item in failures; ``run(model)`` computes."""

    label: str

    def run(self, model) -> Any: ...


class TaskFailed(Exception):
    """The result of a task that raised or whose worker process died (returned, not raised).

    Attributes
    ----------
    label : str
        The task's label (an image path, usually).
    message : str
        One line: what went wrong, naming the label.
    kind : str
        The original exception's type name, or ``"WorkerDied"``.
    """

    def __init__(self, label: str, message: str, kind: str):
        super().__init__(label, message, kind)
        self.label, self.message, self.kind = label, message, kind

    def __str__(self):
        return self.message


class MissingDependency(ImportError):
    """An optional dependency a backend needs is not installed; the message says how to install it."""


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def task_failure(task, exc: BaseException) -> TaskFailed:
    """``exc`` as the :class:`TaskFailed` of ``task``: one line naming the task's label."""
    label = str(getattr(task, "label", "task"))
    msg = one_line(exc) or type(exc).__name__
    if isinstance(exc, MemoryError):
        msg = f"out of memory{': ' + msg if msg != 'MemoryError' else ''}"
    if label not in msg:
        msg = f"{label}: {msg}"
    return TaskFailed(label, msg, type(exc).__name__)


def worker_died(task, detail: str = "") -> TaskFailed:
    """The :class:`TaskFailed` of a task whose worker process died while running it."""
    label = str(getattr(task, "label", "task"))
    return TaskFailed(label, f"{label}: the worker process died while processing it (killed, or out of "
                             f"memory){detail}", "WorkerDied")


def run_guarded(task, model):
    """Run one task; any ``Exception`` becomes a :class:`TaskFailed` (the error boundary)."""
    try:
        return task.run(model)
    except Exception as exc:  # noqa: BLE001 - the boundary: one bad item never stops the batch
        return task_failure(task, exc)


def model_payload(model) -> tuple[str, bytes]:
    """``(key, bytes)``: the model pickled once, keyed by the SHA-256 of those bytes.

    Every backend ships a model under this key, so two versions of a model
    (or two models) never share a slot in a worker.
    """
    data = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    return hashlib.sha256(data).hexdigest(), data


def resolve_jobs(n_jobs) -> int:
    """``n_jobs`` as a count of processes: ``-1`` or ``0`` mean one per core.

    Raises
    ------
    ValueError
        ``n_jobs`` is not an integer or is below ``-1``.
    """
    try:
        n = int(n_jobs)
    except (TypeError, ValueError):
        raise ValueError(f"n_jobs must be an integer (-1 for all cores), got {n_jobs!r}") from None
    if n < -1:
        raise ValueError(f"n_jobs must be a positive number of processes or -1 for all cores, got {n}")
    if n in (0, -1):
        return os.cpu_count() or 1
    return n


class Executor:
    """Runs tasks with a model; see :mod:`dpm.execution`.  Use as a context manager."""

    n_jobs = 1

    def map(self, tasks: Iterable, model=None, *, desc: str = "", unit: str = "img", total: int | None = None,
            progress: bool = False) -> Iterator[tuple[Any, Any]]:
        """Yield ``(task, result or TaskFailed)`` for each task, in input order.

        ``total`` (default ``len(tasks)`` where it has one) sizes the progress bar.
        """
        if total is None and hasattr(tasks, "__len__"):
            total = len(tasks)
        with progress_bar(total=total, desc=desc, unit=unit, enabled=progress) as bar:
            for pair in self._map(iter(tasks), model):
                bar.update(1)
                yield pair

    def _map(self, tasks: Iterator, model):
        raise NotImplementedError

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class InProcess(Executor):
    """Every task in the calling process, one after the other."""

    def _map(self, tasks, model):
        for task in tasks:
            yield task, run_guarded(task, model)
