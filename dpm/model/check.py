"""Checks of a model's fields: structure, ranges and finite values.

:func:`validate_model` runs on every model that is loaded or copied, so a
damaged or hostile model file is refused at load with a one-line message
naming the file and the field, instead of printing ``inf`` scores and ``nan``
boxes or driving the detector out of memory later.  The ranges
(:data:`dpm.limits.MODEL_RANGES`) are far wider than any model voc-release3.1
or ``dpm-train`` makes; docs/limits.md lists them.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from ..limits import MODEL_RANGES

__all__ = ["validate_model", "validate_cascade", "NUM_FEATURES"]

NUM_FEATURES = 31


def _in_range(source, field, value, key):
    lo, hi = MODEL_RANGES[key]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or not lo <= value <= hi:
        raise ValueError(f"{source}: {field} must be a whole number in {lo}..{hi}, got {value!r}")


def _finite(source, field, values):
    """Finite and at most MODEL_RANGES["weight"] in magnitude (so float32 scores cannot overflow)."""
    a = np.asarray(values)
    if a.dtype.kind not in "biuf":
        raise ValueError(f"{source}: {field} holds {a.dtype} values, expected numbers")
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        bad = a[~np.isfinite(a)].ravel()[0]
        raise ValueError(f"{source}: {field} holds a non-finite value ({bad}); the model is damaged")
    lo, hi = MODEL_RANGES["weight"]
    if a.size and not (lo <= a.min() and a.max() <= hi):
        bad = a.max() if a.max() > hi else a.min()
        raise ValueError(f"{source}: {field} holds {bad:g}, out of the range {lo:g}..{hi:g} of model values; "
                         "the model is damaged")


def _filter(source, field, f):
    if np.ndim(f) != 3 or np.shape(f)[2] != NUM_FEATURES:
        raise ValueError(f"{source}: {field} has shape {np.shape(f)}, expected (h, w, {NUM_FEATURES})")
    for side in np.shape(f)[:2]:
        _in_range(source, f"{field} size {np.shape(f)[:2]}: each side", int(side), "filter_side")
    _finite(source, field, f)


def validate_model(model, source="model") -> None:
    """Check a model's structure, field ranges and values; ``ValueError`` naming the field.

    Checked: ``sbin`` (even, 2..64), ``interval`` (1..100), ``thresh`` (finite),
    1..32 components with the same number (0..32) of parts, filter shapes
    ``(h, w, 31)`` with sides 1..64 cells, finite weights, biases, deformation
    costs and bounding-box regressors (all within +-1e6, so float32 scores
    cannot overflow), deformation costs with non-negative
    quadratic terms, part anchors that keep the part inside its root's 2x grid,
    partners, block indices and block sizes that match the filters, finite
    ``regmult``/``learnmult``, lower bounds that are not NaN or ``+inf``, and
    the model's cascade, if any (:func:`validate_cascade`).
    """
    _in_range(source, "sbin", model.sbin, "sbin")
    if model.sbin % 2:
        raise ValueError(f"{source}: sbin must be an even number, got {model.sbin}")
    _in_range(source, "interval", model.interval, "interval")
    _finite(source, "thresh", model.thresh)
    _in_range(source, "the number of components", len(model.components), "components")
    nparts = {len(c.parts) for c in model.components}
    if len(nparts) > 1:
        raise ValueError(f"{source}: components have different numbers of parts {sorted(nparts)}; "
                         "the voc-release3.1 detector needs the same number in every component")
    _in_range(source, "the number of parts per component", nparts.pop(), "parts")
    blocks = model.blocks
    for bi, b in enumerate(blocks):
        if isinstance(b.size, bool) or not isinstance(b.size, numbers.Integral) or b.size < 1:
            raise ValueError(f"{source}: block {bi} size must be a whole number >= 1, got {b.size!r}")
        if np.shape(b.lower_bounds) != (b.size,):
            raise ValueError(f"{source}: block {bi} lower bounds have shape {np.shape(b.lower_bounds)}, "
                             f"expected ({b.size},)")
        lb = np.asarray(b.lower_bounds, dtype=np.float64)
        if np.isnan(lb).any() or (lb == np.inf).any():
            raise ValueError(f"{source}: block {bi} lower bounds hold NaN or +inf; the model is damaged")
        for name in ("regmult", "learnmult"):
            v = getattr(b, name)
            if not (isinstance(v, numbers.Real) and math.isfinite(v) and v >= 0):
                raise ValueError(f"{source}: block {bi} {name} must be a finite number >= 0, got {v!r}")

    def block(ci, what, index, size):
        if isinstance(index, bool) or not isinstance(index, numbers.Integral) or not 0 <= index < len(blocks):
            raise ValueError(f"{source}: component {ci} {what} refers to block {index}, "
                             f"the model has {len(blocks)}")
        if blocks[index].size != size:
            raise ValueError(f"{source}: component {ci} {what} needs a block of {size} values, "
                             f"block {index} has {blocks[index].size}")

    for ci, c in enumerate(model.components):
        _filter(source, f"component {ci} root filter", c.root)
        _finite(source, f"component {ci} bias", c.bias)
        rh, rw = c.root.shape[:2]
        block(ci, "root filter", c.root_block, rh * ((rw + 1) // 2) * NUM_FEATURES)
        block(ci, "bias", c.bias_block, 1)
        for pi, p in enumerate(c.parts):
            where = f"component {ci} part {pi}"
            _filter(source, f"{where} filter", p.filter)
            ph, pw = p.filter.shape[:2]
            if np.shape(p.deformation) != (4,):
                raise ValueError(f"{source}: {where} deformation must have 4 values, got shape "
                                 f"{np.shape(p.deformation)}")
            _finite(source, f"{where} deformation", p.deformation)
            if p.deformation[0] < 0 or p.deformation[2] < 0:
                raise ValueError(f"{source}: {where} deformation {list(p.deformation)} has a negative "
                                 "quadratic cost (ax, ay must be >= 0)")
            if (len(p.anchor) != 2 or not all(isinstance(a, numbers.Integral) for a in p.anchor)
                    or not (1 <= p.anchor[0] <= 2 * rw - pw + 1 and 1 <= p.anchor[1] <= 2 * rh - ph + 1)):
                raise ValueError(f"{source}: {where} anchor {tuple(p.anchor)} puts its {ph}x{pw} filter outside "
                                 f"the {2 * rh}x{2 * rw} grid of its root (1-based x in 1..{2 * rw - pw + 1}, "
                                 f"y in 1..{2 * rh - ph + 1})")
            if not -1 <= p.partner < len(c.parts) or p.partner == pi or (p.fake and p.partner < 0):
                raise ValueError(f"{source}: {where} has an invalid partner {p.partner}")
            if p.fake:
                if c.parts[p.partner].fake:
                    raise ValueError(f"{source}: {where} is a mirror of part {p.partner}, itself a mirror")
                continue
            block(ci, f"part {pi} filter", p.filter_block, ph * ((pw + 1) // 2 if p.self_symmetric else pw)
                  * NUM_FEATURES)
            block(ci, f"part {pi} deformation", p.def_block, 4)
        reg = c.bbox_regressor
        if reg is not None:
            if np.shape(reg) != (4, 3 + 2 * len(c.parts)):
                raise ValueError(f"{source}: component {ci} bbox regressor has shape {np.shape(reg)}, "
                                 f"expected (4, {3 + 2 * len(c.parts)})")
            _finite(source, f"component {ci} bbox regressor", reg)
    if getattr(model, "cascade", None) is not None:
        validate_cascade(model.cascade, model, source)


_REBUILD = "rebuild it for this model (dpm.build_cascade or dpm-cascade)"


def validate_cascade(cascade, model, source="model", *, features: int = NUM_FEATURES) -> None:
    """Check that a star-cascade fits ``model``; ``ValueError`` naming the field and the remedy.

    Checked: ``coeff`` is ``(features, k)`` (31 for this project's models, 32
    for voc-release5's) with ``k`` in 1..``features`` and finite values
    within the weight range; one entry per component; each component's
    ``order`` has ``2n`` whole numbers (``n`` = 1 + its parts), ``[0, o_1 ..
    o_{n-1}]`` twice with ``o`` a permutation of the parts 1..n-1; its
    ``thresholds`` ``4n`` numbers, none NaN, the finite ones within the
    weight range (``-inf`` and ``+inf`` are allowed: no pruning, never fires);
    a finite global ``threshold`` and a ``window`` of 0..46340 cells.
    """
    where = f"{source}: cascade"
    coeff = np.asarray(cascade.coeff)
    if coeff.ndim != 2 or coeff.shape[0] != features:
        raise ValueError(f"{where} coeff has shape {coeff.shape}, the model's features have {features} "
                         f"values (expected ({features}, k)); {_REBUILD}")
    _in_range(source, "cascade coeff columns (dims)", int(coeff.shape[1]), "cascade_dims")
    _finite(source, "cascade coeff", coeff)
    _finite(source, "cascade threshold", cascade.threshold)
    _in_range(source, "cascade window", cascade.window, "cascade_window")
    if len(cascade.components) != len(model.components):
        raise ValueError(f"{where} has {len(cascade.components)} components, the model {len(model.components)}; "
                         f"{_REBUILD}")
    lo, hi = MODEL_RANGES["weight"]
    for ci, (cc, comp) in enumerate(zip(cascade.components, model.components)):
        n = 1 + len(comp.parts)
        order, t = np.asarray(cc.order), np.asarray(cc.thresholds)
        if order.shape != (2 * n,) or order.dtype.kind not in "iu":
            raise ValueError(f"{where} component {ci} order has shape {order.shape} ({order.dtype}), expected "
                             f"{2 * n} whole numbers (2 x (1 + {n - 1} parts)); {_REBUILD}")
        if (sorted(order[:n].tolist()) != list(range(n)) or order[0] != 0
                or order[n:].tolist() != order[:n].tolist()):
            raise ValueError(f"{where} component {ci} order {order.tolist()} is not [0, o_1 .. o_{n - 1}] twice "
                             f"with o a permutation of the parts 1..{n - 1}; {_REBUILD}")
        if t.shape != (4 * n,) or t.dtype.kind != "f":
            raise ValueError(f"{where} component {ci} thresholds have shape {t.shape} ({t.dtype}), expected "
                             f"{4 * n} floats (4 x (1 + {n - 1} parts)); {_REBUILD}")
        finite = t[np.isfinite(t)]
        if np.isnan(t).any() or (finite.size and not (lo <= finite.min() and finite.max() <= hi)):
            raise ValueError(f"{where} component {ci} thresholds hold NaN or a value out of {lo:g}..{hi:g}; "
                             "the model is damaged")
