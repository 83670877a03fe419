"""Reading one PASCAL VOC annotation file (``Annotations/<image_id>.xml``).

Box convention: VOC ``bndbox`` values are **1-based, inclusive** pixel
indices (width = ``xmax - xmin + 1``), and they are kept that way here, as in
voc-release3.1 and the VOC devkit.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["VOCObject", "Annotation", "read_annotation"]


@dataclass(frozen=True)
class VOCObject:
    """One ``<object>`` of a VOC annotation.

    Attributes
    ----------
    name : str
        Class name (``person``, ``car``, ...).
    bbox : tuple of 4 int or float
        ``(xmin, ymin, xmax, ymax)``, 1-based inclusive pixel indices exactly as
        written in the file (ints where the file has integers).
    pose : str
        ``Unspecified``, ``Left``, ... (``Unspecified`` if absent).
    truncated : bool
        The object extends beyond the box (``False`` if absent).
    difficult : bool
        Ignored by the evaluation and by training (``False`` if absent).
    """

    name: str
    bbox: tuple
    pose: str = "Unspecified"
    truncated: bool = False
    difficult: bool = False


@dataclass(frozen=True)
class Annotation:
    """The contents of one ``Annotations/<image_id>.xml`` file.

    Attributes
    ----------
    image_id : str
        File stem of the annotation.
    filename : str
        Image file name given in the annotation (``''`` if absent).
    size : tuple of 3 int or None
        ``(width, height, depth)`` or ``None`` if the file has no ``<size>``.
    objects : tuple of VOCObject
        In file order.
    """

    image_id: str
    filename: str
    size: tuple | None
    objects: tuple

    def boxes(self, cls: str | None = None) -> np.ndarray:
        """Boxes of the objects of class ``cls`` (all objects if ``None``).

        Returns
        -------
        (N, 4) float64 ndarray
            ``[x1 y1 x2 y2]``, 1-based inclusive, in file order.
        """
        rows = [o.bbox for o in self.objects if cls is None or o.name == cls]
        return np.array(rows, dtype=np.float64).reshape(-1, 4)

    def difficult(self, cls: str | None = None) -> np.ndarray:
        """``(N,) bool`` difficult flags, parallel to :meth:`boxes`."""
        return np.array([o.difficult for o in self.objects if cls is None or o.name == cls],
                        dtype=bool)


def _text(elem, tag, source, what, default=None):
    child = elem.find(tag)
    if child is None or child.text is None or not child.text.strip():
        if default is not None:
            return default
        raise ValueError(f"{source}: malformed annotation: {what} has no <{tag}>")
    return child.text.strip()


def _number(text, source, what):
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{source}: malformed annotation: {what} is {text!r}, not a number") from None
    if not np.isfinite(value):
        raise ValueError(f"{source}: malformed annotation: {what} is {text!r}, not a finite number")
    return value


def _flag(text, source, what):
    value = _number(text, source, what)
    if value not in (0, 1):
        raise ValueError(f"{source}: malformed annotation: {what} is {text!r}, expected 0 or 1")
    return bool(value)


def read_annotation(path, image_id: str | None = None) -> Annotation:
    """Parse one VOC annotation XML file.

    Parameters
    ----------
    path : str or Path
        The ``.xml`` file.
    image_id : str, optional
        Defaults to the file stem.

    Returns
    -------
    Annotation

    Raises
    ------
    ValueError
        One line naming the file and what is wrong: missing file, malformed
        XML, missing or non-numeric fields, a box with ``xmax < xmin`` or
        ``ymax < ymin`` (objects are numbered from 1 in file order).
    """
    path = Path(path)
    image_id = path.stem if image_id is None else image_id
    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError:
        raise ValueError(f"{path}: annotation file not found (image id {image_id!r})") from None
    except ET.ParseError as exc:
        raise ValueError(f"{path}: malformed XML: {exc}") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot read annotation: {exc.strerror or exc}") from None
    if root.tag != "annotation":
        raise ValueError(f"{path}: malformed annotation: root element is <{root.tag}>, "
                         "expected <annotation>")
    filename = (root.findtext("filename") or "").strip()
    size = None
    size_elem = root.find("size")
    if size_elem is not None:
        size = tuple(int(_number(_text(size_elem, tag, path, "<size>", default), path, f"<size><{tag}>"))
                     for tag, default in (("width", None), ("height", None), ("depth", "3")))
    objects = []
    for k, obj in enumerate(root.findall("object"), start=1):
        what = f"object {k}"
        name = _text(obj, "name", path, what)
        bndbox = obj.find("bndbox")
        if bndbox is None:
            raise ValueError(f"{path}: malformed annotation: {what} ({name}) has no <bndbox>")
        x1, y1, x2, y2 = (_number(_text(bndbox, tag, path, f"{what} ({name}) <bndbox>"), path,
                                  f"{what} ({name}) <{tag}>")
                          for tag in ("xmin", "ymin", "xmax", "ymax"))
        if x2 < x1:
            raise ValueError(f"{path}: {what} ({name}): box has xmax {x2} < xmin {x1}")
        if y2 < y1:
            raise ValueError(f"{path}: {what} ({name}): box has ymax {y2} < ymin {y1}")
        objects.append(VOCObject(
            name=name,
            bbox=(x1, y1, x2, y2),
            pose=_text(obj, "pose", path, what, "Unspecified"),
            truncated=_flag(_text(obj, "truncated", path, what, "0"), path, f"{what} <truncated>"),
            difficult=_flag(_text(obj, "difficult", path, what, "0"), path, f"{what} <difficult>"),
        ))
    return Annotation(image_id=image_id, filename=filename, size=size, objects=tuple(objects))
