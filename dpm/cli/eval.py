"""``dpm-eval``: VOC average precision and COCO metrics of a model, or of an existing results file.

Two ways in, on a VOC folder or a COCO instances file::

    dpm-eval MODEL (--voc DIR | --coco FILE --images DIR) [--split S] [--class person] [--upsample 2] [-j N]
    dpm-eval --results FILE (--voc DIR | --coco FILE --images DIR) [--class person] [--split S]

The first runs detection over the split (voc-release3.1 ``pascal_test.m``:
the model's threshold, bounding-box prediction, non-maximum suppression 0.5,
clipping) and writes the devkit results file and a COCO results file; both
then score the detections with the devkit's rules (``pascal_eval.m``, spec
§1.15) and with the COCO metrics, and write a precision-recall curve and a
JSON summary.  Two lines with the results go to stdout.

This module glues :mod:`dpm` (models, detection) and the dataset packages
:mod:`voc` and :mod:`coco` (datasets, evaluation); ``dpm`` imports neither.
"""
from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time
from pathlib import Path

from .._io import atomic_write, exclusive_lock
from ._common import (EXIT_OK, add_execution, add_max_memory, add_verbosity, cluster_executor, jobs,
                      report_failures, run, setup_logging, show_progress)

log = logging.getLogger("dpm.cli.eval")

PROG = "dpm-eval"

# Models whose file name does not say which VOC class they detect.

_RESULTS_NAME = re.compile(r"^comp\d+_det_(?P<split>.+)_(?P<cls>[^_]+)$")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="PASCAL VOC average precision (VOC2007 11-point and all-point) and the COCO metrics "
                    "(AP at IoU .50:.05:.95, AP50, AP75, AP and AR by size) of a model on a dataset split, "
                    "or of an existing results file, with a precision-recall curve and a JSON summary. "
                    "The dataset is a VOC folder (--voc) or a COCO instances file and its images "
                    "(--coco, --images).",
        epilog="outputs, in --out (default: ./eval-<model name>-<split> for a model, the\n"
               "results file's folder for --results):\n"
               "  comp3_det_<split>_<class>.txt  detections, VOC devkit format (model runs only)\n"
               "  coco_det_<split>_<class>.json  detections, COCO results format (model runs only)\n"
               "  <class>_<split>_pr.png         precision-recall curve\n"
               "  <class>_<split>_summary.json   AP both ways, COCO metrics, recall, counts, seconds per image\n\n"
               "examples:\n"
               "  dpm-eval inria_final.mat --voc person-voc --split test --upsample 2 -j 2\n"
               "  dpm-eval person --coco instances_val.json --images val2017/ -j 2\n"
               "  dpm-eval --results out/comp3_det_test_person.txt --voc VOCdevkit/VOC2007\n"
               "  dpm-eval --results dets.json --coco instances_val.json --images val2017/ --class person",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?", metavar="MODEL",
                   help="model file (.mat from voc-release3.1 or .npz) or built-in model name")
    p.add_argument("--results", metavar="FILE",
                   help="score this results file instead of running a model: a devkit file "
                        "('image_id score x1 y1 x2 y2' lines) or a COCO results file (.json)")
    d = p.add_mutually_exclusive_group(required=True)
    d.add_argument("--voc", metavar="DIR",
                   help="VOC year folder (with Annotations/, ImageSets/Main/, JPEGImages/)")
    d.add_argument("--coco", metavar="FILE", help="COCO instances file (with --images)")
    p.add_argument("--images", metavar="DIR", help="with --coco: the folder of the images")
    p.add_argument("--split", metavar="NAME",
                   help="--voc: image set in ImageSets/Main (default: test, or the split named by a "
                        "comp3_det_<split>_<class>.txt results file); --coco: a split file, COCO JSON "
                        "or a list of image ids (default: every image of --coco)")
    p.add_argument("--class", dest="cls", metavar="NAME",
                   help="class to score (default: the model's class, or the class named by a "
                        "comp3_det_<split>_<class>.txt results file)")
    p.add_argument("--out", metavar="DIR", help="output folder (see below)")
    p.add_argument("--iou", type=float, default=0.5, metavar="T",
                   help="minimum overlap (IoU, inclusive pixels) of a true positive; default 0.5")
    g = p.add_argument_group("detection (MODEL only)")
    g.add_argument("--upsample", type=int, default=1, metavar="K",
                   help="detect on images enlarged K times, for objects smaller than the model; "
                        "default 1")
    p.add_argument("--coco-api-ignore", action="store_true",
                   help="COCO metrics exactly as the COCO API: disregard the annotations' 'ignore' flag "
                        "(VOC's difficult objects then count as objects); default: honour it")
    g.add_argument("--threshold", type=float, default=None,
                   help="score threshold (default: the model's own, as pascal_test.m)")
    g.add_argument("--no-bbox-prediction", action="store_true",
                   help="score root boxes instead of the regressor's predicted boxes")
    add_max_memory(g)
    add_execution(g, "images (detection)")
    g.add_argument("--limit", type=int, default=None, metavar="N",
                   help="only the first N images of the split (a quick check; AP is then over "
                        "those images only)")
    add_verbosity(p)
    return p


