"""Detection in bounded memory: the pyramid level by level, each level's features in bands of rows.

:func:`dpm.detection.detect` holds the whole feature pyramid, a float64 copy
of the image and the filter responses of a level at once: about 130 bytes per
pixel, 19 GB for a 12000 x 12000 photo.  When :func:`unbounded_peak` says that
is more than ``max_memory``, detection runs here instead, with the same raw
detections (every score, box and level, in the same order; the boxes after
suppression are therefore the same too), with the exact or the fast features
(``exact_features`` as in :func:`dpm.detection.detect_raw`):

* levels one at a time (:func:`dpm.features.bands.pyramid_plan`): a root level
  and its part level (``interval`` levels below), each computed a band of
  rows at a time from bands of the image (bit-identical rows);
* each band is fed to the filter banks as it is computed
  (:meth:`dpm.convolve.FilterBank.band_responses`: the same GEMMs and
  additions as one convolution of the whole level), so a level's features
  are never held whole; its *responses* are (the part responses at twice the
  resolution are the largest: a quarter of the image's pixels per part
  filter for ``sbin`` 8, in float32);
* the distance transforms and component scores of the level are then those of
  the unbounded path, on the same responses (:func:`dpm.detection.scores.score_level`):
  the transform's reach is global (a part may land anywhere in its column),
  so it runs over whole response maps rather than over tiles;
* only the placements above the threshold are kept per level
  (:func:`dpm.detection.parse.level_found`), assembled in level order at the end.

Models are scored together on a level's feature bands as far as their
responses fit; otherwise in groups, each group computing the level's
features again.  What stays bounded by the image's size is the decoded image
(3 bytes per pixel) and one level's responses, score and argmax maps for one
model (about 4.5 bytes per image pixel for a 2-component, 12-part
voc-release3.1 model): when ``max_memory`` is below that a warning says so
and detection goes on.

:func:`level_responses` is the per-level entry point other detectors (a
star-cascade) can reuse: responses of any filter banks on one level, computed
from bands of its features.
"""
from __future__ import annotations

import logging
import warnings

import numpy as np

from ..features.bands import level_layout, levels_by_chain, pyramid_plan
from ..features.kernels import hog_shape
from ..features.pyramid import octave_scale_count
from ..limits import format_bytes, limit
from .parse import detections_from_placements, level_found
from .pyramid import features_exact
from .scores import PreparedModel, score_level

__all__ = ["BASE_BYTES", "detect_raw_bounded", "needs_bands", "level_responses", "resolve_max_memory", "unbounded_peak"]

log = logging.getLogger(__name__)

#: The process itself (Python, numpy, dpm, BLAS) before any image: about what ``import dpm`` takes.
BASE_BYTES = 96 * 2 ** 20


def resolve_max_memory(max_memory=None) -> int:
    """``max_memory`` in bytes: a number, a string such as ``"2G"``, or None for ``DPM_MAX_MEMORY``
    or the default (:data:`dpm.limits.MAX_MEMORY`, 1.5 GiB)."""
    from ..limits import parse_size

    if isinstance(max_memory, str):
        return parse_size(max_memory, "max_memory")
    if max_memory is not None and (isinstance(max_memory, bool) or not isinstance(max_memory, (int, np.integer))
                                   or max_memory <= 0):
        raise ValueError(f"max_memory must be a positive number of bytes (or a string such as '2G'), "
                         f"got {max_memory!r}")
    return limit("MAX_MEMORY", None if max_memory is None else int(max_memory))


def _padded_area(shape, pad):
    return (shape[0] + 2 * pad[0]) * (shape[1] + 2 * pad[1])


