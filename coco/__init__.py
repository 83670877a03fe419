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
from .metrics import STAT_NAMES, COCOMetrics, box_iou_xywh, evaluate_coco
from .results import COCOResults, read_results, write_results

__all__ = [
    "Instances", "ImageInfo", "Category", "ObjectAnnotation", "read_instances", "instances_from_dict",
    "read_json", "to_corners", "to_xywh",
    "COCOMetrics", "evaluate_coco", "STAT_NAMES", "box_iou_xywh",
    "COCOResults", "read_results", "write_results",
]
