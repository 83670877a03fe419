"""Release-5 star models on images too large for their pyramid: bounded memory.

:func:`~dpm.detection.release5.detect_star` holds release 5's whole padded
32-channel pyramid and, with the cascade, its largest levels in float64 (about
130 to 200 bytes per image pixel for the VOC models: a 6000 x 6000 photo took
6.3 GB before the cascade's memo was shared by its components, measured).
When :func:`star_unbounded_peak` says that is more than ``max_memory``:

* with the model's star-cascade (the default for the built-in release-5
  models), :func:`detect_raw_star_cascade_bounded` gives the same raw
  detections as :func:`~dpm.detection.release5.detect_raw_star_cascade`:
  each root level and its part level computed a band of rows at a time
  (:func:`dpm.features.bands.pyramid_plan`, padded here as
  :func:`dpm.features.pyramid_r5.feature_pyramid_r5` pads them) and searched
  in bands (:func:`dpm.detection.cascade_bands.search_level_in_bands`);
* the exact detector (``cascade=False``, or a model without a cascade) has no
  banded path: :func:`check_star_memory` refuses the image with a one-line
  error that says what to do.
"""
from __future__ import annotations

import logging

import numpy as np

from ..._alloc import tune_malloc
from ...cascade.types import Cascade
from ...features.bands import LevelPlan, level_layout, levels_by_chain, pyramid_plan
from ...features.kernels import hog_shape
from ...features.pyramid import pyramid_scales
from ...features.pyramid_r5 import TRUNCATION_CHANNEL, PaddedPyramid, pad_level
from ...limits import format_bytes
from ...model.release5 import StarModel
from ..bands import BASE_BYTES, resolve_max_memory
from ..cascade_bands import BandGeometry, BandSizer, MapRows, search_level_in_bands
from .cascade import best_per_position, level_biases, star_cascade_kernel, star_cascade_options
from .parse import StarRaw, merge_levels, placed_detections
from .scores import loc_features

__all__ = ["check_star_memory", "detect_raw_star_cascade_bounded", "star_needs_bands", "star_unbounded_peak"]

CHANNELS = TRUNCATION_CHANNEL + 1

log = logging.getLogger(__name__)


def star_levels_plan(image, model: StarModel, *, exact: bool, cache_bytes: int, band_bytes: int):
    """The levels of ``feature_pyramid_r5(image, ...)`` for ``model`` as :class:`~dpm.features.bands.LevelPlan`
    s of the unpadded 31-channel features, and the pyramid's scales."""
    levels, _ = pyramid_plan(image, model.sbin, model.interval, cache_bytes=cache_bytes, band_bytes=band_bytes,
                             exact=exact)
    base = pyramid_scales(image.shape[0], image.shape[1], model.sbin, model.interval)
    if not model.extra_octave:
        return levels, base
    interval, cell = model.interval, model.sbin // 4
    extra = [LevelPlan(i, levels[i].source, cell, hog_shape(*levels[i].source.shape, cell), exact)
             for i in range(interval)]
    return extra + levels, np.concatenate([2 * base[:interval], base])


def padded_rows(plan: LevelPlan, pady: int, padx: int):
    """``(rows, height, width)``: rows ``a .. b-1`` of the padded float32 level ``feature_pyramid_r5``
    makes of ``plan``'s features (:func:`~dpm.features.pyramid_r5.pad_level`), computed on demand."""
    y, x = pady + 1, padx + 1
    h, w = plan.shape[:2]

    def rows(a: int, b: int) -> np.ndarray:
        # The feature rows a .. b-1 reach, padded: padded rows lo - y .. hi + y - 1, of which the padding
        # rows the slice keeps are real padding (they lie beyond the level's first or last row).
        lo = max(a, y)
        hi = max(lo, min(b, y + h))
        return pad_level(plan.rows(lo - y, hi - y, np.float32), pady, padx)[a - lo + y:b - lo + y]

    return rows, h + 2 * y, w + 2 * x


