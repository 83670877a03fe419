"""The Deformable Part Model type, its learner block layout, and its files.

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
file that round-trips exactly.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._io import atomic_write
from .features.flip import flip_features

__all__ = [
    "NUM_FEATURES", "Block", "Part", "Component", "Model",
    "load_model", "save_model", "import_mat_model", "model_blocks", "model_from_blocks",
]

NUM_FEATURES = 31
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
    """

    components: list[Component]
    blocks: list[Block]
    sbin: int = 8
    interval: int = 10
    thresh: float = 0.0
    class_name: str = ""
    info: dict = field(default_factory=dict)

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
        return _from_payload(*_to_payload(self))

    def __repr__(self):
        comps = ", ".join(f"{c.root_size[0]}x{c.root_size[1]}+{len(c.parts)}p" for c in self.components)
        return (f"Model(class_name={self.class_name!r}, components=[{comps}], sbin={self.sbin}, "
                f"interval={self.interval}, thresh={self.thresh:g}, blocks={len(self.blocks)})")


# --------------------------------------------------------------------------------------------
# Learner block layout (writeheader/writelob/readmodel/parsemodel)
# --------------------------------------------------------------------------------------------

def fold_half(f: np.ndarray) -> np.ndarray:
    """The left ``ceil(w/2)`` columns of a symmetric filter (its learner block)."""
    return f[:, : (f.shape[1] + 1) // 2, :]


def unfold_half(half: np.ndarray, width: int) -> np.ndarray:
    """Rebuild a full symmetric filter from its left half (``parsemodel.m``)."""
    h, hw, nf = half.shape
    full = np.empty((h, width, nf), dtype=np.float64)
    full[:, :hw] = half
    k = width // 2
    if k:
        full[:, width - k:] = flip_features(half[:, :k])
    return full


def _block_values(arr: np.ndarray) -> np.ndarray:
    # Filter blocks are stored column-major (y fastest, then x, then channel): MATLAB's A(:).
    return np.asarray(arr, dtype=np.float64).ravel(order="F")


def model_blocks(model: Model) -> list[np.ndarray]:
    """The model's weights as one 1-D float64 array per learner block (``.mod`` layout)."""
    out: list[np.ndarray | None] = [None] * len(model.blocks)
    for c in model.components:
        out[c.bias_block] = np.array([c.bias], dtype=np.float64)
        out[c.root_block] = _block_values(fold_half(c.root))
        for p in c.parts:
            if p.fake:
                continue
            f = fold_half(p.filter) if p.self_symmetric else p.filter
            out[p.filter_block] = _block_values(f)
            out[p.def_block] = np.asarray(p.deformation, dtype=np.float64).copy()
    for i, (b, v) in enumerate(zip(model.blocks, out)):
        if v is None:
            raise ValueError(f"model block {i} is not used by any filter")
        if v.size != b.size:
            raise ValueError(f"model block {i} holds {v.size} values but its size is {b.size}")
    return out


def model_from_blocks(model: Model, blocks) -> Model:
    """A copy of ``model`` whose weights come from per-block arrays (``parsemodel.m``).

    ``blocks`` is a list of 1-D arrays in block order or one concatenated vector
    (the ``.mod`` layout).  Fake parts are rebuilt from their partners: the filter
    mirrored and the linear x deformation coefficient negated.
    """
    sizes = [b.size for b in model.blocks]
    if not isinstance(blocks, (list, tuple)):
        vec = np.asarray(blocks, dtype=np.float64).ravel()
        if vec.size != sum(sizes):
            raise ValueError(f"weight vector has {vec.size} values, the model needs {sum(sizes)}")
        blocks = np.split(vec, np.cumsum(sizes)[:-1])
    if len(blocks) != len(sizes):
        raise ValueError(f"got {len(blocks)} blocks, the model has {len(sizes)}")
    new = model.copy()
    for c in new.components:
        c.bias = float(blocks[c.bias_block][0])
        h, w, nf = c.root.shape
        half = np.asarray(blocks[c.root_block], dtype=np.float64).reshape((h, (w + 1) // 2, nf), order="F")
        c.root = unfold_half(half, w)
        for p in c.parts:
            if p.fake:
                continue
            h, w, nf = p.filter.shape
            vals = np.asarray(blocks[p.filter_block], dtype=np.float64)
            if p.self_symmetric:
                p.filter = unfold_half(vals.reshape((h, (w + 1) // 2, nf), order="F"), w)
            else:
                p.filter = vals.reshape((h, w, nf), order="F").copy()
            p.deformation = np.asarray(blocks[p.def_block], dtype=np.float64).copy()
        for p in c.parts:
            if p.fake:
                src = c.parts[p.partner]
                p.filter = flip_features(src.filter)
                p.deformation = src.deformation * np.array([1.0, -1.0, 1.0, 1.0])
    return new


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------

def load_model(path) -> Model:
    """Load a model: a voc-release3.1 ``.mat`` file or this project's ``.npz`` format.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        The file is not a model, or comes from an unsupported release or a newer
        version of this format.  The message names the file.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such model file")
    if path.is_dir():
        raise ValueError(f"{path}: is a directory, not a model file")
    with open(path, "rb") as fh:
        head = fh.read(128)
    if head.startswith(b"PK"):
        return _load_npz(path)
    if head.startswith(b"MATLAB") or head[:4] == b"\x89HDF" or path.suffix.lower() == ".mat":
        return import_mat_model(path)
    raise ValueError(f"{path}: not a model file (expected a dpm .npz model or a voc-release3.1 .mat model)")


def save_model(model: Model, path) -> Path:
    """Write ``model`` to ``path`` in the project's ``.npz`` format, atomically.

    The file is written next to its destination and renamed into place, so an
    interrupted save never leaves a half-written model.
    """
    path = Path(path)
    meta, arrays = _to_payload(model)
    arrays = dict(arrays)
    arrays["format"] = np.array(FORMAT_NAME)
    arrays["format_version"] = np.array(FORMAT_VERSION)
    arrays["meta"] = np.array(json.dumps(meta, sort_keys=True))
    atomic_write(path, lambda fh: _write_npz(fh, arrays))
    return path


def _write_npz(fh, arrays: dict) -> None:
    """``np.savez_compressed`` with fixed entry timestamps, so equal models give equal files."""
    import zipfile

    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(arrays):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w", force_zip64=True) as entry:
                np.lib.format.write_array(entry, np.asanyarray(arrays[name]), allow_pickle=False)


def _to_payload(model: Model):
    """Split a model into JSON-able metadata and named float64 arrays."""
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
    return meta, arrays


def _from_payload(meta, arrays) -> Model:
    comps = []
    for ci, cm in enumerate(meta["components"]):
        parts = []
        for pi, pm in enumerate(cm["parts"]):
            parts.append(Part(filter=np.array(arrays[f"c{ci}.p{pi}.filter"], dtype=np.float64),
                              anchor=(int(pm["anchor"][0]), int(pm["anchor"][1])),
                              deformation=np.array(arrays[f"c{ci}.p{pi}.deformation"], dtype=np.float64),
                              partner=int(pm["partner"]), fake=bool(pm["fake"]),
                              filter_block=int(pm["filter_block"]), def_block=int(pm["def_block"])))
        key = f"c{ci}.bbox_regressor"
        reg = np.array(arrays[key], dtype=np.float64) if key in arrays else None
        comps.append(Component(root=np.array(arrays[f"c{ci}.root"], dtype=np.float64), bias=float(cm["bias"]),
                               parts=parts, root_block=int(cm["root_block"]), bias_block=int(cm["bias_block"]),
                               bbox_regressor=reg))
    blocks = [Block(size=int(bm["size"]), regmult=float(bm["regmult"]), learnmult=float(bm["learnmult"]),
                    lower_bounds=np.array(arrays[f"b{bi}.lower_bounds"], dtype=np.float64))
              for bi, bm in enumerate(meta["blocks"])]
    model = Model(components=comps, blocks=blocks, sbin=int(meta["sbin"]), interval=int(meta["interval"]),
                  thresh=float(meta["thresh"]), class_name=str(meta.get("class_name", "")),
                  info=dict(meta.get("info", {})))
    validate_model(model)
    return model


def _load_npz(path: Path) -> Model:
    import zipfile
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise ValueError(f"{path}: not a readable dpm model file ({exc})") from None
    if "format" not in data or str(data["format"]) != FORMAT_NAME:
        raise ValueError(f"{path}: not a dpm model file (no '{FORMAT_NAME}' format tag)")
    version = int(data.get("format_version", -1))
    if version > FORMAT_VERSION:
        raise ValueError(f"{path}: written by a newer dpm (model format version {version}, this dpm reads "
                         f"up to {FORMAT_VERSION}); upgrade dpm")
    if version < 1:
        raise ValueError(f"{path}: unknown model format version {version}")
    try:
        meta = json.loads(str(data["meta"]))
        return _from_payload(meta, data)
    except KeyError as exc:
        raise ValueError(f"{path}: damaged dpm model file (missing {exc})") from None
    except (TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: damaged dpm model file ({exc})") from None


def validate_model(model: Model, source="model") -> None:
    """Check the internal consistency of a model; raise ``ValueError`` naming the problem."""
    if not model.components:
        raise ValueError(f"{source}: the model has no components")
    if model.sbin <= 0 or model.sbin % 2:
        raise ValueError(f"{source}: sbin must be a positive even number, got {model.sbin}")
    if model.interval < 1:
        raise ValueError(f"{source}: interval must be >= 1, got {model.interval}")
    nparts = {len(c.parts) for c in model.components}
    if len(nparts) > 1:
        raise ValueError(f"{source}: components have different numbers of parts {sorted(nparts)}; "
                         "the voc-release3.1 detector needs the same number in every component")
    nb = len(model.blocks)
    for ci, c in enumerate(model.components):
        if c.root.ndim != 3 or c.root.shape[2] != NUM_FEATURES:
            raise ValueError(f"{source}: component {ci} root filter has shape {c.root.shape}, "
                             f"expected (h, w, {NUM_FEATURES})")
        for pi, p in enumerate(c.parts):
            if p.filter.ndim != 3 or p.filter.shape[2] != NUM_FEATURES:
                raise ValueError(f"{source}: component {ci} part {pi} filter has shape {p.filter.shape}")
            if np.shape(p.deformation) != (4,):
                raise ValueError(f"{source}: component {ci} part {pi} deformation must have 4 values")
            if p.partner >= len(c.parts) or (p.fake and p.partner < 0):
                raise ValueError(f"{source}: component {ci} part {pi} has an invalid partner {p.partner}")
        if c.bbox_regressor is not None and c.bbox_regressor.shape != (4, 3 + 2 * len(c.parts)):
            raise ValueError(f"{source}: component {ci} bbox regressor has shape {c.bbox_regressor.shape}, "
                             f"expected (4, {3 + 2 * len(c.parts)})")
        for b in [c.root_block, c.bias_block] + [x for p in c.parts if not p.fake
                                                 for x in (p.filter_block, p.def_block)]:
            if not 0 <= b < nb:
                raise ValueError(f"{source}: component {ci} refers to block {b}, the model has {nb}")
    for bi, b in enumerate(model.blocks):
        if np.shape(b.lower_bounds) != (b.size,):
            raise ValueError(f"{source}: block {bi} lower bounds have shape {np.shape(b.lower_bounds)}, "
                             f"expected ({b.size},)")


# --------------------------------------------------------------------------------------------
# voc-release3.1 .mat import
# --------------------------------------------------------------------------------------------

_R31_FIELDS = {"sbin", "rootfilters", "offsets", "blocksizes", "regmult", "learnmult", "lowerbounds",
               "components", "interval", "numcomponents", "numblocks", "partfilters", "defs",
               "maxsize", "minsize", "thresh"}


# voc-release3.1 names models after their class, except the INRIA Person model.
_DATASET_CLASSES = {"inria": "person"}


def import_mat_model(path) -> Model:
    """Read a voc-release3.1 model saved by MATLAB (``load(path)`` -> ``model``)."""
    import scipy.io as sio

    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head[:4] == b"\x89HDF":
        raise ValueError(f"{path}: MATLAB v7.3 (HDF5) files are not supported; re-save the model in MATLAB "
                         "with save(..., '-v7')")
    try:
        mat = sio.loadmat(str(path), squeeze_me=True, struct_as_record=False)
    except Exception as exc:  # scipy raises a zoo of types for non-MAT input
        raise ValueError(f"{path}: not a readable MATLAB .mat file ({' '.join(str(exc).split())})") from None
    if "model" not in mat:
        raise ValueError(f"{path}: no variable named 'model' in this .mat file; not a voc-release model")
    m = mat["model"]
    fields = set(getattr(m, "_fieldnames", []) or [])
    if not fields:
        raise ValueError(f"{path}: 'model' is not a MATLAB struct; not a voc-release model")
    if "symbols" in fields or "rules" in fields:
        raise ValueError(f"{path}: a voc-release4/5 grammar model; only voc-release3.1 models are supported")
    missing = _R31_FIELDS - fields
    if missing:
        raise ValueError(f"{path}: not a voc-release3.1 model (missing fields: {', '.join(sorted(missing))})")
    try:
        model = _convert_r31(m)
        model.info["source"] = path.name
        name = path.stem[:-len("_final")] if path.stem.endswith("_final") else path.stem
        model.class_name = _DATASET_CLASSES.get(name, name)
        validate_model(model, source=str(path))
    except (AttributeError, IndexError, TypeError, KeyError) as exc:
        raise ValueError(f"{path}: malformed voc-release3.1 model ({exc})") from None
    return model


def _cells(x):
    """A MATLAB cell/struct array loaded with squeeze_me as a Python list."""
    return list(np.atleast_1d(x)) if isinstance(x, np.ndarray) else [x]


def _convert_r31(m) -> Model:
    blocksizes = [int(x) for x in np.atleast_1d(m.blocksizes)]
    regmult = np.atleast_1d(np.asarray(m.regmult, dtype=np.float64))
    learnmult = np.atleast_1d(np.asarray(m.learnmult, dtype=np.float64))
    lbs = _cells(m.lowerbounds)
    blocks = []
    for i, size in enumerate(blocksizes):
        lb = np.asarray(lbs[i], dtype=np.float64).ravel(order="F")
        if lb.size == 1 and size != 1:
            lb = np.full(size, lb[0])
        blocks.append(Block(size=size, regmult=float(regmult[i]), learnmult=float(learnmult[i]), lower_bounds=lb))
    roots = _cells(m.rootfilters)
    offsets = _cells(m.offsets)
    pfs = _cells(m.partfilters) if np.size(m.partfilters) else []
    defs = _cells(m.defs) if np.size(m.defs) else []
    components = []
    for cm in _cells(m.components):
        root = roots[int(cm.rootindex) - 1]
        off = offsets[int(cm.offsetindex) - 1]
        cparts = _cells(cm.parts) if np.size(cm.parts) else []
        index_of = {int(p.partindex): j for j, p in enumerate(cparts)}
        parts = []
        for cp in cparts:
            pf = pfs[int(cp.partindex) - 1]
            d = defs[int(cp.defindex) - 1]
            fake = bool(int(pf.fake))
            partner = int(pf.partner)
            parts.append(Part(
                filter=_filter(pf.w),
                anchor=tuple(int(a) for a in np.atleast_1d(d.anchor)),
                deformation=np.asarray(d.w, dtype=np.float64).ravel().copy(),
                partner=index_of[partner] if partner else -1,
                fake=fake,
                filter_block=-1 if fake else int(pf.blocklabel) - 1,
                def_block=-1 if fake else int(d.blocklabel) - 1,
            ))
        reg = None
        if all(hasattr(cm, k) for k in ("x1", "y1", "x2", "y2")):
            reg = np.stack([np.asarray(getattr(cm, k), dtype=np.float64).ravel() for k in ("x1", "y1", "x2", "y2")])
        components.append(Component(root=_filter(root.w), bias=float(off.w), parts=parts,
                                    root_block=int(root.blocklabel) - 1, bias_block=int(off.blocklabel) - 1,
                                    bbox_regressor=reg))
    return Model(components=components, blocks=blocks, sbin=int(m.sbin), interval=int(m.interval),
                 thresh=float(m.thresh), info={})


def _filter(w) -> np.ndarray:
    w = np.asarray(w, dtype=np.float64)
    if w.ndim == 2:  # a 1-column filter squeezed by loadmat
        w = w[:, :, None] if w.shape[1] == NUM_FEATURES else w[:, None, :]
    return np.ascontiguousarray(w)
