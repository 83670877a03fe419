"""Detection with one release-5 star model: image -> pyramid -> scores -> raw -> process.m -> Detections."""
from __future__ import annotations

import numpy as np

from ..._alloc import tune_malloc
from ...image import as_rgb
from ...model.release5 import StarModel
from ..finish import unscale_boxes, upsampled
from ..results import Detections
from .bands import check_star_memory, detect_raw_star_cascade_bounded, star_needs_bands
from .cascade import detect_raw_star_cascade
from .finish import process_star
from ..pyramid import features_exact
from .parse import detect_raw_star, model_pyramid

__all__ = ["detect_star", "use_star_cascade"]


def use_star_cascade(model: StarModel, cascade: bool | None) -> bool:
    """Whether ``model`` is detected with its star-cascade: ``cascade`` None means "if it has one"."""
    if cascade is None:
        return model.cascade is not None
    if cascade and model.cascade is None:
        raise ValueError(f"cascade=True: the release-5 model ({model.class_name}) has no star-cascade; give it "
                         "one (dpm.model.release5_cascade.cascade_from_published) or detect exactly (cascade=False)")
    return bool(cascade)


def detect_star(image, model: StarModel, *, threshold: float | None = None, upsample: int = 1,
                nms: float | None = 0.5, bbox_prediction: bool = True, clip: bool = True,
                cascade: bool | None = None, pyramid=None, exact_features: bool | None = None,
                max_memory=None) -> Detections:
    """Detect objects with a voc-release5 star model: ``imgdetect`` (or ``cascade_detect``) then ``process.m``.

    Parameters
    ----------
    image : (H, W, 3) or (H, W) ndarray
        Pixel values 0..255; grey images are replicated to 3 channels (``color.m``).
    model : StarModel
    threshold : float, optional
        Default ``model.thresh`` (with the cascade: ``model.cascade.threshold``,
        the threshold its pruning thresholds were computed for).
    upsample : int, default 1
        Detect on the image enlarged by this factor (bilinear, as
        :func:`dpm.detect`); boxes are mapped back.  Not in the original.
    nms, bbox_prediction, clip
        As in :func:`dpm.detect`; the steps follow release 5's ``process.m``
        (clip, predict, clip, suppress: :func:`~dpm.detection.release5.finish.process_star`),
        so the order differs from release 3.1's.
    cascade : bool, optional
        None (default): with the model's star-cascade if it has one
        (:func:`~dpm.detection.release5.cascade.detect_raw_star_cascade`; a
        model loaded from the release's layout carries the one of the
        published statistics).  False: the exact detector.  True: the cascade
        (``ValueError`` if the model has none).
    pyramid : PaddedPyramid, optional
        The feature pyramid of the image after ``upsample``, built with the
        model's padding (:func:`~dpm.detection.release5.parse.model_pyramid`),
        to share one among models (:func:`dpm.detect` with several models).
    exact_features : bool, optional
        True: the release's features (its ``features.cc``, the golden parity).
        None or False (the default, as for release-3.1 models): the
        single-precision features of ``feature_pyramid(..., exact=False)``
        (docs/release5.md, "Features").  With the cascade, True also computes
        its projections in float64, as ``cascade.cc`` (``exact_projections``
        of :func:`~dpm.detection.release5.cascade.detect_raw_star_cascade`).
        The features part is ignored when ``pyramid`` is given.
    max_memory : int or str, optional
        As for :func:`dpm.detect`: when the whole pyramid would take more
        (:func:`~dpm.detection.release5.bands.star_unbounded_peak`), the
        cascade searches the image in bands with the same detections
        (:func:`~dpm.detection.release5.bands.detect_raw_star_cascade_bounded`);
        the exact detector has no banded path and raises ``ValueError``
        naming the remedies.  Not checked when ``pyramid`` is given.

    Returns
    -------
    Detections
        In suppression order.  ``components`` are 0-based start rules
        (mirrored components count), ``root_boxes`` the detection windows,
        ``part_boxes`` the parts in each rule's order.
    """
    tune_malloc()
    image = as_rgb(image)
    work = upsampled(image, upsample)
    exact = features_exact(np.float32, exact_features)
    cascaded = use_star_cascade(model, cascade)
    bands = 0
    if pyramid is None:
        if cascaded:
            bands = star_needs_bands(work.shape[:2], model, cascade=True, max_memory=max_memory)
        else:
            check_star_memory(work.shape[:2], model, max_memory=max_memory)
    if bands:
        raw = detect_raw_star_cascade_bounded(work, model, model.cascade, threshold, max_memory=bands,
                                              exact_features=exact)
    else:
        if pyramid is None:
            pyramid = model_pyramid(work, model, exact=exact)
        if cascaded:
            raw = detect_raw_star_cascade(work, model, model.cascade, threshold, pyramid=pyramid,
                                          exact_projections=exact)
        else:
            raw = detect_raw_star(work, model, threshold, pyramid=pyramid)
    steps = process_star(raw, model, work.shape[:2], overlap=nms, bbox_prediction=bbox_prediction, clip=clip)
    ds, _ = steps.final
    rows = steps.final_rows
    boxes, roots, parts = ds[:, :4], raw.ds[rows, :4], raw.boxes[rows, 1:]
    if upsample > 1:
        boxes, roots, parts = (unscale_boxes(b, int(upsample)) for b in (boxes, roots, parts))
    return Detections(np.ascontiguousarray(boxes), ds[:, -1].copy(), raw.components[rows], roots, parts,
                      raw.levels[rows], tuple(image.shape[:2]), model.class_name)
