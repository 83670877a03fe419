"""Atomic, keyed checkpoints for resumable training.

voc-release3.1's ``pascal_train.m`` cached each stage in ``cachedir`` with
``try load(...) catch ... save(...)``: a crash during ``save`` left a broken
file, and a cache made with other data or options was reused silently (its
README says to delete the cache files "when changing dataset/code").  A
:class:`CheckpointStore` fixes both:

* **Key.**  The store records a *key* (dataset path and fingerprint, class, all
  options, seed, ...; any JSON-able dict) plus this format's version in
  ``key.json``.  Opening a directory whose key differs logs which fields differ
  and starts over (its checkpoints are deleted), so a checkpoint made with
  other data or options is never reused.  Each stage's manifest also carries
  the key's hash and is ignored if it does not match.
* **Atomicity.**  A stage's payload (models in the model's own ``.npz`` format,
  optional numpy arrays, a small JSON state) is written to new data files, each
  fsynced, and committed by atomically renaming its manifest
  (``stage-<name>.json``) into place; the directory is fsynced after each
  rename.  A crash at any point leaves either the previous checkpoint of that
  stage or the new one, never a mix.  Unreferenced data files left by a crash
  are removed on the next open or save.  Nothing is pickled.

Layout of the directory::

    key.json                    {"format", "version", "hash", "key"}
    stage-<name>.json           manifest: key hash, sequence, time, state, file names
    data-<token>-model-<n>.npz  a Model (dpm.model.save_model format)
    data-<token>-arrays.npz     named numpy arrays (np.savez, no object arrays)
"""
from __future__ import annotations

import json
import logging
import os
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np

from .._io import atomic_write, fsync_dir
from ..files import read_npz
from ..model import Model, load_model, save_model
from .checkpoint_folder import CheckpointFolder, checkpoint_lock, make_directory
from .checkpoint_keys import CHECKPOINT_FORMAT, CHECKPOINT_FORMAT_VERSION, canonical_json, key_hash

__all__ = ["Checkpoint", "CheckpointStore", "checkpoint_lock"]  # checkpoint_lock: from checkpoint_folder

logger = logging.getLogger(__name__)

_STAGE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_MODEL_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

# Indirection so tests can simulate a crash right before a commit.
_replace = os.replace


def _atomic_write(path: Path, write) -> None:
    """Write a file through a temporary sibling, fsync, and rename into place."""
    atomic_write(path, write, replace=_replace)  # _replace looked up now: tests inject crashes


@dataclass
class Checkpoint:
    """What one stage saved.

    Attributes
    ----------
    stage : str
    models : dict of str to Model
        In the order they were saved.
    state : dict
        The JSON state (plain Python types).
    arrays : dict of str to ndarray
    sequence : int
        Save order within the store (1 = first).
    created : float
        Unix time of the save.
    """

    stage: str
    models: dict = field(default_factory=dict)
    state: dict = field(default_factory=dict)
    arrays: dict = field(default_factory=dict)
    sequence: int = 0
    created: float = 0.0

    @property
    def model(self) -> Model | None:
        """The first model, or None."""
        return next(iter(self.models.values()), None)


