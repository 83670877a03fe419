"""Results formats: how one image's detections become text.

A format turns a run into three pieces of text: :meth:`~ResultsFormat.begin`
(a header), one :meth:`~ResultsFormat.record` per image, in input order, and
:meth:`~ResultsFormat.end` (a trailer saying whether the run finished).  The
writer (:class:`dpm.output.ResultsWriter`) only moves that text to a file or
a stream; adding a format (a COCO results list, say) is one more class here.

An image whose detections a format cannot represent raises
:class:`RecordError` from :meth:`~ResultsFormat.record` before anything of it
is written: the caller lists it as a failed image and goes on.
"""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["RecordError", "RunStatus", "ResultsFormat", "CsvFormat", "JsonFormat", "VocFormat", "CocoFormat",
           "FORMATS", "PARTIAL_MARK", "get_format", "format_number", "check_voc_image_id", "per_class"]

BOX_CONVENTION = "1-based inclusive pixels [x1, y1, x2, y2]; components 1-based"
CSV_HEADER = ("image", "score", "x1", "y1", "x2", "y2", "component", "class")
PARTIAL_MARK = "# partial:"


class RecordError(ValueError):
    """One image's detections cannot be written in the chosen format."""


@dataclass
class RunStatus:
    """What a trailer needs to know about the run.

    ``total`` is the number of images the run was given (``None``: unknown);
    ``done`` the images handled (written or failed); ``n_failed`` the failed
    ones and ``failures`` the ``(image, message)`` pairs of the first
    ``max_listed`` of them (a stream of millions of images keeps a bounded
    list); ``stopped`` the reason the run stopped early (``None``: it finished).
    """

    total: int | None = None
    done: int = 0
    written: int = 0
    failures: list = field(default_factory=list)
    stopped: str | None = None
    n_failed: int = 0
    max_listed: int = 1000

    @property
    def complete(self) -> bool:
        return self.stopped is None

    @property
    def not_listed(self) -> int:
        """Failures counted but not kept in :attr:`failures`."""
        return self.n_failed - len(self.failures)

    def add_failure(self, image, message: str) -> None:
        """Count a failure; keep its ``(image, message)`` if fewer than ``max_listed`` are kept."""
        self.n_failed += 1
        if len(self.failures) < self.max_listed:
            self.failures.append((image, message))

    def partial_line(self) -> str:
        """The one-line partial marker of the text formats (without newline)."""
        of = f" of {self.total}" if self.total is not None else ""
        return (f"{PARTIAL_MARK} {self.done}{of} images done ({self.written} written, "
                f"{self.n_failed} failed); the run stopped early: {self.stopped}")


def format_number(x) -> str:
    """Shortest text that reads back to the same float64; integers without ``.0``."""
    x = float(x)
    if x.is_integer() and abs(x) < 2 ** 53:
        return str(int(x))
    return repr(x)


def check_voc_image_id(image_id: str, image=None) -> str:
    """Return ``image_id`` if the devkit's results format can hold it, else raise :class:`RecordError`.

    The format separates fields by whitespace, so an id may not be empty nor
    contain whitespace (there is no quoting the devkit could read back).
    """
    image_id = str(image_id)
    if not image_id or any(c.isspace() for c in image_id):
        src = f"{image}: " if image is not None and str(image) != image_id else ""
        raise RecordError(f"{src}image id {image_id!r} is empty or contains whitespace, which the VOC "
                          "devkit's results format cannot hold; rename the file or use the csv or "
                          "json format")
    return image_id


def per_class(dets) -> list:
    """The Detections of one image's result: one (a Detections) or several (a dict by class)."""
    return list(dets.values()) if isinstance(dets, Mapping) else [dets]


def _class_of(dets) -> str:
    return getattr(dets, "class_name", "") or ""


def _finite_arrays(image, dets):
    scores = np.asarray(dets.scores, dtype=np.float64).reshape(-1)
    boxes = np.asarray(dets.boxes, dtype=np.float64).reshape(-1, 4)
    if len(scores) != len(boxes):
        raise RecordError(f"{image}: {len(boxes)} boxes but {len(scores)} scores")
    if not (np.isfinite(scores).all() and np.isfinite(boxes).all()):
        raise RecordError(f"{image}: detections with a score or box that is NaN or infinite "
                          "(is the model broken?)")
    return scores, boxes


