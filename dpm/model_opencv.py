"""Models in and out of OpenCV's cascade DPM XML (the file ``cv::dpm::DPMDetector::create`` reads).

OpenCV's model (opencv_contrib ``modules/dpm``, ``CascadeModel``) is a
release-5-style star-cascade: 32 feature channels (release 3.1's 31 HOG values
and the truncation feature, 1 in the padding), ``PCAcoeff`` ``(32, k)``, per
component a ``Bias``, a root filter, parts (``Anchor`` ``(ax, ay)``: 0-based
offsets in the 2x grid of the root, ``Deformation`` ``[ax bx ay by]``),
the projected filters, ``PartOrder`` (``2n``) and ``PrunThreshold`` (``4n``) in
``cascade_model.m``'s layout, three ``LocationWeight`` (the scale prior) and a
global ``ScoreThreshold``.  Filters are matrices of ``h`` rows and ``w * 32``
columns (row-major ``(h, w, 32)``).

:func:`write_opencv_xml` writes a :class:`dpm.model.Model` (release 3.1: its
filters get a zero weight for the truncation feature, anchors become 0-based,
no scale prior) with its cascade (the cascade's ``(31, k)`` projection gets the
truncation feature as a ``k+1``-th direction, as OpenCV's sample model has), or a
model without a cascade as a cascade that never prunes (every threshold
``-inf``, a projection from the model's own filters), or a release-5
:class:`dpm.model_r5.StarModel`.  :func:`read_opencv_xml` reads such a file back
into a :class:`dpm.model.Model` with its cascade; :func:`read_opencv_star_model`
reads it as a release-5 :class:`~dpm.model_r5.StarModel` (32 channels, scale
prior), which ``dpm.detect`` runs with release 5's semantics, the ones
OpenCV's detector shares.

What the XML cannot hold: the learner's blocks, the bounding-box regressors,
``thresh`` of a model with a cascade (``ScoreThreshold`` is the cascade's),
partners, the class name and provenance.  What a release-3.1 ``Model`` cannot
hold (truncation weights, a scale prior, another ``MaxSize``): kept in
``model.info["opencv"]`` (JSON) so that the model writes back to the same XML;
``dpm``'s release-3.1 detector ignores them.  docs/opencv.md has the details.
"""
from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np

from ._io import atomic_write
from .cascade.types import Cascade, CascadeComponent
from .files.opencv_storage import read_opencv_storage, write_opencv_storage
from .model import NUM_FEATURES, Block, Component, Model, Part, validate_model
from .model_r5 import R5_FEATURES, StarComponent, StarFilter, StarModel, validate_star_model

__all__ = ["OPENCV_FEATURES", "OPENCV_WINDOW", "write_opencv_xml", "read_opencv_xml", "read_opencv_star_model",
           "opencv_entries"]

#: Feature channels of OpenCV's DPM (``NumFeatures``).
OPENCV_FEATURES = R5_FEATURES
#: Half-width in cells of OpenCV's part search window (``DPMCascade::halfWindowSize``, fixed).
OPENCV_WINDOW = 4
#: Principal directions of a projection made for a model without a cascade (plus the truncation one).
PCA_DIMS = 5
INFO_KEY = "opencv"
_REQUIRED = ("SBin", "NumComponents", "NumFeatures", "Interval", "MaxSizeX", "MaxSizeY", "PCAcoeff", "PCADim",
             "ScoreThreshold", "Bias", "RootFilters", "RootPCAFilters", "PartFilters", "PartPCAFilters",
             "PrunThreshold", "Anchor", "Deformation", "NumParts", "PartOrder", "LocationWeight")


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------

def write_opencv_xml(model, path) -> Path:
    """Write ``model`` (a :class:`dpm.model.Model`, with or without a cascade, or a
    :class:`dpm.model_r5.StarModel`) as OpenCV cascade DPM XML, atomically.

    Warns (``UserWarning``) about what OpenCV's detector will do differently:
    a cascade window other than OpenCV's fixed 4 cells, a release-5 extra octave.
    """
    path = Path(path)
    entries = opencv_entries(model)
    atomic_write(path, lambda fh: _write_text(fh, entries))
    return path


