"""voc-release5 star models: the grammar representation of a ``.mat`` file as a :class:`StarModel`.

Release 5 stores a mixture of star models as an object detection grammar
(``model.rules``, ``model.symbols``, ``model.filters``, ``model.blocks``;
struct tree in voc-release5's ``model/model_create.m``).  A star model is the
special case this module reads:

* the start symbol has one structural rule (``'S'``) per component, mirrored
  components included (rule ``r`` is the ``r``-th component, the ``r`` of the
  release's detections);
* every right-hand-side symbol of a start rule is a nonterminal with exactly
  one deformation rule (``'D'``) whose right-hand side is one terminal, a
  filter: the root (anchor ``[0 0 0]``, pinned by a deformation cost of 1000)
  and the parts (anchor ``[ax ay 1]``: one octave finer);
* weights live in ``model.blocks`` and are read as ``model_get_block.m`` does:
  ``reshape(w, shape)`` (column-major), a filter with ``flip`` mirrored by
  ``flipfeat.m`` (32 channels), a deformation with ``flip`` has ``bx``
  negated; offsets are multiplied by ``model.features.bias`` (10).

Everything else (the person grammar model of release 5, type ``'G'``) is
refused with a one-line ``ValueError``, and so are release-4 files (grammar
models without ``blocks``/``features``).

Why a class of its own rather than more fields on :class:`dpm.model.Model`:
release 3.1's model is also the learner's parameter layout (blocks, fake
parts, folded symmetric filters, 31 channels, checked by
:func:`dpm.model.check.validate_model`), and its detector's semantics differ in
every step (padding, features, dt, scale prior, boxes).  A release-5 model is
read-only here and has a detector of its own (:mod:`dpm.detection.release5`),
so one dataclass per release keeps both simple.

Port of the model layout of voc-release5 (Girshick, Felzenszwalb, McAllester;
MIT-style licence).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..files import matlab_cells as _cells, matlab_index as _index

from ..features.flip import flip_features
from ..limits import MODEL_RANGES

__all__ = ["R5_FEATURES", "StarFilter", "StarComponent", "StarModel", "is_release5_struct", "star_model",
           "validate_star_model"]

#: Feature channels of release-5 models: 31 HOG + the truncation feature.
R5_FEATURES = 32


@dataclass(eq=False)
class StarFilter:
    """One right-hand side of a start rule: a filter behind its deformation rule.

    Attributes
    ----------
    filter : (h, w, 32) float64
        ``model_get_block`` of the filter (mirrored for a flipped filter).
    filter_index : int
        0-based index in the release's ``model.filters`` (its four columns of
        ``bs`` are ``4*filter_index ... 4*filter_index + 3``).
    anchor : (ax, ay, ds)
        Placement relative to the root position: ``ds`` octaves finer (0 for
        the root, 1 for parts), offset ``(ax, ay)`` cells at that resolution.
    deformation : (4,) float64
        ``[ax, bx, ay, by]`` of the deformation rule (``bx`` negated if flipped).
    offset : float
        The deformation rule's offset times ``features.bias``.
    loc : (3,) float64
        The deformation rule's scale-prior weights.
    """

    filter: np.ndarray
    filter_index: int
    anchor: tuple
    deformation: np.ndarray
    offset: float = 0.0
    loc: np.ndarray = field(default_factory=lambda: np.zeros(3))
    filter_block: int = -1
    def_block: int = -1

    @property
    def size(self) -> tuple[int, int]:
        return self.filter.shape[0], self.filter.shape[1]


@dataclass(eq=False)
class StarComponent:
    """One start rule: the root and parts of a component (mirrored or not).

    ``filters[0]`` is the root (the release's first right-hand side),
    ``filters[1:]`` the parts, in the rule's order.  ``detwindow`` is the
    ``(h, w)`` detection window and ``shiftwindow`` its ``(y, x)`` shift, in
    root cells.  ``bbox_regressor`` is ``(4, 2 * len(filters) + 1)``: rows
    predict ``dx1, dy1, dx2, dy2`` from ``bboxpred_input.m``'s features.
    ``offset_block`` and ``loc_block`` are the 0-based blocks (``blocklabel - 1``)
    of the rule's offset and scale prior; a filter's ``filter_block`` and
    ``def_block`` those of its filter and deformation (the columns of the
    release's per-positive block scores, :mod:`dpm.model.release5_cascade`).
    """

    filters: list
    offset: float
    loc: np.ndarray
    detwindow: tuple
    shiftwindow: tuple
    mirrored: bool = False
    bbox_regressor: np.ndarray | None = None
    offset_block: int = -1
    loc_block: int = -1

    @property
    def root(self) -> StarFilter:
        return self.filters[0]

    @property
    def parts(self) -> list:
        return self.filters[1:]


@dataclass(eq=False)
class StarModel:
    """A voc-release5 mixture of star models (read-only; detect with :func:`dpm.detect`).

    Attributes
    ----------
    components : list of StarComponent
        One per rule of the start symbol, mirrored components included.
    num_filters : int
        ``model.numfilters`` (the width of the release's ``bs`` is ``4 * num_filters + 2``).
    sbin, interval : int
    thresh : float
    maxsize, minsize : (h, w)
        Of the detection windows, in root cells (``model.maxsize``).
    extra_octave : bool
        The pyramid has an extra octave of ``sbin / 4`` cells (INRIA person).
    bias_feature : float
        ``model.features.bias`` (offsets are stored already multiplied by it).
    class_name : str
    info : dict
        ``source`` (file name), ``year``, ``note`` and ``class`` (the release's
        own class name, e.g. ``inriaperson``).
    cascade : dpm.cascade.Cascade or None
        Its star-cascade (:func:`dpm.model.release5_cascade.cascade_from_published`):
        :func:`dpm.detect` uses it unless ``cascade=False``.
    """

    components: list
    num_filters: int
    sbin: int = 8
    interval: int = 10
    thresh: float = 0.0
    maxsize: tuple = (0, 0)
    minsize: tuple = (0, 0)
    extra_octave: bool = False
    bias_feature: float = 10.0
    class_name: str = ""
    info: dict = field(default_factory=dict)
    release: int = 5
    cascade: object = None

    @property
    def padding(self) -> tuple[int, int]:
        """``(pady, padx)`` of ``getpadding.m``: the largest detection window."""
        return int(math.ceil(self.maxsize[0])), int(math.ceil(self.maxsize[1]))

    @property
    def num_parts(self) -> int:
        return max((len(c.parts) for c in self.components), default=0)

    def __repr__(self):
        comps = ", ".join(f"{c.root.size[0]}x{c.root.size[1]}{'m' if c.mirrored else ''}+{len(c.parts)}p"
                          for c in self.components)
        return (f"StarModel(release=5, class_name={self.class_name!r}, components=[{comps}], sbin={self.sbin}, "
                f"interval={self.interval}, thresh={self.thresh:g}{', cascade' if self.cascade is not None else ''})")


def is_release5_struct(m) -> bool:
    """True for a release-4/5 grammar struct (it has ``rules`` and ``symbols``)."""
    fields = set(getattr(m, "_fieldnames", []) or [])
    return "rules" in fields and "symbols" in fields


def star_model(m, *, class_name: str = "", source: str = "") -> StarModel:
    """The :class:`StarModel` of a release-5 ``model`` struct (``loadmat(..., squeeze_me=True,
    struct_as_record=False)['model']``).

    Raises ``ValueError`` for grammar (non-star) models, release-4 structs and
    out-of-range values; malformed structs raise ``AttributeError``,
    ``IndexError``, ``TypeError`` or ``KeyError`` (the caller names the file).
    """
    fields = set(m._fieldnames)
    if not {"blocks", "features"} <= fields:
        raise ValueError("a voc-release4 model (no 'blocks'/'features'); supported: voc-release3.1 models "
                         "and voc-release5 star models")
    mtype = str(m.type)
    if mtype != "M":
        raise ValueError(f"a voc-release5 grammar model (type {mtype!r}), not a star model; supported: "
                         "voc-release3.1 models and voc-release5 star models (type 'M')")
    feats = m.features
    dim, trunc = int(feats.dim), int(feats.truncation_dim)
    if dim != R5_FEATURES or trunc != R5_FEATURES:
        raise ValueError(f"features of {dim} dimensions (truncation feature {trunc}); release-5 star models "
                         f"have {R5_FEATURES} (truncation feature {R5_FEATURES})")
    sbin = int(m.sbin)
    if int(feats.sbin) != sbin:
        raise ValueError(f"model.sbin {sbin} differs from model.features.sbin {int(feats.sbin)}")
    reader = _Reader(m, float(feats.bias))
    start = int(m.start) - 1
    bboxpred = _cells(m.bboxpred) if "bboxpred" in fields and np.size(m.bboxpred) else []
    components = []
    for ri, rule in enumerate(_cells(m.rules[start])):
        if str(rule.type) != "S":
            raise ValueError(f"start rule {ri + 1} is of type {str(rule.type)!r}; a star model's are 'S'")
        filters = [reader.placement(int(s) - 1, anchor)
                   for s, anchor in zip(np.atleast_1d(rule.rhs), _cells(rule.anchor), strict=True)]
        if tuple(filters[0].anchor) != (0, 0, 0):
            raise ValueError(f"start rule {ri + 1}: its first symbol is not a root (anchor {filters[0].anchor})")
        reg = None
        if ri < len(bboxpred) and hasattr(bboxpred[ri], "x1"):
            rows = [np.asarray(getattr(bboxpred[ri], k), dtype=np.float64).ravel() for k in ("x1", "y1", "x2", "y2")]
            if all(r.size == 2 * len(filters) + 1 for r in rows):
                reg = np.stack(rows)
        root_flip = bool(int(m.filters[filters[0].filter_index].flip))
        components.append(StarComponent(
            filters=filters, offset=reader.offset(rule.offset), loc=reader.loc(rule.loc),
            detwindow=_pair(rule.detwindow), shiftwindow=_pair(rule.shiftwindow), mirrored=root_flip,
            bbox_regressor=reg, offset_block=_index(rule.offset.blocklabel), loc_block=_index(rule.loc.blocklabel)))
    model = StarModel(components=components, num_filters=int(m.numfilters), sbin=sbin, interval=int(m.interval),
                      thresh=float(m.thresh), maxsize=_pair(m.maxsize), minsize=_pair(m.minsize),
                      extra_octave=bool(int(feats.extra_octave)), bias_feature=float(feats.bias),
                      class_name=class_name or str(getattr(m, "class", "")),
                      info={"source": source, "year": str(getattr(m, "year", "")),
                            "note": str(getattr(m, "note", "")), "class": str(getattr(m, "class", ""))})
    validate_star_model(model)
    return model


class _Reader:
    """``model_get_block`` and the star structure behind each start-rule symbol."""

    def __init__(self, m, bias: float):
        self.m, self.bias = m, bias
        self.blocks = _cells(m.blocks)
        self.symbols = _cells(m.symbols)
        self.filters = _cells(m.filters)

    def block(self, obj) -> np.ndarray:
        b = self.blocks[_index(obj.blocklabel)]
        shape = tuple(int(s) for s in np.atleast_1d(b.shape))
        return np.asarray(b.w, dtype=np.float64).reshape(shape, order="F")

    def offset(self, obj) -> float:
        return float(self.block(obj).ravel()[0]) * self.bias

    def loc(self, obj) -> np.ndarray:
        w = self.block(obj).ravel()
        if w.size != 3:
            raise ValueError(f"a scale prior of {w.size} values; release 5 has 3")
        return w.copy()

    def placement(self, sym: int, anchor) -> StarFilter:
        anchor = tuple(int(a) for a in np.atleast_1d(anchor))
        if len(anchor) != 3 or anchor[2] not in (0, 1) or min(anchor) < 0:
            raise ValueError(f"anchor {anchor}: expected [ax ay ds] with ds 0 or 1")
        if str(self.symbols[sym].type) != "N":
            raise ValueError(f"symbol {sym + 1} of a start rule is a terminal; a star model places every "
                             "filter through a deformation rule")
        rules = _cells(self.m.rules[sym])
        if len(rules) != 1 or str(rules[0].type) != "D":
            raise ValueError(f"symbol {sym + 1} has {len(rules)} rules, not one deformation rule: not a star model")
        rule = rules[0]
        rhs = [int(s) - 1 for s in np.atleast_1d(rule.rhs)]
        if len(rhs) != 1 or str(self.symbols[rhs[0]].type) != "T":
            raise ValueError(f"the deformation rule of symbol {sym + 1} does not lead to one filter")
        fi = _index(self.symbols[rhs[0]].filter)
        fdesc = self.filters[fi]
        w = self.block(fdesc)
        if w.ndim == 2:      # a one-column filter squeezed by loadmat
            w = w[:, None, :]
        if w.ndim != 3 or w.shape[2] != R5_FEATURES:
            raise ValueError(f"filter {fi + 1} has shape {w.shape}; expected (h, w, {R5_FEATURES})")
        if bool(int(fdesc.flip)):
            w = flip_features(w)
        d = rule.__dict__["def"]
        dw = self.block(d).ravel().copy()
        if dw.size != 4:
            raise ValueError(f"a deformation of {dw.size} values; expected [ax bx ay by]")
        if bool(int(getattr(d, "flip", 0))):
            dw[1] = -dw[1]
        return StarFilter(filter=np.ascontiguousarray(w), filter_index=fi, anchor=anchor, deformation=dw,
                          offset=self.offset(rule.offset), loc=self.loc(rule.loc),
                          filter_block=_index(fdesc.blocklabel), def_block=_index(d.blocklabel))


def validate_star_model(model: StarModel) -> None:
    """Check a star model's field ranges and values; ``ValueError`` naming the field."""
    lo, hi = MODEL_RANGES["sbin"]
    if not lo <= model.sbin <= hi or model.sbin % 4:
        raise ValueError(f"sbin {model.sbin} out of range (a multiple of 4 in {lo}..{hi})")
    lo, hi = MODEL_RANGES["interval"]
    if not lo <= model.interval <= hi:
        raise ValueError(f"interval {model.interval} out of range ({lo}..{hi})")
    lo, hi = MODEL_RANGES["components"]
    if not lo <= len(model.components) <= hi:
        raise ValueError(f"{len(model.components)} components, expected {lo}..{hi}")
    wlo, whi = MODEL_RANGES["weight"]
    flo, fhi = MODEL_RANGES["filter_side"]
    plo, phi = MODEL_RANGES["parts"]
    if not all(flo <= s <= fhi for s in (*model.maxsize, *model.minsize)):
        raise ValueError(f"window sizes {model.maxsize}, {model.minsize} out of range ({flo}..{fhi} cells)")
    if not (math.isfinite(model.thresh) and wlo <= model.thresh <= whi):
        raise ValueError(f"thresh {model.thresh} is not a finite weight")
    if not (math.isfinite(model.bias_feature) and 0 < model.bias_feature <= whi):
        raise ValueError(f"features.bias {model.bias_feature} is not a finite positive number")
    most = hi * (phi + 1)
    if not 1 <= model.num_filters <= most:
        raise ValueError(f"numfilters {model.num_filters} out of range (1..{most})")
    for ci, c in enumerate(model.components):
        if not plo <= len(c.parts) <= phi:
            raise ValueError(f"component {ci + 1} has {len(c.parts)} parts, expected {plo}..{phi}")
        if not all(flo <= s <= fhi for s in c.detwindow) or not all(abs(s) <= fhi for s in c.shiftwindow):
            raise ValueError(f"component {ci + 1}: detection window {c.detwindow} or shift {c.shiftwindow} "
                             f"out of range ({flo}..{fhi} cells)")
        _shape(ci, "loc", c.loc, (3,))
        if c.bbox_regressor is not None:
            _shape(ci, "bbox regressor", c.bbox_regressor, (4, 2 * len(c.filters) + 1))
        if not all(-1 <= b < 2 ** 20 for b in (c.offset_block, c.loc_block)):
            raise ValueError(f"component {ci + 1}: block labels {c.offset_block}, {c.loc_block} out of range")
        values = [np.array([c.offset]), c.loc] + ([c.bbox_regressor] if c.bbox_regressor is not None else [])
        for f in c.filters:
            if np.ndim(f.filter) != 3 or np.shape(f.filter)[2] != R5_FEATURES:
                raise ValueError(f"component {ci + 1}: a filter of shape {np.shape(f.filter)}, expected "
                                 f"(h, w, {R5_FEATURES})")
            _shape(ci, "deformation", f.deformation, (4,))
            _shape(ci, "filter loc", f.loc, (3,))
            if len(f.anchor) != 3 or f.anchor[2] not in (0, 1) or not all(0 <= a <= 2 * fhi for a in f.anchor):
                raise ValueError(f"component {ci + 1}: anchor {tuple(f.anchor)}, expected [ax ay ds] with ds 0 or 1 "
                                 f"and 0 <= ax, ay <= {2 * fhi}")
            if not all(-1 <= b < 2 ** 20 for b in (f.filter_block, f.def_block)):
                raise ValueError(f"component {ci + 1}: block labels {f.filter_block}, {f.def_block} out of range")
            if not all(flo <= s <= fhi for s in f.size):
                raise ValueError(f"component {ci + 1}: a filter of {f.size[0]}x{f.size[1]} cells ({flo}..{fhi})")
            if not 0 <= f.filter_index < model.num_filters:
                raise ValueError(f"component {ci + 1}: filter index {f.filter_index + 1} beyond numfilters")
            if f.deformation[0] <= 0 or f.deformation[2] <= 0:
                raise ValueError(f"component {ci + 1}: deformation {f.deformation.tolist()} is not quadratic "
                                 "(ax and ay must be > 0)")
            values += [f.filter.ravel(), f.deformation, np.array([f.offset]), f.loc]
        for v in values:
            if not (np.isfinite(v).all() and (v >= wlo).all() and (v <= whi).all()):
                raise ValueError(f"component {ci + 1}: a weight is not finite or beyond +-{whi:g}")


def _shape(ci: int, what: str, value, shape: tuple) -> None:
    if np.shape(value) != shape or np.asarray(value).dtype.kind not in "iuf":
        raise ValueError(f"component {ci + 1}: {what} has shape {np.shape(value)}, expected {shape}")


def _pair(x) -> tuple:
    v = [float(a) for a in np.atleast_1d(x)]
    if len(v) != 2:
        raise ValueError(f"expected two values, got {v}")
    return tuple(int(a) if a == int(a) else a for a in v)
