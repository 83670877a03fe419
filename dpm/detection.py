"""Detection with a Deformable Part Model: voc-release3.1 ``detect.m`` and ``process.m``.

The pipeline (spec §1.9, §1.10)::

    image -> feature pyramid -> per level: root and part filter responses ->
    distance transform of each part response -> component scores ->
    positions above the threshold -> root and part boxes (the raw detections)
    -> bounding-box prediction (getboxes) -> non-maximum suppression -> clipping

Scores and boxes are those of the original code: the same raw detections in
the same order (levels ascending from ``interval``; within a level, components
in order; within a component, column-major positions), boxes in 1-based
inclusive pixel coordinates (see :mod:`dpm.boxes`).

Two documented departures, on by default for speed: :func:`detect` and
:func:`detect_raw` compute the filter responses in float32 (``dtype=``;
``np.float64`` gives the original's double precision), scores then differing
from the original's by about 1e-6; and with float32 responses the features
too are computed in single precision (``exact_features=``; ``True`` gives the
original's features rounded once).  See :func:`detect` and docs/detection.md.
Everything after the convolutions is computed in float64.  Only the rows and
columns of each part's distance transform that ``detect.m`` probes are computed
(they are exactly the original's); :class:`PartArgmax` holds them.

Reference: P. Felzenszwalb, R. Girshick, D. McAllester, D. Ramanan, "Object
Detection with Discriminatively Trained Part Based Models", PAMI 2010; the
voc-release3.1 code (MIT-style licence).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._alloc import tune_malloc
from .boxes import clip_boxes, nms_indices, predict_boxes
from .convolve import FilterBank
from .dt import _MAX_SIDE, _check_coefficients, _transform
from .features import feature_pyramid
from .image import as_rgb, upsample_image
from .model import Model

__all__ = ["Detections", "detect", "detect_raw", "detection_pyramid", "finish_detections", "upsampled",
           "check_image_size", "LevelScores", "PartArgmax", "score_levels"]

# Precision of the filter responses in detection (see ``detect``'s ``dtype``).
DEFAULT_DTYPE = np.float32


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


@dataclass(frozen=True)
class PartArgmax:
    """Where a part lands (the dt argmax) for the probe positions of one part level.

    ``detect.m`` reads the distance transform of a part only at the probe
    positions ``(2*x + anchor_x, 2*y + anchor_y)`` (0-based) of the padded part
    level, so only the rows ``row0, row0 + step, ...`` and the columns
    ``col0, col0 + col_step, ...`` of the argmax maps are computed (they are
    identical to the same entries of the full maps).

    Attributes
    ----------
    ix, iy : (R, C) ndarray of int32
        0-based source column and row of the part for the computed rows and
        columns.
    row0, step : int
        Row ``r`` of ``ix``/``iy`` is row ``row0 + r * step`` of the part level.
    shape : (int, int)
        ``(H, W)`` of the full (padded) part level.
    col0, col_step : int, default 0 and 1
        Column ``c`` of ``ix``/``iy`` is column ``col0 + c * col_step`` of the
        part level.
    """

    ix: np.ndarray
    iy: np.ndarray
    row0: int
    step: int
    shape: tuple
    col0: int = 0
    col_step: int = 1

    def at(self, probey, probex):
        """``(px, py)``: 0-based source column and row for probe rows/columns of the part level."""
        r, rem = np.divmod(np.asarray(probey) - self.row0, self.step)
        c, crem = np.divmod(np.asarray(probex) - self.col0, self.col_step)
        if np.any(rem != 0) or np.any(r < 0) or np.any(r >= self.ix.shape[0]):
            raise IndexError("probe row was not computed")
        if np.any(crem != 0) or np.any(c < 0) or np.any(c >= self.ix.shape[1]):
            raise IndexError("probe column was not computed")
        return self.ix[r, c], self.iy[r, c]

    def full(self):
        """Full-size ``(Ix, Iy)`` maps of the part level; entries not computed hold -1."""
        ix = np.full(self.shape, -1, dtype=np.int32)
        iy = np.full(self.shape, -1, dtype=np.int32)
        rows = slice(self.row0, self.row0 + self.step * self.ix.shape[0], self.step)
        cols = slice(self.col0, self.col0 + self.col_step * self.ix.shape[1], self.col_step)
        ix[rows, cols] = self.ix
        iy[rows, cols] = self.iy
        return ix, iy


@dataclass
class LevelScores:
    """Score maps of one pyramid level (what :func:`score_levels` yields).

    ``scores[c]`` is component ``c``'s score map (float64) over root positions
    of the padded level; ``argmax[c][j]`` is a :class:`PartArgmax` giving
    the 0-based position of part ``j`` of component ``c`` for each probe
    position of the padded part level (``.at(probey, probex)``; ``.full()``
    returns the ``(Ix, Iy)`` maps); ``cell`` the cell size in pixels;
    ``root_features`` and ``part_features`` are the zero-padded feature maps
    the filters were applied to, in the precision of the computation (None
    when :func:`score_levels` was asked not to keep them).
    """

    level: int
    cell: float
    scores: list
    argmax: list
    root_features: np.ndarray = None
    part_features: np.ndarray = None


class _Prepared:
    """A model's filters stacked for convolution, built once per detection call.

    ``dtype`` is the precision of the filter responses (float64: the
    original's; float32: faster, see :func:`detect`).  ``exact_order``
    (float64 only) computes them without BLAS in a fixed summation order, the
    same bits on every machine (:meth:`dpm.convolve.FilterBank.convolve`).
    """

    def __init__(self, model: Model, dtype=np.float64, *, exact_order: bool = False):
        self.model = model
        self.dtype = np.dtype(dtype)
        self.exact_order = bool(exact_order)
        if self.exact_order and self.dtype != np.float64:
            raise ValueError(f"exact_order=True needs float64 responses, got dtype={self.dtype.name}")
        self.roots = FilterBank([c.root for c in model.components], dtype=self.dtype)
        self.part_index = []
        filters = []
        for c in model.components:
            idx = []
            for p in c.parts:
                idx.append(len(filters))
                filters.append(p.filter)
            self.part_index.append(idx)
        self.parts = FilterBank(filters, dtype=self.dtype) if filters else None
        self.deformations = [[_check_coefficients(*p.deformation) for p in c.parts] for c in model.components]


def _pad(features: np.ndarray, pady: int, padx: int, dtype=None) -> np.ndarray:
    h, w, nf = features.shape
    out = np.empty((h + 2 * pady, w + 2 * padx, nf), dtype=features.dtype if dtype is None else dtype)
    out[:pady] = 0
    out[pady + h:] = 0
    out[pady:pady + h, :padx] = 0
    out[pady:pady + h, padx + w:] = 0
    out[pady:pady + h, padx:padx + w] = features
    return out


def _part_dt(resp: np.ndarray, coeffs, row0: int, col0: int, shape):
    """dt of ``-resp`` (exactly ``dt.cc`` on the negated responses) at rows ``row0, row0 + 2, ...``
    and columns ``col0, col0 + 2, ...``.

    At most ``shape`` = (rows, columns) probes, those inside the map.
    ``coeffs`` as checked by :func:`dpm.dt._check_coefficients`.
    """
    if resp.size == 0 or max(resp.shape) > _MAX_SIDE:
        raise ValueError(f"part response of shape {resp.shape} is empty or too large for the distance transform")
    rows = range(resp.shape[0])[row0:row0 + 2 * shape[0]:2]
    cols = range(resp.shape[1])[col0:col0 + 2 * shape[1]:2]
    return _transform(np.ascontiguousarray(resp), coeffs, rows.start, 2, len(rows), True,
                      cols.start, 2, len(cols))


def _fit(values: np.ndarray, shape, fill) -> np.ndarray:
    """``values`` (the probes inside the part map) filled to ``shape``.

    Probes that fall outside the part map (the original would index out of
    range there; it does not happen for pyramids built by featpyramid) get ``fill``.
    """
    if values.shape == tuple(shape):
        return values
    out = np.full(shape, fill, dtype=values.dtype)
    out[:values.shape[0], :values.shape[1]] = values
    return out


def score_levels(pyramid, model: Model, prepared: _Prepared | None = None, skip=None, *,
                 keep_features: bool = True, exact_order: bool = False):
    """Yield :class:`LevelScores` for each pyramid level ``detect.m`` visits.

    Levels run from ``interval`` (0-based) to the top; a level whose padded map
    is smaller than the model's largest root is skipped, as in the original,
    and so is a level for which ``skip(level, cell_size)`` returns True.
    ``prepared`` fixes the precision (default: float64 responses, the
    original's).  With ``keep_features=False`` the yielded scores do not hold
    the padded feature maps.  ``exact_order=True`` (float64 responses only)
    computes the filter responses in a fixed summation order without BLAS:
    the scores are then the same bits on every machine, which training needs
    (see ``docs/training.md``).
    """
    tune_malloc()
    prepared = prepared or _Prepared(model, exact_order=exact_order)
    exact = exact_order or prepared.exact_order
    dtype = prepared.dtype
    pady, padx = model.padding
    maxh, maxw = model.maxsize
    interval = pyramid.interval

    def as_dtype(level):
        # No copy when the pyramid was built in the responses' dtype (detect_raw does that).
        return np.ascontiguousarray(pyramid.levels[level], dtype=dtype)

    for lev in range(interval, len(pyramid.levels)):
        feat = pyramid.levels[lev]
        if feat.shape[0] + 2 * pady < maxh or feat.shape[1] + 2 * padx < maxw:
            continue
        if skip is not None and skip(lev, model.sbin / pyramid.scales[lev]):
            continue
        # Responses of the padded maps, computed without forming them.
        root_resp = prepared.roots.convolve(as_dtype(lev), pad=(pady, padx), exact_order=exact)
        part_resp = None
        if prepared.parts is not None:
            part_resp = prepared.parts.convolve(as_dtype(lev - interval), pad=(2 * pady, 2 * padx),
                                                exact_order=exact)
        featr = featp = None
        if keep_features:
            featr = _pad(feat, pady, padx, dtype)
            if prepared.parts is not None:
                featp = _pad(pyramid.levels[lev - interval], 2 * pady, 2 * padx, dtype)
        scores, argmax = [], []
        for ci, comp in enumerate(model.components):
            score = root_resp[ci].astype(np.float64)
            score += comp.bias
            am = []
            for j, part in enumerate(comp.parts):
                # 1-based probe start anchor + 1 ("the anchor position is shifted to account for
                # misalignment between features at different resolutions") -> 0-based start = anchor.
                # Only the probed rows and columns of the transform of -response are computed.
                ax0, ay0 = part.anchor
                resp = part_resp[prepared.part_index[ci][j]]
                m, ix, iy = _part_dt(resp, prepared.deformations[ci][j], ay0, ax0, score.shape)
                score -= _fit(m, score.shape, np.inf)
                am.append(PartArgmax(ix, iy, ay0, 2, resp.shape, ax0, 2))
            scores.append(score)
            argmax.append(am)
        yield LevelScores(lev, model.sbin / pyramid.scales[lev], scores, argmax,
                          featr, featp)


def _boxes_at(model: Model, comp_index: int, ls: LevelScores, ys: np.ndarray, xs: np.ndarray):
    """Root and part boxes (1-based inclusive pixels) for root positions ``(ys, xs)`` (0-based)."""
    px, py = _part_positions(model, comp_index, ls, ys, xs)
    return _boxes_from(model, comp_index, ys, xs, px, py, ls.cell)


def _part_positions(model: Model, comp_index: int, ls: LevelScores, ys: np.ndarray, xs: np.ndarray):
    """``(px, py)``, ``(N, P)`` float64: 1-based part positions for root positions ``(ys, xs)``."""
    comp = model.components[comp_index]
    nparts = len(comp.parts)
    px = np.empty((xs.size, nparts))
    py = np.empty((xs.size, nparts))
    for j, part in enumerate(comp.parts):
        am = ls.argmax[comp_index][j]
        if (am.row0, am.step, am.col0, am.col_step) == (part.anchor[1], 2, part.anchor[0], 2):
            # What score_levels computes: entry (r, c) is probe (y, x).
            px[:, j] = am.ix[ys, xs]
            py[:, j] = am.iy[ys, xs]
        else:
            px[:, j], py[:, j] = am.at(2 * ys + part.anchor[1], 2 * xs + part.anchor[0])
    px += 1
    py += 1
    return px, py


def _boxes_from(model: Model, comp_index: int, ys, xs, px, py, s):
    """Root and part boxes from root positions (0-based), 1-based part positions ``(N, P)`` and
    the cell size ``s`` (a number, or one per position)."""
    pady, padx = model.padding
    comp = model.components[comp_index]
    s = np.asarray(s, dtype=np.float64)
    sp = s[:, None] if s.ndim else s
    rh, rw = comp.root_size
    X = xs.astype(np.float64) + 1
    Y = ys.astype(np.float64) + 1
    x1 = (X - padx) * s + 1
    y1 = (Y - pady) * s + 1
    root = np.stack([x1, y1, x1 + rw * s - 1, y1 + rh * s - 1], axis=1)
    nparts = len(comp.parts)
    parts = np.empty((xs.size, nparts, 4))
    if nparts == 0:
        return root, parts
    ph, pw = np.array([part.size for part in comp.parts], dtype=np.float64).T
    px1 = ((px - 2) / 2 + 1 - padx) * sp + 1
    py1 = ((py - 2) / 2 + 1 - pady) * sp + 1
    parts[:, :, 0] = px1
    parts[:, :, 1] = py1
    parts[:, :, 2] = px1 + pw * sp / 2 - 1
    parts[:, :, 3] = py1 + ph * sp / 2 - 1
    return root, parts


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


def detection_pyramid(image, sbin: int, interval: int, dtype=DEFAULT_DTYPE, exact_features: bool | None = None):
    """The feature pyramid detection uses for ``dtype`` responses (see :func:`detect`).

    Levels come straight in the responses' precision: float64 (the
    original's features), or float32 computed in single precision
    (``exact_features=False``, the default with float32) or the float64
    features rounded once (``exact_features=True``).
    """
    dtype = np.dtype(dtype)
    if exact_features is None:
        exact_features = dtype != np.float32
    if not isinstance(exact_features, (bool, np.bool_)):
        raise ValueError(f"exact_features must be True, False or None, got {exact_features!r}")
    if not exact_features and dtype != np.float32:
        raise ValueError(f"exact_features=False (single-precision features) needs dtype=np.float32, got "
                         f"dtype={dtype.name}; float64 responses use the exact features")
    return feature_pyramid(image, sbin, interval, dtype=dtype, exact=bool(exact_features))


def detect_raw(image, model: Model, threshold: float | None = None, *, pyramid=None,
               dtype=DEFAULT_DTYPE, exact_features: bool | None = None) -> Detections:
    """``detect.m`` in plain detection mode: every placement scoring above ``threshold``.

    No bounding-box prediction, suppression or clipping: ``boxes`` are the root
    boxes.  ``threshold=None`` uses ``model.thresh``.  ``dtype`` and
    ``exact_features`` are as in :func:`detect` (``exact_features`` is unused
    when ``pyramid`` is given).
    """
    tune_malloc()
    image = as_rgb(image)
    thresh = model.thresh if threshold is None else float(threshold)
    prepared = _Prepared(model, dtype)
    if pyramid is None:
        pyramid = detection_pyramid(image, model.sbin, model.interval, prepared.dtype, exact_features)
    nparts = model.num_parts
    # Per (level, component) with detections: positions, part positions, cell size; the boxes are
    # computed per component at the end (the same arithmetic per detection, fewer array calls).
    found = []
    for ls in score_levels(pyramid, model, prepared, keep_features=False):
        for ci, score in enumerate(ls.scores):
            xs, ys = np.nonzero(score.T > thresh)  # MATLAB find order: column-major
            if xs.size == 0:
                continue
            px, py = _part_positions(model, ci, ls, ys, xs)
            found.append((ci, ls.level, ls.cell, ys, xs, px, py, score[ys, xs]))
    if not found:
        return Detections.empty(nparts, image.shape[:2], model.class_name)
    comps = np.concatenate([np.full(f[3].size, f[0], dtype=np.intp) for f in found])
    levels = np.concatenate([np.full(f[3].size, f[1], dtype=np.intp) for f in found])
    scores = np.concatenate([f[7] for f in found])
    root = np.empty((comps.size, 4))
    parts = np.empty((comps.size, nparts, 4))
    for ci in range(len(model.components)):
        mine = [f for f in found if f[0] == ci]
        if not mine:
            continue
        where = np.flatnonzero(comps == ci)
        r, p = _boxes_from(model, ci, np.concatenate([f[3] for f in mine]), np.concatenate([f[4] for f in mine]),
                           np.concatenate([f[5] for f in mine]), np.concatenate([f[6] for f in mine]),
                           np.concatenate([np.full(f[3].size, f[2]) for f in mine]))
        root[where] = r
        parts[where] = p
    return Detections(root.copy(), scores, comps, root, parts, levels, tuple(image.shape[:2]), model.class_name)


def detect(image, model: Model, *, threshold: float | None = None, upsample: int = 1, nms: float | None = 0.5,
           bbox_prediction: bool = True, clip: bool = True, dtype=DEFAULT_DTYPE,
           exact_features: bool | None = None) -> Detections:
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

    Returns
    -------
    Detections
        In suppression order (highest score first).
    """
    tune_malloc()
    image = as_rgb(image)
    work = upsampled(image, upsample)
    raw = detect_raw(work, model, threshold, dtype=dtype, exact_features=exact_features)
    return finish_detections(raw, model, image.shape[:2], upsample=upsample, nms=nms,
                             bbox_prediction=bbox_prediction, clip=clip)


def upsampled(image, upsample: int):
    """``image`` enlarged ``upsample`` times for detection (itself for 1); checks the factor."""
    if not isinstance(upsample, (int, np.integer)) or upsample < 1:
        raise ValueError(f"upsample must be a positive integer factor, got {upsample!r}")
    return upsample_image(image, int(upsample)) if upsample > 1 else image


def finish_detections(raw: Detections, model: Model, shape, *, upsample: int = 1, nms: float | None = 0.5,
                      bbox_prediction: bool = True, clip: bool = True) -> Detections:
    """:func:`detect_raw`'s detections on the image enlarged ``upsample`` times, made final as
    :func:`detect` does: mapped back to an image of ``shape``, boxes predicted, suppressed, clipped."""
    shape = tuple(shape)
    if upsample > 1:
        raw = _unscale(raw, int(upsample), shape)
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


def _unscale_boxes(b: np.ndarray, k: int) -> np.ndarray:
    # Pixel p of the original covers pixels k*(p-1)+1 .. k*p of the enlarged image, so an inclusive
    # box [x1, x2] there covers [(x1 - 1)/k + 1, x2/k] here.
    out = b / k
    out[..., 0:2] = (b[..., 0:2] - 1) / k + 1
    return out


def _unscale(d: Detections, k: int, shape) -> Detections:
    return Detections(_unscale_boxes(d.boxes, k), d.scores, d.components, _unscale_boxes(d.root_boxes, k),
                      _unscale_boxes(d.part_boxes, k), d.levels, tuple(shape), d.class_name)
