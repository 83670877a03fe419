"""Reading a PASCAL VOC year folder: image sets, annotations, training data.

A VOC year folder (``VOCdevkit/VOC2007`` or any dataset in the same layout)
holds::

    Annotations/<image_id>.xml     one VOC XML file per image
    ImageSets/Main/<split>.txt     image ids of a split, one per line
    JPEGImages/<image_id>.jpg      the images

Box convention: VOC ``bndbox`` values are **1-based, inclusive** pixel
indices (width = ``xmax - xmin + 1``), and they are kept that way here, as in
voc-release3.1 and the VOC devkit.

``positives`` and ``negatives`` give the training data of voc-release3.1
``pascal_data.m`` (spec §1.11; Felzenszwalb, Girshick, McAllester, Ramanan,
MIT-style licence).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path


from .annotation import Annotation, read_annotation

__all__ = ["Positive", "Negative", "VOCDataset", "training_data"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Positive:
    """A training positive: one non-difficult object (``pascal_data.m``).

    ``box`` is ``(x1, y1, x2, y2)``, 1-based inclusive; ``flipped`` is always
    ``False`` here (training adds the mirrored copies itself).
    """

    image_id: str
    path: Path
    box: tuple
    flipped: bool = False


@dataclass(frozen=True)
class Negative:
    """A training negative: an image with no object of the class (``pascal_data.m``)."""

    image_id: str
    path: Path
    flipped: bool = False


class VOCDataset:
    """A PASCAL VOC year folder (``VOCdevkit/VOC2007`` or the same layout).

    Image sets and annotations are read lazily, on first use, and cached.

    Parameters
    ----------
    root : str or Path
        The folder holding ``Annotations/``, ``ImageSets/Main/`` and
        ``JPEGImages/``.

    Raises
    ------
    ValueError
        If ``root`` is not a directory or has no ``Annotations`` or
        ``ImageSets/Main`` folder.

    Examples
    --------
    >>> ds = VOCDataset("VOCdevkit/VOC2007")                    # doctest: +SKIP
    >>> ids = ds.image_ids("test")                              # doctest: +SKIP
    >>> ds.annotation(ids[0]).objects[0].bbox                   # doctest: +SKIP
    (48, 240, 195, 371)
    """

    def __init__(self, root):
        self.root = Path(root)
        if not self.root.is_dir():
            raise ValueError(f"{self.root}: not a directory (expected a VOC year folder)")
        for sub in ("Annotations", "ImageSets/Main"):
            if not (self.root / sub).is_dir():
                raise ValueError(f"{self.root}: not a VOC year folder (no {sub}/ inside)")
        self._splits: dict[str, list[str]] = {}
        self._annotations: dict[str, Annotation] = {}

    def __repr__(self):
        return f"VOCDataset({str(self.root)!r})"

    # -- image sets -------------------------------------------------------
    def splits(self) -> list[str]:
        """Names of the generic image sets in ``ImageSets/Main`` (``train``, ``test``, ...)."""
        return sorted(p.stem for p in (self.root / "ImageSets" / "Main").glob("*.txt")
                      if "_" not in p.stem)

    def image_ids(self, split: str) -> list[str]:
        """Image ids of a split, in file order (``ImageSets/Main/<split>.txt``).

        Only the first word of each line is used, so class-specific files
        (``<id> 1``) also work. Blank lines are skipped.

        Raises
        ------
        ValueError
            If the split file does not exist (the message lists the splits
            that do).
        """
        if split not in self._splits:
            if not split or any(c in split for c in "/\\") or split in (".", ".."):
                raise ValueError(f"invalid split name {split!r}")
            path = self.root / "ImageSets" / "Main" / f"{split}.txt"
            try:
                text = path.read_text()
            except FileNotFoundError:
                have = ", ".join(self.splits()) or "none"
                raise ValueError(f"{path}: no such split file (split {split!r}; "
                                 f"splits here: {have})") from None
            except OSError as exc:
                raise ValueError(f"{path}: cannot read split file: {exc.strerror or exc}") from None
            ids = [line.split()[0] for line in text.splitlines() if line.strip()]
            self._splits[split] = ids
            logger.debug("%s: %d images in split %s", self.root, len(ids), split)
        return list(self._splits[split])

    # -- annotations and images -------------------------------------------
    def annotation_path(self, image_id: str) -> Path:
        """``Annotations/<image_id>.xml``."""
        return self.root / "Annotations" / f"{image_id}.xml"

    def annotation(self, image_id: str) -> Annotation:
        """The parsed annotation of one image (cached).

        Raises
        ------
        ValueError
            Missing file, malformed XML, bad fields or inverted boxes; see
            :func:`read_annotation`.
        """
        ann = self._annotations.get(image_id)
        if ann is None:
            ann = read_annotation(self.annotation_path(image_id), image_id)
            self._annotations[image_id] = ann
        return ann

    def annotations(self, split: str) -> list[Annotation]:
        """Annotations of every image of a split, in split order."""
        return [self.annotation(i) for i in self.image_ids(split)]

    def image_path(self, image_id: str) -> Path:
        """Path of an image: ``JPEGImages/<image_id>.jpg`` (the devkit's ``imgpath``).

        If that file does not exist but the annotation names another file,
        ``JPEGImages/<filename>`` is returned instead. The file's existence
        is not otherwise checked.
        """
        path = self.root / "JPEGImages" / f"{image_id}.jpg"
        if not path.exists() and self.annotation_path(image_id).exists():
            filename = self.annotation(image_id).filename
            if filename and filename != path.name:
                return self.root / "JPEGImages" / filename
        return path

    def class_names(self, split: str) -> list[str]:
        """Sorted names of all object classes that occur in a split."""
        return sorted({o.name for a in self.annotations(split) for o in a.objects})

    # -- evaluation and training data ---------------------------------------
    def ground_truth(self, cls: str, split: str):
        """Ground truth of one class over a split, for :func:`voc.evaluate`.

        Every image of the split is included, with zero boxes if it has no
        object of the class.

        Returns
        -------
        voc.GroundTruth
        """
        from .groundtruth import GroundTruth

        ids = self.image_ids(split)
        boxes, difficult = [], []
        for image_id in ids:
            ann = self.annotation(image_id)
            boxes.append(ann.boxes(cls))
            difficult.append(ann.difficult(cls))
        return GroundTruth.from_arrays(ids, boxes, difficult)

    def positives(self, cls: str, split: str = "trainval") -> list[Positive]:
        """Every non-difficult object of class ``cls`` in a split (``pascal_data.m``).

        Returns
        -------
        list of Positive
            In split order, then file order within an image.
        """
        out = []
        for image_id in self.image_ids(split):
            ann = self.annotation(image_id)
            objs = [o for o in ann.objects if o.name == cls and not o.difficult]
            if objs:
                path = self.image_path(image_id)
                out.extend(Positive(image_id, path, o.bbox) for o in objs)
        return out

    def negatives(self, cls: str, split: str = "train") -> list[Negative]:
        """Every image of a split with no object of class ``cls`` at all, difficult
        ones included (``pascal_data.m``).

        Returns
        -------
        list of Negative
            In split order.
        """
        return [Negative(image_id, self.image_path(image_id))
                for image_id in self.image_ids(split)
                if not any(o.name == cls for o in self.annotation(image_id).objects)]


def training_data(root, cls: str, *, positive_split: str = "trainval", negative_split: str = "train"):
    """What :func:`dpm.train` needs from a VOC year folder (``pascal_data.m``).

    Positives are the non-difficult objects of ``cls`` in ``positive_split``
    (split order, then file order); negatives the images of ``negative_split``
    with no object of ``cls`` at all.  Each positive carries its image's
    ``<size>`` so training can clip boxes that reach outside it.

    Returns
    -------
    dpm.training.TrainingData

    Raises
    ------
    ValueError
        No positives of ``cls`` (the message lists the classes there), no
        negatives, or a split or annotation that cannot be read.
    """
    from dpm.training.data import Negative as TrainNegative, Positive as TrainPositive, TrainingData

    ds = root if isinstance(root, VOCDataset) else VOCDataset(root)
    positives = []
    for p in ds.positives(cls, positive_split):
        size = ds.annotation(p.image_id).size
        positives.append(TrainPositive(p.path, tuple(p.box), None if size is None else (size[0], size[1]),
                                       p.image_id))
    if not positives:
        raise ValueError(f"{ds.root}: no positives of class {cls!r} in split {positive_split!r} "
                         f"(classes there: {', '.join(ds.class_names(positive_split)) or 'none'})")
    negatives = [TrainNegative(n.path, n.image_id) for n in ds.negatives(cls, negative_split)]
    if not negatives:
        raise ValueError(f"{ds.root}: no negative images for class {cls!r} in split {negative_split!r} "
                         "(every image there contains the class)")
    return TrainingData(tuple(positives), tuple(negatives), name=str(ds.root))