def _write_text(fh, entries):
    import io

    text = io.StringIO()
    write_opencv_storage(text, entries)
    fh.write(text.getvalue().encode("ascii"))


def opencv_entries(model) -> dict:
    """The named entries of ``model``'s OpenCV XML (what :func:`write_opencv_xml` writes)."""
    if isinstance(model, StarModel):
        return _star_entries(model)
    if not isinstance(model, Model):
        raise TypeError(f"model must be a dpm.model.Model or a dpm.model_r5.StarModel, got {type(model).__name__}")
    extra = _extras(model)
    roots, parts, anchors, defs, nparts = [], [], [], [], []
    for ci, c in enumerate(model.components):
        roots.append(_with_truncation(c.root, extra.get("truncation", {}).get(f"c{ci}.root")))
        for pi, p in enumerate(c.parts):
            parts.append(_with_truncation(p.filter, extra.get("truncation", {}).get(f"c{ci}.p{pi}")))
            anchors.append(np.array([p.anchor[0] - 1, p.anchor[1] - 1], dtype=np.float64))
            defs.append(np.asarray(p.deformation, dtype=np.float64))
        nparts.append(len(c.parts))
    cascade = model.cascade
    if cascade is not None:
        if cascade.window != OPENCV_WINDOW:
            warnings.warn(f"cascade window {cascade.window}: OpenCV's detector searches {OPENCV_WINDOW} cells "
                          "around each anchor (fixed); its detections will differ", stacklevel=3)
        coeff = _coeff_with_truncation(cascade.coeff)
        orders = [np.asarray(cc.order, dtype=np.float64) for cc in cascade.components]
        thresholds = [np.asarray(cc.thresholds, dtype=np.float64) for cc in cascade.components]
        score_threshold = float(cascade.threshold)
    else:
        coeff = _own_projection(roots + parts)
        orders = [np.tile(np.arange(1 + n, dtype=np.float64), 2) for n in nparts]
        thresholds = [np.full(4 * (1 + n), -np.inf) for n in nparts]
        score_threshold = float(model.thresh)
    if "pca_coeff" in extra and np.shape(extra["pca_coeff"])[1] == coeff.shape[1]:
        coeff[NUM_FEATURES] = np.asarray(extra["pca_coeff"], dtype=np.float64)[0]
    h, w = model.maxsize
    maxsize = extra.get("maxsize", [h, w])
    location = extra.get("location", [[0.0, 0.0, 0.0]] * len(model.components))
    return _entries(sbin=model.sbin, interval=model.interval, maxsize=maxsize, coeff=coeff,
                    score_threshold=score_threshold, bias=[c.bias for c in model.components], roots=roots,
                    parts=parts, anchors=anchors, defs=defs, nparts=nparts, orders=orders, thresholds=thresholds,
                    location=location)


def _entries(*, sbin, interval, maxsize, coeff, score_threshold, bias, roots, parts, anchors, defs, nparts,
             orders, thresholds, location) -> dict:
    def flat(f):
        f = np.asarray(f, dtype=np.float64)
        return f.reshape(f.shape[0], -1)

    return {
        "SBin": int(sbin), "NumComponents": len(roots), "NumFeatures": OPENCV_FEATURES, "Interval": int(interval),
        "MaxSizeX": int(maxsize[1]), "MaxSizeY": int(maxsize[0]),
        "PCAcoeff": coeff, "PCADim": int(coeff.shape[1]), "ScoreThreshold": float(score_threshold),
        "Bias": np.asarray(bias, dtype=np.float64),
        "RootFilters": [flat(f) for f in roots], "RootPCAFilters": [flat(f @ coeff) for f in roots],
        "PartFilters": [flat(f) for f in parts], "PartPCAFilters": [flat(f @ coeff) for f in parts],
        "PrunThreshold": thresholds, "Anchor": anchors, "Deformation": defs,
        "NumParts": np.asarray(nparts, dtype=np.float64), "PartOrder": orders,
        "LocationWeight": [np.asarray(v, dtype=np.float64) for v in location],
    }


