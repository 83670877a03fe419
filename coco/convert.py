"""VOC <-> COCO annotation converters.

VOC -> COCO (:func:`from_voc`, :func:`voc_to_coco`): one instances file per
split (``<split>.json``), the images staying in ``JPEGImages/``
(``file_name`` relative to it).  Within a dataset every split file uses the
same ids, so split files can select images of one another
(:func:`coco.read_split`):

* image ids: 1-based position of the VOC image id in the sorted list of the
  image ids of all the splits (``ImageSets/Main/*.txt`` without ``_``);
* category ids: 1-based position of the class name in the sorted list of
  the classes of those images;
* annotation ids: 1, 2, ... over those images in id order, objects in file order;
* ``images`` in split order and ``annotations`` in image then object order,
  so that training reads the same positives in the same order;
* ``bbox = [x1 - 1, y1 - 1, x2 - x1 + 1, y2 - y1 + 1]``, ``area = w * h``,
  ``iscrowd = 0``; ``difficult`` objects get ``"ignore": 1`` (read back as
  difficult; the COCO API itself disregards ``ignore``, see
  :mod:`coco.metrics`); ``pose`` and ``truncated`` are not kept;
* ``width``/``height`` from ``<size>``, or from the image file's header.

COCO -> VOC (:func:`coco_to_voc`): ``Annotations/<stem>.xml`` per image
(``<stem>`` the file name without folder and extension: it must be unique),
``ImageSets/Main/<split>.txt`` in image order, and the images linked (or
copied) into ``JPEGImages/``.  Boxes are :func:`coco.to_corners` of ``bbox``
(numbers as they are: COCO boxes with fractions stay fractional); ``iscrowd``
or ``ignore`` becomes ``<difficult>1</difficult>``.

Every file is written atomically (``dpm._io.atomic_write``).
"""
from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from xml.sax.saxutils import escape

from .instances import Category, ImageInfo, Instances, ObjectAnnotation, to_xywh

__all__ = ["from_voc", "voc_to_coco", "coco_to_voc", "write_instances"]

log = logging.getLogger(__name__)


def _image_size(ds, image_id, ann, from_file):
    if ann.size is not None:
        return ann.size[0], ann.size[1]
    if not from_file:
        return None
    from PIL import Image

    path = ds.image_path(image_id)
    try:
        with Image.open(path) as im:
            return im.size
    except (OSError, ValueError):
        return None


def from_voc(root, split: str, *, image_sizes: bool = True) -> Instances:
    """The COCO view of one split of a VOC folder, in memory (see the module docstring for ids).

    Parameters
    ----------
    root : str, Path or voc.VOCDataset
    split : str
    image_sizes : bool, default True
        Read an image's size from its file when its annotation has no
        ``<size>`` (``False``: leave it unknown, as evaluation needs no sizes).

    Returns
    -------
    Instances
        ``source`` is ``<root>:<split>``.
    """
    import voc

    ds = root if isinstance(root, voc.VOCDataset) else voc.VOCDataset(root)
    split_ids = ds.image_ids(split)
    everything = sorted({i for s in {*ds.splits(), split} for i in ds.image_ids(s)})
    image_number = {i: k for k, i in enumerate(everything, start=1)}
    class_names = sorted({o.name for i in everything for o in ds.annotation(i).objects})
    cat_number = {name: k for k, name in enumerate(class_names, start=1)}
    first_ann, next_id = {}, 1
    for i in everything:
        first_ann[i] = next_id
        next_id += len(ds.annotation(i).objects)

    images, annotations, no_size = [], [], 0
    for i in split_ids:
        ann = ds.annotation(i)
        size = _image_size(ds, i, ann, image_sizes)
        no_size += size is None and image_sizes
        images.append(ImageInfo(image_number[i], ds.image_path(i).name,
                                *(size if size is not None else (None, None))))
        for k, o in enumerate(ann.objects):
            bbox = to_xywh(o.bbox)
            annotations.append(ObjectAnnotation(first_ann[i] + k, image_number[i], cat_number[o.name],
                                                bbox, bbox[2] * bbox[3], False, bool(o.difficult)))
    if no_size:
        log.warning("%s: %d image(s) of split %s have no <size> and no readable image file: written "
                    "without width and height", ds.root, no_size, split)
    categories = tuple(Category(cat_number[n], n) for n in class_names)
    return Instances(tuple(images), categories, tuple(annotations), f"{ds.root}:{split}")


def write_instances(path, instances: Instances) -> Path:
    """Write an instances file atomically (one image, category or annotation per line)."""
    from dpm._io import atomic_write

    doc = instances.to_dict()
    parts = []
    for key in ("images", "categories", "annotations"):
        rows = ",\n".join("  " + json.dumps(item) for item in doc[key])
        parts.append(f'"{key}": [\n{rows}\n]' if rows else f'"{key}": []')
    return atomic_write(path, ("{\n" + ",\n".join(parts) + "\n}\n").encode("utf-8"))


