"""Atomic file writes: nothing is lost or half-written if a process dies mid-write."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _fsync_dir(directory: Path) -> None:
    # Make the rename durable.  Not possible on every platform (Windows); then skip.
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


def atomic_write(path, write, *, replace=os.replace) -> Path:
    """Write ``path`` through a temporary sibling: ``write(fh)``, fsync, rename into place.

    ``write`` is a callable taking a binary file object, or the ``bytes`` to write.
    On any error (or Ctrl+C) the temporary file is removed and ``path`` keeps its
    previous content.  ``replace`` is the rename function (tests inject failures).
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            if callable(write):
                write(fh)
            else:
                fh.write(write)
            fh.flush()
            os.fsync(fh.fileno())
        replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(directory)
    return path
