"""Detections of one image as parallel arrays (what every detector in :mod:`dpm.detection` returns)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Detections"]


@dataclass(frozen=True)
class Detections:
    """Detections of one image, as parallel arrays.

    All boxes are ``[x1, y1, x2, y2]`` in 1-based inclusive pixel coordinates of
    the image that was passed to :func:`detect`.

    Attributes
    ----------
    boxes : (N, 4) float64
        Final boxes: predicted by the bounding-box regressor when the model has
        one (``getboxes.m``), else the root boxes; clipped to the image.
    scores : (N,) float64
    components : (N,) int
        0-based component index.
    root_boxes : (N, 4) float64
        Root filter placements (not clipped).
    part_boxes : (N, P, 4) float64
        Part filter placements (not clipped), in the component's part order.
    levels : (N,) int
        0-based pyramid level of the root.
    image_shape : tuple
        ``(height, width)`` of the image.
    class_name : str
        The class the model detects (``Model.class_name``; empty if unknown).
    """

    boxes: np.ndarray
    scores: np.ndarray
    components: np.ndarray
    root_boxes: np.ndarray
    part_boxes: np.ndarray
    levels: np.ndarray
    image_shape: tuple = field(default=(0, 0))
    class_name: str = ""

    def __len__(self):
        return int(self.scores.shape[0])

    def __getitem__(self, index) -> "Detections":
        idx = np.asarray(index)
        if idx.ndim == 0:
            idx = idx.reshape(1)
        return Detections(self.boxes[idx], self.scores[idx], self.components[idx], self.root_boxes[idx],
                          self.part_boxes[idx], self.levels[idx], self.image_shape, self.class_name)

    @classmethod
    def empty(cls, num_parts: int = 0, image_shape=(0, 0), class_name: str = "") -> "Detections":
        return cls(np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=np.intp), np.zeros((0, 4)),
                   np.zeros((0, num_parts, 4)), np.zeros(0, dtype=np.intp), tuple(image_shape), class_name)

    def to_raw(self) -> np.ndarray:
        """The original ``detect.m`` row layout: ``[root box, part boxes..., component (1-based), score]``."""
        n = len(self)
        return np.concatenate([self.root_boxes, self.part_boxes.reshape(n, 4 * self.part_boxes.shape[1]),
                               (self.components + 1)[:, None].astype(np.float64), self.scores[:, None]], axis=1)
