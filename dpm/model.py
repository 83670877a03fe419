"""The Deformable Part Model type and its files.

A model is a mixture of components.  Each component has a root filter, a bias
and parts; each part has a filter (at twice the root's resolution), an anchor
and a quadratic deformation cost.  This mirrors the model structure documented
at the top of voc-release3.1 ``initmodel.m`` (spec §1.3), nested per component
instead of the original's global cell arrays.

Conventions
-----------
* Filters are ``(h, w, 31)`` float64 arrays indexed ``[y, x, channel]``.
* Anchors are 1-based ``(x, y)`` cell positions of a part's top-left corner in
  the 2x-resolution grid of its root, as in the original.
* ``deformation = [ax, bx, ay, by]`` is the cost ``ax*dx**2 + bx*dx + ay*dy**2 +
  by*dy`` of displacing the part by ``(dx, dy)`` cells from its anchor.
* Symmetry: root filters are left/right symmetric (their learner block holds
  the left ``ceil(w/2)`` columns).  A part without a partner is self-symmetric
  in the same way.  A part with a ``partner`` holds its full width, and the
  partner is ``fake``: its filter and deformation are the mirror images of the
  real part's (``parsemodel.m``).
* ``blocks`` is the learner's parameter layout (``blocksizes``, ``regmult``,
  ``learnmult``, ``lowerbounds``); filters refer to it by 0-based index.

Files: :func:`load_model` reads voc-release3.1 ``.mat`` models and this
project's own ``.npz`` format (:func:`save_model`), a versioned, pickle-free
file that round-trips exactly.  Both are read by the bounded readers of
:mod:`dpm.files` (sizes checked before anything is decompressed; limit 64 MiB,
``DPM_MAX_MODEL_BYTES``) and every model is checked by
:func:`dpm.model_check.validate_model` (field ranges, finite values).

The learner's block layout (:func:`model_blocks`, :func:`model_from_blocks`)
lives in :mod:`dpm.model_blocks` and is re-exported here.  A model may carry a
star-cascade (:class:`dpm.cascade.Cascade`, made by :func:`dpm.build_cascade`),
stored in the same file (:mod:`dpm.cascade.payload`).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ._io import atomic_write
from .files import read_mat, read_npz, write_npz
from .model_blocks import fold_half, model_blocks, model_from_blocks, unfold_half
from .model_check import NUM_FEATURES, validate_model
from .model_r31 import r31_payload
from .model_r5 import StarModel, is_release5_struct, star_model
from .cascade.release5 import cascade_from_published, published_cascade_files

if TYPE_CHECKING:  # pragma: no cover
    from .cascade import Cascade

__all__ = [
    "NUM_FEATURES", "Block", "Part", "Component", "Model",
    "load_model", "save_model", "import_mat_model", "model_blocks", "model_from_blocks",
    "fold_half", "unfold_half", "validate_model", "model_to_payload", "model_from_payload", "StarModel",
]
FORMAT_NAME = "dpm-model"
FORMAT_VERSION = 1


@dataclass(eq=False)
class Block:
    """One block of the learner's weight vector (a 3.1 ``blocklabel``)."""

    size: int
    regmult: float
    learnmult: float
    lower_bounds: np.ndarray  # (size,) float64


@dataclass(eq=False)
class Part:
    """A part filter with its anchor and deformation cost."""

    filter: np.ndarray               # (h, w, 31) float64, at twice the root resolution
    anchor: tuple[int, int]          # 1-based (x, y) in 2x root cells
    deformation: np.ndarray          # (4,) float64 [ax, bx, ay, by]
    partner: int = -1                # index in Component.parts of the mirrored partner, or -1
    fake: bool = False               # mirror copy of ``partner``; owns no learner blocks
    filter_block: int = -1           # 0-based block index; -1 for fake parts
    def_block: int = -1

    @property
    def size(self) -> tuple[int, int]:
        """``(h, w)`` of the filter in cells."""
        return self.filter.shape[0], self.filter.shape[1]

    @property
    def self_symmetric(self) -> bool:
        """True for a part without a partner: its block holds the left half only."""
        return self.partner < 0 and not self.fake


