"""Reading model files: one bounded loader for every format.

:func:`load_model` tells the format from the file's first bytes: the
project's ``.npz`` (:mod:`dpm.model.native`), a voc-release3.1 ``.mat`` model
(:mod:`dpm.model.release31`) or a voc-release5 star model ``.mat``
(:mod:`dpm.model.release5`).  Every file is read by a bounded reader of
:mod:`dpm.files` (declared sizes checked before anything is decompressed) and
every model is checked before it is returned.  OpenCV's cascade DPM XML is
read (:mod:`dpm.model.opencv_read`) and written (:mod:`dpm.model.opencv`, ``dpm-convert``).
"""
from __future__ import annotations

from pathlib import Path

from .release5_cascade import cascade_from_published, published_cascade_files
from ..files import read_mat
from .native import MALFORMED, load_native, model_from_payload, one_line
from .opencv_read import read_opencv_xml
from .release31 import r31_payload
from .release5 import StarModel, is_release5_struct, star_model
from .types import Model

__all__ = ["load_model", "import_mat_model"]


def load_model(path, *, max_bytes: int | None = None) -> Model | StarModel:
    """Load a model: a voc-release3.1 ``.mat`` file, this project's ``.npz`` format, an OpenCV
    cascade DPM ``.xml`` file (:func:`dpm.model.opencv_read.read_opencv_xml`: the model with its
    cascade, release 3.1 semantics), or a voc-release5 star model ``.mat`` file (returned as a :class:`dpm.model.release5.StarModel`; where the
    release's published star-cascade statistics sit beside it, ``<release>/star-cascade/``, the model
    carries the cascade they give, :func:`dpm.model.release5_cascade.cascade_from_published`).

    The file is read by a bounded reader (:mod:`dpm.files`): its declared sizes
    are checked before anything is decompressed, and the model's fields are
    checked (:func:`dpm.model.check.validate_model`).

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
        return load_native(path, max_bytes)
    if head.startswith(b"MATLAB") or head[:4] == b"\x89HDF" or path.suffix.lower() == ".mat":
        return import_mat_model(path, max_bytes=max_bytes)
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<?xml") or path.suffix.lower() == ".xml":
        return read_opencv_xml(path, max_bytes=max_bytes)
    raise ValueError(f"{path}: not a model file (expected a dpm .npz model, a voc-release3.1 .mat model, "
                     "a voc-release5 star model .mat file or an OpenCV cascade DPM .xml file)")


# voc-release3.1 names models after their class, except the INRIA Person model.
_DATASET_CLASSES = {"inria": "person"}


def import_mat_model(path, *, max_bytes: int | None = None) -> Model | StarModel:
    """Read a voc-release3.1 model saved by MATLAB (``load(path)`` -> ``model``), or a
    voc-release5 star model (:mod:`dpm.model.release5`; grammar models are refused).

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
    except MALFORMED as exc:
        message = one_line(exc)
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
    except MALFORMED as exc:
        message = one_line(exc)
        if isinstance(exc, ValueError) and message.startswith(("a voc-release", "features of")):
            raise ValueError(f"{path}: {message}") from None
        raise ValueError(f"{path}: malformed voc-release5 model ({message})") from None
    # The release's published cascade statistics, where they sit beside the model (its own layout).
    files = published_cascade_files(model, path)
    if files is not None:
        model.cascade = cascade_from_published(model, *files)
        model.info["cascade"] = f"published statistics: {files[0].name}"
    return model
