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

Several results files written image by image together (one per class,
:class:`dpm.output.PerClassWriter`) share one state file through a
:class:`PartialGroup`: every sync makes all their ``FILE.partial`` durable and
records their lengths at the same image in one atomic write, so a resume cuts
them all back to the same image.
"""
from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from .._io import atomic_write, fsync_dir

__all__ = ["PartialFile", "PartialGroup", "STATE_VERSION"]

log = logging.getLogger(__name__)

STATE_VERSION = 1


class PartialFile:
    """``FILE.partial`` and ``FILE.resume`` of results file ``target``; see the module docstring."""

    def __init__(self, target, key=None, *, sync_seconds: float = 2.0, sync_images: int = 1000, group=None):
        self.target = Path(target)
        self.path = self.target.with_name(self.target.name + ".partial")
        self.group = group                    # a PartialGroup syncs this file with others (its members)
        self.state_path = (self.target.with_name(self.target.name + ".resume") if group is None
                           else group.state_path)
        self.key = key if group is None else group.key
        self.snapshot = None                  # in a group: what to record of this file at the next sync
        self.sync_seconds, self.sync_images = float(sync_seconds), int(sync_images)
        self.fh = None
        self._since, self._last_sync = 0, time.monotonic()

    def open(self, resume: bool) -> dict | None:
        """Open ``FILE.partial``: the interrupted run's state if ``resume`` and there is one, else ``None``."""
        state = (self.group.member_state(self) if self.group is not None else self._load()) if resume else None
        if state is not None:
            self.fh = open(self.path, "r+b")
            self.fh.truncate(int(state["bytes"]))
            self.fh.seek(0, os.SEEK_END)
            return state
        if resume and self.group is None:
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
        state = read_state(self.state_path, self.key, self.path)
        check_length(state, self.path, self.state_path)
        return state

    def write(self, data: bytes) -> None:
        self.fh.write(data)

    def tick(self, snapshot) -> None:
        """One more image handled: sync if it is time (``snapshot()`` gives the state to record).

        In a group the group decides when to sync (:meth:`PartialGroup.tick`).
        """
        if self.group is not None:
            self.snapshot = snapshot
            return
        self._since += 1
        if self._since >= self.sync_images or time.monotonic() - self._last_sync >= self.sync_seconds:
            self.sync(snapshot())

    def durable(self) -> int:
        """Flush and fsync ``FILE.partial``; its length."""
        self.fh.flush()
        os.fsync(self.fh.fileno())
        return self.fh.tell()

    def sync(self, state: dict) -> None:
        """Make ``FILE.partial`` durable up to here, then record ``state`` with that length."""
        state = {"version": STATE_VERSION, "key": self.key, "bytes": self.durable(), **state}
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
        if self.group is None:
            self.state_path.unlink(missing_ok=True)
        fsync_dir(self.target.parent if str(self.target.parent) else Path("."))
        if self.group is not None:
            self.group.committed(self)

    def keep(self, state: dict, trailer: bytes) -> None:
        """Stop early: sync (a later ``--resume`` continues here) and write ``FILE`` marked partial.

        In a group the group records the state (:meth:`PartialGroup.sync`, by its owner).
        """
        if self.group is None:
            self.sync(state)
            size = self.fh.tell()
        else:
            size = self.durable()
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


class PartialGroup:
    """One state file for several ``FILE.partial`` written together (one per class); see the module docstring.

    The group's owner makes each member with :meth:`member` (in a fixed order),
    hands every member its images as a plain :class:`PartialFile` would get
    them, and calls :meth:`tick` once after each image, when every member has
    had it: only then is it time to sync, so the recorded state is the same
    image for all members.  ``snapshot()`` (given to :meth:`tick`) is the
    owner's own state, recorded alongside (:meth:`owner_state` after a resume).
    """

    def __init__(self, state_path, key=None, *, sync_seconds: float = 2.0, sync_images: int = 1000):
        self.state_path = Path(state_path)
        self.key = key
        self.sync_seconds, self.sync_images = float(sync_seconds), int(sync_images)
        self.members = []
        self._loaded = None
        self._committed = 0
        self._since, self._last_sync = 0, time.monotonic()

    def member(self, target) -> PartialFile:
        """A :class:`PartialFile` of ``target`` whose state this group records."""
        m = PartialFile(target, group=self)
        self.members.append(m)
        return m

    def _state(self):
        if self._loaded is None:
            self._loaded = (read_state(self.state_path, self.key, self.state_path)
                            if self.state_path.is_file() else {})
            if not self._loaded:
                log.warning("%s: no interrupted run to resume (it is absent): starting from the first image",
                            self.state_path)
        return self._loaded

    def member_state(self, member: PartialFile) -> dict | None:
        """The recorded state of ``member`` (``None``: nothing to resume)."""
        state = self._state().get("members", {}).get(member.target.name)
        if state is None or not member.path.is_file():
            return None
        check_length(state, member.path, self.state_path)
        return state

    def owner_state(self) -> dict | None:
        """The owner's state recorded with the members' (``None``: nothing to resume)."""
        return self._state().get("owner")

    def tick(self, snapshot) -> None:
        """Every member has had one more image: sync if it is time."""
        self._since += 1
        if self._since >= self.sync_images or time.monotonic() - self._last_sync >= self.sync_seconds:
            self.sync(snapshot())

    def sync(self, owner: dict) -> None:
        """Make every member durable up to here, then record all their states (and ``owner``) at once."""
        if any(m.snapshot is None or m.fh is None or m.fh.closed for m in self.members):
            return
        members = {m.target.name: {"bytes": m.durable(), **m.snapshot()} for m in self.members}
        state = {"version": STATE_VERSION, "key": self.key, "members": members, "owner": owner}
        atomic_write(self.state_path, json.dumps(state).encode("utf-8"))
        self._since, self._last_sync = 0, time.monotonic()

    def committed(self, member: PartialFile) -> None:
        """``member`` is renamed into place; the state goes once all are."""
        self._committed += 1
        if self._committed == len(self.members):
            self.state_path.unlink(missing_ok=True)


def read_state(state_path: Path, key, what: Path) -> dict:
    """The JSON state of an interrupted run, checked for its version and ``key`` (``what``: for messages)."""
    try:
        state = json.loads(state_path.read_text(encoding="utf-8"))
        ok = isinstance(state, dict) and state.get("version") == STATE_VERSION
    except (OSError, ValueError) as exc:
        raise ValueError(f"{state_path}: cannot resume from it ({exc}); remove it and the .partial file(s) "
                         "next to it to start over") from None
    if not ok:
        raise ValueError(f"{state_path}: written by another version; remove it and the .partial file(s) next "
                         "to it to start over")
    if state.get("key") != key:
        raise ValueError(f"{what}: the interrupted run used other options or another model "
                         f"({_difference(state.get('key'), key)}); run with those, or without "
                         "--resume to start over")
    return state


def check_length(state: dict, path: Path, state_path: Path) -> None:
    """``ValueError`` unless ``path`` holds at least the bytes ``state`` records."""
    try:
        ok = 0 <= int(state["bytes"]) <= path.stat().st_size
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{state_path}: cannot resume from it ({exc}); remove {path.name} and "
                         f"{state_path.name} to start over") from None
    if not ok:
        raise ValueError(f"{state_path}: does not match {path.name} (written by another "
                         f"version, or the file was cut); remove both to start over")


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