class ResultsFormat:
    """Base of the formats; see the module docstring."""

    name = ""
    suffix = ""

    def begin(self) -> str:
        return ""

    def record(self, image, image_id, dets) -> str:
        raise NotImplementedError

    def end(self, status: RunStatus) -> str:
        return "" if status.complete else status.partial_line() + "\n"

    def state(self) -> dict:
        """What the format remembers between records (JSON-able), for resuming a run."""
        return {}

    def restore(self, state: dict) -> None:
        """Take up :meth:`state` of an interrupted run."""


class CsvFormat(ResultsFormat):
    """``image,score,x1,y1,x2,y2,component,class``, one row per detection.

    With several models, the rows of an image come class by class, in the
    models' order, each class in suppression order.

    The image is always quoted (RFC 4180: commas, quotes and newlines in file
    names read back exactly with any CSV reader), numbers never, so a line
    starting with ``#`` can only be the partial marker.
    """

    name, suffix = "csv", ".csv"

    def begin(self) -> str:
        return ",".join(CSV_HEADER) + "\n"

    def record(self, image, image_id, dets) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n")
        for d in per_class(dets):
            scores, boxes = _finite_arrays(image, d)
            comps = np.asarray(d.components).reshape(-1)
            for s, b, c in zip(scores.tolist(), boxes.tolist(), comps.tolist()):
                w.writerow([str(image), s, *b, int(c) + 1, _class_of(d)])
        return buf.getvalue()


class VocFormat(ResultsFormat):
    """The VOC devkit's ``image_id score x1 y1 x2 y2`` lines (``comp3_det_<split>_<class>.txt``).

    The image id is the file's stem unless given.  Refused (:class:`RecordError`):
    ids with whitespace (see :func:`check_voc_image_id`) and a second input
    file with the same id (``a/x.jpg`` and ``b/x.png`` would both be ``x``).
    """

    name, suffix = "voc", ".txt"

    def __init__(self):
        self._sources = {}

    def record(self, image, image_id, dets) -> str:
        if image_id is None:
            image_id = Path(image).stem
        image_id = check_voc_image_id(image_id, image)
        earlier = self._sources.setdefault(image_id, str(image))
        if earlier != str(image):
            raise RecordError(f"{image}: image id {image_id!r} is already used by {earlier} in this "
                              "VOC results file; rename one of them or use the csv or json format")
        classes = per_class(dets)
        if len(classes) != 1:
            raise RecordError(f"{image}: a VOC results file holds one class, got {len(classes)}; write one "
                              "file per class (dpm.output.PerClassWriter, dpm-detect --format voc -o FOLDER)")
        scores, boxes = _finite_arrays(image, classes[0])
        return "".join(f"{image_id} {format_number(s)} {' '.join(format_number(v) for v in b)}\n"
                       for s, b in zip(scores.tolist(), boxes.tolist()))

    def state(self) -> dict:
        return {"sources": self._sources}

    def restore(self, state: dict) -> None:
        self._sources = dict(state.get("sources", {}))


class JsonFormat(ResultsFormat):
    """One JSON document, streamed: ``{"box_convention", "images": [...], "complete", ...}``.

    Each image is one line of the ``images`` list; the trailer gives
    ``complete`` (``false`` when the run stopped early), ``n_images`` (the
    images the run was given), ``n_done``, ``n_written`` and ``failures``
    (``[{"image", "error"}]``).
    """

    name, suffix = "json", ".json"

    def __init__(self):
        self._first = True

    def begin(self) -> str:
        return "{" + f'"box_convention": {json.dumps(BOX_CONVENTION)},\n"images": [\n'

    def record(self, image, image_id, dets) -> str:
        classes = per_class(dets)
        h, w = (int(v) for v in classes[0].image_shape[:2])
        found = []
        for d in classes:
            scores, boxes = _finite_arrays(image, d)
            found.extend({
                "score": scores[i].item(),
                "box": boxes[i].tolist(),
                "component": int(d.components[i]) + 1,
                "class": _class_of(d),
                "root_box": [float(v) for v in d.root_boxes[i]],
                "part_boxes": [[float(v) for v in pb] for pb in d.part_boxes[i]],
            } for i in range(len(scores)))
        doc = {"image": str(image), "height": h, "width": w, "detections": found}
        try:
            text = json.dumps(doc, allow_nan=False)
        except ValueError:
            raise RecordError(f"{image}: a root or part box is NaN or infinite (is the model broken?)") \
                from None
        sep = "" if self._first else ",\n"
        self._first = False
        return sep + text

    def state(self) -> dict:
        return {"first": self._first}

    def restore(self, state: dict) -> None:
        self._first = bool(state.get("first", True))

    def end(self, status: RunStatus) -> str:
        tail = {"complete": status.complete, "n_images": status.total, "n_done": status.done,
                "n_written": status.written,
                "failures": [{"image": str(i), "error": m} for i, m in status.failures]}
        if status.not_listed:
            tail["failures_not_listed"] = status.not_listed
        if not status.complete:
            tail["stopped"] = status.stopped
        return "\n],\n" + json.dumps(tail)[1:] + "\n"