def _class_and_split_from_name(path: Path):
    m = _RESULTS_NAME.match(path.stem)
    return (m["cls"], m["split"]) if m else (None, None)


def _check_args(parser, args):
    if (args.coco is None) != (args.images is None):
        parser.error("--coco and --images go together (the instances file and the folder of its images)")
    if (args.model is None) == (args.results is None):
        parser.error("give either MODEL or --results FILE (not both)")
    if args.results is not None:
        for opt, default in (("upsample", 1), ("threshold", None), ("no_bbox_prediction", False), ("max_memory", None),
                             ("jobs", None), ("scheduler", None), ("scheduler_file", None), ("limit", None)):
            if getattr(args, opt) != default:
                parser.error(f"--{opt.replace('_', '-')} only applies when running a MODEL")
    if args.upsample < 1:
        raise ValueError(f"--upsample must be a positive integer, got {args.upsample}")
    if not 0 < args.iou <= 1:
        raise ValueError(f"--iou must be in (0, 1], got {args.iou}")
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be a positive number of images, got {args.limit}")


def _ground_truth(evalset, cls, hint):
    """VOC ground truth of ``cls``; a clear error if the class is absent."""
    gt = evalset.voc_ground_truth(cls)
    if gt.n_positives == 0:
        names = ", ".join(evalset.class_names()) or "none"
        raise ValueError(f"no non-difficult {cls!r} objects in split {evalset.split!r} of {evalset.name} "
                         f"(classes there: {names}){hint}")
    return gt


def _run_model(args, evalset, out_dir, model, cls):
    """Detect over ``ids``, writing the results file as it goes.

    Returns (results path, Results, seconds per image, RunStatus).  An image
    that fails is listed in the status and has no detections: as in the
    devkit, its objects then count as missed.
    """
    import numpy as np

    import voc
    from ..detection.batch import detect_files
    from ..output import ResultsWriter, write_batch

    # absolute: the workers of a cluster have their own working folder (the results name image ids)
    paths, ids, split = [Path(p).absolute() for p in evalset.paths], evalset.voc_ids, evalset.split
    if not any(p.is_file() for p in paths):
        raise ValueError(f"none of the {len(paths)} images of split {split!r} is there "
                         f"(first: {paths[0]})")
    log.info("detecting %s in %d image(s) of split %s of %s (threshold %g, upsample %d, %d job(s))",
             cls, len(paths), split, evalset.name,
             model.thresh if args.threshold is None else args.threshold, args.upsample, jobs(args))
    det_ids, scores, boxes = [], [], []

    def keep(path, image_id, dets):
        det_ids.extend([image_id] * len(dets))
        scores.append(np.asarray(dets.scores, dtype=np.float64))
        boxes.append(np.asarray(dets.boxes, dtype=np.float64).reshape(-1, 4))

    t0 = time.perf_counter()
    results_path = out_dir / voc.results_filename(split, cls)
    with cluster_executor(args) as executor, ResultsWriter(results_path, "voc", total=len(ids)) as out:
        status = write_batch(
            detect_files(paths, model, n_jobs=jobs(args), executor=executor, progress=show_progress(args),
                         threshold=args.threshold, upsample=args.upsample, max_memory=args.max_memory,
                         bbox_prediction=not args.no_bbox_prediction),
            out, image_ids=ids, on_result=keep)
    seconds = (time.perf_counter() - t0) / max(1, len(ids))
    results = voc.Results(det_ids, np.concatenate(scores) if scores else np.zeros(0),
                          np.concatenate(boxes) if boxes else np.zeros((0, 4)))
    return results_path, results, seconds, status


