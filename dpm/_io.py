"""Files that survive faults: atomic writes and exclusive locks.

* :func:`atomic_write` writes through a temporary sibling and renames it into
  place, so nothing is ever half-written if a process dies mid-write;
  :func:`atomic_file` is the same as a ``with`` block, for files written as
  a run goes (results files).
* :func:`exclusive_lock` keeps two runs from writing the same output at once
  and says which process holds it.
"""
from __future__ import annotations

import errno
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_write", "atomic_file", "exclusive_lock", "LockedError", "fsync_dir"]


def fsync_dir(directory: Path) -> None:
    """Make renames in ``directory`` durable (skipped where the platform cannot: Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)



def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_file(path, *, replace=os.replace):
    """Open a temporary sibling of ``path`` for binary writing; rename it into place on success.

    The ``with`` block writes to the yielded file object.  When the block ends
    normally the file is flushed, fsynced, given the permissions a newly
    created file would have (``0666`` less the umask, not the temporary
    file's private ``0600``) and renamed over ``path``.  When it raises (or on
    Ctrl+C) the temporary file is removed and ``path`` keeps its previous
    content.  ``replace`` is the rename function (tests inject failures).
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.chmod(tmp, 0o666 & ~_umask())
        except OSError:
            pass
        replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(directory)


def atomic_write(path, write, *, replace=os.replace) -> Path:
    """Write ``path`` through a temporary sibling: ``write(fh)``, fsync, rename into place.

    ``write`` is a callable taking a binary file object, or the ``bytes`` to write.
    See :func:`atomic_file`: on any error (or Ctrl+C) ``path`` keeps its
    previous content.
    """
    with atomic_file(path, replace=replace) as fh:
        if callable(write):
            write(fh)
        else:
            fh.write(write)
    return Path(path)


class LockedError(RuntimeError):
    """Another process holds the lock of an output."""


def _try_lock(fd: int) -> bool:
    if os.name == "nt":  # pragma: no cover - Windows
        import msvcrt
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    import fcntl
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return False
        raise


@contextmanager
def exclusive_lock(target, *, what: str = "output"):
    """Hold an exclusive lock on ``target`` (a file or folder) for the ``with`` block.

    The lock is the file ``<target>.lock`` (inside ``target`` when it is a
    folder), holding the owner's process id.  The operating system releases it
    when the owner exits, however it exits, so a killed run never leaves a
    stale lock behind.

    Raises
    ------
    LockedError
        Another process holds the lock; the message names it and the target.
    """
    target = Path(target)
    lock_path = target / ".lock" if target.is_dir() else target.with_name(target.name + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        if not _try_lock(fd):
            try:
                holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() if hasattr(os, "pread") else ""
            except OSError:
                holder = ""
            who = f"process {holder}" if holder.isdigit() else "another process"
            raise LockedError(f"{target}: {what} is in use by {who} (lock file {lock_path}); "
                              "wait for it to finish or choose another output")
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode("ascii"))
        os.fsync(fd)
        yield lock_path
    finally:
        os.close(fd)  # releases the lock; the file stays (removing it would race another opener)
