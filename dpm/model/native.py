"""The project's own model file format: a versioned, pickle-free ``.npz`` that round-trips exactly.

A model is written as JSON metadata (``meta``: sizes, anchors, block layout,
threshold, class, provenance) and named float64 arrays (filters, deformations,
bounding-box regressors, lower bounds; a star-cascade's arrays,
:mod:`dpm.cascade.payload`), with a format tag and version.  voc-release3.1
``.mat`` models are turned into the same payload (:mod:`dpm.model.release31`),
so both are built and checked by :func:`model_from_payload`.  voc-release5
star models (:class:`~dpm.model.release5.StarModel`, with their star-cascade)
have a payload of their own (:mod:`dpm.model.native_star`).  Files are read
by the bounded reader :func:`dpm.files.read_npz` through :func:`dpm.model.load_model`.

Versions: a file is written with the lowest version that describes it, so a
dpm that predates a version still reads the files it can: 1 for release-3.1
models (with or without a cascade), 2 for star models (version 2 added them;
an older dpm refuses such a file as "written by a newer dpm").
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .._io import atomic_write
from ..files import read_npz, write_npz
from .check import validate_model
from .native_star import star_from_payload, star_to_payload
from .release5 import StarModel
from .types import Block, Component, Model, Part

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "MALFORMED", "load_native", "model_from_payload", "model_to_payload",
           "one_line", "save_model"]

FORMAT_NAME = "dpm-model"
#: The highest version this dpm reads (see the module docstring); :data:`STAR_VERSION` added star models.
FORMAT_VERSION = 2
MODEL_VERSION = 1
STAR_VERSION = 2

MAX_META_CHARS = 2 ** 20   # the JSON description of a model (a few kB for voc-release3.1 models)


def save_model(model: Model | StarModel, path) -> Path:
    """Write ``model`` (a :class:`Model` or a voc-release5 :class:`StarModel`, each with its cascade if
    it has one) to ``path`` in the project's ``.npz`` format, atomically.

    The file is written next to its destination and renamed into place, so an
    interrupted save never leaves a half-written model; equal models give
    equal bytes.
    """
    path = Path(path)
    if isinstance(model, StarModel):
        (meta, arrays), version = star_to_payload(model), STAR_VERSION
    else:
        (meta, arrays), version = model_to_payload(model), MODEL_VERSION
    arrays = dict(arrays)
    arrays["format"] = np.array(FORMAT_NAME)
    arrays["format_version"] = np.array(version)
    arrays["meta"] = np.array(json.dumps(meta, sort_keys=True))
    atomic_write(path, lambda fh: write_npz(fh, arrays))
    return path


def model_to_payload(model: Model) -> tuple[dict, dict]:
    """A model as JSON-able metadata and named float64 arrays (the ``.npz`` format's content)."""
    arrays = {}
    comps = []
    for ci, c in enumerate(model.components):
        arrays[f"c{ci}.root"] = np.asarray(c.root, dtype=np.float64)
        parts = []
        for pi, p in enumerate(c.parts):
            arrays[f"c{ci}.p{pi}.filter"] = np.asarray(p.filter, dtype=np.float64)
            arrays[f"c{ci}.p{pi}.deformation"] = np.asarray(p.deformation, dtype=np.float64)
            parts.append({"anchor": [int(p.anchor[0]), int(p.anchor[1])], "partner": int(p.partner),
                          "fake": bool(p.fake), "filter_block": int(p.filter_block),
                          "def_block": int(p.def_block)})
        if c.bbox_regressor is not None:
            arrays[f"c{ci}.bbox_regressor"] = np.asarray(c.bbox_regressor, dtype=np.float64)
        comps.append({"bias": float(c.bias), "root_block": int(c.root_block),
                      "bias_block": int(c.bias_block), "parts": parts})
    blocks = []
    for bi, b in enumerate(model.blocks):
        arrays[f"b{bi}.lower_bounds"] = np.asarray(b.lower_bounds, dtype=np.float64)
        blocks.append({"size": int(b.size), "regmult": float(b.regmult), "learnmult": float(b.learnmult)})
    meta = {"sbin": int(model.sbin), "interval": int(model.interval), "thresh": float(model.thresh),
            "class_name": str(model.class_name), "info": {str(k): str(v) for k, v in model.info.items()},
            "components": comps, "blocks": blocks}
    if model.cascade is not None:
        from ..cascade.payload import cascade_to_payload

        meta["cascade"], more = cascade_to_payload(model.cascade)
        arrays.update(more)
    return meta, arrays


def _array(arrays, key) -> np.ndarray:
    a = arrays[key]
    if a.dtype.kind not in "biuf":
        raise ValueError(f"array {key!r} holds {a.dtype} values, expected numbers")
    return np.array(a, dtype=np.float64)


def model_from_payload(meta: dict, arrays: dict, source="model") -> Model:
    """The model of :func:`model_to_payload`'s output, checked (:func:`validate_model`).

    Raises ``ValueError`` naming ``source`` for out-of-range or non-finite
    fields; malformed payloads raise ``KeyError``, ``TypeError``, ``IndexError``
    or ``ValueError``.
    """
    comps = []
    if not isinstance(meta.get("components"), list) or not isinstance(meta.get("blocks"), list):
        raise TypeError("'components' and 'blocks' must be lists")
    for ci, cm in enumerate(meta["components"]):
        parts = []
        for pi, pm in enumerate(cm["parts"]):
            parts.append(Part(filter=_array(arrays, f"c{ci}.p{pi}.filter"),
                              anchor=(int(pm["anchor"][0]), int(pm["anchor"][1])),
                              deformation=_array(arrays, f"c{ci}.p{pi}.deformation"),
                              partner=int(pm["partner"]), fake=bool(pm["fake"]),
                              filter_block=int(pm["filter_block"]), def_block=int(pm["def_block"])))
        key = f"c{ci}.bbox_regressor"
        reg = _array(arrays, key) if key in arrays else None
        comps.append(Component(root=_array(arrays, f"c{ci}.root"), bias=float(cm["bias"]),
                               parts=parts, root_block=int(cm["root_block"]), bias_block=int(cm["bias_block"]),
                               bbox_regressor=reg))
    blocks = [Block(size=int(bm["size"]), regmult=float(bm["regmult"]), learnmult=float(bm["learnmult"]),
                    lower_bounds=_array(arrays, f"b{bi}.lower_bounds"))
              for bi, bm in enumerate(meta["blocks"])]
    model = Model(components=comps, blocks=blocks, sbin=int(meta["sbin"]), interval=int(meta["interval"]),
                  thresh=float(meta["thresh"]), class_name=str(meta.get("class_name", "")),
                  info={str(k): str(v) for k, v in dict(meta.get("info", {})).items()})
    if "cascade" in meta:
        from ..cascade.payload import cascade_from_payload

        model.cascade = cascade_from_payload(meta["cascade"], arrays)
    validate_model(model, source=source)
    return model


# What a malformed payload raises while it is being built.
MALFORMED = (KeyError, TypeError, IndexError, AttributeError, OverflowError, RecursionError, ValueError)


def load_native(path: Path, max_bytes) -> Model | StarModel:
    """The model in a file of the project's format (``path`` exists; ``max_bytes`` as for
    :func:`dpm.model.load_model`)."""
    data = read_npz(path, max_bytes=max_bytes, what="model file", limit_name="MAX_MODEL_BYTES")
    fmt = data.get("format")
    if fmt is None or fmt.dtype.kind != "U" or fmt.shape != () or str(fmt) != FORMAT_NAME:
        raise ValueError(f"{path}: not a dpm model file (no '{FORMAT_NAME}' format tag)")
    try:
        version = int(data["format_version"]) if "format_version" in data else -1
    except (TypeError, ValueError, OverflowError):
        version = -1
    if version > FORMAT_VERSION:
        raise ValueError(f"{path}: written by a newer dpm (model format version {version}, this dpm reads "
                         f"up to {FORMAT_VERSION}); upgrade dpm")
    if version < 1:
        raise ValueError(f"{path}: unknown model format version {version}")
    meta = data.get("meta")
    if meta is None or meta.dtype.kind != "U" or meta.shape != ():
        raise ValueError(f"{path}: damaged dpm model file (no 'meta' description)")
    if meta.dtype.itemsize // 4 > MAX_META_CHARS:
        raise ValueError(f"{path}: damaged dpm model file (a description of {meta.dtype.itemsize // 4} "
                         f"characters, at most {MAX_META_CHARS})")
    try:
        meta = json.loads(str(meta))
        if not isinstance(meta, dict):
            raise TypeError("the description is not a JSON object")
        if "release" in meta:
            return star_from_payload(meta, data, source=str(path))
        return model_from_payload(meta, data, source=str(path))
    except KeyError as exc:
        raise ValueError(f"{path}: damaged dpm model file (missing {exc})") from None
    except MALFORMED as exc:
        if str(exc).startswith(str(path)):
            raise
        raise ValueError(f"{path}: damaged dpm model file ({one_line(exc)})") from None


def one_line(exc) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


