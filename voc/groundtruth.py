"""Ground-truth boxes of one class over a set of images, independent of any file format."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["GroundTruth"]


@dataclass(frozen=True, eq=False)
class GroundTruth:
    """Ground-truth boxes of one class over a set of images, independent of any file format.

    Attributes
    ----------
    image_ids : tuple of str
        Every image of the evaluation set (also those without boxes); a
        detection on an image outside this set is an error.
    boxes : (M, 4) float64 ndarray
        ``[x1 y1 x2 y2]`` of all boxes, grouped by image in ``image_ids`` order.
    difficult : (M,) bool ndarray
        Parallel to ``boxes``.
    offsets : (len(image_ids) + 1,) int64 ndarray
        The boxes of image ``i`` are ``boxes[offsets[i]:offsets[i + 1]]``.

    Notes
    -----
    Build it with :meth:`from_arrays`, :meth:`from_mapping` or
    ``VOCDataset.ground_truth(cls, split)``.
    """

    image_ids: tuple
    boxes: np.ndarray
    difficult: np.ndarray
    offsets: np.ndarray
    _index: dict = field(repr=False, compare=False, default=None)

    def __post_init__(self):
        if self._index is None:
            index = {image_id: k for k, image_id in enumerate(self.image_ids)}
            if len(index) != len(self.image_ids):
                seen = set()
                dup = next(i for i in self.image_ids if i in seen or seen.add(i))
                raise ValueError(f"ground truth: image id {dup!r} appears more than once")
            object.__setattr__(self, "_index", index)

    @classmethod
    def from_arrays(cls, image_ids, boxes, difficult=None) -> "GroundTruth":
        """Build from per-image lists.

        Parameters
        ----------
        image_ids : sequence of str
        boxes : sequence of (n_i, 4) array_like
            1-based inclusive ``[x1 y1 x2 y2]`` per image.
        difficult : sequence of (n_i,) array_like of bool, optional
            Default: no box is difficult.
        """
        image_ids = tuple(str(i) for i in image_ids)
        if len(boxes) != len(image_ids):
            raise ValueError(f"ground truth: {len(image_ids)} image ids but {len(boxes)} box arrays")
        from dpm.boxes import check_boxes  # only the box check: `import voc` stays free of dpm

        per_image = [check_boxes(b, f"ground truth of image {i!r}") for i, b in zip(image_ids, boxes)]
        if difficult is None:
            diff = [np.zeros(len(b), dtype=bool) for b in per_image]
        else:
            if len(difficult) != len(image_ids):
                raise ValueError(f"ground truth: {len(image_ids)} image ids but "
                                 f"{len(difficult)} difficult arrays")
            diff = [np.asarray(d, dtype=bool).reshape(-1) for d in difficult]
            for i, b, d in zip(image_ids, per_image, diff):
                if len(d) != len(b):
                    raise ValueError(f"ground truth of image {i!r}: {len(b)} boxes but "
                                     f"{len(d)} difficult flags")
        counts = np.array([len(b) for b in per_image], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        all_boxes = np.concatenate(per_image) if per_image else np.zeros((0, 4))
        all_diff = np.concatenate(diff) if diff else np.zeros(0, dtype=bool)
        return cls(image_ids, all_boxes.reshape(-1, 4), all_diff, offsets)

    @classmethod
    def from_mapping(cls, mapping) -> "GroundTruth":
        """Build from ``{image_id: boxes}`` or ``{image_id: (boxes, difficult)}``."""
        ids, boxes, diff = [], [], []
        for image_id, value in mapping.items():
            if isinstance(value, tuple) and len(value) == 2:
                b, d = value
            else:
                b, d = value, None
            b = np.asarray(b, dtype=np.float64).reshape(-1, 4) if np.size(b) else np.zeros((0, 4))
            ids.append(image_id)
            boxes.append(b)
            diff.append(np.zeros(len(b), bool) if d is None else d)
        return cls.from_arrays(ids, boxes, diff)

    @property
    def n_positives(self) -> int:
        """Number of non-difficult boxes (the recall denominator)."""
        return int(np.count_nonzero(~self.difficult))

    def __len__(self):
        return len(self.image_ids)

    def index_of(self, image_ids) -> np.ndarray:
        """Positions of image ids in :attr:`image_ids`.

        Raises
        ------
        ValueError
            Naming the first id that is not in the set.
        """
        index = self._index
        try:
            return np.fromiter((index[i] for i in image_ids), dtype=np.int64, count=len(image_ids))
        except KeyError as exc:
            raise ValueError(f"detection on image {exc.args[0]!r}, which is not in the "
                             f"evaluation set ({len(self.image_ids)} images)") from None

