"""Built-in models shipped inside the package.

Each built-in model is a ``<name>.npz`` file in this folder, in the project's
own model format, with a line in ``MODELS`` saying what it is and how it was
made.  Names with a slash live in a subfolder:

* ``person``: the project's own model, trained by ``dpm-train``;
* ``voc2007/<class>``: the original release's (voc-release3.1) pretrained
  models for the 20 PASCAL VOC 2007 classes, converted exactly from
  ``VOC2007/<class>_final.mat`` by ``tools/convert_zoo.py``;
* ``inria/person``: the original release's INRIA person model
  (``INRIA/inria_final.mat``);
* ``r5/voc2007/<class>``, ``r5/voc2010/<class>``, ``r5/inria/person``:
  voc-release5's pretrained star models (:class:`dpm.model.release5.StarModel`,
  6 components of 8 parts), converted exactly from
  ``VOC2007/<class>_final.mat``, ``VOC2010/<class>_final.mat`` and
  ``INRIA/inriaperson_final.mat``, each with the star-cascade of the release's
  published statistics (``star-cascade/``).

The original releases' models are distributed under their MIT-style
licences, shipped next to them as ``COPYING-voc-release3.1`` and
``COPYING-voc-release5``.  A group name (``voc2007``, ``r5/voc2007``,
``r5/voc2010``) stands for several models at once (:data:`GROUPS`).

A bare class name other than ``person`` (``car``, ``dog``) means that class's
release-5 VOC2007 model (:data:`ALIASES`): the most accurate model shipped for
PASCAL VOC2007 and, with its cascade, fast.  ``person`` stays the project's
own model, as it always was (:data:`BARE_NAME_RULE`).
"""
from __future__ import annotations

from pathlib import Path

from ..model import Model, StarModel, load_model

__all__ = ["ALIASES", "BARE_NAME_RULE", "MODELS", "GROUPS", "ZOO", "ZOO_R5", "builtin_models", "builtin_model_path",
           "resolve_model", "resolve_models", "resolve_named_models", "zoo_release", "zoo_source", "model_table"]

HERE = Path(__file__).parent

VOC2007_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
                   "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
                   "train", "tvmonitor")

# The original release's models shipped in the package: name -> file in the release's folder.
ZOO = {**{f"voc2007/{c}": f"VOC2007/{c}_final.mat" for c in VOC2007_CLASSES},
       "inria/person": "INRIA/inria_final.mat"}

# voc-release5's star models shipped in the package: name -> file in the release's folder.
ZOO_R5 = {**{f"r5/voc2007/{c}": f"VOC2007/{c}_final.mat" for c in VOC2007_CLASSES},
          **{f"r5/voc2010/{c}": f"VOC2010/{c}_final.mat" for c in VOC2007_CLASSES},
          "r5/inria/person": "INRIA/inriaperson_final.mat"}

# name -> one-line description (training command and measured AP live in docs/training.md)
MODELS = {
    "person": "1-component person model trained by dpm-train on the person-voc dataset",
    **{name: f"voc-release3.1 pretrained model ({src})" for name, src in ZOO.items()},
    **{name: f"voc-release5 pretrained star model ({src}) with its published star-cascade"
       for name, src in ZOO_R5.items()},
}

# group name -> the models it stands for, in order
GROUPS = {"voc2007": tuple(f"voc2007/{c}" for c in VOC2007_CLASSES),
          "r5/voc2007": tuple(f"r5/voc2007/{c}" for c in VOC2007_CLASSES),
          "r5/voc2010": tuple(f"r5/voc2010/{c}" for c in VOC2007_CLASSES)}

# bare class name -> the built-in model it means (docs: README.md, "Built-in models")
ALIASES = {c: f"r5/voc2007/{c}" for c in VOC2007_CLASSES if c != "person"}
BARE_NAME_RULE = ("a bare class name (car, dog, ...) means r5/voc2007/<class>, the most accurate model shipped "
                  "for VOC2007 and fast with its cascade; person means the project's own model, as before")


