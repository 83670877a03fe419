"""VOC devkit results for several classes: one ``comp3_det_<split>_<class>.txt`` per class in a folder.

:class:`PerClassWriter` takes the same calls as :class:`~dpm.output.ResultsWriter`
(``with``, :meth:`~PerClassWriter.add`, ``status``) with per-image results that
are dicts of class name to Detections (:func:`dpm.detection.multiclass.detect`); each
class's file is a :class:`~dpm.output.ResultsWriter` of its own (atomic,
locked, kept and marked partial on interruption).
"""
from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

from .formats import RunStatus
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
    ``ValueError``.  ``classes`` are the class names, in order.
    """

    def __init__(self, folder, classes, *, split: str = "test", total=None):
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise ValueError(f"{self.folder}: is a file, not a folder; --format voc with several models writes "
                             "one results file per class into a folder (give a folder with -o)")
        self.classes = list(classes)
        self.paths = {c: self.folder / voc_results_name(split, c) for c in self.classes}
        self.status = RunStatus(total=total)
        self._writers = {}
        self._stack = None

    def __enter__(self):
        self.folder.mkdir(parents=True, exist_ok=True)
        with ExitStack() as stack:
            for c in self.classes:
                self._writers[c] = stack.enter_context(
                    ResultsWriter(self.paths[c], "voc", total=self.status.total))
            self._stack = stack.pop_all()
        return self

    def add(self, image, result, *, image_id=None) -> bool:
        """Write one image's ``{class: Detections}``, or list it as failed (an exception)."""
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
        self.status.failures.append(next(w.status.failures[-1] for w, ok in zip(self._writers.values(), oks)
                                         if not ok))
        return False

    def __exit__(self, exc_type, exc, tb):
        stack, self._stack = self._stack, None
        if exc_type is not None and self.status.stopped is None:
            self.status.stopped = ("interrupted" if issubclass(exc_type, KeyboardInterrupt)
                                   else " ".join(f"{exc_type.__name__}: {exc}".split()))
        return stack.__exit__(exc_type, exc, tb)
