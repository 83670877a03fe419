"""An evaluation set of either format: images to detect in, VOC AP and COCO metrics of the detections.

:func:`voc_evaluation_set` (a split of a VOC folder) and
:func:`coco_evaluation_set` (a COCO instances file and its images) give the
same :class:`EvaluationSet`, so a detector is scored both ways on either:

* VOC AP with the devkit's rules (:func:`voc.evaluate`): on VOC data from the
  XML files exactly as before; on COCO data ``iscrowd``/``ignore`` objects
  are VOC's ``difficult`` ones;
* the COCO metrics (:func:`coco.evaluate_coco`): on VOC data through the
  COCO view of :func:`coco.from_voc` (``difficult`` -> ``ignore``).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from .instances import Instances

__all__ = ["EvaluationSet", "voc_evaluation_set", "coco_evaluation_set"]


@dataclass(frozen=True, eq=False)
class EvaluationSet:
    """Images and ground truth of one evaluation, whatever the dataset format.

    Attributes
    ----------
    name : str
        The dataset (folder or file) for messages.
    split : str
        Split label used in output names (``test``, or a split file's stem).
    voc_ids : list of str
        Image ids of the VOC results file (VOC ids; COCO image ids as text).
    coco_ids : list of int
        COCO image ids, parallel to ``voc_ids``.
    paths : list of Path
        Image files, parallel.
    instances : Instances
        The COCO ground truth of these images.
    """

    name: str
    split: str
    voc_ids: list
    coco_ids: list
    paths: list
    instances: Instances
    _voc: object = None          # the VOCDataset of a VOC set

    def __len__(self):
        return len(self.voc_ids)

    def head(self, n: int) -> "EvaluationSet":
        """The first ``n`` images only (a quick check)."""
        return replace(self, voc_ids=self.voc_ids[:n], coco_ids=self.coco_ids[:n], paths=self.paths[:n],
                       instances=self.instances.select(self.coco_ids[:n]))

    def select(self, voc_ids, *, what: str = "list") -> "EvaluationSet":
        """The images ``voc_ids`` only, in the set's own order (``what`` names the source in errors).

        Raises
        ------
        ValueError
            An id that is not in the set, or given twice (the first ones named).
        """
        pos = {i: k for k, i in enumerate(self.voc_ids)}
        unknown = [i for i in voc_ids if i not in pos]
        if unknown:
            shown = ", ".join(map(repr, unknown[:5])) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
            raise ValueError(f"{what}: {len(unknown)} image(s) not in split {self.split!r} of {self.name}: {shown}")
        seen = set()
        twice = [i for i in voc_ids if i in seen or seen.add(i)]
        if twice:
            raise ValueError(f"{what}: image {twice[0]!r} is listed twice")
        keep = sorted(pos[i] for i in voc_ids)
        coco_ids = [self.coco_ids[k] for k in keep]
        return replace(self, voc_ids=[self.voc_ids[k] for k in keep], coco_ids=coco_ids,
                       paths=[self.paths[k] for k in keep], instances=self.instances.select(coco_ids))

    def class_names(self) -> list:
        """Categories that have at least one annotation here."""
        used = {a.category_id for a in self.instances.annotations}
        return [c.name for c in self.instances.categories if c.id in used]

    def category_id(self, cls: str) -> int:
        return self.instances.category(cls).id

    def voc_ground_truth(self, cls: str):
        """:class:`voc.GroundTruth` of ``cls`` over the images (ids :attr:`voc_ids`)."""
        from .dataset import ground_truth

        if self._voc is not None:
            return _voc_subset(self._voc.ground_truth(cls, self.split), self.voc_ids)
        if cls not in self.instances.category_names():
            import voc
            return voc.GroundTruth.from_arrays(self.voc_ids, [[] for _ in self.voc_ids])
        return ground_truth(self.instances, cls, self.coco_ids)

    def coco_ids_of(self, voc_ids) -> list:
        """COCO image ids of VOC-side ids."""
        index = dict(zip(self.voc_ids, self.coco_ids))
        try:
            return [index[i] for i in voc_ids]
        except KeyError as exc:
            raise ValueError(f"detection on image {exc.args[0]!r}, which is not in the evaluation set "
                             f"({len(self.voc_ids)} images)") from None

    def evaluate(self, cls: str, detections, *, iou_threshold: float = 0.5, use_ignore_flag: bool = True):
        """VOC AP and COCO metrics of detections of ``cls``.

        Parameters
        ----------
        detections : voc.Results or (voc_ids, scores, boxes)
            Boxes 1-based inclusive.

        Returns
        -------
        (voc.APResult, coco.COCOMetrics)
        """
        import voc

        from .metrics import evaluate_coco
        from .results import COCOResults

        if all(hasattr(detections, a) for a in ("image_ids", "scores", "boxes")):
            ids, scores, boxes = detections.image_ids, detections.scores, detections.boxes
        else:
            ids, scores, boxes = detections
        ap = voc.evaluate((list(ids), scores, boxes), self.voc_ground_truth(cls), cls, self.split,
                          iou_threshold=iou_threshold)
        res = COCOResults.from_detections(self.coco_ids_of(list(ids)), scores, boxes, self.category_id(cls))
        return ap, evaluate_coco(self.instances, res, categories=[cls], use_ignore_flag=use_ignore_flag)

    def evaluate_coco_results(self, cls: str, results, *, iou_threshold: float = 0.5,
                              use_ignore_flag: bool = True):
        """Like :meth:`evaluate` for a COCO results list (detections of ``cls``'s category only)."""
        import numpy as np

        from .metrics import evaluate_coco
        from .results import COCOResults

        cat = self.category_id(cls)
        keep = results.category_ids == cat
        sub = COCOResults(results.image_ids[keep], results.category_ids[keep], results.bboxes[keep],
                          results.scores[keep])
        index = dict(zip(self.coco_ids, self.voc_ids))
        bad = next((i for i in sub.image_ids.tolist() if i not in index), None)
        if bad is not None:
            raise ValueError(f"results: a detection is on image id {bad}, which is not in the evaluation "
                             f"set ({len(self.coco_ids)} images)")
        b = sub.bboxes
        corners = np.column_stack([b[:, 0] + 1, b[:, 1] + 1, b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]])
        import voc
        ap = voc.evaluate(([index[i] for i in sub.image_ids.tolist()], sub.scores, corners),
                          self.voc_ground_truth(cls), cls, self.split, iou_threshold=iou_threshold)
        return ap, evaluate_coco(self.instances, sub, categories=[cls], use_ignore_flag=use_ignore_flag)


def _voc_subset(gt, ids):
    if list(gt.image_ids) == list(ids):
        return gt
    import voc

    pos = {i: k for k, i in enumerate(gt.image_ids)}
    idx = [pos[i] for i in ids]
    return voc.GroundTruth.from_arrays(ids, [gt.boxes[gt.offsets[k]:gt.offsets[k + 1]] for k in idx],
                                       [gt.difficult[gt.offsets[k]:gt.offsets[k + 1]] for k in idx])


def voc_evaluation_set(root, split: str = "test") -> EvaluationSet:
    """A split of a VOC folder (VOC AP from its XML files, COCO metrics from :func:`coco.from_voc`)."""
    import voc

    from .convert import from_voc

    ds = root if isinstance(root, voc.VOCDataset) else voc.VOCDataset(root)
    ids = ds.image_ids(split)
    inst = from_voc(ds, split, image_sizes=False)
    return EvaluationSet(str(ds.root), split, ids, [im.id for im in inst.images],
                         [ds.image_path(i) for i in ids], inst, ds)


def coco_evaluation_set(instances_json, images_dir, split=None) -> EvaluationSet:
    """A COCO instances file and its images; ``split`` (see :func:`coco.read_split`) selects images."""
    from .dataset import image_paths, load_instances, read_split

    inst = load_instances(instances_json)
    label = Path(inst.source).stem or "all"
    if split is not None:
        inst = inst.select(read_split(split, inst))
        label = Path(str(split)).stem if isinstance(split, (str, Path)) else "split"
    ids = inst.image_ids
    return EvaluationSet(inst.source, label, [str(i) for i in ids], ids,
                         image_paths(inst, images_dir, ids), inst)
