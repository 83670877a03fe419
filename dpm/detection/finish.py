"""Raw detections -> final boxes: back to the input image's scale, bbox prediction, NMS, clipping.

``process.m``'s steps after ``detect.m`` (spec §1.10): ``getboxes.m``
(:func:`dpm.boxes.predict_boxes`), ``nms.m`` and ``clipboxes.m``.
"""
from __future__ import annotations

import numpy as np

from ..boxes import clip_boxes, nms_indices, predict_boxes
from ..image import upsample_image
from ..model import Model
from .results import Detections

__all__ = ["finish_detections", "unscale_boxes", "unscale_detections", "upsampled"]


def upsampled(image, upsample: int):
    """``image`` enlarged ``upsample`` times for detection (itself for 1); checks the factor."""
    if not isinstance(upsample, (int, np.integer)) or upsample < 1:
        raise ValueError(f"upsample must be a positive integer factor, got {upsample!r}")
    return upsample_image(image, int(upsample)) if upsample > 1 else image


def work_shape(shape, upsample: int) -> tuple:
    """The ``(H, W)`` of the image :func:`upsampled` makes from an image of ``shape``; checks the factor."""
    if not isinstance(upsample, (int, np.integer)) or upsample < 1:
        raise ValueError(f"upsample must be a positive integer factor, got {upsample!r}")
    return int(shape[0]) * int(upsample), int(shape[1]) * int(upsample)


def finish_detections(raw: Detections, model: Model, shape, *, upsample: int = 1, nms: float | None = 0.5,
                      bbox_prediction: bool = True, clip: bool = True) -> Detections:
    """:func:`detect_raw`'s detections on the image enlarged ``upsample`` times, made final as
    :func:`detect` does: mapped back to an image of ``shape``, boxes predicted, suppressed, clipped."""
    shape = tuple(shape)
    if upsample > 1:
        raw = unscale_detections(raw, int(upsample), shape)
    boxes = raw.root_boxes
    if bbox_prediction:
        boxes = predict_boxes(raw.root_boxes, raw.part_boxes, raw.components,
                              [c.bbox_regressor for c in model.components])
    dets = Detections(boxes, raw.scores, raw.components, raw.root_boxes, raw.part_boxes, raw.levels, shape,
                      model.class_name)
    if nms is not None and len(dets):
        dets = dets[nms_indices(dets.boxes, dets.scores, nms)]
    if clip and len(dets):
        dets = Detections(clip_boxes(dets.boxes, shape), dets.scores, dets.components, dets.root_boxes,
                          dets.part_boxes, dets.levels, shape, model.class_name)
    return dets


def unscale_boxes(b: np.ndarray, k: int) -> np.ndarray:
    # Pixel p of the original covers pixels k*(p-1)+1 .. k*p of the enlarged image, so an inclusive
    # box [x1, x2] there covers [(x1 - 1)/k + 1, x2/k] here.
    out = b / k
    out[..., 0:2] = (b[..., 0:2] - 1) / k + 1
    return out


def unscale_detections(d: Detections, k: int, shape) -> Detections:
    return Detections(unscale_boxes(d.boxes, k), d.scores, d.components, unscale_boxes(d.root_boxes, k),
                      unscale_boxes(d.part_boxes, k), d.levels, tuple(shape), d.class_name)
