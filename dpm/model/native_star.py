"""voc-release5 star models in the project's ``.npz`` format (model format version 2).

The description (JSON, exact: Python writes every float so that it reads back
bit for bit) holds everything but the filters and box predictors: ``"release":
5``, the model's sizes, threshold, class and provenance, and per component its
offset, scale prior, windows, block labels and, per filter, its index, anchor,
deformation, offset and scale prior.  The arrays are the filters
(``c<i>.f<j>.filter``, ``(h, w, 32)`` float64) and box predictors
(``c<i>.bbox_regressor``), and the star-cascade's (:mod:`dpm.cascade.payload`).

A mirrored component's filters are its partner's, flipped (``flipfeat.m``):
as in the release's blocks, such a filter is stored once and the other
placement refers to it (``{"same_as": [component, filter], "flip": true}``),
which halves the file.  A reference is written only where the flipped (or
unflipped) stored filter equals the filter exactly, so loading gives back the
same values.  Files are read by :func:`dpm.model.native.load_native`.
"""
from __future__ import annotations

import numpy as np

from ..features.flip import flip_features
from .release5 import StarComponent, StarFilter, StarModel, validate_star_model

__all__ = ["STAR_RELEASE", "star_to_payload", "star_from_payload"]

#: ``meta["release"]`` of a star model (release-3.1 models have no such entry).
STAR_RELEASE = 5


def _floats(a) -> list:
    return [float(v) for v in np.asarray(a, dtype=np.float64).ravel()]


def _pair(p) -> list:
    return [v if isinstance(v, int) else float(v) for v in p]


def star_to_payload(model: StarModel) -> tuple[dict, dict]:
    """A star model as JSON-able metadata and named float64 arrays."""
    arrays, comps = {}, []
    stored = {}    # filter block -> [(ci, fi, filter)] stored as arrays
    for ci, c in enumerate(model.components):
        filters = []
        for fi, f in enumerate(c.filters):
            w = np.asarray(f.filter, dtype=np.float64)
            entry = {"filter_index": int(f.filter_index), "anchor": [int(a) for a in f.anchor],
                     "deformation": _floats(f.deformation), "offset": float(f.offset), "loc": _floats(f.loc),
                     "filter_block": int(f.filter_block), "def_block": int(f.def_block)}
            ref = _same_as(stored.get(int(f.filter_block), []), w) if f.filter_block >= 0 else None
            if ref is None:
                arrays[f"c{ci}.f{fi}.filter"] = w
                stored.setdefault(int(f.filter_block), []).append((ci, fi, w))
            else:
                entry["same_as"], entry["flip"] = ref
            filters.append(entry)
        if c.bbox_regressor is not None:
            arrays[f"c{ci}.bbox_regressor"] = np.asarray(c.bbox_regressor, dtype=np.float64)
        comps.append({"filters": filters, "offset": float(c.offset), "loc": _floats(c.loc),
                      "detwindow": _pair(c.detwindow), "shiftwindow": _pair(c.shiftwindow),
                      "mirrored": bool(c.mirrored), "offset_block": int(c.offset_block),
                      "loc_block": int(c.loc_block)})
    meta = {"release": STAR_RELEASE, "num_filters": int(model.num_filters), "sbin": int(model.sbin),
            "interval": int(model.interval), "thresh": float(model.thresh), "maxsize": _pair(model.maxsize),
            "minsize": _pair(model.minsize), "extra_octave": bool(model.extra_octave),
            "bias_feature": float(model.bias_feature), "class_name": str(model.class_name),
            "info": {str(k): str(v) for k, v in model.info.items()}, "components": comps}
    if model.cascade is not None:
        from ..cascade.payload import cascade_to_payload

        meta["cascade"], more = cascade_to_payload(model.cascade)
        arrays.update(more)
    return meta, arrays


def _same_as(candidates, w):
    """``([ci, fi], flip)`` of a stored filter that gives ``w`` exactly, or None."""
    for ci, fi, s in candidates:
        if s.shape == w.shape and np.array_equal(s, w):
            return [ci, fi], False
        if s.shape == w.shape and np.array_equal(flip_features(s), w):
            return [ci, fi], True
    return None


def _array(arrays, key) -> np.ndarray:
    a = arrays[key]
    if a.dtype.kind != "f":
        raise ValueError(f"array {key!r} holds {a.dtype} values, expected floats")
    return np.ascontiguousarray(a, dtype=np.float64)


def _vector(values, n: int, what: str) -> np.ndarray:
    if not isinstance(values, list) or len(values) != n or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise ValueError(f"{what} must be a list of {n} numbers, got {values!r}")
    return np.array(values, dtype=np.float64)


