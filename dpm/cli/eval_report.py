"""``dpm-eval``'s reports: per class the scores, a precision-recall figure and a JSON summary; over classes a table.

:func:`score_class` scores one class's detections both ways (VOC AP with the
devkit's rules, the COCO metrics) and writes ``<class>_<split>_pr.png`` and
``<class>_<split>_summary.json``; :func:`write_tables` writes the table of
several classes (voc-release3.1 ``report.m``: AP per class and the mean) as
``ap_<split>.txt``, ``ap_<split>.md`` and ``ap_<split>.json``.
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

from .._io import atomic_write

log = logging.getLogger("dpm.cli.eval")

__all__ = ["ClassScore", "score_class", "class_line", "write_summary", "write_tables", "TABLE_ROWS"]

# The rows of the table over classes: (row name, key of the per-class summary).
TABLE_ROWS = (("AP", "ap"), ("AP all-point", "ap_area"), ("COCO AP", "coco_ap"))


@dataclass
class ClassScore:
    """One class's results: the VOC AP result, the COCO metrics (``None`` without ground truth), the summary."""

    cls: str
    ap: object               # voc.APResult
    coco: object             # coco.COCOMetrics or None
    summary: dict

    @property
    def has_ground_truth(self) -> bool:
        return self.ap.n_positives > 0


def score_class(args, evalset, cls, gt, results, *, label, out_dir: Path, coco_results=None,
                write_coco: bool = False) -> ClassScore:
    """Score ``results`` (a ``voc.Results``, or ``coco_results``) of ``cls``; write its COCO results and figure.

    ``write_coco``: also write the detections as ``coco_det_<split>_<cls>.json``
    (model runs).  A class without non-difficult ground truth is scored as
    such (AP undefined, no COCO metrics, no figure).
    """
    import coco
    import voc

    split = evalset.split
    use_ignore = not args.coco_api_ignore
    coco_path = metrics = curve = None
    if gt.n_positives == 0:      # the caller warns once for all such classes: voc's own warning is muted
        quiet = logging.getLogger("voc.evaluate")
        level, quiet.level = quiet.level, logging.ERROR
        try:
            res = voc.evaluate(results, gt, cls, split, iou_threshold=args.iou)
        finally:
            quiet.setLevel(level)
    elif coco_results is not None:
        res, metrics = evalset.evaluate_coco_results(cls, coco_results, iou_threshold=args.iou,
                                                     use_ignore_flag=use_ignore)
    else:
        if write_coco:
            coco_path = out_dir / f"coco_det_{split}_{cls}.json"
            coco.write_results(coco_path, (evalset.coco_ids_of(results.image_ids), results.scores,
                                           results.boxes), category_id=evalset.category_id(cls))
        res, metrics = evalset.evaluate(cls, results, iou_threshold=args.iou, use_ignore_flag=use_ignore)
    if metrics is not None:
        dataset_name = Path(evalset.name).name or evalset.name
        curve = voc.plot_pr_curves({label: res}, out_dir / f"{cls}_{split}_pr.png", metric="both",
                                   title=f"{cls}, {dataset_name} {split} (IoU >= {args.iou:g})")
    summary = {
        **res.summary(),
        "coco": None if metrics is None else metrics.summary(),
        "coco_ignore_flag": use_ignore,
        "split": split,
        "dataset": str(Path(evalset.name).resolve()),
        "dataset_format": "voc" if args.voc is not None else "coco",
        "coco_results": None if coco_path is None else str(coco_path),
        "pr_curve": None if curve is None else str(curve),
        "n_images": len(gt),
    }
    return ClassScore(cls, res, metrics, summary)


def write_summary(path: Path, summary: dict) -> None:
    atomic_write(path, (json.dumps(summary, indent=2) + "\n").encode("utf-8"))


def class_line(score: ClassScore, seconds=None) -> str:
    """The first line ``dpm-eval`` prints for a class (VOC AP, recall, counts)."""
    res, split = score.ap, score.summary["split"]
    speed = f", {seconds:.2f} s/image" if seconds is not None else ""
    return (f"{score.cls} {split}: AP {res.ap:.4f} (VOC2007 11-point), {res.ap_area:.4f} (all-point), "
            f"recall {res.max_recall:.4f}, {res.n_detections} detections, {score.summary['n_images']} images{speed}")


def _num(x):
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def write_tables(out_dir: Path, split: str, scores: list, info: dict) -> tuple:
    """Write the table over classes as text, Markdown and JSON; returns (text, paths).

    Rows: VOC2007 11-point AP, all-point AP and COCO AP (IoU .50:.05:.95);
    columns: the classes and the mean over the classes with ground truth.
    A class without ground truth shows ``-`` and is named below the table.
    """
    import voc

    classes = [s.cls for s in scores]
    per_class = {s.cls: {"ap": _num(s.ap.ap), "ap_area": _num(s.ap.ap_area),
                         "coco_ap": None if s.coco is None else _num(s.coco.stats["AP"]),
                         "recall": _num(s.ap.max_recall) if s.has_ground_truth else None,
                         "n_detections": s.ap.n_detections, "n_positives": s.ap.n_positives,
                         "summary": f"{s.cls}_{split}_summary.json"} for s in scores}
    rows = {name: {c: (math.nan if per_class[c][key] is None else per_class[c][key]) for c in classes}
            for name, key in TABLE_ROWS}
    missing = [s.cls for s in scores if not s.has_ground_truth]
    with_gt = [c for c in classes if c not in missing]
    note = (f"no ground truth in {split}: {', '.join(missing)} (left out of the mean)\n" if missing else "")
    _, table_rows = voc.ap_table(rows, classes=classes, skip_missing=True)
    mean = {key: _num(values[-1]) for (_, key), (_, values) in zip(TABLE_ROWS, table_rows)}
    text = voc.format_table(rows, classes=classes, digits=3, skip_missing=True) + note
    md = voc.format_table(rows, fmt="markdown", classes=classes, digits=3, skip_missing=True)
    md += ("\n" + note) if note else ""
    paths = {"text": out_dir / f"ap_{split}.txt", "markdown": out_dir / f"ap_{split}.md",
             "json": out_dir / f"ap_{split}.json"}
    doc = {"classes": classes, "per_class": per_class, "mean": mean, "mean_over": with_gt,
           "no_ground_truth": missing, "split": split, **info,
           "table": str(paths["text"]), "table_markdown": str(paths["markdown"])}
    atomic_write(paths["text"], text.encode("utf-8"))
    atomic_write(paths["markdown"], md.encode("utf-8"))
    write_summary(paths["json"], doc)
    return text, paths
