"""Star-cascade search of a pyramid level in bands of rows: the same detections in bounded memory.

:func:`dpm.detection.cascade.detect_cascade_raw` (and release 5's
:func:`~dpm.detection.release5.cascade.detect_raw_star_cascade`) hold the whole
feature pyramid.  For an image too large for that, :func:`search_level_in_bands`
runs the same compiled search (:class:`~dpm.detection._cascade.CascadeKernel`)
on one root level at a time, a band of root rows at a time, with the level's
features computed as the bands move down (each row once) and never held whole.

Why the result is the whole level's, bit for bit.  A hypothesis's outcome
depends on its own features and thresholds, and on one thing more: in a part's
stage, a placement whose response an earlier hypothesis computed is used even
where deformation pruning would skip it (``cascade.cc``'s memo rule).  Which
placements a hypothesis computes depends only on its own score before the
stage, and two hypotheses share placements only when their root rows are at
most ``window`` apart (probes are ``2 ry + ay``, windows ``+-window``).  So a
difference outside a band (a hypothesis missing, or with other scores) can
change a hypothesis ``window`` rows further in at each part stage, and no
further.  Each band is therefore searched with a margin of ``window`` rows per
part stage (``2 x parts``) on each side, whose hypotheses are searched too
(in the kernel's order: x outer, y inner) but not reported; positions beyond
the margin get a projected root score of ``-inf`` and are never entered.  The
band's maps start and end far enough out that every searched hypothesis reads
only real rows (or the level's own border), and the part map starts at twice
the root map's first row, so probes keep their coordinates.  The projected
root responses of the whole level (a few float32 planes) come from the rows
as they are computed (:meth:`dpm.convolve.FilterBank.band_responses`: the same
GEMMs as one convolution).  The outputs of the bands are put in the whole
level's order (component, then x, then y).
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np

from .._alloc import tune_malloc
from ..cascade.types import Cascade, project
from ..features.bands import levels_by_chain, pyramid_plan
from ..limits import format_bytes
from ..model import Model
from .bands import BASE_BYTES
from .cascade import cascade_kernel, cascade_options, check_cascade, level_placements
from .parse import detections_from_placements
from .results import Detections

__all__ = ["BandGeometry", "BandSizer", "MapRows", "band_budget", "band_rows_for", "detect_cascade_raw_bounded",
           "search_level_in_bands"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BandGeometry:
    """Where the cascade kernel reads, in rows, for :func:`search_level_in_bands`.

    ``root_pad``, ``part_pad``: rows of virtual zero padding the kernel puts
    above the root and part maps (release 3.1: ``pady`` and ``2 pady``;
    release 5's padded levels: 0); ``border``: root positions it skips at the
    top and bottom (0 without ``skip_border``); ``root_heights``: each
    component's root filter height; ``anchors``: every part's probe row
    offset as the kernel has it (``ay``: probe ``2 ry + ay``);
    ``part_heights``: the part filters' heights; ``window``: the part window's
    half-width; ``part_stages``: the most part stages of a component (two per
    part).
    """

    root_pad: int
    root_xpad: int
    part_pad: int
    border: int
    root_heights: tuple
    anchors: tuple
    part_heights: tuple
    window: int
    part_stages: int

    @property
    def margin(self) -> int:
        """Root rows searched beyond a band on each side so that the band's outcomes are exact."""
        return self.part_stages * self.window + 1

    def crop(self, q0: int, q1: int, height: int, part_height: int):
        """Root map rows ``[c0, c1)`` and part map rows ``[2 c0, e1)`` that root positions ``q0 .. q1-1``
        read (or the maps' ends), with the border rows the kernel skips outside them."""
        lo_anchor = min(self.anchors, default=0)
        hi_part = max((a + h for a, h in zip(self.anchors, self.part_heights)), default=0)
        fh = max(self.root_heights)
        c0 = min(q0 - self.root_pad, q0 + (lo_anchor - self.window - self.part_pad) // 2, q0 - self.border) - 1
        c0 = max(0, min(c0, part_height // 2))
        c1 = max(q1 - 1 - self.root_pad + fh, q1 + self.border + fh - 1 - 2 * self.root_pad) + 1
        c1 = min(height, max(c1, c0))
        e1 = 2 * (q1 - 1) + hi_part + self.window - self.part_pad + 2
        e1 = min(part_height, max(e1, 2 * c0))
        return c0, c1, e1


class MapRows:
    """Rows of one map the kernel reads (a pyramid level, padded or not), computed on demand in order.

    ``rows(a, b)`` computes rows ``a .. b-1`` (float32 or float64 features);
    the window keeps rows ``start .. stop-1`` in float64 (what the kernel's
    full stages read) and, with ``coeff``, their projection in ``dtype``.
    Rows are computed ``chunk`` at a time at least, each row once; the
    window lives in one buffer that rows move to the front of when it is full.
    """

    def __init__(self, rows, height: int, width: int, channels: int, *, coeff, dtype, chunk: int):
        self._rows, self.height, self.width, self.channels = rows, int(height), int(width), int(channels)
        self.coeff, self.dtype, self.chunk = coeff, np.dtype(dtype), max(1, int(chunk))
        self.start = self.stop = 0
        self._base = 0                  # map row of the buffers' first row
        self._full = np.empty((0, self.width, self.channels))
        self._proj = np.empty((0, self.width, coeff.shape[1]), dtype=self.dtype)

    def _room(self, stop: int) -> None:
        # Buffers holding rows start .. stop-1 from their first row on: the held rows move to the
        # front (in blocks no longer than the move, so that no temporary copy is made), into new
        # buffers of the size needed if these are too small.
        if stop - self._base <= self._full.shape[0]:
            return
        held, k = self.stop - self.start, self.start - self._base
        if stop - self.start > self._full.shape[0]:
            size = stop - self.start + self.chunk
            full = np.empty((size,) + self._full.shape[1:])
            proj = np.empty((size,) + self._proj.shape[1:], dtype=self.dtype)
            full[:held] = self._full[k:k + held]
            proj[:held] = self._proj[k:k + held]
        else:
            full, proj = self._full, self._proj
            for a in range(0, held, k):
                b = min(held, a + k)
                full[a:b] = full[k + a:k + b]
                proj[a:b] = proj[k + a:k + b]
        self._full, self._proj, self._base = full, proj, self.start

    def extend(self, stop: int) -> None:
        """Compute rows up to ``stop`` (at most the height)."""
        stop = min(self.height, int(stop))
        if stop <= self.stop:
            return
        stop = min(self.height, max(stop, self.stop + self.chunk))
        self._room(stop)
        a = self.stop
        while a < stop:
            b = min(stop, a + self.chunk)
            feats = self._rows(a, b)
            self._full[a - self._base:b - self._base] = feats
            self._proj[a - self._base:b - self._base] = project(feats, self.coeff, self.dtype)
            a = b
        self.stop = stop

    def drop(self, start: int) -> None:
        """Forget the rows above ``start``."""
        self.start = max(self.start, min(int(start), self.stop))

    def view(self, a: int, b: int):
        """Rows ``a .. b-1`` (held): ``(full float64, projected)``, C-contiguous."""
        return self._full[a - self._base:b - self._base], self._proj[a - self._base:b - self._base]


def search_level_in_bands(kernel, roots, root: MapRows, part: MapRows, geometry: BandGeometry, *,
                          band_rows: int, bias=None):
    """``kernel.level(...)`` of one root level, the level searched a band of root rows at a time.

    Parameters
    ----------
    kernel : CascadeKernel
        As :func:`dpm.detection.cascade.new_kernel` builds it.
    roots : FilterBank
        The projected root filters (their responses are the kernel's stage 0).
    root, part : MapRows
        The root map and the part map (``interval`` levels finer), with the
        projection of the kernel's projected filters.
    geometry : BandGeometry
    band_rows : int
        Root positions reported per band (the margins come on top).
    bias : optional
        As for ``kernel.level``.

    Returns
    -------
    (pos, score, parts)
        Exactly what ``kernel.level`` returns for the whole level (without the
        per-stage blocks), in the same order.
    """
    height, pad, margin = root.height, geometry.root_pad, geometry.margin
    feed = roots.band_responses(height, root.width, pad=(pad, geometry.root_xpad))
    responses = feed.responses
    total = max((r.shape[0] for r in responses), default=0)
    fh = max(geometry.root_heights)
    out = []
    p0 = 0
    n = max(1, int(band_rows))
    while p0 < total:
        p1 = min(total, p0 + n)
        q0, q1 = max(0, p0 - margin), min(total, p1 + margin)
        c0, c1, e1 = geometry.crop(q0, q1, height, part.height)
        # Rows above the band are forgotten before new ones are computed (the buffers then hold one
        # band's rows, not two).
        root.drop(min(c0, feed.next_row))
        part.drop(2 * c0)
        # The projected root responses of positions q0 .. q1-1 must be complete: every root row they
        # read fed (the feed keeps back a band of its own that the given rows end inside of).
        root.extend(c1)
        need = min(height, q1 - 1 - pad + fh)
        while feed.next_row < need:
            _, proj = root.view(feed.next_row, root.stop)
            feed.feed(proj, feed.next_row)
            if feed.next_row < need:
                root.extend(root.stop + root.chunk)
        part.extend(e1)
        feat_full, _ = root.view(c0, c1)
        part_full, part_proj = part.view(2 * c0, e1)
        scores = []
        for r in responses:
            rows = max(0, (c1 - c0) + 2 * pad - (height + 2 * pad - r.shape[0]))
            s = np.full((rows, r.shape[1]), -np.inf)
            lo, hi = max(q0, c0), min(q1, c0 + rows, r.shape[0])
            if hi > lo:
                s[lo - c0:hi - c0] = r[lo:hi]
            scores.append(s)
        pos, score, parts, _ = kernel.level(feat_full, part_full, part_proj, scores, bias)
        ry = pos[:, 2].astype(np.int64) + c0
        mine = (ry >= p0) & (ry < p1)
        pos = pos[mine].copy()
        pos[:, 2] += c0
        parts = parts[mine].copy()
        parts[:, :, 1] += 2 * c0
        out.append((pos, score[mine], parts))
        p0 = p1
    if not out:
        return np.zeros((0, 3), dtype=np.intc), np.zeros(0), np.zeros((0, 0, 2), dtype=np.intc)
    pos, score, parts = (np.concatenate(x) for x in zip(*out))
    order = np.lexsort((pos[:, 2], pos[:, 1], pos[:, 0]))
    return pos[order], score[order], parts[order]


def band_budget(max_memory: int, image) -> tuple:
    """``(band_bytes, cache_bytes, window_bytes)`` for a search in bands under ``max_memory`` bytes: the
    feature pyramid's bands and the reduced images it keeps whole
    (:func:`dpm.features.bands.pyramid_plan`'s ``band_bytes`` and ``cache_bytes``), and what is left for
    the bands' maps, memo planes and search once the process, the image, the pyramid's working bands (a
    reduction's band and its source's, down to the image, at up to three octaves, and a HOG band: five
    bands) and its kept images (those of one chain of octaves: less than twice the largest) are
    counted."""
    room = max_memory - BASE_BYTES - image.nbytes
    band_bytes = max(2 ** 16, room // 32)
    cache_bytes = max(2 ** 16, room // 16)
    return band_bytes, cache_bytes, room - 5 * band_bytes - 2 * cache_bytes


def band_rows_for(geometry: BandGeometry, root: MapRows, part: MapRows, *, available: int, components: int) -> int:
    """Root positions per band such that one band's maps, memo planes and search fit ``available`` bytes
    (at least 8)."""
    itemsize = root.dtype.itemsize
    max_parts = geometry.part_stages // 2
    root_row = root.width * (root.channels * (8 + itemsize) + root.coeff.shape[1] * itemsize)
    part_row = part.width * (part.channels * (8 + itemsize) + part.coeff.shape[1] * itemsize)
    # The memo: two planes (projected, full) per part of one component (the components share it), of
    # a float64 value and a 32-bit stamp per placement.
    memo_row = 2 * max_parts * (part.width + 4 * geometry.root_pad + 8) * 12
    # The search: per position of one component, its state; of every component, its root scores in
    # float64 and room for its detections (position, score, part placements).
    search_row = (root.width + 2 * geometry.root_xpad + 8) * (36 + 16 * max_parts
                                                             + components * (28 + 8 * max_parts))
    # Two part rows per root row, each with its memo planes; the held rows move within their buffers.
    per_row = root_row + 2 * part_row + 2 * memo_row + search_row
    extra = 2 * geometry.margin + max(geometry.root_heights) + geometry.window + 2 * geometry.border + 8
    return max(8, int(available // max(per_row, 1)) - extra)


class BandSizer:
    """The band height of each level of one image's search (:func:`band_rows_for` with what
    :func:`band_budget` leaves once the level's projected root responses are counted), or ``band_rows``
    if given; warns once when even the smallest bands do not fit ``max_memory``."""

    def __init__(self, geometry: BandGeometry, image, *, max_memory: int, components: int,
                 band_rows: int | None = None):
        self.geometry, self.components, self.band_rows = geometry, components, band_rows
        self.max_memory, self.shape = max_memory, image.shape[:2]
        self.band_bytes, self.cache_bytes, self.window_bytes = band_budget(max_memory, image)
        self._warned = False

    def rows(self, root: MapRows, part: MapRows) -> int:
        if self.band_rows is not None:
            return self.band_rows
        g = self.geometry
        responses = self.components * (root.height + 2 * g.root_pad) * (root.width + 2 * g.root_xpad)
        n = band_rows_for(g, root, part, available=self.window_bytes - responses * root.dtype.itemsize,
                          components=self.components)
        if n == 8 and not self._warned:
            self._warned = True
            h, w = self.shape
            warnings.warn(f"star-cascade detection of a {w}x{h} image needs more than "
                          f"max_memory={format_bytes(self.max_memory)} for its smallest bands; going on",
                          ResourceWarning, stacklevel=4)
        return n


def detect_cascade_raw_bounded(image, model: Model, cascade: Cascade, threshold: float | None = None, *,
                               max_memory: int, exact_features: bool | None = None, window: int | None = None,
                               skip_border: bool = True, band_rows: int | None = None) -> Detections:
    """:func:`dpm.detection.cascade.detect_cascade_raw` in bounded memory: the same raw detections.

    The pyramid is never held: each root level and its part level are
    computed a band of rows at a time (:func:`dpm.features.bands.pyramid_plan`,
    rows bit-identical to the whole pyramid's) and searched in bands of root
    rows (:func:`search_level_in_bands`).  ``max_memory`` (bytes) sizes the
    bands; ``band_rows`` forces their height (root positions; tests).
    """
    tune_malloc()
    check_cascade(model, cascade)
    thresh, window = cascade_options(cascade, threshold, window)
    exact = exact_features is True
    feat_dtype = np.dtype(np.float64 if exact else np.float32)
    h, w = image.shape[:2]
    pady, padx = model.padding
    maxh, maxw = model.maxsize
    parts = [p for c in model.components for p in c.parts]
    geometry = BandGeometry(root_pad=pady, root_xpad=padx, part_pad=2 * pady,
                            border=(pady + 1) // 2 if skip_border else 0,
                            root_heights=tuple(int(c.root_size[0]) for c in model.components),
                            anchors=tuple(int(p.anchor[1]) for p in parts),
                            part_heights=tuple(int(p.filter.shape[0]) for p in parts), window=window,
                            part_stages=2 * max((len(c.parts) for c in model.components), default=0))
    sizer = BandSizer(geometry, image, max_memory=max_memory, components=len(model.components),
                      band_rows=band_rows)
    levels, scales = pyramid_plan(image, model.sbin, model.interval, cache_bytes=sizer.cache_bytes,
                                  band_bytes=sizer.band_bytes, exact=exact)
    kernel, roots = cascade_kernel(model, cascade, thresh, window, bool(skip_border), None, feat_dtype)
    coeff = np.asarray(cascade.coeff, dtype=np.float64)
    found = {}
    for lev, root, part in levels_by_chain(levels, model.interval):
        if root.shape[0] + 2 * pady < maxh or root.shape[1] + 2 * padx < maxw:
            continue
        maps = [MapRows(lambda a, b, lv=lv: lv.rows(a, b, feat_dtype), lv.shape[0], lv.shape[1], lv.shape[2],
                        coeff=coeff, dtype=feat_dtype, chunk=sizer.band_bytes // max(1, lv.bytes_per_row()))
                for lv in (root, part)]
        rows = sizer.rows(*maps)
        pos, score, placed = search_level_in_bands(kernel, roots, maps[0], maps[1], geometry, band_rows=rows)
        found[lev] = level_placements(model, lev, model.sbin / scales[lev], pos, score, placed)
        log.debug("level %d searched in bands of %d rows", lev, rows)
    entries = [e for lev in sorted(found) for e in found[lev]]
    return detections_from_placements(model, entries, (h, w))
