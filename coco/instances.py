"""Reading a COCO instances file (``instances_*.json``) into checked, ordered records.

A COCO detection dataset is one JSON document plus a folder of images::

    {"images":      [{"id": 1, "file_name": "a.jpg", "width": 640, "height": 480}, ...],
     "categories":  [{"id": 1, "name": "person"}, ...],
     "annotations": [{"id": 1, "image_id": 1, "category_id": 1,
                      "bbox": [x, y, w, h], "area": 1234.5, "iscrowd": 0}, ...]}

What is kept, and how it is checked (every problem is one line naming the
file and the JSON location, e.g. ``annotations[12].bbox``):

* ids (images, categories, annotations) are integers, unique within their
  list (a duplicate is an error); categories are found by ``name`` (unique);
* an annotation whose ``image_id`` or ``category_id`` is not listed is an
  error (with the count and the first one);
* ``bbox`` is four finite numbers; a box of zero or negative width or height
  cannot be an object: such annotations are **skipped**, counted in one
  warning;
* ``iscrowd`` (0/1, default 0) and ``ignore`` (0/1, default 0; used by several
  COCO-style datasets and written by :func:`coco.from_voc` for VOC's
  ``difficult``) both mark an object that training leaves out and that
  evaluation neither requires nor penalises, like VOC's ``difficult``;
* ``area`` (default ``w * h``) is what the COCO metric's size ranges use;
* ``width``/``height`` of an image are optional (training uses them to clip
  boxes reaching outside the image).

Box convention: COCO's ``[x, y, w, h]`` lives on a continuous plane whose
pixel ``i`` (0-based) covers ``[i, i + 1)``; the project's boxes are 1-based
inclusive pixel indices.  The box covering pixels ``x1..x2`` (1-based) is
``[x1 - 1, x2)`` on that plane, so::

    (x1, y1, x2, y2) = (x + 1, y + 1, x + w, y + h)      # COCO -> project
    (x, y, w, h)     = (x1 - 1, y1 - 1, x2 - x1 + 1, y2 - y1 + 1)   # project -> COCO

and the two round-trip exactly (integers stay integers).  Under it the VOC
devkit's inclusive overlap of two boxes equals COCO's continuous IoU.
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ImageInfo", "Category", "ObjectAnnotation", "Instances", "read_instances",
           "instances_from_dict", "to_corners", "to_xywh"]

log = logging.getLogger(__name__)


def _num(v):
    """An integral float as ``int`` (so converted boxes compare and print like VOC's integers)."""
    if isinstance(v, float) and v.is_integer() and abs(v) < 2 ** 53:
        return int(v)
    return v


def to_corners(bbox) -> tuple:
    """COCO ``[x, y, w, h]`` -> 1-based inclusive ``(x1, y1, x2, y2)`` (see the module docstring)."""
    x, y, w, h = bbox
    return (_num(x + 1), _num(y + 1), _num(x + w), _num(y + h))


def to_xywh(box) -> tuple:
    """1-based inclusive ``(x1, y1, x2, y2)`` -> COCO ``[x, y, w, h]``; inverse of :func:`to_corners`."""
    x1, y1, x2, y2 = box
    return (_num(x1 - 1), _num(y1 - 1), _num(x2 - x1 + 1), _num(y2 - y1 + 1))


@dataclass(frozen=True)
class ImageInfo:
    id: int
    file_name: str
    width: int | None = None
    height: int | None = None

    @property
    def size(self):
        """``(width, height)`` or ``None`` if the file does not give both."""
        return None if self.width is None or self.height is None else (self.width, self.height)


@dataclass(frozen=True)
class Category:
    id: int
    name: str
    supercategory: str = ""


@dataclass(frozen=True)
class ObjectAnnotation:
    """One annotation: ``bbox`` is COCO ``[x, y, w, h]`` as read (ints where the file has integers)."""

    id: int
    image_id: int
    category_id: int
    bbox: tuple
    area: float
    iscrowd: bool = False
    ignore: bool = False

    @property
    def box(self) -> tuple:
        """The project's 1-based inclusive ``(x1, y1, x2, y2)``."""
        return to_corners(self.bbox)

    @property
    def difficult(self) -> bool:
        """Left out of training, not required by evaluation: ``iscrowd`` or ``ignore``."""
        return self.iscrowd or self.ignore


@dataclass(frozen=True, eq=False)
class Instances:
    """The images, categories and annotations of a COCO instances file, in file order.

    Build it with :func:`read_instances` (a file), :func:`instances_from_dict`
    or :func:`coco.from_voc`.  ``select(ids)`` gives a split.
    """

    images: tuple
    categories: tuple
    annotations: tuple
    source: str = ""
    _by_image: dict = field(default=None, repr=False)
    _image_index: dict = field(default=None, repr=False)

    def __post_init__(self):
        by_image = {im.id: [] for im in self.images}
        for a in self.annotations:
            by_image[a.image_id].append(a)
        object.__setattr__(self, "_by_image", by_image)
        object.__setattr__(self, "_image_index", {im.id: im for im in self.images})

    def __len__(self):
        return len(self.images)

    def __repr__(self):
        return (f"Instances({self.source!r}: {len(self.images)} images, {len(self.categories)} "
                f"categories, {len(self.annotations)} annotations)")

    @property
    def image_ids(self) -> list:
        return [im.id for im in self.images]

    def image(self, image_id) -> ImageInfo:
        try:
            return self._image_index[image_id]
        except KeyError:
            raise ValueError(f"{self.source}: no image with id {image_id!r}") from None

    def annotations_of(self, image_id) -> list:
        """The annotations of one image, in file order."""
        return list(self._by_image.get(image_id, ()))

    def category_names(self) -> list:
        return [c.name for c in self.categories]

    def category(self, name: str) -> Category:
        """The category called ``name``.

        Raises
        ------
        ValueError
            ``cls`` is not a category; the message lists those present.
        """
        for c in self.categories:
            if c.name == name:
                return c
        names = ", ".join(repr(n) for n in self.category_names()) or "none"
        raise ValueError(f"{self.source}: no category named {name!r} (categories: {names})")

    def select(self, image_ids, *, what: str = "split") -> "Instances":
        """The images ``image_ids`` (in that order) with their annotations.

        Raises
        ------
        ValueError
            An id that is not an image here, or an id given twice.
        """
        image_ids = list(image_ids)
        missing = [i for i in image_ids if i not in self._image_index]
        if missing:
            raise ValueError(f"{self.source}: {len(missing)} image id(s) of the {what} are not images "
                             f"here (first: {missing[0]!r})")
        if len(set(image_ids)) != len(image_ids):
            seen = set()
            dup = next(i for i in image_ids if i in seen or seen.add(i))
            raise ValueError(f"{self.source}: image id {dup!r} is given twice in the {what}")
        images = tuple(self._image_index[i] for i in image_ids)
        anns = tuple(a for i in image_ids for a in self._by_image[i])
        return Instances(images, self.categories, anns, self.source)

    def to_dict(self) -> dict:
        """The JSON document (``images``, ``categories``, ``annotations``) in this order."""
        def image(im):
            d = {"id": im.id, "file_name": im.file_name}
            if im.width is not None:
                d["width"] = im.width
            if im.height is not None:
                d["height"] = im.height
            return d
        return {
            "images": [image(im) for im in self.images],
            "categories": [{"id": c.id, "name": c.name, "supercategory": c.supercategory}
                           for c in self.categories],
            "annotations": [{"id": a.id, "image_id": a.image_id, "category_id": a.category_id,
                             "bbox": list(a.bbox), "area": a.area, "iscrowd": int(a.iscrowd),
                             "ignore": int(a.ignore)} for a in self.annotations],
        }


# -- reading ---------------------------------------------------------------------------------------

def read_json(path, *, what: str = "instances file", max_bytes=None):
    """Parse a JSON file, bounded in size; one-line errors naming line and column.

    Raises
    ------
    ValueError
        Missing or unreadable file, over :data:`dpm.limits.MAX_ANNOTATION_BYTES`
        (``max_bytes``), not UTF-8, malformed JSON (``path: malformed JSON at line
        L, column C: ...``).
    """
    from dpm.limits import format_bytes, limit, too_big

    path = Path(path)
    cap = limit("MAX_ANNOTATION_BYTES", max_bytes)
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise ValueError(f"{path}: is a folder, not a {what}")
        if size > cap:
            raise too_big(path, f"the {what}", format_bytes(size), "MAX_ANNOTATION_BYTES", cap,
                          "max_bytes")
        data = path.read_bytes()
    except FileNotFoundError:
        raise ValueError(f"{path}: {what} not found") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the {what}: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text at byte {exc.start} (is this a {what}?)") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: malformed JSON at line {exc.lineno}, column {exc.colno}: "
                         f"{exc.msg}") from None
    except RecursionError:
        raise ValueError(f"{path}: malformed {what}: nested too deeply") from None


