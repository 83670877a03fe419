"""``dpm-eval``: PASCAL VOC average precision of a model, or of an existing results file.

Two ways in::

    dpm-eval MODEL --voc DIR [--split test] [--class person] [--upsample 2] [-j N] [--out DIR]
    dpm-eval --results FILE --voc DIR [--class person] [--split test] [--out DIR]

The first runs detection over the split (voc-release3.1 ``pascal_test.m``:
the model's threshold, bounding-box prediction, non-maximum suppression 0.5,
clipping) and writes the devkit results file; both then score it with the
devkit's rules (``pascal_eval.m``, spec §1.15) and write a precision-recall
curve and a JSON summary. One line with the result goes to stdout.

This module glues :mod:`dpm` (models, detection) and :mod:`voc` (datasets,
evaluation); neither imports the other.
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
from ._common import (EXIT_OK, add_execution, add_verbosity, cluster_executor, jobs, report_failures, run,
                      setup_logging, show_progress)

log = logging.getLogger("dpm.cli.eval")

PROG = "dpm-eval"

# Models whose file name does not say which VOC class they detect.

_RESULTS_NAME = re.compile(r"^comp\d+_det_(?P<split>.+)_(?P<cls>[^_]+)$")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="PASCAL VOC average precision (VOC2007 11-point and all-point) of a model on a "
                    "dataset split, or of an existing results file, with a precision-recall curve and "
                    "a JSON summary.",
        epilog="outputs, in --out (default: ./eval-<model name>-<split> for a model, the\n"
               "results file's folder for --results):\n"
               "  comp3_det_<split>_<class>.txt  detections (model runs only)\n"
               "  <class>_<split>_pr.png         precision-recall curve\n"
               "  <class>_<split>_summary.json   AP both ways, recall, counts, seconds per image\n\n"
               "examples:\n"
               "  dpm-eval inria_final.mat --voc person-voc --split test --upsample 2 -j 2\n"
               "  dpm-eval --results out/comp3_det_test_person.txt --voc VOCdevkit/VOC2007",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?", metavar="MODEL",
                   help="model file (.mat from voc-release3.1 or .npz) or built-in model name")
    p.add_argument("--results", metavar="FILE",
                   help="score this devkit results file ('image_id score x1 y1 x2 y2' lines) instead "
                        "of running a model")
    p.add_argument("--voc", required=True, metavar="DIR",
                   help="VOC year folder (with Annotations/, ImageSets/Main/, JPEGImages/)")
    p.add_argument("--split", metavar="NAME",
                   help="image set in ImageSets/Main (default: test, or the split named by a "
                        "comp3_det_<split>_<class>.txt results file)")
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
    g.add_argument("--threshold", type=float, default=None,
                   help="score threshold (default: the model's own, as pascal_test.m)")
    g.add_argument("--no-bbox-prediction", action="store_true",
                   help="score root boxes instead of the regressor's predicted boxes")
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
    if (args.model is None) == (args.results is None):
        parser.error("give either MODEL or --results FILE (not both)")
    if args.results is not None:
        for opt, default in (("upsample", 1), ("threshold", None), ("no_bbox_prediction", False),
                             ("jobs", None), ("scheduler", None), ("scheduler_file", None), ("limit", None)):
            if getattr(args, opt) != default:
                parser.error(f"--{opt.replace('_', '-')} only applies when running a MODEL")
    if args.upsample < 1:
        raise ValueError(f"--upsample must be a positive integer, got {args.upsample}")
    if not 0 < args.iou <= 1:
        raise ValueError(f"--iou must be in (0, 1], got {args.iou}")
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be a positive number of images, got {args.limit}")


def _ground_truth(dataset, cls, split, ids, hint):
    """Ground truth of ``cls`` on ``ids``; a clear error if the class is absent."""
    import voc

    gt_all = dataset.ground_truth(cls, split)
    if len(ids) != len(gt_all):
        keep = set(ids)
        idx = [k for k, i in enumerate(gt_all.image_ids) if i in keep]
        gt = voc.GroundTruth.from_arrays(
            [gt_all.image_ids[k] for k in idx],
            [gt_all.boxes[gt_all.offsets[k]:gt_all.offsets[k + 1]] for k in idx],
            [gt_all.difficult[gt_all.offsets[k]:gt_all.offsets[k + 1]] for k in idx])
    else:
        gt = gt_all
    if gt.n_positives == 0:
        names = ", ".join(dataset.class_names(split)) or "none"
        raise ValueError(f"no non-difficult {cls!r} objects in split {split!r} of {dataset.root} "
                         f"(classes there: {names}){hint}")
    return gt


def _run_model(args, dataset, split, ids, out_dir, model, cls):
    """Detect over ``ids``, writing the results file as it goes.

    Returns (results path, Results, seconds per image, RunStatus).  An image
    that fails is listed in the status and has no detections: as in the
    devkit, its objects then count as missed.
    """
    import numpy as np

    import voc
    from ..batch import detect_files
    from ..output import ResultsWriter, write_batch

    # absolute: the workers of a cluster have their own working folder (the results name image ids)
    paths = [dataset.image_path(i).absolute() for i in ids]
    if not any(p.is_file() for p in paths):
        raise ValueError(f"none of the {len(paths)} images of split {split!r} is there "
                         f"(first: {paths[0]})")
    log.info("detecting %s in %d image(s) of split %s of %s (threshold %g, upsample %d, %d job(s))",
             cls, len(paths), split, dataset.root,
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
                         threshold=args.threshold, upsample=args.upsample,
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
    import voc

    dataset = voc.VOCDataset(args.voc)
    cls, split = args.cls, args.split
    model = None
    if args.results is not None:
        results_path = Path(args.results)
        name_cls, name_split = _class_and_split_from_name(results_path)
        cls = cls or name_cls
        split = split or name_split or "test"
        if not cls:
            raise ValueError(f"{results_path}: cannot tell the class from the file name "
                             "(not comp<N>_det_<split>_<class>.txt); give --class")
        hint = "; give --class" if not args.cls else ""
        label = results_path.stem
    else:
        from ..data import resolve_model

        model = resolve_model(args.model)
        split = split or "test"
        if not cls:
            cls = model.class_name or ""
            if not cls:
                raise ValueError(f"{args.model}: the model does not name its class; give --class")
        hint = f" (the model's class is {model.class_name!r}; give --class)" if not args.cls else ""
        label = Path(args.model).stem

    ids = dataset.image_ids(split)
    if args.limit is not None:
        ids = ids[:args.limit]
    gt = _ground_truth(dataset, cls, split, ids, hint)

    if args.out:
        out_dir = Path(args.out)
    elif model is not None:
        out_dir = Path(f"eval-{label}-{split}")
    else:
        out_dir = results_path.parent
    out_dir.mkdir(parents=True, exist_ok=True)

    summary_path = out_dir / f"{cls}_{split}_summary.json"
    with exclusive_lock(summary_path, what="evaluation summary"):
        return _evaluate(args, model, dataset, cls, split, ids, gt, label, out_dir, summary_path,
                         None if model is not None else results_path)


def _evaluate(args, model, dataset, cls, split, ids, gt, label, out_dir, summary_path, results_path):
    import voc

    seconds, status = None, None
    if model is None:
        results = voc.read_results(results_path, image_ids=gt.image_ids)
    else:
        results_path, results, seconds, status = _run_model(args, dataset, split, ids, out_dir,
                                                             model, cls)

    res = voc.evaluate(results, gt, cls, split, iou_threshold=args.iou)
    curve = voc.plot_pr_curves({label: res}, out_dir / f"{cls}_{split}_pr.png", metric="both",
                               title=f"{cls}, {Path(args.voc).name or args.voc} {split} "
                                     f"(IoU >= {args.iou:g})")
    summary = {
        **res.summary(),
        "split": split,
        "voc": str(Path(args.voc).resolve()),
        "model": str(Path(args.model).resolve()) if model is not None and Path(args.model).exists()
        else args.model,
        "results": str(results_path),
        "pr_curve": str(curve),
        "n_images": len(gt),
        "seconds_per_image": seconds,
    }
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
    sys.stdout.flush()
    return report_failures(PROG, status) if status is not None else EXIT_OK


def main(argv=None) -> int:
    """Entry point of ``dpm-eval``; returns the exit status."""
    return run(PROG, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