def _level_bytes(model, root_shape, part_shape, itemsize: int) -> int:
    """About the memory of one level's responses, transforms, scores and argmaps for ``model``."""
    pady, padx = model.padding
    ar = _padded_area(root_shape, (pady, padx))
    ap = _padded_area(part_shape, (2 * pady, 2 * padx))
    ncomp = len(model.components)
    nparts = sum(len(c.parts) for c in model.components)
    responses = itemsize * (ncomp * ar + nparts * ap)
    # float64 scores, int32 argmaps (ix, iy) per part, one transform's working rows and outputs.
    return responses + 8 * ncomp * ar + 8 * nparts * ar + (6 * ap + 16 * ar if nparts else 0)


def unbounded_peak(shape, models, dtype=np.float32) -> int:
    """About the peak memory of :func:`dpm.detection.detect` of an image of ``shape`` (as given to
    the pyramid, after upsampling) with ``models`` (a ``{name: Model}`` dict), in bytes."""
    h, w = int(shape[0]), int(shape[1])
    itemsize = np.dtype(dtype).itemsize
    px = h * w
    # Decoded image; its float64 copy; a reduced copy, gradients and histograms of the pool thread.
    peak = BASE_BYTES + 3 * px + 24 * px + 24 * px + 9 * px + 9 * px
    worst = 0
    for sbin, interval in {(m.sbin, m.interval) for m in models.values()}:
        layout = level_layout(h, w, sbin, interval)
        shapes = {lev: hog_shape(*size, cell) for lev, _, _, size, cell in layout}
        pyramid = sum(s[0] * s[1] * s[2] for s in shapes.values()) * itemsize
        level = max((_level_bytes(m, shapes[lev], shapes[lev - interval], itemsize)
                     for m in models.values() if (m.sbin, m.interval) == (sbin, interval)
                     for lev in shapes if lev >= interval), default=0)
        worst = max(worst, pyramid + level)
    return peak + worst


def level_responses(plan, banks, *, band_rows: int, dtype=np.float32):
    """Responses of filter banks on one pyramid level, its features computed a band of rows at a time.

    Parameters
    ----------
    plan : dpm.features.bands.LevelPlan
    banks : sequence of (FilterBank, (pady, padx))
        Each bank with the zero padding around the level it is correlated with.
    band_rows : int
        Feature rows computed at a time (more when a bank's own band needs them).

    Returns
    -------
    list of list of ndarray
        Per bank, what ``bank.convolve(level, pad=pad)`` returns, bit for bit.
    """
    h, w = plan.shape[:2]
    feeds = [bank.band_responses(h, w, pad=pad) for bank, pad in banks]
    a, n = 0, max(1, int(band_rows))
    while a < h:
        b = min(h, a + n)
        feats = plan.rows(a, b, dtype)
        for f in feeds:
            if f.next_row < b:
                f.feed(feats[f.next_row - a:], f.next_row)
        del feats
        start = min(f.next_row for f in feeds)
        # A bank whose band did not fit takes twice the rows next time.
        n = max(1, int(band_rows)) if start > a else 2 * n
        a = start
    return [f.responses for f in feeds]


def _groups(names, models, need, available):
    """Models in order, packed into groups whose level memory ``need[name]`` fits ``available``."""
    groups, current, used = [], [], 0
    for name in names:
        if current and used + need[name] > available:
            groups.append(current)
            current, used = [], 0
        current.append(name)
        used += need[name]
    if current:
        groups.append(current)
    return groups


def needs_bands(shape, models: dict, *, max_memory=None, dtype=np.float32) -> int:
    """``max_memory`` in bytes (:func:`resolve_max_memory`) if detecting ``models`` on an image of
    ``shape`` (H, W) the usual way would take more, so that it must go through
    :func:`detect_raw_bounded`; else 0."""
    max_memory = resolve_max_memory(max_memory)
    h, w = int(shape[0]), int(shape[1])
    peak = unbounded_peak((h, w), models, dtype)
    if peak <= max_memory:
        return 0
    for m in models.values():
        if octave_scale_count(h, w, m.sbin, m.interval) < m.interval:
            return 0     # a tiny image (or a huge sbin): nothing to bound
    log.info("detecting a %dx%d image in bands (the whole pyramid would take about %s, max_memory is %s)",
             w, h, format_bytes(peak), format_bytes(max_memory))
    return max_memory


