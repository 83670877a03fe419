"""The on-disk state of a resumable results file: ``FILE.partial`` and ``FILE.resume``.

A resumable run writes its results to ``FILE.partial`` (the final text,
header and records in input order, without the trailer) and, every
``sync_seconds`` or ``sync_images`` images, fsyncs it and replaces
``FILE.resume`` (atomically) with a small JSON state: the byte length of
``FILE.partial`` at that instant, the images handled so far, the last image's
name, the counts and the first failures, the format's own state, and the
run's key (model and options: a resume with other options is refused).

After a crash or a SIGKILL ``FILE.partial`` may hold more than the state
says (records written after the last sync); a resume cuts it back to the
recorded length, skips the images the state counts, and appends.  Since
records are written in input order and are a function of the image alone,
the finished file is byte-identical to an uninterrupted run's.  On success
``FILE.partial`` is fsynced and renamed over ``FILE`` and the state removed.
"""
from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from .._io import atomic_write, fsync_dir

__all__ = ["PartialFile", "STATE_VERSION"]

log = logging.getLogger(__name__)

STATE_VERSION = 1


class PartialFile:
    """``FILE.partial`` and ``FILE.resume`` of results file ``target``; see the module docstring."""

    def __init__(self, target, key=None, *, sync_seconds: float = 2.0, sync_images: int = 1000):
        self.target = Path(target)
        self.path = self.target.with_name(self.target.name + ".partial")
        self.state_path = self.target.with_name(self.target.name + ".resume")
        self.key = key
        self.sync_seconds, self.sync_images = float(sync_seconds), int(sync_images)
        self.fh = None
        self._since, self._last_sync = 0, time.monotonic()

    def open(self, resume: bool) -> dict | None:
        """Open ``FILE.partial``: the interrupted run's state if ``resume`` and there is one, else ``None``."""
        state = self._load() if resume else None
        if state is not None:
            self.fh = open(self.path, "r+b")
            self.fh.truncate(int(state["bytes"]))
            self.fh.seek(0, os.SEEK_END)
            return state
        if resume:
            log.warning("%s: no interrupted run to resume (%s is absent): starting from the first image",
                        self.target, self.path.name)
        elif self.path.exists():
            log.warning("%s: discarding the interrupted run's %s (give --resume to continue it instead)",
                        self.target, self.path.name)
        self.state_path.unlink(missing_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self.fh = os.fdopen(fd, "wb")
        return None

    def _load(self):
        if not (self.path.is_file() and self.state_path.is_file()):
            return None
        try:
            state = json.loads(self.state_path.read_text(encoding="utf-8"))
            size = self.path.stat().st_size
            ok = state.get("version") == STATE_VERSION and 0 <= int(state["bytes"]) <= size
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{self.state_path}: cannot resume from it ({exc}); remove {self.path.name} and "
                             f"{self.state_path.name} to start over") from None
        if not ok:
            raise ValueError(f"{self.state_path}: does not match {self.path.name} (written by another "
                             f"version, or the file was cut); remove both to start over")
        if state.get("key") != self.key:
            raise ValueError(f"{self.path}: the interrupted run used other options or another model "
                             f"({_difference(state.get('key'), self.key)}); run with those, or without "
                             "--resume to start over")
        return state

    def write(self, data: bytes) -> None:
        self.fh.write(data)

    def tick(self, snapshot) -> None:
        """One more image handled: sync if it is time (``snapshot()`` gives the state to record)."""
        self._since += 1
        if self._since >= self.sync_images or time.monotonic() - self._last_sync >= self.sync_seconds:
            self.sync(snapshot())

    def sync(self, state: dict) -> None:
        """Make ``FILE.partial`` durable up to here, then record ``state`` with that length."""
        self.fh.flush()
        os.fsync(self.fh.fileno())
        state = {"version": STATE_VERSION, "key": self.key, "bytes": self.fh.tell(), **state}
        atomic_write(self.state_path, json.dumps(state).encode("utf-8"))
        self._since, self._last_sync = 0, time.monotonic()

    def commit(self, trailer: bytes) -> None:
        """Finish: the trailer, fsync, rename over ``FILE``; the state is removed."""
        self.fh.write(trailer)
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.fh.close()
        mask = os.umask(0)
        os.umask(mask)
        try:
            os.chmod(self.path, 0o666 & ~mask)
        except OSError:
            pass
        os.replace(self.path, self.target)
        self.state_path.unlink(missing_ok=True)
        fsync_dir(self.target.parent if str(self.target.parent) else Path("."))

    def keep(self, state: dict, trailer: bytes) -> None:
        """Stop early: sync (a later ``--resume`` continues here) and write ``FILE`` marked partial."""
        self.sync(state)
        size = self.fh.tell()
        self.fh.close()
        with open(self.path, "rb") as src:
            def copy(dst):
                _copy_bytes(src, dst, size)
                dst.write(trailer)
            atomic_write(self.target, copy)

    def close(self) -> None:
        """Close ``FILE.partial``, keeping it and its last recorded state as they are."""
        if self.fh is not None:
            try:
                self.fh.close()
            except OSError:
                pass

    def discard(self) -> None:
        """Remove ``FILE.partial`` and its state (a write error, or nothing done)."""
        self.close()
        self.path.unlink(missing_ok=True)
        self.state_path.unlink(missing_ok=True)


def _copy_bytes(src, dst, n: int) -> None:
    left = n
    while left > 0:
        chunk = src.read(min(left, 1 << 20))
        if not chunk:
            break
        dst.write(chunk)
        left -= len(chunk)


def _difference(old, new) -> str:
    if isinstance(old, dict) and isinstance(new, dict):
        diff = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
        if diff:
            return ", ".join(f"{k}: {old.get(k)!r} then, {new.get(k)!r} now" for k in diff)
    return f"{old!r} then, {new!r} now"

