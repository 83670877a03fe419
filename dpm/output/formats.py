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

__all__ = ["RecordError", "RunStatus", "ResultsFormat", "CsvFormat", "JsonFormat", "VocFormat",
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
    ``done`` the images handled (written or failed); ``failures`` the
    ``(image, message)`` pairs of the failed ones; ``stopped`` the reason the
    run stopped early (``None``: it finished).
    """

    total: int | None = None
    done: int = 0
    written: int = 0
    failures: list = field(default_factory=list)
    stopped: str | None = None

    @property
    def complete(self) -> bool:
        return self.stopped is None

    def partial_line(self) -> str:
        """The one-line partial marker of the text formats (without newline)."""
        of = f" of {self.total}" if self.total is not None else ""
        return (f"{PARTIAL_MARK} {self.done}{of} images done ({self.written} written, "
                f"{len(self.failures)} failed); the run stopped early: {self.stopped}")


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

    def end(self, status: RunStatus) -> str:
        tail = {"complete": status.complete, "n_images": status.total, "n_done": status.done,
                "n_written": status.written,
                "failures": [{"image": str(i), "error": m} for i, m in status.failures]}
        if not status.complete:
            tail["stopped"] = status.stopped
        return "\n],\n" + json.dumps(tail)[1:] + "\n"


FORMATS = {f.name: f for f in (CsvFormat, JsonFormat, VocFormat)}


def get_format(name) -> ResultsFormat:
    """A new format object by name (``csv``, ``json``, ``voc``); formats keep per-run state."""
    if isinstance(name, ResultsFormat):
        return name
    try:
        return FORMATS[name]()
    except KeyError:
        raise ValueError(f"format={name!r}: unknown results format (choose from "
                         f"{', '.join(sorted(FORMATS))})") from None