def _main(argv) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_args(parser, args)
    setup_logging(PROG, args)
    import coco

    cls = args.cls
    model = None
    split = args.split
    if args.results is not None:
        results_path = Path(args.results)
        name_cls, name_split = _class_and_split_from_name(results_path)
        cls = cls or name_cls
        if args.voc is not None:            # a COCO split is a file, not a name
            split = split or name_split
        label = results_path.stem
    else:
        from ..data import resolve_model

        model = resolve_model(args.model)
        if not cls:
            cls = model.class_name or ""
            if not cls:
                raise ValueError(f"{args.model}: the model does not name its class; give --class")
        label = Path(args.model).stem
    if args.voc is not None:
        evalset = coco.voc_evaluation_set(args.voc, split or "test")
    else:
        evalset = coco.coco_evaluation_set(args.coco, args.images, split)
    coco_results = None
    if args.results is not None and results_path.suffix.lower() == ".json":
        coco_results = coco.read_results(results_path)
        if not cls:
            cats = sorted(set(coco_results.category_ids.tolist()))
            names = {c.id: c.name for c in evalset.instances.categories}
            if len(cats) == 1 and cats[0] in names:
                cls = names[cats[0]]
    if not cls:
        raise ValueError(f"{results_path}: cannot tell the class from the file name "
                         "(not comp<N>_det_<split>_<class>.txt); give --class")
    if model is not None:
        hint = f" (the model's class is {model.class_name!r}; give --class)" if not args.cls else ""
    else:
        hint = "; give --class" if not args.cls else ""

    if args.limit is not None:
        evalset = evalset.head(args.limit)
    gt = _ground_truth(evalset, cls, hint)

    if args.out:
        out_dir = Path(args.out)
    elif model is not None:
        out_dir = Path(f"eval-{label}-{evalset.split}")
    else:
        out_dir = results_path.parent
    out_dir.mkdir(parents=True, exist_ok=True)

    summary_path = out_dir / f"{cls}_{evalset.split}_summary.json"
    with exclusive_lock(summary_path, what="evaluation summary"):
        return _evaluate(args, model, evalset, cls, gt, label, out_dir, summary_path,
                         None if model is not None else results_path, coco_results)


def _evaluate(args, model, evalset, cls, gt, label, out_dir, summary_path, results_path, coco_results):
    import coco
    import voc

    seconds, status, coco_path = None, None, None
    split = evalset.split
    use_ignore = not args.coco_api_ignore
    if coco_results is not None:
        res, metrics = evalset.evaluate_coco_results(cls, coco_results, iou_threshold=args.iou,
                                                     use_ignore_flag=use_ignore)
    else:
        if model is None:
            results = voc.read_results(results_path, image_ids=gt.image_ids)
        else:
            results_path, results, seconds, status = _run_model(args, evalset, out_dir, model, cls)
            coco_path = out_dir / f"coco_det_{split}_{cls}.json"
            coco.write_results(coco_path, (evalset.coco_ids_of(results.image_ids), results.scores,
                                           results.boxes), category_id=evalset.category_id(cls))
        res, metrics = evalset.evaluate(cls, results, iou_threshold=args.iou, use_ignore_flag=use_ignore)

    dataset_name = Path(evalset.name).name or evalset.name
    curve = voc.plot_pr_curves({label: res}, out_dir / f"{cls}_{split}_pr.png", metric="both",
                               title=f"{cls}, {dataset_name} {split} (IoU >= {args.iou:g})")
    summary = {
        **res.summary(),
        "coco": metrics.summary(),
        "coco_ignore_flag": use_ignore,
        "split": split,
        "dataset": str(Path(evalset.name).resolve()),
        "dataset_format": "voc" if args.voc is not None else "coco",
        "model": str(Path(args.model).resolve()) if model is not None and Path(args.model).exists()
        else args.model,
        "results": str(results_path),
        "coco_results": None if coco_path is None else str(coco_path),
        "pr_curve": str(curve),
        "n_images": len(gt),
        "seconds_per_image": seconds,
    }
    if args.voc is not None:
        summary["voc"] = str(Path(args.voc).resolve())
    if model is not None:
        summary.update({"threshold": float(model.thresh if args.threshold is None else args.threshold),
                        "upsample": args.upsample, "bbox_prediction": not args.no_bbox_prediction,
                        "n_jobs": jobs(args), "scheduler": args.scheduler or args.scheduler_file, "limit": args.limit})
    if status is not None:
        summary["n_failed_images"] = status.n_failed
        summary["failed_images"] = [msg for _, msg in status.failures]
    atomic_write(summary_path, (json.dumps(summary, indent=2) + "\n").encode("utf-8"))
    log.info("wrote %s, %s", curve, summary_path)

    speed = f", {seconds:.2f} s/image" if seconds is not None else ""
    print(f"{cls} {split}: AP {res.ap:.4f} (VOC2007 11-point), {res.ap_area:.4f} (all-point), "
          f"recall {res.max_recall:.4f}, {res.n_detections} detections, {len(gt)} images{speed}")
    print(f"{cls} {split}: COCO {metrics.format()}")
    sys.stdout.flush()
    return report_failures(PROG, status) if status is not None else EXIT_OK


def main(argv=None) -> int:
    """Entry point of ``dpm-eval``; returns the exit status."""
    return run(PROG, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