def detect_raw_bounded(image, models: dict, thresholds: dict, *, max_memory: int, dtype=np.float32,
                       exact_features: bool | None = None) -> dict:
    """``{name: raw Detections}`` of :func:`dpm.detection.detect_raw` for each model, in bounded memory.

    ``image`` is the ``(H, W, 3)`` image detection works on (uint8 stays
    uint8); ``thresholds[name]`` each model's threshold.  The raw detections
    are identical to ``detect_raw(image, model, threshold, dtype=dtype,
    exact_features=exact_features)`` (None: the fast features with float32
    responses, the exact ones with float64).
    """
    dtype = np.dtype(dtype)
    exact = features_exact(dtype, exact_features)
    itemsize = dtype.itemsize
    h, w = image.shape[:2]
    fixed = BASE_BYTES + image.nbytes
    band_bytes = max(2 ** 16, (max_memory - fixed) // 8)
    prepared = {name: PreparedModel(m, dtype) for name, m in models.items()}
    found = {name: {} for name in models}
    pyramid_sets = {}
    for name, m in models.items():
        pyramid_sets.setdefault((m.sbin, m.interval), []).append(name)
    warned = False
    for (sbin, interval), names in pyramid_sets.items():
        levels, scales = pyramid_plan(image, sbin, interval, cache_bytes=band_bytes, band_bytes=band_bytes,
                                      exact=exact)
        for lev, root, part in levels_by_chain(levels, interval):
            todo = []
            for name in names:
                m = models[name]
                pady, padx = m.padding
                maxh, maxw = m.maxsize
                if root.shape[0] + 2 * pady >= maxh and root.shape[1] + 2 * padx >= maxw:
                    todo.append(name)
            if not todo:
                continue
            need = {name: _level_bytes(models[name], root.shape, part.shape, itemsize) for name in todo}
            available = max_memory - fixed - 2 * band_bytes
            if not warned and max(need.values()) > available:
                warned = True
                warnings.warn(f"detection of a {w}x{h} image needs about "
                              f"{format_bytes(fixed + 2 * band_bytes + max(need.values()))} "
                              f"(one pyramid level's filter responses for one model), more than "
                              f"max_memory={format_bytes(max_memory)}; going on", ResourceWarning, stacklevel=3)
            for group in _groups(todo, models, need, available):
                _score_level_group(group, models, prepared, thresholds, root, part, scales[lev], band_bytes,
                                   dtype, found)
    out = {}
    for name, m in models.items():
        entries = [e for lev in sorted(found[name]) for e in found[name][lev]]
        out[name] = detections_from_placements(m, entries, (h, w))
    return out


def _score_level_group(group, models, prepared, thresholds, root, part, scale, band_bytes, dtype, found):
    banks, owners = [], []
    for name in group:
        pady, padx = models[name].padding
        banks.append((prepared[name].roots, (pady, padx)))
        owners.append(name)
    roots = dict(zip(owners, level_responses(root, banks, band_rows=band_bytes // root.bytes_per_row(),
                                             dtype=dtype)))
    banks, owners = [], []
    for name in group:
        if prepared[name].parts is not None:
            pady, padx = models[name].padding
            banks.append((prepared[name].parts, (2 * pady, 2 * padx)))
            owners.append(name)
    parts = {}
    if banks:
        parts = dict(zip(owners, level_responses(part, banks, band_rows=band_bytes // part.bytes_per_row(),
                                                 dtype=dtype)))
    for name in group:
        m = models[name]
        ls = score_level(prepared[name], root.index, m.sbin / scale, roots.pop(name), parts.pop(name, None))
        found[name][root.index] = level_found(m, ls, thresholds[name])
        del ls
    log.debug("level %d scored for %s", root.index, ", ".join(group))
