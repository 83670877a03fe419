"""COCO results files: ``[{"image_id", "category_id", "bbox": [x, y, w, h], "score"}, ...]``.

Written through :class:`dpm.output.ResultsWriter` with
:class:`dpm.output.formats.CocoFormat` (what ``dpm-detect --format coco``
writes), read back with :func:`read_results`.
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass

import numpy as np

from .instances import read_json

__all__ = ["COCOResults", "read_results", "write_results"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class COCOResults:
    """Detections as parallel arrays.

    Attributes
    ----------
    image_ids, category_ids : (N,) int64 ndarray
    bboxes : (N, 4) float64 ndarray
        COCO ``[x, y, w, h]``.
    scores : (N,) float64 ndarray
    """

    image_ids: np.ndarray
    category_ids: np.ndarray
    bboxes: np.ndarray
    scores: np.ndarray

    def __post_init__(self):
        object.__setattr__(self, "image_ids", np.asarray(self.image_ids, dtype=np.int64).reshape(-1))
        object.__setattr__(self, "category_ids", np.asarray(self.category_ids, dtype=np.int64).reshape(-1))
        object.__setattr__(self, "bboxes", np.asarray(self.bboxes, dtype=np.float64).reshape(-1, 4))
        object.__setattr__(self, "scores", np.asarray(self.scores, dtype=np.float64).reshape(-1))
        n = self.image_ids.size
        if not (self.category_ids.size == n == self.bboxes.shape[0] == self.scores.size):
            raise ValueError(f"results: {n} image ids, {self.category_ids.size} category ids, "
                             f"{self.bboxes.shape[0]} boxes and {self.scores.size} scores")
        if not (np.isfinite(self.bboxes).all() and np.isfinite(self.scores).all()):
            raise ValueError("results: boxes and scores must be finite")

    def __len__(self):
        return int(self.image_ids.size)

    @classmethod
    def from_list(cls, items, source: str = "results") -> "COCOResults":
        """From a COCO results list (``[{"image_id", "category_id", "bbox", "score"}, ...]``)."""
        if not isinstance(items, list):
            raise ValueError(f"{source}: a COCO results file is a list of detections, got a "
                             f"{type(items).__name__}")
        ids, cats, boxes, scores = [], [], [], []
        for k, d in enumerate(items):
            where = f"{source}: detection [{k}]"
            if not isinstance(d, dict):
                raise ValueError(f"{where}: expected an object, got {type(d).__name__}")
            for key in ("image_id", "category_id"):
                v = d.get(key)
                if isinstance(v, bool) or not isinstance(v, int):
                    raise ValueError(f"{where}: {key} must be an integer, got {json.dumps(v)[:40]}")
            box, score = d.get("bbox"), d.get("score")
            if (not isinstance(box, list) or len(box) != 4
                    or not all(_finite(v) for v in box)):
                raise ValueError(f"{where}: bbox must be [x, y, w, h] of finite numbers, got "
                                 f"{json.dumps(box)[:60]}")
            if box[2] < 0 or box[3] < 0:
                raise ValueError(f"{where}: bbox {box} has a negative width or height")
            if not _finite(score):
                raise ValueError(f"{where}: score must be a finite number, got {json.dumps(score)[:40]}")
            ids.append(d["image_id"])
            cats.append(d["category_id"])
            boxes.append(box)
            scores.append(score)
        return cls(np.array(ids, dtype=np.int64), np.array(cats, dtype=np.int64),
                   np.array(boxes, dtype=np.float64).reshape(-1, 4), np.array(scores, dtype=np.float64))

    @classmethod
    def from_detections(cls, image_ids, scores, boxes, category_id: int) -> "COCOResults":
        """From 1-based inclusive ``[x1 y1 x2 y2]`` boxes of one category."""
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        xywh = np.column_stack([boxes[:, 0] - 1, boxes[:, 1] - 1, boxes[:, 2] - boxes[:, 0] + 1,
                                boxes[:, 3] - boxes[:, 1] + 1])
        n = boxes.shape[0]
        return cls(np.asarray(image_ids, dtype=np.int64), np.full(n, int(category_id)), xywh, scores)


def _finite(v) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)


def read_results(path, *, allow_partial: bool = False, max_bytes=None) -> COCOResults:
    """Read a COCO results file.

    Raises
    ------
    ValueError
        One line: malformed JSON (line and column), a detection without an
        integer ``image_id``/``category_id``, a bad ``bbox`` or ``score``, a
        file marked partial by an interrupted run (unless ``allow_partial``).
    """
    from dpm.output import PARTIAL_MARK

    try:
        return COCOResults.from_list(read_json(path, what="results file", max_bytes=max_bytes), str(path))
    except ValueError as exc:
        if "malformed JSON" not in str(exc):
            raise
        text = open(path, encoding="utf-8", errors="replace").read()
        lines = text.split("\n")
        mark = next((k for k, line in enumerate(lines) if line.startswith(PARTIAL_MARK)), None)
        if mark is None:
            raise
        note = " ".join(lines[mark].split())
        if not allow_partial:
            raise ValueError(f"{path}:{mark + 1}: the file is marked partial ({note}): the run that "
                             "wrote it stopped early; run it again, or read it with "
                             "allow_partial=True") from None
        log.warning("%s:%d: %s", path, mark + 1, note)
        return COCOResults.from_list(json.loads("\n".join(lines[:mark])), str(path))


def write_results(path, detections, *, category_id: int) -> int:
    """Write a COCO results file atomically, through :class:`dpm.output.ResultsWriter`.

    Parameters
    ----------
    path : str or Path
    detections : voc.Results or (image_ids, scores, boxes)
        Integer COCO image ids; boxes 1-based inclusive ``[x1 y1 x2 y2]``
        (written as ``[x1 - 1, y1 - 1, x2 - x1 + 1, y2 - y1 + 1]``).
    category_id : int

    Returns
    -------
    int
        Number of detections written.
    """
    from dpm.output import ResultsWriter
    from dpm.output.formats import CocoFormat

    if all(hasattr(detections, a) for a in ("image_ids", "scores", "boxes")):
        ids, scores, boxes = detections.image_ids, detections.scores, detections.boxes
    else:
        ids, scores, boxes = detections
    ids = list(ids)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if not len(ids) == scores.size == boxes.shape[0]:
        raise ValueError(f"write_results: {len(ids)} image ids, {scores.size} scores and "
                         f"{boxes.shape[0]} boxes")
    groups: dict = {}
    for k, image_id in enumerate(ids):
        groups.setdefault(image_id, []).append(k)
    with ResultsWriter(path, CocoFormat(category_id), lock=False, partial=False) as out:
        for image_id, idx in groups.items():
            out.write(f"image {image_id}", _Rows(scores[idx], boxes[idx]), image_id=image_id)
    log.debug("wrote %d detections to %s", len(ids), path)
    return len(ids)


class _Rows:
    def __init__(self, scores, boxes):
        self.scores, self.boxes = scores, boxes