def _with_truncation(f, weights) -> np.ndarray:
    f = np.asarray(f, dtype=np.float64)
    out = np.zeros(f.shape[:2] + (OPENCV_FEATURES,))
    out[..., :NUM_FEATURES] = f
    if weights is not None and np.shape(weights) == f.shape[:2]:
        out[..., NUM_FEATURES] = weights
    return out


def _coeff_with_truncation(coeff) -> np.ndarray:
    """``(31, k)`` -> ``(32, k + 1)``: the truncation feature as a direction of its own."""
    coeff = np.asarray(coeff, dtype=np.float64)
    out = np.zeros((OPENCV_FEATURES, coeff.shape[1] + 1))
    out[:NUM_FEATURES, :coeff.shape[1]] = coeff
    out[NUM_FEATURES, -1] = 1.0
    return out


def _own_projection(filters) -> np.ndarray:
    """A ``(32, PCA_DIMS + 1)`` projection for a model without a cascade: the principal
    directions of its own filters' cells (any projection gives the same detections when
    nothing is pruned; this one keeps OpenCV's first stage meaningful)."""
    cells = np.concatenate([np.asarray(f)[..., :NUM_FEATURES].reshape(-1, NUM_FEATURES) for f in filters])
    _, _, vt = np.linalg.svd(cells, full_matrices=False)
    k = min(PCA_DIMS, vt.shape[0])
    return _coeff_with_truncation(vt[:k].T)


def _extras(model) -> dict:
    text = model.info.get(INFO_KEY)
    if not text:
        return {}
    try:
        extra = json.loads(text)
        return extra if isinstance(extra, dict) else {}
    except ValueError:
        warnings.warn(f"model.info[{INFO_KEY!r}] is not JSON; ignored", stacklevel=4)
        return {}


def _star_entries(model: StarModel) -> dict:
    if model.extra_octave:
        warnings.warn("the model's pyramid has an extra octave (release 5's INRIA person); OpenCV's detector "
                      "has none, so it misses the smallest people this model finds", stacklevel=3)
    roots, parts, anchors, defs, nparts = [], [], [], [], []
    for ci, c in enumerate(model.components):
        roots.append(c.root.filter)
        for f in c.parts:
            if f.anchor[2] != 1:
                raise ValueError(f"model: component {ci} places a filter {f.anchor[2]} octaves finer; OpenCV's "
                                 "DPM places parts one octave finer than the root")
            parts.append(f.filter)
            anchors.append(np.array(f.anchor[:2], dtype=np.float64))
            defs.append(np.asarray(f.deformation, dtype=np.float64))
        nparts.append(len(c.parts))
    coeff = _own_projection(roots + parts)
    h, w = model.maxsize
    return _entries(sbin=model.sbin, interval=model.interval, maxsize=(math.ceil(h), math.ceil(w)), coeff=coeff,
                    score_threshold=model.thresh, bias=[c.offset for c in model.components], roots=roots,
                    parts=parts, anchors=anchors, defs=defs, nparts=nparts,
                    orders=[np.tile(np.arange(1 + n, dtype=np.float64), 2) for n in nparts],
                    thresholds=[np.full(4 * (1 + n), -np.inf) for n in nparts],
                    location=[c.loc for c in model.components])


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------

