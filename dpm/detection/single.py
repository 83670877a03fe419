"""Detection with one model: image -> pyramid -> scores -> raw detections -> final boxes."""
from __future__ import annotations

from .._alloc import tune_malloc
from ..image import as_rgb
from ..model import Model
from .bands import raw_if_too_big
from .finish import finish_detections, upsampled
from .parse import DEFAULT_DTYPE, detect_raw
from .results import Detections

__all__ = ["check_image_size", "detect_one"]


def check_image_size(shape, model: Model, upsample: int = 1) -> None:
    """Raise ``ValueError`` if no root filter of ``model`` fits in an image of this shape.

    :func:`detect` itself accepts any image (the original scans the zero
    padding around small images too, and finds nothing there at sensible
    thresholds); the commands use this check to report such images.
    """
    h, w = int(shape[0]) * upsample, int(shape[1]) * upsample
    fits = [h >= rh * model.sbin and w >= rw * model.sbin for rh, rw in (c.root_size for c in model.components)]
    if not any(fits):
        mh, mw = model.minsize
        up = f", upsampled {upsample}x" if upsample > 1 else ""
        raise ValueError(f"image ({int(shape[1])}x{int(shape[0])} pixels{up}) is smaller than the model's "
                         f"smallest root window ({mw * model.sbin}x{mh * model.sbin} pixels); "
                         f"use --upsample {2 * upsample} to find smaller objects")


def detect_one(image, model: Model, *, threshold: float | None = None, upsample: int = 1, nms: float | None = 0.5,
           bbox_prediction: bool = True, clip: bool = True, dtype=DEFAULT_DTYPE, max_memory=None) -> Detections:
    """Detect objects in an image: the ``process.m`` pipeline of voc-release3.1.

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
        detected level by level in bands of rows (:mod:`dpm.detection.bands`),
        with the same detections.  Default: the environment variable
        ``DPM_MAX_MEMORY``, else 1.5 GiB (:data:`dpm.limits.MAX_MEMORY`).

    Returns
    -------
    Detections
        In suppression order (highest score first).
    """
    tune_malloc()
    image = as_rgb(image)
    work = upsampled(image, upsample)
    thresh = model.thresh if threshold is None else float(threshold)
    raws = raw_if_too_big(work, {"": model}, {"": thresh}, max_memory=max_memory, dtype=dtype)
    raw = raws[""] if raws is not None else detect_raw(work, model, thresh, dtype=dtype)
    return finish_detections(raw, model, image.shape[:2], upsample=upsample, nms=nms,
                             bbox_prediction=bbox_prediction, clip=clip)
