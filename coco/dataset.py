"""A COCO dataset as training and evaluation use it: splits, training data, VOC-style ground truth.

Splits.  A split is either a separate COCO JSON file (its ``images``, in
their order; :func:`coco.voc_to_coco` writes one per VOC split with image
ids shared by all of them) or a text file of image ids (integers separated
by white space; ``#`` starts a comment), in the order given.

Training data follows ``pascal_data.m``'s rules, as :func:`voc.training_data`:
positives are the objects of the class that are neither ``iscrowd`` nor
``ignore``, in the image order of the positive split, then annotation order;
negatives are the images of the negative split with no annotation of the
class at all (crowd and ignored ones included).  So a VOC folder converted by
:func:`coco.voc_to_coco` gives the same :class:`dpm.training.TrainingData`
(same fingerprint, same model) as the folder itself.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

from .instances import Instances, read_instances, read_json, instances_from_dict

__all__ = ["load_instances", "read_split", "training_data", "ground_truth", "image_paths",
           "image_ids_of_files"]

log = logging.getLogger(__name__)


def load_instances(instances) -> Instances:
    """``instances`` itself if it is an :class:`Instances`, else the file it names, read."""
    return instances if isinstance(instances, Instances) else read_instances(instances)


def read_split(source, instances: Instances) -> list:
    """Image ids of a split of ``instances``, in split order.

    Parameters
    ----------
    source : str, Path, Instances or sequence of int
        A COCO JSON file (its images; an image whose id is here must have the
        same ``file_name``), a text file of integer ids, an :class:`Instances`,
        or the ids themselves.

    Raises
    ------
    ValueError
        An unreadable or malformed file, an id that is not an image of
        ``instances`` (with the count), an id given twice, a JSON image whose
        file name differs from the one in ``instances``.
    """
    if isinstance(source, Instances):
        ids, names, where = source.image_ids, {im.id: im.file_name for im in source.images}, source.source
    elif isinstance(source, (str, Path)):
        path = Path(source)
        where = str(path)
        if path.suffix.lower() == ".json":
            split = instances_from_dict(read_json(path), str(path))
            ids, names = split.image_ids, {im.id: im.file_name for im in split.images}
        else:
            ids, names = _read_id_list(path), {}
    else:
        ids, names, where = [int(i) for i in source], {}, "image id list"
    known = {im.id: im for im in instances.images}
    missing = [i for i in ids if i not in known]
    if missing:
        raise ValueError(f"{where}: {len(missing)} of {len(ids)} image id(s) are not images of "
                         f"{instances.source} (first: {missing[0]!r})")
    for i, name in names.items():
        if known[i].file_name != name:
            raise ValueError(f"{where}: image id {i} is {name!r} here but {known[i].file_name!r} in "
                             f"{instances.source}: the two files do not describe the same images")
    seen = set()
    dup = next((i for i in ids if i in seen or seen.add(i)), None)
    if dup is not None:
        raise ValueError(f"{where}: image id {dup!r} is given more than once")
    return list(ids)


def _read_id_list(path: Path) -> list:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"{path}: split file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read the split file: {getattr(exc, 'strerror', None) or exc}") \
            from None
    ids = []
    for lineno, line in enumerate(text.split("\n"), start=1):
        for word in line.split("#", 1)[0].split():
            if not re.fullmatch(r"[+-]?\d+", word):
                raise ValueError(f"{path}:{lineno}: {word[:40]!r} is not an integer image id")
            ids.append(int(word))
    return ids


def image_paths(instances: Instances, images_dir, image_ids=None) -> list:
    """``images_dir / file_name`` of each image (of ``image_ids``, in that order)."""
    images_dir = Path(images_dir)
    ids = instances.image_ids if image_ids is None else image_ids
    return [images_dir / instances.image(i).file_name for i in ids]


def image_ids_of_files(instances, paths) -> list:
    """The image id of each file, found by file name (the last part of ``file_name``).

    Raises
    ------
    ValueError
        A file whose name is not an image of ``instances`` (with the count and
        the first), or a name that two images of ``instances`` share.
    """
    inst = load_instances(instances)
    by_name: dict = {}
    for im in inst.images:
        by_name.setdefault(Path(im.file_name).name, []).append(im.id)
    ids, missing = [], []
    for p in paths:
        found = by_name.get(Path(p).name)
        if not found:
            missing.append(p)
            continue
        if len(found) > 1:
            raise ValueError(f"{inst.source}: {len(found)} images are named {Path(p).name!r} (ids "
                             f"{', '.join(map(str, found[:5]))}): cannot tell which one {p} is")
        ids.append(found[0])
    if missing:
        raise ValueError(f"{inst.source}: {len(missing)} of {len(paths)} image(s) are not listed there "
                         f"by file name (first: {missing[0]})")
    return ids


def _present(instances, images_dir, ids, what):
    """``ids`` whose image file exists; one warning counting the others."""
    paths = image_paths(instances, images_dir, ids)
    keep = [i for i, p in zip(ids, paths) if p.is_file()]
    if len(keep) != len(ids):
        first = next(p for p in paths if not p.is_file())
        log.warning("%s: %d of %d %s image(s) are not in %s, skipped (first: %s)", instances.source,
                    len(ids) - len(keep), len(ids), what, images_dir, first.name)
    return keep


def training_data(instances_json, images_dir, cls: str, *, positive_ids=None, negative_ids=None):
    """What :func:`dpm.train` needs from a COCO dataset (see the module docstring for the rules).

    Parameters
    ----------
    instances_json : str, Path or Instances
        The instances file.
    images_dir : str or Path
        The folder the images' ``file_name`` are relative to.
    cls : str
        Category name.
    positive_ids, negative_ids : optional
        The positive and negative splits (see :func:`read_split`); default:
        every image of ``instances_json``, in file order.  (A converted VOC
        folder reproduces ``voc.training_data`` with its ``trainval.json``
        as the instances and ``train.json`` as ``negative_ids``.)

    Returns
    -------
    dpm.training.TrainingData

    Raises
    ------
    ValueError
        No category named ``cls`` (the message lists those present), no
        positives, no negatives, a bad file or split.  Images whose file is
        missing are left out with one warning counting them.
    """
    from dpm.training.data import Negative, Positive, TrainingData

    inst = load_instances(instances_json)
    cat = inst.category(cls)
    images_dir = Path(images_dir)
    if not images_dir.is_dir():
        raise ValueError(f"{images_dir}: images folder not found")
    pos_ids = inst.image_ids if positive_ids is None else read_split(positive_ids, inst)
    neg_ids = inst.image_ids if negative_ids is None else read_split(negative_ids, inst)

    with_objects = [i for i in pos_ids
                    if any(a.category_id == cat.id and not a.difficult for a in inst.annotations_of(i))]
    positives = []
    for i in _present(inst, images_dir, with_objects, "positive"):
        im = inst.image(i)
        positives.extend(Positive(images_dir / im.file_name, a.box, im.size, str(i))
                         for a in inst.annotations_of(i) if a.category_id == cat.id and not a.difficult)
    if not positives:
        raise ValueError(f"{inst.source}: no positives of category {cls!r} (none that is neither crowd "
                         f"nor ignored, with its image in {images_dir})")
    free = [i for i in neg_ids if not any(a.category_id == cat.id for a in inst.annotations_of(i))]
    negatives = [Negative(images_dir / inst.image(i).file_name, str(i))
                 for i in _present(inst, images_dir, free, "negative")]
    if not negatives:
        raise ValueError(f"{inst.source}: no negative images for category {cls!r} (every image of the "
                         "negative split contains it, or none is in the images folder)")
    return TrainingData(tuple(positives), tuple(negatives), name=inst.source)


def ground_truth(instances, cls: str, image_ids=None):
    """VOC-style ground truth of one category, for :func:`voc.evaluate` (VOC AP on COCO data).

    Image ids become strings (``"397133"``); boxes are converted to 1-based
    inclusive corners; ``iscrowd`` and ``ignore`` become ``difficult``.

    Returns
    -------
    voc.GroundTruth
    """
    import numpy as np

    from voc import GroundTruth

    inst = load_instances(instances)
    cat = inst.category(cls)
    ids = inst.image_ids if image_ids is None else list(image_ids)
    boxes, difficult = [], []
    for i in ids:
        anns = [a for a in inst.annotations_of(i) if a.category_id == cat.id]
        boxes.append(np.array([a.box for a in anns], dtype=np.float64).reshape(-1, 4))
        difficult.append(np.array([a.difficult for a in anns], dtype=bool))
    return GroundTruth.from_arrays([str(i) for i in ids], boxes, difficult)
