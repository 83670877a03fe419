"""The per-image work of training, as tasks of :mod:`dpm.execution`.

Each task reads one image and computes with the model it is given: latent
placements of one positive and its mirror (:class:`LatentTask`), hard
negatives of one negative image (:class:`MineTask`), random negative windows
(:class:`RandomNegativesTask`).  They are deterministic, so a task run again
after a worker died gives the same result, and the order in which the
pipeline consumes results is the input order whatever runs them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..boxes import bbox_features
from ..image import read_image
from ..latent import detect_latent, iter_placements, mround
from .warp import random_negatives

__all__ = ["croppos", "flip_box", "LatentTask", "MineTask", "RandomNegativesTask", "hard_negative",
           "MINING_BURST"]

# At most this many hard negatives travel back from a worker per image; the
# rest of a rich image is read by the driver itself, piece by piece, so a
# weak model on a large image never holds its thousands of windows twice.
MINING_BURST = 1000


def croppos(image: np.ndarray, box):
    """``croppos.m``: crop around a box with a margin of half its width plus height.

    Returns the crop and the box in the crop's 1-based coordinates.
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    pad = 0.5 * ((x2 - x1 + 1) + (y2 - y1 + 1))
    h, w = image.shape[:2]
    cx1 = int(max(1, mround(x1 - pad)))
    cy1 = int(max(1, mround(y1 - pad)))
    cx2 = int(min(w, mround(x2 + pad)))
    cy2 = int(min(h, mround(y2 + pad)))
    crop = image[cy1 - 1:cy2, cx1 - 1:cx2]
    return crop, np.array([x1 - cx1 + 1, y1 - cy1 + 1, x2 - cx1 + 1, y2 - cy1 + 1])


def flip_box(box, width):
    """A 1-based inclusive box mirrored left-right in an image ``width`` pixels wide."""
    x1, y1, x2, y2 = box
    return np.array([width - x2 + 1, y1, width - x1 + 1, y2])


def hard_negative(j, p):
    """A placement in negative image ``j`` as a learner example: (label_ints, blocks)."""
    return (-1, j, p.level, p.xc, p.yc), p.blocks


@dataclass(frozen=True)
class LatentTask:
    """Latent placements of positive ``index`` (1-based) and its mirror.

    ``run`` returns ``(examples, bbox_rows)``: ``[(label_ints, blocks)]`` and,
    with ``want_bbox``, ``[(component, bbox features, box)]``.
    """

    index: int
    path: str
    box: tuple
    interval: int
    overlap: float
    min_area: float
    want_bbox: bool = False

    @property
    def label(self) -> str:
        return self.path

    def run(self, model):
        x1, y1, x2, y2 = self.box
        if (x2 - x1 + 1) * (y2 - y1 + 1) < self.min_area:
            return [], []
        image = read_image(self.path)
        crop, cbox = croppos(image, self.box)
        out, rows = [], []
        i = self.index
        for ident, (im, b) in ((2 * i - 1, (crop, cbox)), (2 * i, (crop[:, ::-1], flip_box(cbox, crop.shape[1])))):
            p = detect_latent(im, model, b, self.overlap, interval=self.interval)
            if p is None:
                continue
            out.append(((1, ident, p.level, p.xc, p.yc), p.blocks))
            if self.want_bbox:
                rows.append((p.component, bbox_features(p.root_box[None], p.part_boxes[None])[0], b))
        return out, rows


@dataclass(frozen=True)
class MineTask:
    """Hard negatives of negative image ``index`` (1-based), at most ``limit``.

    ``run`` returns ``(examples, more)``: ``more`` is True when the image has
    more than the ``limit`` examples sent back.
    """

    index: int
    path: str
    interval: int
    threshold: float
    limit: int

    @property
    def label(self) -> str:
        return self.path

    def run(self, model):
        image = read_image(self.path)
        out = []
        for p in iter_placements(image, model, self.threshold, interval=self.interval):
            if len(out) >= self.limit:
                return out, True
            out.append(hard_negative(self.index, p))
        return out, False


@dataclass(frozen=True)
class RandomNegativesTask:
    """``count`` random negative windows of image ``index`` (1-based) for ``component``."""

    index: int
    path: str
    count: int
    seed: int
    component: int = 0

    @property
    def label(self) -> str:
        return self.path

    def run(self, model):
        image = read_image(self.path)
        rng = np.random.default_rng(self.seed)
        return random_negatives(image, model, self.count, rng, self.component, image_index=self.index)
