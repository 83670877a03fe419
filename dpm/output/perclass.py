"""VOC devkit results for several classes: one ``comp3_det_<split>_<class>.txt`` per class in a folder.

:class:`PerClassWriter` takes the same calls as :class:`~dpm.output.ResultsWriter`
(``with``, :meth:`~PerClassWriter.add`, ``status``) with per-image results that
are dicts of class name to Detections (:func:`dpm.detection.multiclass.detect`); each
class's file is a :class:`~dpm.output.ResultsWriter` of its own (atomic,
locked, kept and marked partial on interruption).  A resumable writer
records the state of all its files together (:class:`~dpm.output.partial.PartialGroup`,
in ``folder/comp3_det_<split>.resume``): after a stop of any kind, a writer made
with ``resume=True`` continues every file from the same image.
"""
from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

from .formats import RunStatus
from .partial import PartialGroup
from .writer import ResultsWriter

__all__ = ["PerClassWriter", "voc_results_name"]


def voc_results_name(split: str, class_name: str) -> str:
    """The devkit's results file name, ``comp3_det_<split>_<class>.txt`` (competition 3: own training data)."""
    for what, value in (("split", split), ("class_name", class_name)):
        if not value or any(c.isspace() or c in "/\\" for c in value):
            raise ValueError(f"{what}={value!r} cannot be part of a results file name (empty, whitespace "
                             "or a slash)")
    return f"comp3_det_{split}_{class_name}.txt"


class PerClassWriter:
    """Write each class's detections to ``folder/comp3_det_<split>_<class>.txt`` (VOC format).

    ``folder`` is created if missing; a ``folder`` that is a file raises
    ``ValueError``.  ``classes`` are the class names, in order.  ``resumable``,
    ``resume`` and ``key`` are those of :class:`~dpm.output.ResultsWriter`, for
    all the files at once; :attr:`resumed` and :attr:`resumed_last` likewise.
    """

    def __init__(self, folder, classes, *, split: str = "test", total=None, resumable=False, resume=False,
                 key=None):
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise ValueError(f"{self.folder}: is a file, not a folder; --format voc with several models writes "
                             "one results file per class into a folder (give a folder with -o)")
        self.classes = list(classes)
        if len(set(self.classes)) != len(self.classes):
            raise ValueError(f"classes: a class is given twice ({', '.join(self.classes)}); one file per class")
        self.paths = {c: self.folder / voc_results_name(split, c) for c in self.classes}
        self.status = RunStatus(total=total)
        self._writers = {}
        self._stack = None
        self._resume = bool(resume)
        self._group = (PartialGroup(self.folder / f"comp3_det_{split}.resume", key)
                       if resumable or resume else None)
        self._in_image = False
        self.resumed, self.resumed_last = 0, None
        self.last_failure = None

    def __enter__(self):
        self.folder.mkdir(parents=True, exist_ok=True)
        with ExitStack() as stack:
            for c in self.classes:
                self._writers[c] = stack.enter_context(
                    ResultsWriter(self.paths[c], "voc", total=self.status.total, resume=self._resume,
                                  resumable=self._group is not None, group=self._group))
            if self._resume:
                self._restore()
            self._stack = stack.pop_all()
        return self

    def _restore(self) -> None:
        done = {(w.resumed, w.resumed_last) for w in self._writers.values()}
        owner = self._group.owner_state()
        if len(done) != 1 or (owner is None) != (next(iter(done))[0] == 0):
            raise ValueError(f"{self._group.state_path}: the files of the interrupted run do not match it; "
                             "start over without --resume")
        self.resumed, self.resumed_last = next(iter(done))
        if owner is not None:
            st = self.status
            st.done, st.written, st.n_failed = int(owner["done"]), int(owner["written"]), int(owner["n_failed"])
            st.failures = [tuple(f) for f in owner["failures"]][:st.max_listed]

    def _snapshot(self) -> dict:
        st = self.status
        return {"done": st.done, "written": st.written, "n_failed": st.n_failed,
                "failures": [[str(i), m] for i, m in st.failures]}

    def add(self, image, result, *, image_id=None) -> bool:
        """Write one image's ``{class: Detections}``, or list it as failed (an exception)."""
        self._in_image = True
        ok = self._add(image, result, image_id)
        self._in_image = False
        if self._group is not None:
            self._group.tick(self._snapshot)
        return ok

    def _add(self, image, result, image_id) -> bool:
        oks = []
        for c, w in self._writers.items():
            part = result if isinstance(result, BaseException) else result.get(c)
            if part is None:
                part = ValueError(f"{image}: no detections of class {c!r} in the result")
            oks.append(w.add(image, part, image_id=image_id))
        self.status.done += 1
        if all(oks):
            self.status.written += 1
            return True
        self.last_failure = next(w.last_failure for w, ok in zip(self._writers.values(), oks) if not ok)
        self.status.add_failure(image, self.last_failure)
        return False

    def __exit__(self, exc_type, exc, tb):
        stack, self._stack = self._stack, None
        if exc_type is not None and self._group is not None and not self._in_image and self.status.done:
            try:    # every file has the same images: a --resume continues from here
                self._group.sync(self._snapshot())
            except OSError:
                pass
        if exc_type is not None and self.status.stopped is None:
            self.status.stopped = ("interrupted" if issubclass(exc_type, KeyboardInterrupt)
                                   else " ".join(f"{exc_type.__name__}: {exc}".split()))
        return stack.__exit__(exc_type, exc, tb)