def _whole(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be a whole number, got {value!r}")
    return value


def _pair_in(value, what: str) -> tuple:
    if not isinstance(value, list) or len(value) != 2 or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise ValueError(f"{what} must be two numbers, got {value!r}")
    return tuple(value)


def star_from_payload(meta: dict, arrays: dict, source="model") -> StarModel:
    """The star model of :func:`star_to_payload`'s output, checked (:func:`validate_star_model`, and its
    cascade with :func:`dpm.model.check.validate_cascade`).

    Raises ``ValueError`` naming ``source`` for out-of-range or non-finite
    fields; malformed payloads raise ``KeyError``, ``TypeError``, ``IndexError``
    or ``ValueError``.
    """
    if meta.get("release") != STAR_RELEASE:
        raise ValueError(f"release {meta.get('release')!r}; this reader takes voc-release5 star models")
    if not isinstance(meta.get("components"), list):
        raise TypeError("'components' must be a list")
    comps = []
    for ci, cm in enumerate(meta["components"]):
        if not isinstance(cm.get("filters"), list) or not cm["filters"]:
            raise TypeError(f"component {ci}: 'filters' must be a non-empty list")
        filters = []
        for fi, fm in enumerate(cm["filters"]):
            where = f"component {ci} filter {fi}"
            if "same_as" in fm:
                ref = fm["same_as"]
                if (not isinstance(ref, list) or len(ref) != 2
                        or not all(isinstance(r, int) and not isinstance(r, bool) for r in ref)):
                    raise ValueError(f"{where}: 'same_as' must be [component, filter], got {ref!r}")
                w = _array(arrays, f"c{ref[0]}.f{ref[1]}.filter")
                if fm["flip"] is True:
                    w = flip_features(w)
                elif fm["flip"] is not False:
                    raise TypeError(f"{where}: 'flip' must be true or false")
            else:
                w = _array(arrays, f"c{ci}.f{fi}.filter")
            anchor = fm["anchor"]
            if not isinstance(anchor, list) or len(anchor) != 3:
                raise ValueError(f"{where}: anchor must be [ax, ay, ds], got {anchor!r}")
            filters.append(StarFilter(
                filter=w, filter_index=_whole(fm["filter_index"], f"{where} filter_index"),
                anchor=tuple(_whole(a, f"{where} anchor") for a in anchor),
                deformation=_vector(fm["deformation"], 4, f"{where} deformation"),
                offset=float(_vector([fm["offset"]], 1, f"{where} offset")[0]),
                loc=_vector(fm["loc"], 3, f"{where} loc"),
                filter_block=_whole(fm["filter_block"], f"{where} filter_block"),
                def_block=_whole(fm["def_block"], f"{where} def_block")))
        key = f"c{ci}.bbox_regressor"
        mirrored = cm["mirrored"]
        if not isinstance(mirrored, bool):
            raise TypeError(f"component {ci}: 'mirrored' must be true or false")
        comps.append(StarComponent(
            filters=filters, offset=float(_vector([cm["offset"]], 1, f"component {ci} offset")[0]),
            loc=_vector(cm["loc"], 3, f"component {ci} loc"),
            detwindow=_pair_in(cm["detwindow"], f"component {ci} detwindow"),
            shiftwindow=_pair_in(cm["shiftwindow"], f"component {ci} shiftwindow"), mirrored=mirrored,
            bbox_regressor=_array(arrays, key) if key in arrays else None,
            offset_block=_whole(cm["offset_block"], f"component {ci} offset_block"),
            loc_block=_whole(cm["loc_block"], f"component {ci} loc_block")))
    info = meta.get("info", {})
    if not isinstance(info, dict):
        raise TypeError("'info' must be an object")
    extra = meta["extra_octave"]
    if not isinstance(extra, bool):
        raise TypeError("'extra_octave' must be true or false")
    model = StarModel(components=comps, num_filters=_whole(meta["num_filters"], "num_filters"),
                      sbin=_whole(meta["sbin"], "sbin"), interval=_whole(meta["interval"], "interval"),
                      thresh=float(_vector([meta["thresh"]], 1, "thresh")[0]),
                      maxsize=_pair_in(meta["maxsize"], "maxsize"), minsize=_pair_in(meta["minsize"], "minsize"),
                      extra_octave=extra,
                      bias_feature=float(_vector([meta["bias_feature"]], 1, "bias_feature")[0]),
                      class_name=str(meta.get("class_name", "")), info={str(k): str(v) for k, v in info.items()})
    try:
        validate_star_model(model)
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None
    if "cascade" in meta:
        from ..cascade.payload import cascade_from_payload
        from .check import validate_cascade
        from .release5 import R5_FEATURES

        model.cascade = cascade_from_payload(meta["cascade"], arrays)
        validate_cascade(model.cascade, model, source, features=R5_FEATURES)
    return model