class _Parsed:
    """The checked content of an OpenCV DPM XML file, filters as ``(h, w, 32)`` arrays."""

    def __init__(self, path: Path, e: dict):
        self.path = path
        missing = [k for k in _REQUIRED if k not in e]
        if missing:
            raise ValueError(f"{path}: not an OpenCV DPM model (no <{missing[0]}>); supported: the cascade DPM "
                             "XML of cv::dpm::DPMDetector")
        self.sbin = self._int(e, "SBin")
        self.interval = self._int(e, "Interval")
        ncomp = self._int(e, "NumComponents")
        if self._int(e, "NumFeatures") != OPENCV_FEATURES:
            raise ValueError(f"{path}: <NumFeatures> is {self._int(e, 'NumFeatures')}; OpenCV's DPM has "
                             f"{OPENCV_FEATURES}")
        self.maxsize = (self._int(e, "MaxSizeY"), self._int(e, "MaxSizeX"))
        self.coeff = self._matrix(e, "PCAcoeff")
        if self.coeff.shape[0] != OPENCV_FEATURES or self._int(e, "PCADim") != self.coeff.shape[1]:
            raise ValueError(f"{path}: <PCAcoeff> is {self.coeff.shape[0]}x{self.coeff.shape[1]} with <PCADim> "
                             f"{self._int(e, 'PCADim')}; expected {OPENCV_FEATURES} rows and PCADim columns")
        self.score_threshold = self._scalar(e, "ScoreThreshold")
        self.nparts = [int(v) for v in self._vector(e, "NumParts", ncomp, whole=True)]
        self.bias = self._vector(e, "Bias", ncomp)
        total = sum(self.nparts)
        self.roots = [self._filter(m, f"RootFilters[{i}]") for i, m in enumerate(self._list(e, "RootFilters", ncomp))]
        self.parts = [self._filter(m, f"PartFilters[{i}]") for i, m in enumerate(self._list(e, "PartFilters", total))]
        self.anchors = [self._seq(v, f"Anchor[{i}]", 2, whole=True) for i, v in enumerate(self._list(e, "Anchor", total))]
        self.defs = [self._seq(v, f"Deformation[{i}]", 4) for i, v in enumerate(self._list(e, "Deformation", total))]
        self.orders = [self._seq(v, f"PartOrder[{i}]", 2 * (1 + n), whole=True)
                       for i, (v, n) in enumerate(zip(self._list(e, "PartOrder", ncomp), self.nparts))]
        self.thresholds = [self._seq(v, f"PrunThreshold[{i}]", 4 * (1 + n))
                           for i, (v, n) in enumerate(zip(self._list(e, "PrunThreshold", ncomp), self.nparts))]
        self.pca_error = 0.0
        self.location = [self._seq(v, f"LocationWeight[{i}]", 3) for i, v in
                         enumerate(self._list(e, "LocationWeight", ncomp))]
        for name, stored, filters in (("RootPCAFilters", self._list(e, "RootPCAFilters", ncomp), self.roots),
                                      ("PartPCAFilters", self._list(e, "PartPCAFilters", total), self.parts)):
            for i, (m, f) in enumerate(zip(stored, filters)):
                want = (f @ self.coeff).reshape(f.shape[0], -1)
                if not isinstance(m, np.ndarray) or m.ndim != 2 or m.shape != want.shape:
                    raise ValueError(f"{path}: <{name}[{i}]> has shape {np.shape(m)}, expected {want.shape} "
                                     "(the filter times <PCAcoeff>)")
                self.pca_error = max(self.pca_error, float(np.abs(m - want).max(initial=0.0)))
        starts = np.concatenate([[0], np.cumsum(self.nparts)]).astype(int)
        self.part_ranges = [range(a, b) for a, b in zip(starts[:-1], starts[1:])]

    def _int(self, e, name) -> int:
        v = self._scalar(e, name)
        if v != int(v) or not 0 <= v <= 1 << 20:
            raise ValueError(f"{self.path}: <{name}> is {v!r}, expected a whole number")
        return int(v)

    def _scalar(self, e, name) -> float:
        v = e[name]
        if not isinstance(v, np.ndarray) or v.shape != (1,) or not np.isfinite(v[0]):
            raise ValueError(f"{self.path}: <{name}> must be one finite number")
        return float(v[0])

    def _vector(self, e, name, n, whole=False) -> np.ndarray:
        v = e[name]
        if isinstance(v, list) and all(isinstance(x, np.ndarray) and x.shape == (1,) for x in v):
            v = np.concatenate(v) if v else np.zeros(0)
        return self._seq(v, name, n, whole)

    def _seq(self, v, where, n, whole=False) -> np.ndarray:
        if not isinstance(v, np.ndarray) or v.ndim != 1 or v.size != n:
            raise ValueError(f"{self.path}: <{where}> must hold {n} numbers, holds {np.size(v)}")
        if np.isnan(v).any() or (whole and not (np.isfinite(v).all() and (v == np.round(v)).all())):
            raise ValueError(f"{self.path}: <{where}> holds {'non-whole' if whole else 'NaN'} values")
        return v.astype(np.float64)

    def _matrix(self, e, name) -> np.ndarray:
        v = e[name]
        if not isinstance(v, np.ndarray) or v.ndim != 2:
            raise ValueError(f"{self.path}: <{name}> must be a matrix")
        if not np.isfinite(v).all():
            raise ValueError(f"{self.path}: <{name}> holds a non-finite value")
        return v

    def _list(self, e, name, n) -> list:
        v = e[name]
        if not isinstance(v, list) or len(v) != n:
            raise ValueError(f"{self.path}: <{name}> must be a sequence of {n} entries, holds "
                             f"{len(v) if isinstance(v, list) else 'none'}")
        return v

    def _filter(self, m, where) -> np.ndarray:
        if not isinstance(m, np.ndarray) or m.ndim != 2 or m.shape[1] % OPENCV_FEATURES or not m.size:
            raise ValueError(f"{self.path}: <{where}> must be a matrix of h rows and w x {OPENCV_FEATURES} columns, "
                             f"got {np.shape(m)}")
        if not np.isfinite(m).all():
            raise ValueError(f"{self.path}: <{where}> holds a non-finite value")
        return m.reshape(m.shape[0], m.shape[1] // OPENCV_FEATURES, OPENCV_FEATURES)


def read_opencv_xml(path, *, max_bytes: int | None = None) -> Model:
    """The :class:`dpm.model.Model` (release 3.1 semantics) with its cascade of an OpenCV DPM XML file.

    The truncation channel of the filters, the scale prior and a ``MaxSize`` other than
    the roots' are kept in ``model.info["opencv"]`` (JSON) for :func:`write_opencv_xml`;
    ``dpm``'s detector of this model ignores them (use :func:`read_opencv_star_model` to
    detect with them).  A file whose thresholds are all ``-inf`` (written from a model
    without a cascade) gives a model without a cascade.  The learner's blocks are made
    up (one per filter, bias and deformation, with release 3.1's initial settings); they
    fold the roots as release 3.1 does, so retraining symmetrises the roots.

    Raises ``ValueError`` naming the file and the element (:class:`dpm.limits.LimitError`
    for a file over ``max_bytes``, default ``DPM_MAX_MODEL_BYTES`` or 64 MiB).
    """
    path = Path(path)
    x = _Parsed(path, read_opencv_storage(path, max_bytes=max_bytes, what="OpenCV DPM model"))
    counts = set(x.nparts)
    if len(counts) > 1:
        raise ValueError(f"{path}: components have {sorted(counts)} parts; a dpm model has the same number in "
                         "every component (read it with read_opencv_star_model)")
    blocks, comps, trunc = [], [], {}
    for ci, root in enumerate(x.roots):
        rh, rw = root.shape[:2]
        blocks.append(_block(1, 0.0, 20.0, -100.0))
        blocks.append(_block(rh * ((rw + 1) // 2) * NUM_FEATURES, 1.0, 1.0, -100.0))
        comp = Component(root=np.ascontiguousarray(root[..., :NUM_FEATURES]), bias=float(x.bias[ci]),
                         root_block=len(blocks) - 1, bias_block=len(blocks) - 2)
        _keep_truncation(trunc, f"c{ci}.root", root)
        for pi, k in enumerate(x.part_ranges[ci]):
            f = x.parts[k]
            ph, pw = f.shape[:2]
            blocks.append(_block(ph * ((pw + 1) // 2) * NUM_FEATURES, 1.0, 1.0, -100.0))
            blocks.append(Block(size=4, regmult=10.0, learnmult=0.1,
                                lower_bounds=np.array([0.01, -100.0, 0.01, -100.0])))
            comp.parts.append(Part(filter=np.ascontiguousarray(f[..., :NUM_FEATURES]),
                                   anchor=(int(x.anchors[k][0]) + 1, int(x.anchors[k][1]) + 1),
                                   deformation=x.defs[k].copy(), filter_block=len(blocks) - 2,
                                   def_block=len(blocks) - 1))
            _keep_truncation(trunc, f"c{ci}.p{pi}", f)
        comps.append(comp)
    model = Model(components=comps, blocks=blocks, sbin=x.sbin, interval=x.interval, thresh=x.score_threshold,
                  class_name=path.stem, info={"source": path.name})
    extra = {}
    if trunc:
        extra["truncation"] = trunc
    if any(np.any(v != 0) for v in x.location):
        extra["location"] = [v.tolist() for v in x.location]
    if tuple(x.maxsize) != model.maxsize:
        extra["maxsize"] = list(x.maxsize)
    model.cascade, pca_row = _cascade(path, x)
    if pca_row is not None:
        extra["pca_coeff"] = [pca_row.tolist()]
    if extra:
        model.info[INFO_KEY] = json.dumps(extra, sort_keys=True)
        if "truncation" in extra or "location" in extra:
            warnings.warn(f"{path}: the model weighs the truncation feature or the scale prior, which dpm's "
                          "release-3.1 detector has not (kept in model.info['opencv'] for writing back; "
                          "read_opencv_star_model detects with them)", stacklevel=2)
    validate_model(model, source=str(path))
    return model


def _block(size, regmult, learnmult, lower) -> Block:
    return Block(size=size, regmult=regmult, learnmult=learnmult, lower_bounds=np.full(size, lower))


def _keep_truncation(store: dict, key: str, f: np.ndarray) -> None:
    t = f[..., NUM_FEATURES]
    if np.any(t != 0):
        store[key] = t.tolist()


def _cascade(path, x: _Parsed):
    """The project's cascade of the file (or ``None`` if it never prunes) and the truncation
    row of ``PCAcoeff`` when it is not the unit direction :func:`write_opencv_xml` adds."""
    coeff = x.coeff
    k = coeff.shape[1]
    unit = np.zeros(k)
    unit[-1] = 1.0
    standard = np.array_equal(coeff[NUM_FEATURES], unit) and not np.any(coeff[:NUM_FEATURES, -1])
    if all(np.all(t == -np.inf) for t in x.thresholds):
        return None, None
    if standard and k > 1:
        proj, row = coeff[:NUM_FEATURES, :-1], None
    else:
        proj, row = coeff[:NUM_FEATURES], coeff[NUM_FEATURES]
    comps = [CascadeComponent(order=o.astype(np.int64), thresholds=t.copy()) for o, t in zip(x.orders, x.thresholds)]
    return Cascade(coeff=np.ascontiguousarray(proj), components=comps, threshold=x.score_threshold,
                   window=OPENCV_WINDOW), row


def read_opencv_star_model(path, *, max_bytes: int | None = None) -> StarModel:
    """An OpenCV DPM XML file as a release-5 :class:`~dpm.model_r5.StarModel` (32 channels, truncation
    feature, scale prior, padding by ``MaxSize``): ``dpm.detect`` runs it with release 5's semantics,
    which are OpenCV's, without the cascade.  Raises ``ValueError`` naming the file and the element."""
    path = Path(path)
    x = _Parsed(path, read_opencv_storage(path, max_bytes=max_bytes, what="OpenCV DPM model"))
    comps, index = [], 0
    for ci, root in enumerate(x.roots):
        rh, rw = root.shape[:2]
        filters = [StarFilter(filter=np.ascontiguousarray(root), filter_index=index, anchor=(0, 0, 0),
                              deformation=np.array([1000.0, 0.0, 1000.0, 0.0]))]
        index += 1
        for k in x.part_ranges[ci]:
            filters.append(StarFilter(filter=np.ascontiguousarray(x.parts[k]), filter_index=index,
                                      anchor=(int(x.anchors[k][0]), int(x.anchors[k][1]), 1),
                                      deformation=x.defs[k].copy()))
            index += 1
        comps.append(StarComponent(filters=filters, offset=float(x.bias[ci]), loc=x.location[ci].copy(),
                                   detwindow=(rh, rw), shiftwindow=(0, 0)))
    sizes = np.array([c.root.size for c in comps])
    model = StarModel(components=comps, num_filters=index, sbin=x.sbin, interval=x.interval,
                      thresh=x.score_threshold, maxsize=tuple(x.maxsize),
                      minsize=(int(sizes[:, 0].min()), int(sizes[:, 1].min())), class_name=path.stem,
                      info={"source": path.name})
    try:
        validate_star_model(model)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    return model
