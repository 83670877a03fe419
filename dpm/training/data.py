"""What training needs from a dataset: positives (image + box) and negative images.

This is the whole interface between a dataset format and training: a dataset
package (``voc``, ``coco``, or the user's own code) turns its annotations into a
:class:`TrainingData`, and :func:`dpm.train` never reads a format itself.

* A :class:`Positive` is one object to learn: its image file and its box,
  ``(x1, y1, x2, y2)`` in 1-based inclusive pixel coordinates (the PASCAL VOC
  convention; a COCO ``[x, y, w, h]`` box is ``(x + 1, y + 1, x + w, y + h)``).
  Objects marked difficult, crowd or ignored are left out by the provider, as
  ``pascal_data.m`` leaves out VOC's difficult objects.  ``image_size``
  ``(width, height)``, where known, lets training clip boxes that reach
  outside their image.
* A :class:`Negative` is an image with no object of the class at all.

The order of the positives and negatives is part of the data: training visits
them in that order, so the same lists give the same model, whichever format
they were read from.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..boxes import check_boxes

__all__ = ["Positive", "Negative", "TrainingData", "clip_to_images"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Positive:
    """One training object: ``path`` of its image and its ``box`` (1-based inclusive)."""

    path: Path
    box: tuple
    image_size: tuple | None = None   # (width, height), if known
    image_id: str = ""

    def __post_init__(self):
        object.__setattr__(self, "path", Path(self.path))
        if len(tuple(self.box)) != 4:
            raise ValueError(f"{self.path}: a box is (x1, y1, x2, y2), got {self.box!r}")
        object.__setattr__(self, "box", tuple(self.box))


@dataclass(frozen=True)
class Negative:
    """An image with no object of the class."""

    path: Path
    image_id: str = ""

    def __post_init__(self):
        object.__setattr__(self, "path", Path(self.path))


@dataclass(frozen=True)
class TrainingData:
    """The positives and negative images of one class, in training order.

    Attributes
    ----------
    positives : tuple of Positive
    negatives : tuple of Negative
    name : str
        Where the data comes from (for logs; not part of the model).
    """

    positives: tuple = field(default_factory=tuple)
    negatives: tuple = field(default_factory=tuple)
    name: str = ""

    def __post_init__(self):
        pos = tuple(p if isinstance(p, Positive) else Positive(*p) for p in self.positives)
        neg = tuple(n if isinstance(n, Negative) else Negative(n) for n in self.negatives)
        object.__setattr__(self, "positives", pos)
        object.__setattr__(self, "negatives", neg)

    def check(self, cls: str = "") -> None:
        """Raise ``ValueError`` for data that cannot train: no positives, no negatives, a bad box."""
        what = f"class {cls!r}" if cls else "the class"
        where = f"{self.name}: " if self.name else ""
        if not self.positives:
            raise ValueError(f"{where}no positives of {what}: nothing to learn from")
        if not self.negatives:
            raise ValueError(f"{where}no negative images for {what} (every image contains it)")
        for p in self.positives:
            check_boxes([p.box], f"{p.path}")

    def fingerprint(self) -> str:
        """SHA-256 of what decides training: image file names, boxes and sizes, in order.

        Images are identified by file name only (not folder, not content), so
        the same data read from another format or another place has the same
        fingerprint.
        """
        h = hashlib.sha256()
        for p in self.positives:
            h.update(json.dumps(["P", p.path.name, [float(v) for v in p.box],
                                 None if p.image_size is None else [int(v) for v in p.image_size]]).encode())
        for n in self.negatives:
            h.update(json.dumps(["N", n.path.name]).encode())
        return h.hexdigest()


def clip_to_images(positives) -> list:
    """Clip the positives' boxes to their image (``image_size``); drop boxes wholly outside.

    Boxes without an ``image_size`` are kept as they are.  Clipped and dropped
    boxes are counted in one warning each.
    """
    out, clipped, dropped = [], 0, 0
    for p in positives:
        if p.image_size is None:
            out.append(p)
            continue
        w, h = p.image_size[0], p.image_size[1]
        x1, y1, x2, y2 = (float(v) for v in p.box)
        c = (max(x1, 1.0), max(y1, 1.0), min(x2, float(w)), min(y2, float(h)))
        if c[2] < c[0] or c[3] < c[1]:
            dropped += 1
            continue
        if c != (x1, y1, x2, y2):
            clipped += 1
            p = replace(p, box=tuple(int(cv) if isinstance(v, (int, np.integer)) else cv
                                     for v, cv in zip(p.box, c)))
        out.append(p)
    if clipped:
        log.warning("%d box(es) reach outside their image: clipped to it", clipped)
    if dropped:
        log.warning("%d box(es) lie entirely outside their image: skipped", dropped)
    return out
