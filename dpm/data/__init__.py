"""Built-in models shipped inside the package.

Each built-in model is a ``<name>.npz`` file in this folder, in the project's
own model format, with a line in ``MODELS`` saying what it is and how it was
made.  Names with a slash live in a subfolder:

* ``person``: the project's own model, trained by ``dpm-train``;
* ``voc2007/<class>``: the original release's (voc-release3.1) pretrained
  models for the 20 PASCAL VOC 2007 classes, converted exactly from
  ``VOC2007/<class>_final.mat`` by ``tools/convert_zoo.py``;
* ``inria/person``: the original release's INRIA person model
  (``INRIA/inria_final.mat``).

The original release's models are distributed under its MIT-style licence,
shipped next to them as ``COPYING-voc-release3.1``.  A group name (``voc2007``)
stands for several models at once (:data:`GROUPS`).
"""
from __future__ import annotations

from pathlib import Path

from ..model import Model, load_model

__all__ = ["MODELS", "GROUPS", "ZOO", "builtin_models", "builtin_model_path", "resolve_model",
           "resolve_models", "resolve_named_models", "zoo_source", "model_table"]

HERE = Path(__file__).parent

VOC2007_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
                   "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
                   "train", "tvmonitor")

# The original release's models shipped in the package: name -> file in the release's folder.
ZOO = {**{f"voc2007/{c}": f"VOC2007/{c}_final.mat" for c in VOC2007_CLASSES},
       "inria/person": "INRIA/inria_final.mat"}

# name -> one-line description (training command and measured AP live in docs/training.md)
MODELS = {
    "person": "1-component person model trained by dpm-train on the person-voc dataset",
    **{name: f"voc-release3.1 pretrained model ({src})" for name, src in ZOO.items()},
}

# group name -> the models it stands for, in order
GROUPS = {"voc2007": tuple(f"voc2007/{c}" for c in VOC2007_CLASSES)}


def zoo_source(name: str) -> str:
    """The original release's file a zoo model was converted from (relative to the release's folder)."""
    return ZOO[name]


def builtin_models() -> dict:
    """Names and descriptions of the built-in models that are installed."""
    return {name: desc for name, desc in MODELS.items() if (HERE / f"{name}.npz").exists()}


def _available() -> str:
    names = list(builtin_models())
    groups = [f"{g} (all {len(m)} of {g}/...)" for g, m in GROUPS.items()
              if all(n in names for n in m)]
    if not names:
        return "none installed"
    return "groups: " + (", ".join(groups) or "none") + "; models: " + ", ".join(names)


def builtin_model_path(name: str) -> Path:
    """Path of a built-in model file; ``ValueError`` if there is no such model."""
    path = HERE / f"{name}.npz"
    if name not in MODELS or not path.exists():
        raise ValueError(f"no built-in model named {name!r} (built-in {_available()})")
    return path


def resolve_model(spec) -> Model:
    """Load a model from a file path or a built-in model name.

    A path that exists wins over a built-in name.
    """
    p = Path(spec)
    if p.exists():
        return load_model(p)
    if str(spec) in MODELS:
        return load_model(builtin_model_path(str(spec)))
    near = [n for n in builtin_models() if n.endswith(f"/{spec}")]
    hint = f"did you mean {' or '.join(near)}? " if near else ""
    raise FileNotFoundError(f"{spec}: no such model file, and not a built-in model or group name ({hint}"
                            f"built-in {_available()}; see --list-models)")


def resolve_models(spec) -> list[Model]:
    """Load the models of ``MODEL[,MODEL...]``: files, built-in names and group names.

    A group name (:data:`GROUPS`) stands for its models, in order.  A spec that
    is an existing path is one model even if it holds a comma.  Raises
    ``ValueError`` if two of the models detect the same class (results and
    suppression are per class).
    """
    return [model for _, model in resolve_named_models(spec)]


def resolve_named_models(spec) -> list[tuple[str, Model]]:
    """:func:`resolve_models` with the name each model was found by (a file or a built-in name), in order."""
    spec = str(spec)
    items = [spec] if Path(spec).exists() else [s.strip() for s in spec.split(",")]
    if not all(items):
        raise ValueError(f"model list {spec!r} has an empty entry; separate model names with single commas")
    names = []
    for item in items:
        names.extend(GROUPS.get(item, (item,)) if not Path(item).exists() else (item,))
    models, seen = [], {}
    for name in names:
        model = resolve_model(name)
        cls = model.class_name or Path(name).stem
        if cls in seen:
            raise ValueError(f"class {cls!r} is given twice (by {seen[cls]} and {name}); results and "
                             "suppression are per class, so give one model per class")
        seen[cls] = name
        models.append((name, model))
    return models


def model_table() -> list[tuple[str, ...]]:
    """``dpm-detect --list-models``: a header and one row per installed model and group.

    Columns: name, source, components, parts per component, default threshold.
    """
    rows = [("name", "source", "components", "parts", "threshold")]
    for name in builtin_models():
        m = load_model(builtin_model_path(name))
        source = f"voc-release3.1 {ZOO[name]}" if name in ZOO else m.info.get("trained_by", "dpm-train")
        rows.append((name, source, str(len(m.components)), "/".join(str(len(c.parts)) for c in m.components),
                     f"{m.thresh:.4g}"))
    installed = builtin_models()
    for group, names in GROUPS.items():
        if all(n in installed for n in names):
            rows.append((group, f"group: the {len(names)} models {group}/<class>", "", "", ""))
    return rows
