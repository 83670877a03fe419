"""voc-release3.1 ``.mat`` models: the MATLAB ``model`` struct as a model payload.

:func:`dpm.model.load_model` reads a ``.mat`` file with the bounded reader
:func:`dpm.files.read_mat` and turns its ``model`` struct into the same
``(meta, arrays)`` payload as the project's ``.npz`` format
(:func:`dpm.model.model_to_payload`), so both formats are built and checked by
one function.
"""
from __future__ import annotations

import numpy as np

from ..files import matlab_cells as _cells, matlab_index as _index

from .check import NUM_FEATURES

__all__ = ["R31_FIELDS", "r31_payload"]

R31_FIELDS = {"sbin", "rootfilters", "offsets", "blocksizes", "regmult", "learnmult", "lowerbounds",
              "components", "interval", "numcomponents", "numblocks", "partfilters", "defs",
              "maxsize", "minsize", "thresh"}


def r31_payload(m) -> tuple[dict, dict]:
    """``(meta, arrays)`` of a voc-release3.1 model struct (``loadmat(..., squeeze_me=True,
    struct_as_record=False)['model']``).  Raises ``ValueError`` for structs of other releases;
    malformed structs raise ``AttributeError``, ``IndexError``, ``TypeError`` or ``KeyError``."""
    fields = set(getattr(m, "_fieldnames", []) or [])
    if not fields:
        raise ValueError("'model' is not a MATLAB struct; not a voc-release model")
    if "symbols" in fields or "rules" in fields:
        raise ValueError("a voc-release4/5 grammar model; only voc-release3.1 models are supported")
    missing = R31_FIELDS - fields
    if missing:
        raise ValueError(f"not a voc-release3.1 model (missing fields: {', '.join(sorted(missing))})")
    arrays = {}
    blocksizes = [int(x) for x in np.atleast_1d(m.blocksizes)]
    regmult = np.atleast_1d(np.asarray(m.regmult, dtype=np.float64))
    learnmult = np.atleast_1d(np.asarray(m.learnmult, dtype=np.float64))
    lbs = _cells(m.lowerbounds)
    blocks = []
    for i, size in enumerate(blocksizes):
        lb = np.asarray(lbs[i], dtype=np.float64).ravel(order="F")
        if lb.size == 1 and size != 1:
            lb = np.full(size, lb[0])
        arrays[f"b{i}.lower_bounds"] = lb
        blocks.append({"size": size, "regmult": float(regmult[i]), "learnmult": float(learnmult[i])})
    roots = _cells(m.rootfilters)
    offsets = _cells(m.offsets)
    pfs = _cells(m.partfilters) if np.size(m.partfilters) else []
    defs = _cells(m.defs) if np.size(m.defs) else []
    components = []
    for ci, cm in enumerate(_cells(m.components)):
        root = roots[_index(cm.rootindex)]
        off = offsets[_index(cm.offsetindex)]
        cparts = _cells(cm.parts) if np.size(cm.parts) else []
        index_of = {int(p.partindex): j for j, p in enumerate(cparts)}
        parts = []
        for pi, cp in enumerate(cparts):
            pf = pfs[_index(cp.partindex)]
            d = defs[_index(cp.defindex)]
            fake = bool(int(pf.fake))
            partner = int(pf.partner)
            arrays[f"c{ci}.p{pi}.filter"] = _filter(pf.w)
            arrays[f"c{ci}.p{pi}.deformation"] = np.asarray(d.w, dtype=np.float64).ravel()
            parts.append({"anchor": [int(a) for a in np.atleast_1d(d.anchor)],
                          "partner": index_of[partner] if partner else -1, "fake": fake,
                          "filter_block": -1 if fake else int(pf.blocklabel) - 1,
                          "def_block": -1 if fake else int(d.blocklabel) - 1})
        if all(hasattr(cm, k) for k in ("x1", "y1", "x2", "y2")):
            rows = [np.asarray(getattr(cm, k), dtype=np.float64).ravel() for k in ("x1", "y1", "x2", "y2")]
            if any(r.size for r in rows):      # empty fields: no regressor was trained
                arrays[f"c{ci}.bbox_regressor"] = np.stack(rows)
        arrays[f"c{ci}.root"] = _filter(root.w)
        components.append({"bias": float(off.w), "root_block": int(root.blocklabel) - 1,
                           "bias_block": int(off.blocklabel) - 1, "parts": parts})
    meta = {"sbin": int(m.sbin), "interval": int(m.interval), "thresh": float(m.thresh), "class_name": "",
            "info": {}, "components": components, "blocks": blocks}
    return meta, arrays


def _filter(w) -> np.ndarray:
    w = np.asarray(w, dtype=np.float64)
    if w.ndim == 2:  # a 1-column filter squeezed by loadmat
        w = w[:, :, None] if w.shape[1] == NUM_FEATURES else w[:, None, :]
    return np.ascontiguousarray(w)