class CocoFormat(ResultsFormat):
    """A COCO results list: ``[{"image_id", "category_id", "bbox": [x, y, w, h], "score"}, ...]``.

    One detection per line.  ``bbox`` is COCO's ``[x, y, w, h]`` on the
    continuous pixel plane: ``[x1 - 1, y1 - 1, x2 - x1 + 1, y2 - y1 + 1]`` of the
    1-based inclusive box (see docs/datasets.md).  ``category_id`` is given
    when the format is made (default 1).

    The image id is the one given with the image (``dpm-eval``, or
    ``dpm-detect --coco instances.json``, which looks the file name up);
    otherwise the file's stem read as a decimal number (COCO's own
    ``000000397133.jpg`` is 397133).  Refused (:class:`RecordError`): a stem
    that is not a number without a given id, and a second file with the same id.

    A run that stops early ends the list and adds a ``# partial: ...`` line,
    which makes the file invalid JSON on purpose: no COCO tool scores it as if
    it were complete (``coco.read_results`` names the line).
    """

    name, suffix = "coco", ".json"

    def __init__(self, category_id: int = 1):
        if isinstance(category_id, bool) or not isinstance(category_id, (int, np.integer)):
            raise ValueError(f"category_id must be an integer, got {category_id!r}")
        self.category_id = int(category_id)
        self._first = True
        self._sources = {}

    def begin(self) -> str:
        return "[\n"

    def _image_id(self, image, image_id) -> int:
        if image_id is None:
            stem = Path(image).stem
            if not (stem.isascii() and stem.isdigit()):
                raise RecordError(f"{image}: cannot tell its COCO image id: the file name is not a number "
                                  "and no id was given (dpm-detect --coco instances.json looks the file "
                                  "names up)")
            return int(stem)
        if isinstance(image_id, (int, np.integer)) and not isinstance(image_id, bool):
            return int(image_id)
        text = str(image_id)
        if text.isascii() and text.isdigit():
            return int(text)
        raise RecordError(f"{image}: COCO image ids are integers, got {image_id!r}")

    def record(self, image, image_id, dets) -> str:
        image_id = self._image_id(image, image_id)
        earlier = self._sources.setdefault(image_id, str(image))
        if earlier != str(image):
            raise RecordError(f"{image}: COCO image id {image_id} is already used by {earlier} in this "
                              "results file")
        scores, boxes = _finite_arrays(image, dets)
        lines = []
        for s, (x1, y1, x2, y2) in zip(scores.tolist(), boxes.tolist()):
            bbox = ", ".join(format_number(v) for v in (x1 - 1, y1 - 1, x2 - x1 + 1, y2 - y1 + 1))
            lines.append(f'{{"image_id": {image_id}, "category_id": {self.category_id}, '
                         f'"bbox": [{bbox}], "score": {format_number(s)}}}')
        if not lines:
            return ""
        sep = "" if self._first else ",\n"
        self._first = False
        return sep + ",\n".join(lines)

    def end(self, status: RunStatus) -> str:
        tail = "\n]\n"
        return tail if status.complete else tail + status.partial_line() + "\n"


FORMATS = {f.name: f for f in (CsvFormat, JsonFormat, VocFormat, CocoFormat)}


def get_format(name) -> ResultsFormat:
    """A new format object by name (``csv``, ``json``, ``voc``, ``coco``); formats keep per-run state."""
    if isinstance(name, ResultsFormat):
        return name
    try:
        return FORMATS[name]()
    except KeyError:
        raise ValueError(f"format={name!r}: unknown results format (choose from "
                         f"{', '.join(sorted(FORMATS))})") from None