class CheckpointStore:
    """Stage checkpoints in one directory, valid for one key only.

    Parameters
    ----------
    directory : path
        Created if missing.
    key_fields : mapping
        JSON-able description of everything the checkpoints depend on: dataset
        path and fingerprint
        (:func:`~dpm.training.checkpoint_keys.dataset_fingerprint`), class,
        all options, seed, code format versions...
    restart : bool
        Delete every existing checkpoint first (``--restart``).

    Attributes
    ----------
    directory : Path
    key : dict
    hash : str
        :func:`~dpm.training.checkpoint_keys.key_hash` of the key.
    status : str
        ``'new'`` (empty directory), ``'resumed'`` (same key, checkpoints may
        exist), ``'mismatch'`` (another key's checkpoints were discarded) or
        ``'restarted'`` (``restart=True`` discarded them).

    Raises
    ------
    ValueError
        ``directory`` exists and is not a directory, or the key is not JSON-able.
    OSError
        The directory cannot be created or written; the message names it.
    """

    def __init__(self, directory, key_fields: Mapping, *, restart: bool = False):
        self.directory = Path(directory)
        try:
            self.key = json.loads(canonical_json(dict(key_fields)))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"checkpoint key is not JSON-serialisable: {exc}") from None
        self.hash = key_hash(self.key)
        make_directory(self.directory, probe=True)
        self._files = CheckpointFolder(self.directory, self.key, self.hash)
        self.status = self._files.open(restart)
        self._files.remove_orphans()

    # -- public API -------------------------------------------------------------------------

    def stages(self) -> list[str]:
        """Names of the saved stages, oldest first."""
        return [m["stage"] for m in self._files.manifests()]

    def has(self, stage: str) -> bool:
        """True if ``stage`` has a valid checkpoint."""
        self._check_stage(stage)
        p = self._files.manifest_path(stage)
        return p.exists() and self._files.read_manifest(p) is not None

    @staticmethod
    def _check_stage(stage: str) -> None:
        if not isinstance(stage, str) or not _STAGE_RE.match(stage):
            raise ValueError(f"invalid stage name {stage!r}: use letters, digits, '_', '.', '-' "
                             "(at most 100, starting with a letter or digit)")

    def save(self, stage: str, models=None, state: Mapping | None = None,
             arrays: Mapping | None = None) -> Checkpoint:
        """Atomically save a stage's checkpoint, replacing any earlier one of that stage.

        Parameters
        ----------
        stage : str
            Letters, digits, ``_``, ``.``, ``-``.
        models : Model, sequence of Model, or mapping of str to Model, optional
            Saved with :func:`dpm.model.save_model`; a sequence is named
            ``"0"``, ``"1"``...
        state : mapping, optional
            Small JSON-able state (counters, timings, random-generator state...).
        arrays : mapping of str to ndarray, optional
            Numeric arrays (no object dtype).

        Returns
        -------
        Checkpoint
            What :meth:`load` will return.
        """
        self._check_stage(stage)
        named = self._named_models(models)
        arrs = self._check_arrays(arrays)
        try:
            state = json.loads(canonical_json(dict(state or {})))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"checkpoint state of stage {stage!r} is not JSON-serialisable: {exc}") from None
        token = f"{int(time.time() * 1000):x}{secrets.token_hex(4)}"
        files = {}
        for name, model in named.items():
            fname = f"data-{token}-model-{name}.npz"
            save_model(model, self.directory / fname)
            files[name] = fname
        arrays_file = None
        if arrs:
            arrays_file = f"data-{token}-arrays.npz"
            _atomic_write(self.directory / arrays_file, lambda fh: np.savez(fh, **arrs))
        fsync_dir(self.directory)
        previous = self._files.manifests()
        sequence = max((m.get("sequence", 0) for m in previous), default=0) + 1
        created = time.time()
        manifest = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_FORMAT_VERSION, "key_hash": self.hash,
                    "stage": stage, "sequence": sequence, "created": created, "models": files,
                    "arrays": arrays_file, "state": state}
        text = json.dumps(manifest, sort_keys=True, indent=1).encode("utf-8")
        _atomic_write(self._files.manifest_path(stage), lambda fh: fh.write(text))  # the commit
        self._files.remove_orphans()
        logger.debug("checkpoint %r saved in %s", stage, self.directory)
        return Checkpoint(stage=stage, models=dict(named), state=state, arrays=dict(arrs),
                          sequence=sequence, created=created)

    def load(self, stage: str) -> Checkpoint | None:
        """The checkpoint of ``stage``, or None if there is none (or it is damaged).

        A damaged checkpoint (missing or unreadable data file) is logged and
        treated as absent.
        """
        self._check_stage(stage)
        path = self._files.manifest_path(stage)
        if not path.exists():
            return None
        m = self._files.read_manifest(path)
        if m is None:
            return None
        return self._load_manifest(m, path)

    def latest(self) -> Checkpoint | None:
        """The most recently saved valid checkpoint, or None."""
        for m in reversed(self._files.manifests()):
            ck = self._load_manifest(m, self._files.manifest_path(m["stage"]))
            if ck is not None:
                return ck
        return None

    def remove(self, stage: str) -> None:
        """Delete the checkpoint of ``stage`` (its manifest first, then its data files); no-op if absent."""
        self._check_stage(stage)
        try:
            self._files.manifest_path(stage).unlink()
        except FileNotFoundError:
            return
        fsync_dir(self.directory)
        self._files.remove_orphans()

    def clear(self, *, remove_directory: bool = False) -> None:
        """Delete every checkpoint (``--restart``); the store stays usable.

        With ``remove_directory``, the store's own files and the folder itself
        (if nothing else is left in it) are removed: the store is then unusable.
        """
        self._files.delete_owned()
        if not remove_directory:
            self._files.write_key_file()
            return
        for name in (".lock",):
            try:
                (self.directory / name).unlink()
            except OSError:
                pass
        try:
            self.directory.rmdir()
        except OSError:
            pass

    def disk_usage(self) -> int:
        """Bytes taken by the store's files."""
        return sum(p.stat().st_size for p in self._files.owned_files())

    # -- helpers ----------------------------------------------------------------------------

    def _load_manifest(self, m: dict, path: Path) -> Checkpoint | None:
        try:
            models = {name: load_model(self.directory / fname) for name, fname in m.get("models", {}).items()}
            arrays = {}
            if m.get("arrays"):
                arrays = read_npz(self.directory / m["arrays"], what="checkpoint arrays file")
        except Exception as exc:  # noqa: BLE001 - any damage (a bad zip, a lying header) means: not there
            logger.warning("checkpoint %s is damaged (%s: %s); ignoring it", path, type(exc).__name__, exc)
            return None
        return Checkpoint(stage=m["stage"], models=models, state=m.get("state", {}), arrays=arrays,
                          sequence=int(m.get("sequence", 0)), created=float(m.get("created", 0.0)))

    @staticmethod
    def _named_models(models) -> dict:
        if models is None:
            return {}
        if isinstance(models, Model):
            models = {"0": models}
        elif not isinstance(models, Mapping):
            models = {str(i): m for i, m in enumerate(models)}
        out = {}
        for name, m in models.items():
            if not isinstance(m, Model):
                raise ValueError(f"checkpoint model {name!r} is a {type(m).__name__}, not a dpm Model")
            if not _MODEL_RE.match(str(name)):
                raise ValueError(f"invalid checkpoint model name {name!r}: use letters, digits, '_', '-'")
            out[str(name)] = m
        return out

    @staticmethod
    def _check_arrays(arrays) -> dict:
        out = {}
        for name, a in (arrays or {}).items():
            a = np.asarray(a)
            if a.dtype.hasobject:
                raise ValueError(f"checkpoint array {name!r} has object dtype; only numeric arrays are saved")
            if not isinstance(name, str) or not name or "/" in name:
                raise ValueError(f"invalid checkpoint array name {name!r}")
            out[name] = a
        return out

    def __repr__(self):
        return f"CheckpointStore({str(self.directory)!r}, status={self.status!r}, stages={self.stages()})"