def star_unbounded_peak(shape, model: StarModel, cascade: bool = True) -> int:
    """About the peak memory of :func:`~dpm.detection.release5.detect_star` on an image of ``shape``
    (after upsampling), in bytes: the decoded image and its float64 copies, the padded float32 pyramid,
    and with the cascade the largest ``interval + 1`` levels held in float64 with their projections
    (without: the filter responses, transforms and argmax tables of a level).  Measured with
    ``r5/voc2007/car`` (``/usr/bin/time``) at 3 and 9 million pixels: cascade 0.65 and 1.42 GB, exact
    0.75 and 1.81 GB; this gives 0.65 and 1.69 GB, 0.80 and 2.15 GB."""
    h, w = int(shape[0]), int(shape[1])
    px = h * w
    sbin, interval = model.sbin, model.interval
    pady, padx = model.padding
    layout = level_layout(h, w, sbin, interval)
    cells = [hog_shape(*size, cell)[:2] for _, _, _, size, cell in layout]
    if model.extra_octave:
        cells += [hog_shape(*size, sbin // 4)[:2] for _, _, depth, size, cell in layout
                  if depth == 0 and cell == sbin // 2]     # the extra octave: sbin / 4 cells of the first
    padded = sorted(((a + 2 * pady + 2) * (b + 2 * padx + 2) for a, b in cells), reverse=True)
    pyramid = sum(padded) * CHANNELS * 4
    if cascade:
        projected = model.cascade.coeff.shape[1] if model.cascade is not None else 6
        extra = 0.4 * sum(padded[:interval + 1]) * (CHANNELS * 8 + 2 * 4 * projected)
    else:
        extra = 100 * px
    return int(BASE_BYTES + 60 * px + pyramid + extra)


def star_needs_bands(shape, model: StarModel, *, cascade: bool, max_memory=None) -> int:
    """``max_memory`` in bytes if detecting ``model`` on an image of ``shape`` (after upsampling) the usual
    way would take more (then the banded cascade must be used), else 0."""
    max_memory = resolve_max_memory(max_memory)
    peak = star_unbounded_peak(shape, model, cascade)
    if peak <= max_memory:
        return 0
    log.info("detecting a %dx%d image with %s in bands (the whole pyramid would take about %s, max_memory is %s)",
             int(shape[1]), int(shape[0]), model.class_name or "a release-5 model", format_bytes(peak),
             format_bytes(max_memory))
    return max_memory


def check_star_memory(shape, model: StarModel, *, max_memory=None) -> None:
    """``ValueError`` naming the remedies if the exact detector of ``model`` would need more than
    ``max_memory`` on an image of ``shape`` (after upsampling): it has no banded path."""
    max_memory = resolve_max_memory(max_memory)
    peak = star_unbounded_peak(shape, model, cascade=False)
    if peak > max_memory:
        name = model.class_name or "release-5 model"
        raise ValueError(f"image of {int(shape[1])}x{int(shape[0])} pixels: the exact detector of {name} "
                         f"(release 5) needs about {format_bytes(peak)}, more than max_memory="
                         f"{format_bytes(max_memory)}, and has no banded path; detect with its star-cascade "
                         "(without cascade=False / --exact), with a release-3.1 model (voc2007/<class>), or "
                         "allow more memory (max_memory / --max-memory)")


def detect_raw_star_cascade_bounded(image, model: StarModel, cascade: Cascade | None = None,
                                    threshold: float | None = None, *, max_memory: int, window: int | None = None,
                                    skip_border: bool = True, exact_features: bool = False,
                                    band_rows: int | None = None) -> StarRaw:
    """:func:`~dpm.detection.release5.detect_raw_star_cascade` in bounded memory: the same raw detections.

    ``exact_features`` as ``exact_projections`` there (and the release's
    features); ``max_memory`` (bytes) sizes the bands, ``band_rows`` forces
    their height in root positions (tests).
    """
    tune_malloc()
    cascade, thresh, window = star_cascade_options(model, cascade, threshold, window)
    dtype = np.dtype(np.float64 if exact_features else np.float32)
    h, w = image.shape[:2]
    pady, padx = model.padding
    interval = model.interval
    parts = [p for c in model.components for p in c.parts]
    geometry = BandGeometry(root_pad=0, root_xpad=0, part_pad=0, border=(pady + 1) // 2 if skip_border else 0,
                            root_heights=tuple(int(c.root.size[0]) for c in model.components),
                            anchors=tuple(int(p.anchor[1]) - pady for p in parts),
                            part_heights=tuple(int(p.size[0]) for p in parts), window=window,
                            part_stages=2 * max((len(c.parts) for c in model.components), default=0))
    sizer = BandSizer(geometry, image, max_memory=max_memory, components=len(model.components),
                      band_rows=band_rows)
    levels, scales = star_levels_plan(image, model, exact=bool(exact_features), cache_bytes=sizer.cache_bytes,
                                      band_bytes=sizer.band_bytes)
    kernel, roots = star_cascade_kernel(model, cascade, thresh, window, bool(skip_border), None, dtype)
    coeff = np.asarray(cascade.coeff, dtype=np.float64)
    biases = level_biases(model, loc_features(len(levels), interval), interval)
    pyramid = PaddedPyramid(levels=[], scales=scales, sbin=model.sbin, interval=interval, padx=padx, pady=pady,
                            extra_octave=bool(model.extra_octave), image_shape=(h, w))
    found = {}
    for lev, root, part in levels_by_chain(levels, interval):
        maps = [MapRows(*padded_rows(plan, pady, padx), CHANNELS, coeff=coeff, dtype=dtype,
                        chunk=sizer.band_bytes // max(1, plan.bytes_per_row()))
                for plan in (root, part)]
        pos, score, placed = search_level_in_bands(kernel, roots, maps[0], maps[1], geometry,
                                                   band_rows=sizer.rows(*maps), bias=biases[lev])
        if len(pos):
            keep = best_per_position(pos, score)
            found[lev] = (np.full(len(keep), lev, dtype=np.intp), pos[keep], score[keep], placed[keep])
    if not found:
        return merge_levels(model, [])
    lev, pos, score, placed = (np.concatenate(x) for x in zip(*(found[k] for k in sorted(found))))
    placed = np.concatenate([pos[:, None, 1:3], placed], axis=1).astype(np.intp)
    pos = pos.astype(np.intp)
    return merge_levels(model, [placed_detections(model, pyramid, lev, pos[:, 0], pos[:, 1], pos[:, 2], placed,
                                                  score)])