def read_instances(path, *, max_bytes=None) -> Instances:
    """Read and check a COCO instances file (see the module docstring for the rules).

    Parameters
    ----------
    path : str or Path
    max_bytes : int, optional
        Size limit of the file (default :data:`dpm.limits.MAX_ANNOTATION_BYTES`,
        2 GiB, or the environment's ``DPM_MAX_ANNOTATION_BYTES``).

    Returns
    -------
    Instances

    Raises
    ------
    ValueError
        One line naming the file and the first problem.
    """
    return instances_from_dict(read_json(path, max_bytes=max_bytes), str(path))


class _Checker:
    def __init__(self, source):
        self.source = source

    def fail(self, where, msg):
        raise ValueError(f"{self.source}: {where}: {msg}")

    def obj(self, v, where):
        if not isinstance(v, dict):
            self.fail(where, f"expected an object {{...}}, got {type(v).__name__}")
        return v

    def id(self, d, key, where, required=True):
        if key not in d:
            if required:
                self.fail(where, f"has no {key!r}")
            return None
        v = d[key]
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if isinstance(v, bool) or not isinstance(v, int):
            self.fail(f"{where}.{key}", f"expected an integer id, got {json.dumps(v)[:40]}")
        return v

    def flag(self, d, key, where):
        v = d.get(key, 0)
        if v is None:
            return False
        if isinstance(v, bool) or v in (0, 1):
            return bool(v)
        self.fail(f"{where}.{key}", f"expected 0 or 1, got {json.dumps(v)[:40]}")

    def number(self, v, where):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            self.fail(where, f"expected a finite number, got {json.dumps(v)[:40]}")
        return v

    def size(self, d, key, where):
        if d.get(key) is None:
            return None
        v = self.number(d[key], f"{where}.{key}")
        if v != int(v) or v < 1:
            self.fail(f"{where}.{key}", f"expected a positive whole number of pixels, got {v}")
        return int(v)

    def text(self, d, key, where, required=True):
        v = d.get(key)
        if v is None and not required:
            return ""
        if not isinstance(v, str) or (required and not v):
            self.fail(f"{where}.{key}" if key in d else where,
                      f"expected a non-empty string {key!r}" if key in d else f"has no {key!r}")
        return v

    def unique(self, items, what, field="id"):
        seen = {}
        for k, item in enumerate(items):
            kv = getattr(item, field)
            if kv in seen:
                self.fail(f"{what}[{k}]", f"duplicate {field} {kv!r} (also {what}[{seen[kv]}])")
            seen[kv] = k


