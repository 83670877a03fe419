"""One writer for every results format: streaming, atomic, partial on interruption.

::

    with ResultsWriter("dets.csv", "csv", total=len(paths)) as out:
        for path, result in detect_files(paths, model):
            out.add(path, result)          # Detections, or the image's exception
    out.status.failures                    # [(path, one-line message)]

Results are written as they come, in the order given, to a temporary sibling
of the file (``.dets.csv.XXXX.tmp``), under an exclusive lock
(``dets.csv.lock``, see :func:`dpm._io.exclusive_lock`):

* the ``with`` block ends normally: the trailer is written, the file fsynced
  and renamed over the target in one step;
* the block raises (Ctrl+C, an error) after at least one image was handled:
  what was finished is kept, marked partial (the format's trailer: a
  ``# partial: ...`` last line for csv and voc, ``"complete": false`` for
  json), and renamed into place; the exception goes on;
* writing itself fails (disk full, ...): the temporary file is removed, the
  previous file is kept, and an ``OSError`` names the file and the remedy.

With ``resumable=True`` the run writes to ``FILE.partial`` instead and
records, every few seconds, how far it got in ``FILE.resume``
(:mod:`dpm.output.partial`); a run stopped any way (Ctrl+C, SIGKILL, a lost
machine) is continued by a writer made with ``resume=True``: it cuts
``FILE.partial`` back to the last record it knows, :attr:`ResultsWriter.resumed`
says how many images to skip, and the finished file is byte-identical to an
uninterrupted run's.

Without a path the results stream to ``sys.stdout`` (flushed after every
image), with the same header, records and trailer; so do paths that are not
regular files (``/dev/stdout``, a named pipe): they are written in place,
never replaced.  A symbolic link is followed: the file it points to is
replaced, the link stays.
"""
from __future__ import annotations

import errno
import logging
import sys
from contextlib import ExitStack
from pathlib import Path

from .._io import atomic_file, exclusive_lock
from .formats import RecordError, RunStatus, get_format
from .partial import PartialFile

__all__ = ["ResultsWriter"]

log = logging.getLogger(__name__)

_NO_SPACE = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


