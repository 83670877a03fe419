"""Models and results between the calling process and local worker processes.

A model goes to the workers through a private temporary file per content key
(:func:`dpm.execution.base.model_payload`), written once by
:class:`ModelFiles`; a worker loads a key the first time it meets it and keeps
the last few.  A result larger than a pipe's atomic write travels back through
a file in the same private folder (:func:`run_in_worker`, :func:`received`),
so a worker killed mid-send cannot leave half a message in the pool's pipe.
"""
from __future__ import annotations

import os
import pickle
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

from .base import model_payload, run_guarded

__all__ = ["ModelFiles", "run_in_worker", "received", "discard", "MODELS_PER_WORKER"]

# A worker keeps this many models (by content key).
MODELS_PER_WORKER = 4

_worker_models: "OrderedDict[str, Any]" = OrderedDict()


def _worker_model(key: str, path: str):
    model = _worker_models.get(key)
    if model is None:
        with open(path, "rb") as fh:
            model = pickle.load(fh)  # a private file this run wrote (mode 0600 in a 0700 folder)
        _worker_models[key] = model
        while len(_worker_models) > MODELS_PER_WORKER:
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


def run_in_worker(key, path, spill_dir, task):
    """What a worker process runs for a task: the model by key, the error boundary, the reply."""
    result = run_guarded(task, None if key is None else _worker_model(key, path))
    data = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
    if len(data) <= _INLINE_BYTES:
        return "inline", data
    fd, name = tempfile.mkstemp(prefix="result-", suffix=".pickle", dir=spill_dir)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return "file", name


def received(message):
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


def discard(message) -> None:
    """Drop a reply nobody will read (its map was stopped): remove its file, if it has one."""
    how, payload = message
    if how == "file":
        Path(payload).unlink(missing_ok=True)


class ModelFiles:
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
            while len(self._paths) > 2 * MODELS_PER_WORKER:  # older versions are no longer needed
                old = next(iter(self._paths))
                Path(self._paths.pop(old)).unlink(missing_ok=True)
        return key, self._paths[key]

    def close(self):
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None
        self._paths.clear()