@dataclass(eq=False)
class Component:
    """One mixture component: root filter, bias, parts, bounding-box regressor."""

    root: np.ndarray                 # (h, w, 31) float64
    bias: float
    parts: list[Part] = field(default_factory=list)
    root_block: int = -1
    bias_block: int = -1
    # (4, 3 + 2 * len(parts)) float64: rows predict x1, y1, x2, y2 from the
    # getboxes.m regressor [root width, root x1, root y1, part x1, part y1, ...].
    bbox_regressor: np.ndarray | None = None

    @property
    def root_size(self) -> tuple[int, int]:
        """``(h, w)`` of the root filter in cells."""
        return self.root.shape[0], self.root.shape[1]

    def dim(self, model: "Model") -> int:
        """Length of this component's ``.dat`` feature vector, block labels included."""
        n = 2 + 1 + model.blocks[self.root_block].size
        for p in self.parts:
            if not p.fake:
                n += 6 + model.blocks[p.filter_block].size
        return n

    @property
    def numblocks(self) -> int:
        """Number of blocks the component's feature vector touches."""
        return 2 + 2 * sum(not p.fake for p in self.parts)


@dataclass(eq=False)
class Model:
    """A Deformable Part Model (voc-release3.1 semantics).

    Attributes
    ----------
    components : list of Component
    blocks : list of Block
        The learner's parameter layout.
    sbin : int
        Pixels per HOG cell at the root's resolution (8).
    interval : int
        Pyramid levels per octave (10).
    thresh : float
        Default detection threshold (5th percentile of training-positive scores).
    class_name : str
    info : dict of str to str
        Free-form provenance (training command, dataset, source file).
    cascade : dpm.cascade.Cascade or None
        The star-cascade for this model's weights (:func:`dpm.build_cascade`), if any.
    """

    components: list[Component]
    blocks: list[Block]
    sbin: int = 8
    interval: int = 10
    thresh: float = 0.0
    class_name: str = ""
    info: dict = field(default_factory=dict)
    cascade: Cascade | None = None

    @property
    def maxsize(self) -> tuple[int, int]:
        """Elementwise maximum ``(h, w)`` of the root filters, in cells."""
        sizes = np.array([c.root_size for c in self.components])
        return int(sizes[:, 0].max()), int(sizes[:, 1].max())

    @property
    def minsize(self) -> tuple[int, int]:
        """Elementwise minimum ``(h, w)`` of the root filters, in cells."""
        sizes = np.array([c.root_size for c in self.components])
        return int(sizes[:, 0].min()), int(sizes[:, 1].min())

    @property
    def padding(self) -> tuple[int, int]:
        """``(pady, padx)`` in root cells added around each level by ``detect.m``."""
        h, w = self.maxsize
        return math.ceil(h / 2 + 1), math.ceil(w / 2 + 1)

    @property
    def num_parts(self) -> int:
        """Parts per component (the detection output assumes every component has as many)."""
        return max((len(c.parts) for c in self.components), default=0)

    def copy(self) -> "Model":
        """A deep copy (arrays included)."""
        return model_from_payload(*model_to_payload(self))

    def __repr__(self):
        comps = ", ".join(f"{c.root_size[0]}x{c.root_size[1]}+{len(c.parts)}p" for c in self.components)
        return (f"Model(class_name={self.class_name!r}, components=[{comps}], sbin={self.sbin}, "
                f"interval={self.interval}, thresh={self.thresh:g}, blocks={len(self.blocks)}"
                f"{', cascade' if self.cascade is not None else ''})")


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------

MAX_META_CHARS = 2 ** 20   # the JSON description of a model (a few kB for voc-release3.1 models)


