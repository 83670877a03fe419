"""A cascade in the model file (:mod:`dpm.model`'s ``.npz`` payload).

The description (JSON) gets a ``"cascade"`` entry ``{"threshold", "window",
"components"}`` and the arrays ``cascade.coeff`` ``(31, k)`` float64,
``cascade.c<i>.order`` ``(2n,)`` int64 and ``cascade.c<i>.thresholds`` ``(4n,)``
float64 (``+inf`` for a component without positives).  A model without a
cascade has neither, so its file is what it was before cascades existed, and
a dpm that predates them reads a file with a cascade as the model alone.
"""
from __future__ import annotations

import numbers

import numpy as np

from .types import Cascade, CascadeComponent

__all__ = ["cascade_to_payload", "cascade_from_payload"]


def cascade_to_payload(cascade: Cascade) -> tuple[dict, dict]:
    """``(meta, arrays)`` of a cascade: the JSON entry and the named arrays."""
    arrays = {"cascade.coeff": np.asarray(cascade.coeff, dtype=np.float64)}
    for ci, c in enumerate(cascade.components):
        arrays[f"cascade.c{ci}.order"] = np.asarray(c.order, dtype=np.int64)
        arrays[f"cascade.c{ci}.thresholds"] = np.asarray(c.thresholds, dtype=np.float64)
    meta = {"threshold": float(cascade.threshold), "window": int(cascade.window),
            "components": len(cascade.components)}
    return meta, arrays


def _numbers(arrays, key, kinds, what) -> np.ndarray:
    a = arrays[key]
    if a.dtype.kind not in kinds:
        raise ValueError(f"array {key!r} holds {a.dtype} values, expected {what}")
    return np.array(a)


def cascade_from_payload(meta: dict, arrays) -> Cascade:
    """The cascade of :func:`cascade_to_payload`'s output (checked with its model by
    :func:`dpm.model.check.validate_model`); malformed entries raise ``KeyError``,
    ``TypeError`` or ``ValueError``."""
    if not isinstance(meta, dict):
        raise TypeError("the cascade description is not a JSON object")
    count = meta["components"]
    if isinstance(count, bool) or not isinstance(count, numbers.Integral) or not 0 <= count <= 32:
        raise ValueError(f"the cascade has {count!r} components")
    window = meta["window"]
    if isinstance(window, bool) or not isinstance(window, numbers.Integral):
        raise TypeError(f"the cascade window must be a whole number, got {window!r}")
    comps = [CascadeComponent(order=_numbers(arrays, f"cascade.c{ci}.order", "iu", "whole numbers").astype(np.int64),
                              thresholds=_numbers(arrays, f"cascade.c{ci}.thresholds", "f", "floats")
                              .astype(np.float64))
             for ci in range(count)]
    return Cascade(coeff=_numbers(arrays, "cascade.coeff", "f", "floats").astype(np.float64), components=comps,
                   threshold=float(meta["threshold"]), window=int(window))