def zoo_source(name: str) -> str:
    """The original release's file a zoo model was converted from (relative to the release's folder,
    :func:`zoo_release`)."""
    return ZOO[name] if name in ZOO else ZOO_R5[name]


def zoo_release(name: str) -> str:
    """The release a zoo model comes from: ``voc-release3.1`` or ``voc-release5``."""
    if name in ZOO:
        return "voc-release3.1"
    if name in ZOO_R5:
        return "voc-release5"
    raise KeyError(name)


def builtin_models() -> dict:
    """Names and descriptions of the built-in models that are installed."""
    return {name: desc for name, desc in MODELS.items() if (HERE / f"{name}.npz").exists()}


def _available() -> str:
    names = list(builtin_models())
    groups = [f"{g} (all {len(m)} of {g}/...)" for g, m in GROUPS.items()
              if all(n in names for n in m)]
    if not names:
        return "none installed"
    grouped = {n for g, m in GROUPS.items() if all(n in names for n in m) for n in m}
    alone = [n for n in names if n not in grouped]
    bare = "; bare class names mean r5/voc2007/<class>" if all(t in names for t in ALIASES.values()) else ""
    return "groups: " + (", ".join(groups) or "none") + "; models: " + ", ".join(alone) + bare


def builtin_model_path(name: str) -> Path:
    """Path of a built-in model file; ``ValueError`` if there is no such model."""
    path = HERE / f"{name}.npz"
    if name not in MODELS or not path.exists():
        raise ValueError(f"no built-in model named {name!r} (built-in {_available()})")
    return path


def resolve_model(spec) -> Model | StarModel:
    """Load a model from a file path, a built-in model name or a bare class name (:data:`ALIASES`).

    A path that exists wins over a built-in name.
    """
    p = Path(spec)
    if p.exists():
        return load_model(p)
    if str(spec) in MODELS:
        return load_model(builtin_model_path(str(spec)))
    if str(spec) in ALIASES:
        return load_model(builtin_model_path(ALIASES[str(spec)]))
    near = [n for n in builtin_models() if n.endswith(f"/{spec}")]
    hint = f"did you mean {' or '.join(near)}? " if near else ""
    raise FileNotFoundError(f"{spec}: no such model file, and not a built-in model or group name ({hint}"
                            f"built-in {_available()}; dpm-detect --list-models lists them)")


def resolve_models(spec) -> list[Model | StarModel]:
    """Load the models of ``MODEL[,MODEL...]``: files, built-in names and group names.

    A group name (:data:`GROUPS`) stands for its models, in order.  A spec that
    is an existing path is one model even if it holds a comma.  Raises
    ``ValueError`` if two of the models detect the same class (results and
    suppression are per class).
    """
    return [model for _, model in resolve_named_models(spec)]


def resolve_named_models(spec) -> list[tuple[str, Model | StarModel]]:
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
    """``dpm-detect --list-models``: a header and one row per installed model and group, and the
    bare-name rule.

    Columns: name, source, components (a release-5 model counts its mirrored
    components), parts per component, default threshold, whether it carries a
    star-cascade (used by default).
    """
    rows = [("name", "source", "components", "parts", "threshold", "cascade")]
    installed = builtin_models()
    for name in installed:
        m = load_model(builtin_model_path(name))
        source = (f"{zoo_release(name)} {zoo_source(name)}" if name in ZOO or name in ZOO_R5
                  else m.info.get("trained_by", "dpm-train"))
        rows.append((name, source, str(len(m.components)), "/".join(str(len(c.parts)) for c in m.components),
                     f"{m.thresh:.4g}", "yes" if m.cascade is not None else "no"))
    for group, names in GROUPS.items():
        if all(n in installed for n in names):
            rows.append((group, f"group: the {len(names)} models {group}/<class>", "", "", "", ""))
    if all(target in installed for target in ALIASES.values()):
        rows.append(("<class>", BARE_NAME_RULE, "", "", "", ""))
    return rows