class ResultsWriter:
    """Write detections of many images to one results file (or stdout); see the module docstring.

    Parameters
    ----------
    path : str or Path, optional
        The results file; ``None`` writes to ``stream``.
    format : str or ResultsFormat
        ``"csv"``, ``"json"``, ``"voc"`` or ``"coco"`` (see :mod:`dpm.output.formats`), or a format object.
    total : int, optional
        Number of images the run will hand over (for the partial marker).
    stream : text file, optional
        Where to write without a path (default ``sys.stdout``).
    lock : bool, default True
        Hold ``exclusive_lock(path, what="results file")`` while writing: a
        second run on the same file fails at once naming this process.
    partial : bool, default True
        Keep what was finished, marked partial, when the run stops early;
        ``False`` keeps the previous file instead.
    resumable : bool, default False
        Write through ``FILE.partial`` and ``FILE.resume`` so that a run
        stopped any way can be continued (a regular file ``path`` only).
    resume : bool, default False
        Continue the interrupted run of ``FILE.partial`` (implies
        ``resumable``); see :attr:`resumed`.
    key : JSON-able, optional
        What identifies the run (model, options): a resume with another key
        is refused with a ``ValueError``.
    group : PartialGroup, optional
        A resumable run's state is recorded with other files' by this group
        (its owner syncs them together; :class:`~dpm.output.PerClassWriter`).

    Attributes
    ----------
    resumed : int
        Images the interrupted run already handled: the caller skips that many
        inputs (0 for a new run).
    resumed_last : str or None
        The last of them, as written (for the caller to check its inputs).
    """

    def __init__(self, path=None, format="csv", *, total=None, stream=None, lock=True, partial=True,
                 resumable=False, resume=False, key=None, group=None):
        self.path = None if path is None else Path(path)
        self.format = get_format(format)
        self.status = RunStatus(total=total)
        self._stream = stream
        self._lock = lock
        self._partial = partial
        self._stack = None
        self._out = None
        self._io_failed = False
        self._direct = self.path is None      # text written straight to a stream
        self._resume = bool(resume)
        self._resumable = bool(resumable or resume)
        self._key = key
        self._group = group
        self._journal = None                  # PartialFile of a resumable run
        self._last = None
        self.resumed, self.resumed_last = 0, None

    # -- the run ------------------------------------------------------------------------------

    def __enter__(self):
        if self._resume and (self.path is None or self._is_special()):
            raise ValueError(f"resume needs a regular results file, not {self.path or 'a stream'}")
        stack = ExitStack()
        if self.path is None:
            self._out = self._stream if self._stream is not None else sys.stdout
        elif self._is_special():
            # /dev/stdout, a named pipe...: written in place, as a stream (no rename, no lock)
            try:
                self._out = stack.enter_context(open(self.path, "w", encoding="utf-8", newline=""))
            except OSError as exc:
                raise self._io_error(exc) from None
            self._direct = True
        else:
            self._check_target()
            try:
                if self._lock:
                    stack.enter_context(exclusive_lock(self.path, what="results file"))
                if self._resumable:
                    self._journal = (PartialFile(self.path, self._key) if self._group is None
                                     else self._group.member(self.path))
                    self._restore(self._journal.open(self._resume))
                    self._out = self._journal
                else:
                    self._out = stack.enter_context(atomic_file(self.path))
            except (OSError, ValueError) as exc:
                if self._journal is not None:
                    self._journal.close()
                    self._journal = None
                stack.close()
                raise (self._io_error(exc) if isinstance(exc, OSError) else exc) from None
        self._stack = stack
        try:
            if not self.resumed:
                self._emit(self.format.begin())
        except BaseException:
            self._abandon(stack, *sys.exc_info())
            raise
        return self

    def add(self, image, result, *, image_id=None) -> bool:
        """Write one image's ``Detections``, or list it as failed if ``result`` is an exception.

        Returns ``True`` if it was written.  An image the format cannot hold
        (:class:`RecordError`, e.g. a VOC id with a space) is listed as failed.
        """
        if isinstance(result, BaseException):
            self.fail(image, result)
            return False
        try:
            self.write(image, result, image_id=image_id)
        except RecordError as exc:
            self.fail(image, exc)
            return False
        return True

    def write(self, image, detections, *, image_id=None) -> None:
        """Write one image's detections (raises :class:`RecordError`, writing nothing, if it cannot)."""
        text = self.format.record(image, image_id, detections)
        self._emit(text)
        self.status.done += 1
        self.status.written += 1
        self._handled(image)

    def fail(self, image, error) -> None:
        """List ``image`` as failed with a one-line message naming it."""
        msg = " ".join(str(error).split()) or type(error).__name__
        if str(image) not in msg:
            msg = f"{image}: {msg}"
        self.status.add_failure(image, msg)
        self.last_failure = msg
        self.status.done += 1
        self._handled(image)

    # -- resumable runs -----------------------------------------------------------------------

    last_failure = None

    def _handled(self, image) -> None:
        self._last = str(image)
        if self._journal is not None:
            self._journal.tick(self._snapshot)

    def _snapshot(self) -> dict:
        st = self.status
        return {"format": self.format.name, "done": st.done, "written": st.written, "n_failed": st.n_failed,
                "failures": [[str(i), m] for i, m in st.failures], "last": self._last,
                "format_state": self.format.state()}

    def _restore(self, state) -> None:
        if state is None:
            return
        if state.get("format") != self.format.name:
            raise ValueError(f"{self.path}: the interrupted run wrote format {state.get('format')!r}, not "
                             f"{self.format.name!r}; run with --format {state.get('format')} or start over")
        st = self.status
        st.done, st.written, st.n_failed = int(state["done"]), int(state["written"]), int(state["n_failed"])
        st.failures = [tuple(f) for f in state["failures"]][:st.max_listed]
        self.format.restore(state.get("format_state") or {})
        self.resumed, self.resumed_last = st.done, state.get("last")
        self._last = self.resumed_last
        log.info("%s: resuming after %d image(s) done (%d written, %d failed)", self.path, st.done,
                 st.written, st.n_failed)

    def __exit__(self, exc_type, exc, tb):
        stack, self._stack = self._stack, None
        if exc_type is None:
            self._finish(stack)
            return False
        keep = (self._partial and not self._io_failed
                and (self._direct or self.status.done > 0))
        if not keep:
            self._abandon(stack, exc_type, exc, tb)
            return False
        self.status.stopped = ("interrupted" if issubclass(exc_type, KeyboardInterrupt)
                               else " ".join(f"{exc_type.__name__}: {exc}".split()))
        try:
            if self._journal is not None:
                self._journal.keep(self._snapshot(), self._encode(self.format.end(self.status)))
                stack.close()
                log.warning("%s: kept; run the same command with --resume to continue it",
                            self._journal.path)
            else:
                self._finish(stack)
        except OSError as err:
            log.warning("%s", err)
            return False
        where = self.path if self.path is not None else "<stdout>"
        log.warning("%s: partial results kept: %d%s images done", where, self.status.done,
                    f" of {self.status.total}" if self.status.total is not None else "")
        return False

    # -- text to the file ---------------------------------------------------------------------

    def _is_special(self) -> bool:
        """The target exists and is not a regular file (a device, a pipe)."""
        try:
            return not self.path.resolve().is_file() and self.path.exists() and not self.path.is_dir()
        except OSError:
            return False

    def _check_target(self):
        if self.path.is_symlink():
            self.path = self.path.resolve()     # replace the file the link points to, not the link
        parent = self.path.parent if str(self.path.parent) else Path(".")
        if self.path.is_dir():
            raise ValueError(f"{self.path}: is a folder, not a results file")
        if not parent.is_dir():
            raise ValueError(f"{self.path}: cannot write results: folder {parent} does not exist")

    def _emit(self, text: str) -> None:
        if not text:
            return
        try:
            if self._direct:
                self._out.write(text)
                self._out.flush()
            else:
                self._out.write(self._encode(text))
        except OSError as exc:
            if self.path is None:
                raise
            self._io_failed = True
            raise self._io_error(exc) from None

    @staticmethod
    def _encode(text: str) -> bytes:
        return text.encode("utf-8", "surrogateescape")

    def _finish(self, stack) -> None:
        if self._journal is not None:
            try:
                self._journal.commit(self._encode(self.format.end(self.status)))
            except OSError as exc:
                self._io_failed = True
                self._abandon(stack, *sys.exc_info())
                raise self._io_error(exc) from None
            except BaseException:
                self._abandon(stack, *sys.exc_info())
                raise
            stack.close()
            return
        try:
            self._emit(self.format.end(self.status))
        except BaseException:
            self._abandon(stack, *sys.exc_info())
            raise
        try:
            stack.close()                       # fsync, rename into place, release the lock
        except OSError as exc:
            self._io_failed = True
            raise self._io_error(exc) from None

    def _abandon(self, stack, exc_type, exc, tb) -> None:
        """Remove the temporary file and release the lock; the error in hand is the one to report."""
        if self._journal is not None:
            if self.resumed:   # keep the interrupted run's work for another --resume
                self._journal.close()
            else:
                self._journal.discard()
        try:
            stack.__exit__(exc_type, exc, tb)
        except OSError:
            pass

    def _io_error(self, exc: OSError) -> OSError:
        kept = "" if self._direct else " (the previous file, if any, is kept)"
        if exc.errno in _NO_SPACE:
            return OSError(exc.errno, "no space left on device writing the results; free some space "
                           f"or choose another output file{kept}", str(self.path))
        where = (f"{exc.filename}: " if getattr(exc, "filename", None)
                 and str(exc.filename) != str(self.path) else "")
        return OSError(exc.errno, f"cannot write the results: {where}{exc.strerror or exc}{kept}",
                       str(self.path))
