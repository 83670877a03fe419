"""Detection with several models in one pass: one feature pyramid per image, results per class.

:func:`detect` runs every model of a list (or a ``{class: model}`` dict) on an
image.  Models with the same ``sbin`` and ``interval`` share one feature
pyramid; each is scored on it with its own padding (the padded levels are
never formed, see :meth:`dpm.convolve.FilterBank.convolve`), so the
detections of each model are exactly those :func:`dpm.detection.detect_one`
gives with that model alone.  Suppression is per class, as in the original.

voc-release5 star models (:class:`~dpm.model.release5.StarModel`) may be in
the list, alone or mixed with release-3.1 models: those with the same
``sbin``, ``interval`` and extra octave share the features of one release-5
pyramid, padded for each model (:func:`dpm.features.pyramid_r5.repad_pyramid`),
and each gives exactly what :func:`dpm.detection.release5.detect_star` gives
alone (``dtype`` does not apply to them; for images too large for ``max_memory``
each is detected on its own with its banded star-cascade, see
:mod:`dpm.detection.release5.bands`).

Stacking the filters of all models into one filter bank per level was tried
and measured slower: the models' paddings differ, and one bank needs the
largest padding for all (benchmarks/bench_multiclass.py, docs/detection.md).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from .._alloc import tune_malloc
from ..image import as_rgb
from ..model import Model
from ..model.release5 import StarModel
from .bands import detect_raw_bounded, needs_bands, resolve_max_memory
from .finish import finish_detections, upsampled
from .cascade import detect_cascade_raw
from .cascade_bands import detect_cascade_raw_bounded
from .parse import detect_raw
from .pyramid import DEFAULT_DTYPE, detection_pyramid, features_exact
from .results import Detections
from .single import detect_one, use_cascade

__all__ = ["detect", "as_model_dict", "pyramid_groups"]


def as_model_dict(models) -> dict:
    """``{class name: model}`` from a model (a :class:`Model` or a release-5 :class:`StarModel`), a
    sequence of them or a mapping (kept as given).

    Raises ``ValueError`` for no models, a model without a class name in a
    sequence, or two models of the same class.
    """
    if isinstance(models, (Model, StarModel)):
        models = [models]
    if isinstance(models, Mapping):
        out = dict(models)
    else:
        out = {}
        for i, m in enumerate(models):
            if not isinstance(m, (Model, StarModel)):
                raise TypeError(f"models[{i}] is a {type(m).__name__}, not a dpm.Model or StarModel")
            if not m.class_name:
                raise ValueError(f"models[{i}] has no class_name; pass a dict {{class name: model}} instead")
            if m.class_name in out:
                raise ValueError(f"models: class {m.class_name!r} is given twice; results and suppression are "
                                 "per class, so give one model per class")
            out[m.class_name] = m
    if not out:
        raise ValueError("models: no models given")
    for name, m in out.items():
        if not isinstance(m, (Model, StarModel)):
            raise TypeError(f"models[{name!r}] is a {type(m).__name__}, not a dpm.Model or StarModel")
    return out


def pyramid_groups(models: dict) -> dict:
    """``{(sbin, interval): [class names]}``: the models that share a feature pyramid, in order."""
    groups = {}
    for name, m in models.items():
        groups.setdefault((m.sbin, m.interval), []).append(name)
    return groups


def detect(image, models, *, threshold=None, upsample: int = 1, nms: float | None = 0.5,
           bbox_prediction: bool = True, clip: bool = True, dtype=DEFAULT_DTYPE,
           exact_features: bool | None = None, cascade: bool | None = None, max_memory=None):
    """Detect objects with one model or several.

    Parameters
    ----------
    image : (H, W, 3) or (H, W) ndarray
    models : Model, StarModel, sequence of them, or mapping of class name to Model or StarModel
        One :class:`~dpm.model.Model`: exactly :func:`dpm.detection.detect_one`;
        one voc-release5 :class:`~dpm.model.release5.StarModel`:
        :func:`dpm.detection.release5.detect_star` (``dtype`` does not apply;
        ``exact_features`` and ``cascade`` do),
        returning one :class:`~dpm.detection.Detections`.  Several (a sequence
        keyed by each model's ``class_name``, or a dict; release-3.1 and
        release-5 models may be mixed): a dict of class name to
        :class:`~dpm.detection.Detections`, in the models' order, each
        exactly what the model gives alone.
    threshold : float or mapping of class name to float, optional
        Default: each model's own ``thresh``.
    upsample, nms, bbox_prediction, clip, dtype, exact_features, cascade, max_memory
        As in :func:`dpm.detection.detect_one`; the same for every model
        (``cascade=None``: each model with its star-cascade if it has one; the
        memory bound is for all of them together: models are scored together
        on a level's feature bands as far as that fits).
    """
    kwargs = dict(upsample=upsample, nms=nms, bbox_prediction=bbox_prediction, clip=clip)
    if isinstance(models, StarModel):
        from .release5 import detect_star
        return detect_star(image, models, threshold=threshold, cascade=cascade, exact_features=exact_features,
                           max_memory=max_memory, **kwargs)
    if isinstance(models, Model):
        return detect_one(image, models, threshold=threshold, dtype=dtype, exact_features=exact_features,
                          cascade=cascade, max_memory=max_memory, **kwargs)
    models = as_model_dict(models)
    if isinstance(threshold, Mapping):
        unknown = sorted(set(threshold) - set(models))
        if unknown:
            raise ValueError(f"threshold: no model for class(es) {', '.join(map(repr, unknown))}")
    tune_malloc()
    image = as_rgb(image)
    work = upsampled(image, upsample)
    stars = {name: m for name, m in models.items() if isinstance(m, StarModel)}
    out = _detect_stars(image, work, stars, threshold, cascade, exact_features, max_memory, kwargs) if stars else {}
    if len(stars) < len(models):
        out.update(_detect_r31(image, work, {n: m for n, m in models.items() if n not in stars}, threshold,
                               dtype=dtype, exact_features=exact_features, cascade=cascade, max_memory=max_memory,
                               kwargs=kwargs))
    return {name: _named(out[name], name) for name in models}


def _detect_stars(image, work, models: dict, threshold, cascade, exact_features, max_memory, kwargs) -> dict:
    """Release-5 models: one pyramid's features per (sbin, interval, extra octave), padded per model; for
    an image too large for that, each model on its own in bounded memory."""
    from ..features.pyramid_r5 import feature_pyramid_r5, repad_pyramid
    from .release5 import detect_star, use_star_cascade
    from .release5.bands import check_star_memory, star_unbounded_peak

    out = {}
    bound, too_large = resolve_max_memory(max_memory), False
    for m in models.values():
        if use_star_cascade(m, cascade):
            too_large |= star_unbounded_peak(work.shape[:2], m, cascade=True) > bound
        else:
            check_star_memory(work.shape[:2], m, max_memory=bound)
    if too_large:
        for name, m in models.items():
            out[name] = detect_star(image, m, threshold=_given(threshold, name), cascade=cascade,
                                    exact_features=exact_features, max_memory=max_memory, **kwargs)
        return out
    groups = {}
    for name, m in models.items():
        groups.setdefault((m.sbin, m.interval, m.extra_octave), []).append(name)
    for (sbin, interval, extra), names in groups.items():
        base = feature_pyramid_r5(work, sbin, interval, padx=0, pady=0, extra_octave=extra,
                                  exact=features_exact(np.float32, exact_features))
        for name in names:
            m = models[name]
            pady, padx = m.padding
            out[name] = detect_star(image, m, threshold=_given(threshold, name), cascade=cascade,
                                    exact_features=exact_features,
                                    pyramid=repad_pyramid(base, padx=padx, pady=pady), **kwargs)
        del base
    return out


def _detect_r31(image, work, models: dict, threshold, *, dtype, exact_features, cascade, max_memory,
                kwargs) -> dict:
    """Release-3.1 models (:class:`Model`): one pyramid per (sbin, interval), or bands."""
    thresholds = {name: _threshold(threshold, name, m) for name, m in models.items()}
    cascaded = {name: use_cascade(m, cascade) for name, m in models.items()}
    # Images too big for max_memory: level by level in bands (the models with a star-cascade each on
    # their own, the others together), with the features exact_features asks for.
    bands = needs_bands(work.shape[:2], models, max_memory=max_memory, dtype=dtype)
    if bands:
        exact = {name: m for name, m in models.items() if not cascaded[name]}
        raws = detect_raw_bounded(work, exact, {n: thresholds[n] for n in exact}, max_memory=bands, dtype=dtype,
                                  exact_features=exact_features) if exact else {}
        for name, m in models.items():
            if cascaded[name]:
                raws[name] = detect_cascade_raw_bounded(work, m, m.cascade, _given(threshold, name),
                                                        max_memory=bands, exact_features=exact_features)
        return {name: finish_detections(raws[name], models[name], image.shape[:2], **kwargs) for name in models}
    out = {}
    for (sbin, interval), names in pyramid_groups(models).items():
        # One pyramid for every model of the group; the cascade reads its levels in float64.
        pyramid = detection_pyramid(work, sbin, interval, dtype, exact_features)
        for name in names:
            m = models[name]
            if cascaded[name]:
                raw = detect_cascade_raw(work, m, m.cascade, _given(threshold, name), pyramid=pyramid)
            else:
                raw = detect_raw(work, m, thresholds[name], pyramid=pyramid, dtype=dtype)
            out[name] = finish_detections(raw, m, image.shape[:2], **kwargs)
        del pyramid
    return out


def _given(threshold, name: str):
    """The threshold given for class ``name`` (None: the model's own; a cascade's, for a cascade)."""
    return threshold.get(name) if isinstance(threshold, Mapping) else threshold


def _threshold(threshold, name: str, model: Model) -> float:
    t = _given(threshold, name)
    return model.thresh if t is None else float(t)


def _named(dets: Detections, name: str) -> Detections:
    return dets if dets.class_name == name else dataclasses.replace(dets, class_name=name)
