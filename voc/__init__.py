"""voc: PASCAL VOC datasets (reading) and evaluation (the devkit's average precision).

This package knows nothing about models: it reads VOC year folders, reads and
writes the devkit's results files, and scores detections::

    import voc
    ds = voc.VOCDataset("VOCdevkit/VOC2007")
    res = voc.evaluate(voc.read_results("comp3_det_test_person.txt"), ds, "person", "test")
    print(res.ap, res.ap_area)
    voc.plot_pr_curves(res, "person_pr.png")

Boxes are ``[x1 y1 x2 y2]`` in 1-based, inclusive pixel coordinates throughout,
as in VOC and voc-release3.1.
"""
from .annotation import Annotation, VOCObject, read_annotation
from .dataset import Negative, Positive, VOCDataset, training_data
from .ap import area_ap, average_precision, voc07_ap
from .evaluate import APResult, evaluate
from .groundtruth import GroundTruth
from .matching import box_overlaps
from .plot import plot_pr_curves
from .report import ap_table, format_table
from .results import Results, read_results, results_filename, write_results

__all__ = [
    "VOCDataset", "Annotation", "VOCObject", "Positive", "Negative", "read_annotation", "training_data",
    "GroundTruth", "APResult", "evaluate", "average_precision", "voc07_ap", "area_ap",
    "box_overlaps",
    "Results", "read_results", "write_results", "results_filename",
    "plot_pr_curves", "ap_table", "format_table",
]
