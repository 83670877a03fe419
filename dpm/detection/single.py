"""Detection with one model: image -> pyramid -> scores -> raw detections -> final boxes."""
from __future__ import annotations

from .._alloc import tune_malloc
from ..image import as_rgb
from ..model import Model
from .bands import detect_raw_bounded, needs_bands
from .cascade import detect_cascade
from .cascade_bands import detect_cascade_raw_bounded
from .finish import finish_detections, upsampled, work_shape
from .parse import detect_raw
from .pyramid import DEFAULT_DTYPE
from .results import Detections

__all__ = ["check_image_size", "detect_one", "use_cascade"]


def use_cascade(model: Model, cascade: bool | None) -> bool:
    """Whether ``model`` is detected with its star-cascade: ``cascade`` None means "if it has one"."""
    if cascade is None:
        return model.cascade is not None
    if cascade and model.cascade is None:
        name = f" ({model.class_name})" if model.class_name else ""
        raise ValueError(f"cascade=True: the model{name} has no star-cascade; add one with dpm.build_cascade "
                         "(dpm-cascade) or detect exactly (cascade=False)")
    return bool(cascade)


def check_image_size(shape, model, upsample: int = 1) -> None:
    """Raise ``ValueError`` if no root filter of ``model`` (a :class:`Model` or a release-5 ``StarModel``)
    fits in an image of this shape.

    :func:`detect` itself accepts any image (the original scans the zero
    padding around small images too, and finds nothing there at sensible
    thresholds); the commands use this check to report such images.
    """
    h, w = int(shape[0]) * upsample, int(shape[1]) * upsample
    sizes = [c.root_size if isinstance(model, Model) else c.root.size for c in model.components]
    fits = [h >= rh * model.sbin and w >= rw * model.sbin for rh, rw in sizes]
    if not any(fits):
        mh, mw = model.minsize
        up = f", upsampled {upsample}x" if upsample > 1 else ""
        raise ValueError(f"image ({int(shape[1])}x{int(shape[0])} pixels{up}) is smaller than the model's "
                         f"smallest root window ({mw * model.sbin}x{mh * model.sbin} pixels); "
                         f"use --upsample {2 * upsample} to find smaller objects")


def detect_one(image, model: Model, *, threshold: float | None = None, upsample: int = 1, nms: float | None = 0.5,
               bbox_prediction: bool = True, clip: bool = True, dtype=DEFAULT_DTYPE,
               exact_features: bool | None = None, cascade: bool | None = None, max_memory=None) -> Detections:
    """Detect objects in an image: the ``process.m`` pipeline of voc-release3.1.

    A model that carries a star-cascade (``model.cascade``, see
    :func:`dpm.build_cascade`) is detected with it (:func:`dpm.detection.cascade.detect_cascade`)
    unless ``cascade=False``; the exact detector otherwise.

    Parameters
    ----------
    image : (H, W, 3) or (H, W) ndarray
        Pixel values 0..255 (uint8 or float).  Grey images are replicated to 3
        channels and alpha is dropped, as ``color.m`` does.
    model : Model
    threshold : float, optional
        Keep placements scoring above this; default ``model.thresh``.
    upsample : int, default 1
        Detect on the image enlarged by this factor (bilinear), for objects
        smaller than the root filter; boxes are mapped back to ``image``.
    nms : float or None, default 0.5
        Overlap for non-maximum suppression with the original's rule (see
        :func:`dpm.boxes.nms_indices`); ``None`` keeps every detection.
    bbox_prediction : bool, default True
        Predict the final boxes with the model's regressor (``getboxes.m``);
        without one, or when False, the root boxes are used.
    clip : bool, default True
        Clip the final boxes to the image (``clipboxes.m``).
    dtype : {np.float32, np.float64}, default np.float32
        Precision of the filter responses (the convolutions).  float64 is the
        original's ``double`` throughout.  float32 (the default) makes the
        convolutions about twice as fast; everything after them (bias,
        distance transform, scores, boxes) stays in float64.  This is a
        departure in the last bits: scores differ from the original's by
        about 1e-6 (a few float32 ulps of the responses), so a placement
        scoring within that of the threshold, a dt argmax decided by a
        near-tie, or the suppression order of two near-equal scores could
        come out differently.  On the reference cases (five images and
        models, two thresholds each) every detection, box and argmax is the
        original's, with scores within 1.1e-6.  See docs/detection.md.
    max_memory : int or str, optional
        Memory (bytes, or a string such as ``"2G"``) detection aims to stay
        under.  When the whole feature pyramid would take more, the image is
        detected level by level in bands of rows (:mod:`dpm.detection.bands`;
        with the star-cascade :mod:`dpm.detection.cascade_bands`), with the
        same detections.  Default: the environment variable
        ``DPM_MAX_MEMORY``, else 1.5 GiB (:data:`dpm.limits.MAX_MEMORY`).

    exact_features : bool or None, default None
        How the features of float32 responses are computed.  ``False`` (the
        default with float32): in single precision, vectorised, the feature
        pyramid about 1.6 times as fast; features differ from the original's
        by float32 rounding and, in flat areas where the orientation of a
        near-zero gradient is decided by rounding noise, by that pixel's
        share of its cells.  On the reference cases the detections keep the
        same count with boxes within 0.5 pixel and scores within 1e-3 of the
        exact features' (see docs/detection.md, "Fast features").  ``True``:
        the original's double-precision features, rounded once to float32
        (the detections described under ``dtype``).  ``None`` means ``False``
        for float32 and ``True`` for float64 responses (float64 always uses
        the exact features; ``False`` with float64 is an error).

    cascade : bool, optional
        None (default): use the model's star-cascade if it has one.  False:
        the exact detector.  True: the cascade (``ValueError`` if the model
        has none).  With the cascade, ``threshold=None`` means the threshold
        the cascade was built for (``model.cascade.threshold``) and ``dtype``
        does not apply (its scores are float64; ``exact_features`` does).

    Returns
    -------
    Detections
        In suppression order (highest score first).
    """
    image = as_rgb(image)
    # An image too big for max_memory is detected level by level in bands (dpm.detection.bands, or
    # dpm.detection.cascade_bands with the cascade): the same detections, with the features
    # exact_features asks for.
    bands = needs_bands(work_shape(image.shape, upsample), {"": model}, max_memory=max_memory, dtype=dtype)
    cascaded = use_cascade(model, cascade)
    if not bands and cascaded:
        return detect_cascade(image, model, model.cascade, threshold=threshold, upsample=upsample, nms=nms,
                              bbox_prediction=bbox_prediction, clip=clip, exact_features=exact_features)
    tune_malloc()
    work = upsampled(image, upsample)
    thresh = model.thresh if threshold is None else float(threshold)
    if bands and cascaded:
        raw = detect_cascade_raw_bounded(work, model, model.cascade, threshold, max_memory=bands,
                                         exact_features=exact_features)
    elif bands:
        raw = detect_raw_bounded(work, {"": model}, {"": thresh}, max_memory=bands, dtype=dtype,
                                 exact_features=exact_features)[""]
    else:
        raw = detect_raw(work, model, thresh, dtype=dtype, exact_features=exact_features)
    return finish_detections(raw, model, image.shape[:2], upsample=upsample, nms=nms,
                             bbox_prediction=bbox_prediction, clip=clip)