def voc_to_coco(root, out_dir, *, splits=None) -> list:
    """Write ``<out_dir>/<split>.json`` for each split of a VOC folder.

    Parameters
    ----------
    root : str or Path
        VOC year folder.
    out_dir : str or Path
        Created if needed.
    splits : sequence of str, optional
        Default: every split of ``ImageSets/Main`` (names without ``_``).

    Returns
    -------
    list of Path
        The files written.
    """
    import voc

    ds = voc.VOCDataset(root)
    splits = list(splits) if splits is not None else ds.splits()
    if not splits:
        raise ValueError(f"{ds.root}: no split files in ImageSets/Main to convert")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for split in splits:
        inst = from_voc(ds, split)
        written.append(write_instances(out_dir / f"{split}.json", inst))
        log.info("%s: %d images, %d annotations", written[-1], len(inst.images), len(inst.annotations))
    return written


def _fmt(v) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def _voc_xml(im: ImageInfo, objects, names) -> str:
    size = (f"<size><width>{im.width}</width><height>{im.height}</height><depth>3</depth></size>"
            if im.size is not None else "")
    objs = []
    for a in objects:
        x1, y1, x2, y2 = (_fmt(v) for v in a.box)
        objs.append(f"<object><name>{escape(names[a.category_id])}</name><pose>Unspecified</pose>"
                    f"<truncated>0</truncated><difficult>{int(a.difficult)}</difficult>"
                    f"<bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax>"
                    f"</bndbox></object>")
    return (f"<annotation><filename>{escape(Path(im.file_name).name)}</filename>{size}"
            f"<segmented>0</segmented>\n" + "".join(o + "\n" for o in objs) + "</annotation>\n")


def coco_to_voc(instances, images_dir, out_dir, *, split: str = "trainval", images: str = "link") -> Path:
    """Write a COCO instances file as a VOC folder (see the module docstring).

    Parameters
    ----------
    instances : str, Path or Instances
    images_dir : str or Path
        Where the images' ``file_name`` are relative to.
    out_dir : str or Path
        The VOC folder (created; existing files of the same names are replaced).
    split : str
        Name of the split file written (``ImageSets/Main/<split>.txt``).
    images : str {'link', 'copy', 'none'}
        Put the images into ``JPEGImages/`` as symbolic links, copies, or not at all.

    Returns
    -------
    Path
        ``out_dir``.

    Raises
    ------
    ValueError
        Two images with the same file stem, a split name with a path
        separator, an unknown ``images`` mode, a missing image to link or copy.
    """
    from dpm._io import atomic_write

    from .dataset import load_instances

    if images not in ("link", "copy", "none"):
        raise ValueError(f"images must be 'link', 'copy' or 'none', got {images!r}")
    if not split or any(c in split for c in "/\\") or "_" in split or split in (".", ".."):
        raise ValueError(f"split={split!r}: a VOC split name is a plain word without '/' or '_'")
    inst = load_instances(instances)
    images_dir, out_dir = Path(images_dir), Path(out_dir)
    stems = {}
    for im in inst.images:
        stem = Path(im.file_name).stem
        if stem in stems:
            raise ValueError(f"{inst.source}: images {stems[stem]!r} and {im.file_name!r} have the same "
                             f"name {stem!r}, which VOC uses as the image id; rename one of them")
        stems[stem] = im.file_name
    names = {c.id: c.name for c in inst.categories}
    for sub in ("Annotations", "ImageSets/Main", "JPEGImages"):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    for im in inst.images:
        stem = Path(im.file_name).stem
        atomic_write(out_dir / "Annotations" / f"{stem}.xml",
                     _voc_xml(im, inst.annotations_of(im.id), names).encode("utf-8"))
        if images != "none":
            _place_image(images_dir / im.file_name, out_dir / "JPEGImages" / Path(im.file_name).name, images)
    atomic_write(out_dir / "ImageSets" / "Main" / f"{split}.txt",
                 "".join(Path(im.file_name).stem + "\n" for im in inst.images).encode("utf-8"))
    log.info("%s: %d images, %d annotations, split %s", out_dir, len(inst.images), len(inst.annotations), split)
    return out_dir


def _place_image(src: Path, dst: Path, mode: str) -> None:
    if not src.is_file():
        raise ValueError(f"{src}: image not found (give the images folder, or images='none')")
    if dst.is_symlink() or dst.exists():
        if dst.resolve() == src.resolve():
            return
        dst.unlink()
    if mode == "link":
        os.symlink(src.resolve(), dst)
    else:
        shutil.copyfile(src, dst)