def load_model(path, *, max_bytes: int | None = None) -> Model | StarModel:
    """Load a model: a voc-release3.1 ``.mat`` file, this project's ``.npz`` format, or a
    voc-release5 star model ``.mat`` file (returned as a :class:`dpm.model_r5.StarModel`; where the
    release's published star-cascade statistics sit beside it, ``<release>/star-cascade/``, the model
    carries the cascade they give, :func:`dpm.cascade.release5.cascade_from_published`).

    The file is read by a bounded reader (:mod:`dpm.files`): its declared sizes
    are checked before anything is decompressed, and the model's fields are
    checked (:func:`dpm.model_check.validate_model`).

    Parameters
    ----------
    path : str or Path
    max_bytes : int, optional
        Most bytes of arrays the file may hold (a ``.mat`` file: its size, and
        the bytes it inflates to).  Default: the environment variable
        ``DPM_MAX_MODEL_BYTES``, else 64 MiB (:data:`dpm.limits.MAX_MODEL_BYTES`).

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    dpm.limits.LimitError
        The file is larger than ``max_bytes`` (a ``ValueError``).
    ValueError
        The file is not a model, is damaged, holds a field out of range or a
        non-finite weight, or comes from an unsupported release or a newer
        version of this format.  The one-line message names the file.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such model file")
    if path.is_dir():
        raise ValueError(f"{path}: is a directory, not a model file")
    with open(path, "rb") as fh:
        head = fh.read(128)
    if head.startswith(b"PK"):
        return _load_npz(path, max_bytes)
    if head.startswith(b"MATLAB") or head[:4] == b"\x89HDF" or path.suffix.lower() == ".mat":
        return import_mat_model(path, max_bytes=max_bytes)
    raise ValueError(f"{path}: not a model file (expected a dpm .npz model, a voc-release3.1 .mat model "
                     "or a voc-release5 star model .mat file)")


def save_model(model: Model, path) -> Path:
    """Write ``model`` to ``path`` in the project's ``.npz`` format, atomically.

    The file is written next to its destination and renamed into place, so an
    interrupted save never leaves a half-written model.
    """
    path = Path(path)
    meta, arrays = model_to_payload(model)
    arrays = dict(arrays)
    arrays["format"] = np.array(FORMAT_NAME)
    arrays["format_version"] = np.array(FORMAT_VERSION)
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
        from .cascade.payload import cascade_to_payload

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
        from .cascade.payload import cascade_from_payload

        model.cascade = cascade_from_payload(meta["cascade"], arrays)
    validate_model(model, source=source)
    return model


# What a malformed payload raises while it is being built.
_MALFORMED = (KeyError, TypeError, IndexError, AttributeError, OverflowError, RecursionError, ValueError)


def _load_npz(path: Path, max_bytes) -> Model:
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
        return model_from_payload(meta, data, source=str(path))
    except KeyError as exc:
        raise ValueError(f"{path}: damaged dpm model file (missing {exc})") from None
    except _MALFORMED as exc:
        if str(exc).startswith(str(path)):
            raise
        raise ValueError(f"{path}: damaged dpm model file ({_one_line(exc)})") from None


def _one_line(exc) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


# voc-release3.1 names models after their class, except the INRIA Person model.
_DATASET_CLASSES = {"inria": "person"}


def import_mat_model(path, *, max_bytes: int | None = None) -> Model | StarModel:
    """Read a voc-release3.1 model saved by MATLAB (``load(path)`` -> ``model``), or a
    voc-release5 star model (:mod:`dpm.model_r5`; grammar models are refused).

    Read with :func:`dpm.files.read_mat` (bounded: ``max_bytes`` as in
    :func:`load_model`); raises ``ValueError`` naming the file otherwise.
    """
    path = Path(path)
    mat = read_mat(path, max_bytes=max_bytes, variables={"model"}, what="model file",
                   limit_name="MAX_MODEL_BYTES", squeeze_me=True, struct_as_record=False)
    if "model" not in mat:
        raise ValueError(f"{path}: no variable named 'model' in this .mat file; not a voc-release model")
    if is_release5_struct(mat["model"]):
        return _import_release5(path, mat["model"])
    try:
        meta, arrays = r31_payload(mat["model"])
        name = path.stem[:-len("_final")] if path.stem.endswith("_final") else path.stem
        meta["class_name"] = _DATASET_CLASSES.get(name, name)
        meta["info"] = {"source": path.name}
        return model_from_payload(meta, arrays, source=str(path))
    except _MALFORMED as exc:
        message = _one_line(exc)
        if message.startswith(str(path)):
            raise
        if isinstance(exc, ValueError) and message.startswith(("not a", "a voc-release", "'model'")):
            raise ValueError(f"{path}: {message}") from None
        raise ValueError(f"{path}: malformed voc-release3.1 model ({message})") from None


# Release 5 names its INRIA model's class "inriaperson".
_R5_CLASSES = {"inriaperson": "person"}


def _import_release5(path: Path, struct) -> StarModel:
    try:
        name = str(getattr(struct, "class", ""))
        model = star_model(struct, class_name=_R5_CLASSES.get(name, name), source=path.name)
    except _MALFORMED as exc:
        message = _one_line(exc)
        if isinstance(exc, ValueError) and message.startswith(("a voc-release", "features of")):
            raise ValueError(f"{path}: {message}") from None
        raise ValueError(f"{path}: malformed voc-release5 model ({message})") from None
    # The release's published cascade statistics, where they sit beside the model (its own layout).
    files = published_cascade_files(model, path)
    if files is not None:
        model.cascade = cascade_from_published(model, *files)
        model.info["cascade"] = f"published statistics: {files[0].name}"
    return model
