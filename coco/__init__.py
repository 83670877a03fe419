"""coco: COCO-format datasets (reading, splits, training data), COCO metrics, VOC <-> COCO conversion.

Like :mod:`voc`, this package knows nothing about models; :mod:`dpm` never
imports it.  ::

    import coco
    gt = coco.read_instances("instances_val.json")
    data = coco.training_data("instances_train.json", "images/", "person")   # for dpm.train
    m = coco.evaluate_coco(gt, coco.read_results("dets.json"))
    print(m.format())                      # AP, AP50, AP75, APs, APm, APl, AR1, ...

Boxes: COCO's ``[x, y, w, h]`` is ``(x + 1, y + 1, x + w, y + h)`` in the
project's 1-based inclusive convention (see :mod:`coco.instances`).
"""
from .instances import (Category, ImageInfo, Instances, ObjectAnnotation, instances_from_dict, read_instances,
                        read_json, to_corners, to_xywh)
from .convert import coco_to_voc, from_voc, voc_to_coco, write_instances
from .dataset import ground_truth, image_ids_of_files, image_paths, load_instances, read_split, training_data
from .evalset import EvaluationSet, coco_evaluation_set, voc_evaluation_set
from .metrics import STAT_NAMES, COCOMetrics, box_iou_xywh, evaluate_coco
from .results import COCOResults, read_results, write_results

__all__ = [
    "Instances", "ImageInfo", "Category", "ObjectAnnotation", "read_instances", "instances_from_dict",
    "read_json", "to_corners", "to_xywh",
    "COCOMetrics", "evaluate_coco", "STAT_NAMES", "box_iou_xywh",
    "COCOResults", "read_results", "write_results",
    "load_instances", "read_split", "training_data", "ground_truth", "image_paths", "image_ids_of_files",
    "from_voc", "voc_to_coco", "coco_to_voc", "write_instances",
    "EvaluationSet", "voc_evaluation_set", "coco_evaluation_set",
]
