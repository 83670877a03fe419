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
:class:`dpm.model.release5.StarModel`.  :func:`read_opencv_xml` reads such a file back
into a :class:`dpm.model.Model` with its cascade; :func:`read_opencv_star_model`
reads it as a release-5 :class:`~dpm.model.release5.StarModel` (32 channels, scale
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

import io
import json
import math
import warnings
from pathlib import Path

import numpy as np

from .._io import atomic_write
from ..files.opencv_storage import write_opencv_storage
from .check import NUM_FEATURES
from .types import Model
from .opencv_read import INFO_KEY, OPENCV_FEATURES, OPENCV_WINDOW, read_opencv_star_model, read_opencv_xml
from .release5 import StarModel

__all__ = ["OPENCV_FEATURES", "OPENCV_WINDOW", "write_opencv_xml", "read_opencv_xml", "read_opencv_star_model",
           "opencv_entries", "anchored_box_prediction", "apply_box_prediction"]

#: Principal directions of a projection made for a model without a cascade (plus the truncation one).
PCA_DIMS = 5


def write_opencv_xml(model, path) -> Path:
    """Write ``model`` (a :class:`dpm.model.Model`, with or without a cascade, or a
    :class:`dpm.model.release5.StarModel`) as OpenCV cascade DPM XML, atomically.

    Warns (``UserWarning``) about what OpenCV's detector will do differently:
    a cascade window other than OpenCV's fixed 4 cells, a release-5 extra octave.
    """
    path = Path(path)
    entries = opencv_entries(model)
    atomic_write(path, lambda fh: _write_text(fh, entries))
    return path


def _write_text(fh, entries):
    text = io.StringIO()
    write_opencv_storage(text, entries)
    fh.write(text.getvalue().encode("ascii"))


def opencv_entries(model) -> dict:
    """The named entries of ``model``'s OpenCV XML (what :func:`write_opencv_xml` writes)."""
    if isinstance(model, StarModel):
        return _star_entries(model)
    if not isinstance(model, Model):
        raise TypeError(f"model must be a dpm.model.Model or a dpm.model.release5.StarModel, got {type(model).__name__}")
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
        row = extra.get("pca_row")
        if row is not None and np.shape(row) == (cascade.coeff.shape[1],):
            coeff = np.vstack([cascade.coeff, row])   # the file's own truncation row (see read_opencv_xml)
        else:
            coeff = _coeff_with_truncation(cascade.coeff)
        orders = [np.asarray(cc.order, dtype=np.float64) for cc in cascade.components]
        thresholds = [np.asarray(cc.thresholds, dtype=np.float64) for cc in cascade.components]
        score_threshold = float(cascade.threshold)
    else:
        coeff = _own_projection(roots + parts)
        orders = [np.tile(np.arange(1 + n, dtype=np.float64), 2) for n in nparts]
        thresholds = [np.full(4 * (1 + n), -np.inf) for n in nparts]
        score_threshold = float(model.thresh)
    h, w = model.maxsize
    maxsize = extra.get("maxsize", [h, w])
    location = extra.get("location", [[0.0, 0.0, 0.0]] * len(model.components))
    entries = _entries(sbin=model.sbin, interval=model.interval, maxsize=maxsize, coeff=coeff,
                       score_threshold=score_threshold, bias=[c.bias for c in model.components], roots=roots,
                       parts=parts, anchors=anchors, defs=defs, nparts=nparts, orders=orders,
                       thresholds=thresholds, location=location)
    # Not OpenCV's (its reader skips it): for applying the box prediction to its root boxes.
    if any(c.bbox_regressor is not None for c in model.components):
        entries["AnchoredBoxPrediction"] = anchored_box_prediction(model)
    elif len(extra.get("box_prediction", [])) == len(model.components):
        entries["AnchoredBoxPrediction"] = [np.asarray(m, dtype=np.float64) for m in extra["box_prediction"]]
    return entries


def anchored_box_prediction(model: Model) -> list:
    """Per component, the ``(4, 4)`` matrix ``M`` of its bounding-box regressor with every part at its anchor:
    ``[x1 y1 x2 y2] = M @ [x2 - x1, x1, y1, 1]`` of a root box (1-based, as ``dpm``'s).

    OpenCV's detector reports root boxes only; this is the box prediction it can still have (the
    ``getboxes.m`` regressor reads the parts' positions, which OpenCV's ``detect`` does not return).
    ``write_opencv_xml`` stores it as ``AnchoredBoxPrediction``; a component without a regressor
    gets the matrix that keeps its root box.
    """
    out = []
    for c in model.components:
        rh, rw = c.root_size
        # Root cell side s = (W + 1) / rw; the root box's height is rh * s - 1; part j's box starts
        # (anchor - 1) * s / 2 right of and below the root's.
        if c.bbox_regressor is None:
            m = np.array([[0.0, 1, 0, 0], [0, 0, 1, 0], [1, 1, 0, 0], [rh / rw, 0, 1, rh / rw - 1]])
        else:
            r = np.asarray(c.bbox_regressor, dtype=np.float64)
            m = np.zeros((4, 4))
            m[:, :3] = r[:, :3]
            for j, p in enumerate(c.parts):
                rx, ry = r[:, 3 + 2 * j], r[:, 4 + 2 * j]
                shift = (rx * (p.anchor[0] - 1) + ry * (p.anchor[1] - 1)) / (2 * rw)
                m[:, 0] += shift
                m[:, 3] += shift
                m[:, 1] += rx
                m[:, 2] += ry
        out.append(m)
    return out


def apply_box_prediction(boxes, matrix) -> np.ndarray:
    """Boxes ``(N, 4)`` (1-based ``[x1 y1 x2 y2]`` root boxes) through one matrix of
    :func:`anchored_box_prediction`."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    feats = np.c_[b[:, 2] - b[:, 0], b[:, 0], b[:, 1], np.ones(len(b))]
    return feats @ np.asarray(matrix, dtype=np.float64).T


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
    if any(np.any(f.loc) for c in model.components for f in c.filters):
        warnings.warn("the model's deformation rules have scale priors of their own; OpenCV's has one per "
                      "component, so they are left out", stacklevel=3)
    # The deformation rules' offsets are constants of their component: part of its bias.
    bias = [c.offset + sum(f.offset for f in c.filters) for c in model.components]
    coeff = _own_projection(roots + parts)
    h, w = model.maxsize
    return _entries(sbin=model.sbin, interval=model.interval, maxsize=(math.ceil(h), math.ceil(w)), coeff=coeff,
                    score_threshold=model.thresh, bias=bias, roots=roots,
                    parts=parts, anchors=anchors, defs=defs, nparts=nparts,
                    orders=[np.tile(np.arange(1 + n, dtype=np.float64), 2) for n in nparts],
                    thresholds=[np.full(4 * (1 + n), -np.inf) for n in nparts],
                    location=[c.loc for c in model.components])