def instances_from_dict(doc, source: str = "<instances>") -> Instances:
    """Check a parsed instances document and return its :class:`Instances` (see :func:`read_instances`)."""
    c = _Checker(source)
    if not isinstance(doc, dict):
        raise ValueError(f"{source}: not a COCO instances file (the top level is a "
                         f"{type(doc).__name__}, expected an object with 'images', 'annotations' "
                         "and 'categories')")
    for key in ("images", "annotations", "categories"):
        if not isinstance(doc.get(key), list):
            raise ValueError(f"{source}: not a COCO instances file ({key!r} is "
                             f"{'missing' if key not in doc else 'not a list'})")

    images = []
    for k, d in enumerate(doc["images"]):
        where = f"images[{k}]"
        c.obj(d, where)
        images.append(ImageInfo(c.id(d, "id", where), c.text(d, "file_name", where),
                                c.size(d, "width", where), c.size(d, "height", where)))
    c.unique(images, "images")

    categories = []
    for k, d in enumerate(doc["categories"]):
        where = f"categories[{k}]"
        c.obj(d, where)
        sup = d.get("supercategory")
        categories.append(Category(c.id(d, "id", where), c.text(d, "name", where),
                                   sup if isinstance(sup, str) else ""))
    c.unique(categories, "categories")
    c.unique(categories, "categories", "name")

    image_ids = {im.id for im in images}
    category_ids = {cat.id for cat in categories}
    annotations, bad_image, bad_cat, empty, seen = [], [], [], [], {}
    for k, d in enumerate(doc["annotations"]):
        where = f"annotations[{k}]"
        c.obj(d, where)
        ann_id = c.id(d, "id", where)
        if ann_id in seen:
            c.fail(where, f"duplicate id {ann_id!r} (also annotations[{seen[ann_id]}])")
        seen[ann_id] = k
        image_id = c.id(d, "image_id", where)
        cat_id = c.id(d, "category_id", where)
        bbox = d.get("bbox")
        if not isinstance(bbox, list) or len(bbox) != 4:
            c.fail(f"{where}.bbox", f"expected [x, y, w, h], got {json.dumps(bbox)[:60]}")
        bbox = tuple(c.number(v, f"{where}.bbox") for v in bbox)
        area = c.number(d["area"], f"{where}.area") if d.get("area") is not None else bbox[2] * bbox[3]
        iscrowd, ignore = c.flag(d, "iscrowd", where), c.flag(d, "ignore", where)
        if image_id not in image_ids:
            bad_image.append((where, image_id))
        if cat_id not in category_ids:
            bad_cat.append((where, cat_id))
        if bbox[2] <= 0 or bbox[3] <= 0:
            empty.append(where)
            continue
        annotations.append(ObjectAnnotation(ann_id, image_id, cat_id, bbox, area, iscrowd, ignore))
    if bad_image:
        where, i = bad_image[0]
        raise ValueError(f"{source}: {len(bad_image)} annotation(s) refer to image ids that are not in "
                         f"'images' (first: {where}.image_id {i!r})")
    if bad_cat:
        where, i = bad_cat[0]
        names = ", ".join(f"{cat.id}={cat.name!r}" for cat in categories) or "none"
        raise ValueError(f"{source}: {len(bad_cat)} annotation(s) refer to category ids that are not "
                         f"in 'categories' (first: {where}.category_id {i!r}; categories: {names})")
    if empty:
        log.warning("%s: %d annotation(s) with zero or negative width or height skipped (first: %s)",
                    source, len(empty), empty[0])
    return Instances(tuple(images), tuple(categories), tuple(annotations), source)
