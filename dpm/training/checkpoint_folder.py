"""The files of a checkpoint folder: its key file, the stages' manifests and the data files they name.

The layout and the rules (a key that must match, atomic commits, orphans
removed) are described in :mod:`dpm.training.checkpoint`, whose
:class:`~dpm.training.checkpoint.CheckpointStore` saves and loads stages
through a :class:`CheckpointFolder`.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

from .._io import atomic_write, exclusive_lock, fsync_dir
from .checkpoint_keys import CHECKPOINT_FORMAT, CHECKPOINT_FORMAT_VERSION, describe_key_difference

__all__ = ["CheckpointFolder", "checkpoint_lock", "make_directory"]

logger = logging.getLogger("dpm.training.checkpoint")


def checkpoint_lock(directory):
    """Hold the checkpoint folder ``directory`` (created if missing) for one training run.

    A context manager; a second run on the same folder fails at once with
    :class:`dpm._io.LockedError` naming the process that holds it.
    """
    directory = Path(directory)
    make_directory(directory)
    return exclusive_lock(directory, what="the training checkpoint folder")


def make_directory(directory: Path, probe: bool = False) -> None:
    """Create the checkpoint folder (with ``probe``: and write a file in it); errors name it and the remedy."""
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"checkpoint directory {directory} exists and is not a directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        if probe:
            fd, name = tempfile.mkstemp(prefix=".tmp-probe-", dir=directory)
            os.close(fd)
            os.unlink(name)
    except OSError as exc:
        err = OSError(f"cannot write checkpoints to {directory}: {exc.strerror or exc} "
                      "(choose a writable folder with cache_dir)")
        err.errno = exc.errno
        raise err from None


class CheckpointFolder:
    """The files of one checkpoint folder, valid for one key (its ``hash``)."""

    def __init__(self, directory: Path, key: dict, hash: str):
        self.directory = directory
        self.key = key
        self.hash = hash

    def read_key_file(self):
        """The key file's content; None if there is none, {} if it is unreadable or not a dpm key file."""
        path = self.directory / "key.json"
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != CHECKPOINT_FORMAT:
                return {}
            return data
        except (OSError, ValueError, AttributeError):
            return {}

    def write_key_file(self) -> None:
        """Write this folder's key file (atomically)."""
        data = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_FORMAT_VERSION, "hash": self.hash,
                "key": self.key}
        text = json.dumps(data, sort_keys=True, indent=1).encode("utf-8")
        atomic_write(self.directory / "key.json", lambda fh: fh.write(text))

    def open(self, restart: bool) -> str:
        """Start using the folder: keep checkpoints made with the same key, else (or with ``restart``)
        delete them. Returns the status: 'new', 'resumed', 'mismatch' or 'restarted'."""
        old = self.read_key_file()
        has_files = any(self.owned_files())
        if restart:
            if has_files:
                logger.info("checkpoints in %s: restarting, %d stage(s) discarded", self.directory,
                            len(self.manifests()))
            self.delete_owned()
            self.write_key_file()
            return "restarted" if has_files else "new"
        if old is None and not has_files:
            self.write_key_file()
            return "new"
        if old and old.get("hash") == self.hash and old.get("version") == CHECKPOINT_FORMAT_VERSION:
            return "resumed"
        if not old:
            why = "its key file is missing or unreadable"
        elif old.get("version") != CHECKPOINT_FORMAT_VERSION:
            why = f"they use checkpoint format version {old.get('version')}, this dpm writes " \
                  f"{CHECKPOINT_FORMAT_VERSION}"
        else:
            why = "they were made with different data or options (" + \
                  describe_key_difference(old.get("key", {}), self.key) + ")"
        logger.warning("checkpoints in %s are not reused: %s; starting over", self.directory, why)
        self.delete_owned()
        self.write_key_file()
        return "mismatch"

    def owned_files(self):
        """The files of the folder that checkpoints own (key file, manifests, data and temporary files)."""
        for p in self.directory.iterdir():
            n = p.name
            if p.is_file() and (n == "key.json" or (n.startswith("stage-") and n.endswith(".json"))
                                or n.startswith("data-") or n.startswith(".tmp-")
                                or n.startswith(".data-")):
                yield p

    def delete_owned(self) -> None:
        """Delete every file the checkpoints own."""
        for p in list(self.owned_files()):
            try:
                p.unlink()
            except FileNotFoundError:
                pass
        fsync_dir(self.directory)

    def manifest_path(self, stage: str) -> Path:
        """Where the manifest of ``stage`` is."""
        return self.directory / f"stage-{stage}.json"

    def read_manifest(self, path: Path):
        """The manifest at ``path``, or None (logged) if it is unreadable, not a manifest or of another key."""
        try:
            m = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            logger.warning("checkpoint %s is unreadable (%s); ignoring it", path, exc)
            return None
        if not isinstance(m, dict) or m.get("format") != CHECKPOINT_FORMAT:
            logger.warning("checkpoint %s is not a dpm checkpoint manifest; ignoring it", path)
            return None
        if m.get("key_hash") != self.hash:
            logger.warning("checkpoint %s belongs to another run (key differs); ignoring it", path)
            return None
        return m

    def manifests(self) -> list[dict]:
        """The valid manifests, oldest save first."""
        out = []
        for p in sorted(self.directory.glob("stage-*.json")):
            m = self.read_manifest(p)
            if m is not None:
                out.append(m)
        out.sort(key=lambda m: m.get("sequence", 0))
        return out

    def referenced(self) -> set[str]:
        """Names of the data files that some manifest (of any key) names."""
        names = set()
        for p in self.directory.glob("stage-*.json"):
            try:
                m = json.loads(p.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(m, dict):
                names.update(m.get("models", {}).values())
                if m.get("arrays"):
                    names.add(m["arrays"])
        return names

    def remove_orphans(self) -> None:
        """Delete data files no manifest names, and temporary files (left by a crash)."""
        keep = self.referenced()
        for p in self.directory.iterdir():
            if ((p.name.startswith("data-") and p.name not in keep) or p.name.startswith(".tmp-")
                    or p.name.startswith(".data-")):
                try:
                    p.unlink()
                except OSError:
                    pass
