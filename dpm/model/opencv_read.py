"""Reading OpenCV's cascade DPM XML into dpm's models (the public names are in :mod:`dpm.model.opencv`).

The file is read by the bounded :func:`dpm.files.opencv_storage.read_opencv_storage`;
every entry is checked (shape, count, finite values) and an error names the file and
the element.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from ..cascade.types import Cascade, CascadeComponent
from ..files.opencv_storage import read_opencv_storage
from ..limits import LimitError
from .check import NUM_FEATURES, validate_model
from .types import Block, Component, Model, Part
from .release5 import R5_FEATURES, StarComponent, StarFilter, StarModel, validate_star_model

__all__ = ["OPENCV_FEATURES", "OPENCV_WINDOW", "INFO_KEY", "read_opencv_xml", "read_opencv_star_model"]

#: Feature channels of OpenCV's DPM (``NumFeatures``).
OPENCV_FEATURES = R5_FEATURES
#: Half-width in cells of OpenCV's part search window (``DPMCascade::halfWindowSize``, fixed).
OPENCV_WINDOW = 4
#: ``model.info`` key of what a release-3.1 model cannot hold (JSON).
INFO_KEY = "opencv"
# OpenCV's sample names its class after the dataset, as release 5 does.
_CLASSES = {"inriaperson": "person"}
SUPPORTED = "supported: the cascade DPM XML of OpenCV's cv::dpm::DPMDetector"
_REQUIRED = ("SBin", "NumComponents", "NumFeatures", "Interval", "MaxSizeX", "MaxSizeY", "PCAcoeff", "PCADim",
             "ScoreThreshold", "Bias", "RootFilters", "RootPCAFilters", "PartFilters", "PartPCAFilters",
             "PrunThreshold", "Anchor", "Deformation", "NumParts", "PartOrder", "LocationWeight")


class _Parsed:
    """The checked content of an OpenCV DPM XML file, filters as ``(h, w, 32)`` arrays."""

    def __init__(self, path: Path, e: dict):
        self.path = path
        missing = [k for k in _REQUIRED if k not in e]
        if missing:
            raise ValueError(f"{path}: not an OpenCV DPM model (no <{missing[0]}>); {SUPPORTED}")
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
        self.box_prediction = None
        if "AnchoredBoxPrediction" in e:    # dpm's addition (write_opencv_xml), not OpenCV's
            boxes = self._list(e, "AnchoredBoxPrediction", ncomp)
            if not all(isinstance(m, np.ndarray) and m.shape == (4, 4) and np.isfinite(m).all() for m in boxes):
                raise ValueError(f"{path}: <AnchoredBoxPrediction> must hold one finite 4x4 matrix per component")
            self.box_prediction = boxes
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


def _storage(path: Path, max_bytes) -> dict:
    try:
        return read_opencv_storage(path, max_bytes=max_bytes, what="OpenCV DPM model")
    except LimitError:
        raise
    except ValueError as exc:
        raise ValueError(f"{exc}; {SUPPORTED}") from None


def read_opencv_xml(path, *, max_bytes: int | None = None) -> Model:
    """The :class:`dpm.model.Model` (release 3.1 semantics) with its cascade of an OpenCV DPM XML file.

    The truncation channel of the filters, the scale prior and a ``MaxSize`` other than
    the roots' are kept in ``model.info["opencv"]`` (JSON) for :func:`write_opencv_xml`;
    ``dpm``'s detector of this model ignores them (use :func:`read_opencv_star_model` to
    detect with them).  A file whose thresholds are all ``-inf`` (written from a model
    without a cascade) gives a model without a cascade.  The learner's blocks are made
    up (one per filter, bias and deformation, with :class:`dpm.training.TrainConfig`'s initial settings); they
    fold the roots as release 3.1 does, so retraining symmetrises the roots.

    Raises ``ValueError`` naming the file and the element (:class:`dpm.limits.LimitError`
    for a file over ``max_bytes``, default ``DPM_MAX_MODEL_BYTES`` or 64 MiB).
    """
    path = Path(path)
    x = _Parsed(path, _storage(path, max_bytes))
    counts = set(x.nparts)
    if len(counts) > 1:
        raise ValueError(f"{path}: components have {sorted(counts)} parts; a dpm model has the same number in "
                         "every component (read it with read_opencv_star_model)")
    from ..training.config import TrainConfig   # the learner's initial settings (imported when needed)

    cfg = TrainConfig()
    lower = cfg.filter_lower_bound
    blocks, comps, trunc = [], [], {}
    for ci, root in enumerate(x.roots):
        rh, rw = root.shape[:2]
        blocks.append(_block(1, cfg.offset_regmult, cfg.offset_learnmult, np.full(1, lower)))
        size = rh * ((rw + 1) // 2) * NUM_FEATURES
        blocks.append(_block(size, cfg.root_regmult, cfg.root_learnmult, np.full(size, lower)))
        comp = Component(root=np.ascontiguousarray(root[..., :NUM_FEATURES]), bias=float(x.bias[ci]),
                         root_block=len(blocks) - 1, bias_block=len(blocks) - 2)
        _keep_truncation(trunc, f"c{ci}.root", root)
        for pi, k in enumerate(x.part_ranges[ci]):
            f = x.parts[k]
            ph, pw = f.shape[:2]
            size = ph * ((pw + 1) // 2) * NUM_FEATURES
            blocks.append(_block(size, cfg.part_regmult, cfg.part_learnmult, np.full(size, lower)))
            blocks.append(_block(4, cfg.def_regmult, cfg.def_learnmult, np.array(cfg.def_lower_bounds, dtype=float)))
            comp.parts.append(Part(filter=np.ascontiguousarray(f[..., :NUM_FEATURES]),
                                   anchor=(int(x.anchors[k][0]) + 1, int(x.anchors[k][1]) + 1),
                                   deformation=x.defs[k].copy(), filter_block=len(blocks) - 2,
                                   def_block=len(blocks) - 1))
            _keep_truncation(trunc, f"c{ci}.p{pi}", f)
        comps.append(comp)
    model = Model(components=comps, blocks=blocks, sbin=x.sbin, interval=x.interval, thresh=x.score_threshold,
                  class_name=_CLASSES.get(path.stem, path.stem), info={"source": path.name})
    extra = {}
    if trunc:
        extra["truncation"] = trunc
    if any(np.any(v != 0) for v in x.location):
        extra["location"] = [v.tolist() for v in x.location]
    if x.box_prediction is not None:
        extra["box_prediction"] = [m.tolist() for m in x.box_prediction]
    if tuple(x.maxsize) != model.maxsize:
        extra["maxsize"] = list(x.maxsize)
    model.cascade, pca_row = _cascade(path, x)
    if pca_row is not None:
        extra["pca_row"] = pca_row.tolist()
    if extra:
        model.info[INFO_KEY] = json.dumps(extra, sort_keys=True)
        if "truncation" in extra or "location" in extra:
            warnings.warn(f"{path}: the model weighs the truncation feature or the scale prior, which dpm's "
                          "release-3.1 detector has not (kept in model.info['opencv'] for writing back; "
                          "read_opencv_star_model detects with them)", stacklevel=2)
    validate_model(model, source=str(path))
    return model


def _block(size, regmult, learnmult, lower_bounds) -> Block:
    return Block(size=size, regmult=float(regmult), learnmult=float(learnmult), lower_bounds=lower_bounds)


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
    """An OpenCV DPM XML file as a release-5 :class:`~dpm.model.release5.StarModel` (32 channels, truncation
    feature, scale prior, padding by ``MaxSize``): ``dpm.detect`` runs it with release 5's semantics,
    which are OpenCV's, without the cascade.  Raises ``ValueError`` naming the file and the element."""
    path = Path(path)
    x = _Parsed(path, _storage(path, max_bytes))
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
                      minsize=(int(sizes[:, 0].min()), int(sizes[:, 1].min())),
                      class_name=_CLASSES.get(path.stem, path.stem),
                      info={"source": path.name})
    try:
        validate_star_model(model)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    return model
