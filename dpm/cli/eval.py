"""``dpm-eval``: VOC average precision and COCO metrics of a model, or of an existing results file.

Two ways in, on a VOC folder or a COCO instances file::

    dpm-eval MODEL[,MODEL...] (--voc DIR | --coco FILE --images DIR) [--split S] [--list FILE] [--resume] [-j N]
    dpm-eval --results FILE (--voc DIR | --coco FILE --images DIR) [--class person] [--split S]

The first runs detection over the split with every model in one pass
(voc-release3.1 ``pascal_test.m``: each model's threshold, bounding-box
prediction, non-maximum suppression 0.5 per class, clipping) and writes per
class the devkit results file (resumable, :mod:`.eval_run`) and a COCO
results file; both then score the detections with the devkit's rules
(``pascal_eval.m``, spec §1.15) and with the COCO metrics, and write per
class a precision-recall curve and a JSON summary, and over several classes
the table of ``report.m`` (:mod:`.eval_report`).  Two lines with the results
of one class, or the table, go to stdout.

This module glues :mod:`dpm` (models, detection) and the dataset packages
:mod:`voc` and :mod:`coco` (datasets, evaluation); ``dpm`` imports neither.
"""
from __future__ import annotations

import argparse
import logging
import re
import sys
from pathlib import Path

from .._io import exclusive_lock
from ._common import EXIT_OK, add_execution, add_max_memory, add_verbosity, jobs, report_failures, run, setup_logging

log = logging.getLogger("dpm.cli.eval")

PROG = "dpm-eval"

_RESULTS_NAME = re.compile(r"^comp\d+_det_(?P<split>.+)_(?P<cls>[^_]+)$")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="PASCAL VOC average precision (VOC2007 11-point and all-point) and the COCO metrics "
                    "(AP at IoU .50:.05:.95, AP50, AP75, AP and AR by size) of a model on a dataset split, "
                    "or of an existing results file, with a precision-recall curve and a JSON summary. "
                    "The dataset is a VOC folder (--voc) or a COCO instances file and its images "
                    "(--coco, --images).",
        epilog="outputs, in --out (default: ./eval-<model name>-<split> for models, the\n"
               "results file's folder for --results); per class:\n"
               "  comp3_det_<split>_<class>.txt  detections, VOC devkit format (model runs only)\n"
               "  coco_det_<split>_<class>.json  detections, COCO results format (model runs only)\n"
               "  <class>_<split>_pr.png         precision-recall curve\n"
               "  <class>_<split>_summary.json   AP both ways, COCO metrics, recall, counts, seconds per image\n"
               "and with several models, the table of AP per class and the mean:\n"
               "  ap_<split>.txt, ap_<split>.md, ap_<split>.json\n\n"
               "examples:\n"
               "  dpm-eval inria_final.mat --voc person-voc --split test --upsample 2 -j 2\n"
               "  dpm-eval voc2007 --voc VOCdevkit/VOC2007 -j 2          (all 20 classes, one pass)\n"
               "  dpm-eval voc2007/car,voc2007/bus --voc VOC2007 --list ids.txt --resume\n"
               "  dpm-eval person --coco instances_val.json --images val2017/ -j 2\n"
               "  dpm-eval --results out/comp3_det_test_person.txt --voc VOCdevkit/VOC2007\n"
               "  dpm-eval --results dets.json --coco instances_val.json --images val2017/ --class person",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?", metavar="MODEL[,MODEL...]",
                   help="model file (.mat from voc-release3.1 or .npz), built-in model name or group name "
                        "(dpm-detect --list-models); several, separated by commas, run in one pass over the "
                        "images and are scored per class (one model per class)")
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
                        "comp3_det_<split>_<class>.txt results file); one model only")
    p.add_argument("--list", dest="list_file", metavar="FILE",
                   help="only the images of the split listed in FILE ('-': standard input), one image id, "
                        "path or file name per line; they keep the split's order")
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
    g.add_argument("--exact", action="store_true",
                   help="evaluate the exact detector even where a model carries a star-cascade (used by default)")
    add_max_memory(g)
    add_execution(g, "images (detection)")
    g.add_argument("--limit", type=int, default=None, metavar="N",
                   help="only the first N images of the split (a quick check; AP is then over "
                        "those images only)")
    g.add_argument("--resume", action="store_true",
                   help="continue the interrupted run of the same command (same models, images and options) "
                        "from its results files in --out, without detecting its finished images again; the "
                        "results are those of an uninterrupted run")
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
        for opt, default in (("upsample", 1), ("threshold", None), ("no_bbox_prediction", False), ("exact", False),
                             ("max_memory", None), ("jobs", None), ("scheduler", None), ("scheduler_file", None),
                             ("limit", None), ("resume", False)):
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


def _models(args):
    """``[(class, name, Model)]`` of MODEL[,MODEL...] (files, built-in and group names)."""
    from ..data import resolve_named_models

    named = resolve_named_models(args.model)
    if len(named) == 1:
        name, model = named[0]
        cls = args.cls or model.class_name or ""
        if not cls:
            raise ValueError(f"{args.model}: the model does not name its class; give --class")
        return [(cls, name, model)]
    if args.cls:
        raise ValueError(f"--class names the class of one model; {args.model} has {len(named)}, each "
                         "evaluated as its own class")
    for name, model in named:
        if not model.class_name:
            raise ValueError(f"{name}: the model does not name its class; evaluate it alone with --class")
    return [(model.class_name, name, model) for name, model in named]


def _label(spec: str, names) -> str:
    """The default output folder's model part: the group name, a model's stem, or the stems joined with +."""
    from ..data import GROUPS

    if spec in GROUPS or len(names) == 1:
        return Path(spec).stem if spec not in GROUPS else spec.replace("/", "-")   # r5/voc2007: r5-voc2007
    return "+".join(Path(n).stem for n in names)


def _evaluation_set(args, split, *, listed=True):
    """The split (``listed``: only the images of ``--list``; then ``--limit``)."""
    import coco

    if args.voc is not None:
        evalset = coco.voc_evaluation_set(args.voc, split or "test")
    else:
        evalset = coco.coco_evaluation_set(args.coco, args.images, split)
    if args.list_file is not None and listed:
        from .eval_run import restrict_to_list

        evalset = restrict_to_list(evalset, args.list_file)
    if args.limit is not None:
        evalset = evalset.head(args.limit)
    return evalset


def _output_folder(path: Path) -> Path:
    if path.exists() and not path.is_dir():
        raise ValueError(f"{path}: is a file, not a folder; give an output folder with --out")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _main(argv) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_args(parser, args)
    setup_logging(PROG, args)
    if args.results is not None:
        return _score_results_file(args)
    models = _models(args)
    evalset = _evaluation_set(args, args.split)
    label = _label(args.model, [n for _, n, _ in models])
    out = Path(args.out) if args.out else Path(f"eval-{label}-{evalset.split}")
    if len(models) == 1:
        cls, _, model = models[0]
        hint = f" (the model's class is {model.class_name!r}; give --class)" if not args.cls else ""
        gt = _ground_truth(evalset, cls, hint)
        lock = f"{cls}_{evalset.split}_summary.json"
    else:
        gt = None
        lock = f"ap_{evalset.split}.json"
    out_dir = _output_folder(out)
    with exclusive_lock(out_dir / lock, what="evaluation summary"):
        return _run_models(args, models, evalset, out_dir, gt)


def _settings(args, seconds, status) -> dict:
    return {"upsample": args.upsample, "bbox_prediction": not args.no_bbox_prediction, "exact": args.exact,
            "n_jobs": jobs(args),
            "scheduler": args.scheduler or args.scheduler_file, "limit": args.limit,
            "list": None if args.list_file is None else str(args.list_file),
            "seconds_per_image": seconds, "n_failed_images": status.n_failed,
            "failed_images": [msg for _, msg in status.failures]}


def _model_name(name: str) -> str:
    return str(Path(name).resolve()) if Path(name).exists() else name


def _run_models(args, models, evalset, out_dir, gt) -> int:
    """Detect with every model in one pass over the images, then score and report each class."""
    from .eval_report import class_line, score_class, write_summary, write_tables
    from .eval_run import detect_evaluation_set

    run_ = detect_evaluation_set(args, evalset, out_dir, {cls: model for cls, _, model in models})
    settings = _settings(args, run_.seconds_per_image, run_.status)
    truths = {cls: gt if gt is not None else evalset.voc_ground_truth(cls) for cls, _, _ in models}
    missing = [cls for cls, t in truths.items() if t.n_positives == 0]
    if missing:
        log.warning("no ground truth (non-difficult objects) in split %s of %s for %d of %d classes: %s; "
                    "reported as such and left out of the mean", evalset.split, evalset.name, len(missing),
                    len(models), ", ".join(missing))
    scores = []
    for cls, name, model in models:
        class_gt = truths[cls]
        score = score_class(args, evalset, cls, class_gt, run_.results[cls], label=Path(name).stem,
                            out_dir=out_dir, write_coco=True)
        summary = {**score.summary, "model": _model_name(name), "results": str(run_.results_paths[cls]),
                   **({"voc": str(Path(args.voc).resolve())} if args.voc is not None else {}),
                   "threshold": float(model.thresh if args.threshold is None else args.threshold), **settings}
        write_summary(out_dir / f"{cls}_{evalset.split}_summary.json", summary)
        scores.append(score)
    if len(models) == 1:
        print(class_line(scores[0], run_.seconds_per_image))
        print(f"{scores[0].cls} {evalset.split}: COCO {scores[0].coco.format()}")
    else:
        info = {"dataset": str(Path(evalset.name).resolve()), "dataset_format": "voc" if args.voc else "coco",
                "model": args.model, "models": {cls: _model_name(name) for cls, name, _ in models},
                "n_images": len(evalset), "iou_threshold": args.iou, "coco_ignore_flag": not args.coco_api_ignore,
                "threshold": args.threshold, **settings}
        text, paths = write_tables(out_dir, evalset.split, scores, info)
        log.info("wrote %s, %s, %s and per class the results, figure and summary in %s",
                 paths["text"].name, paths["markdown"].name, paths["json"].name, out_dir)
        print(text, end="")
    sys.stdout.flush()
    return report_failures(PROG, run_.status)


def _score_results_file(args) -> int:
    """``--results FILE``: score an existing devkit or COCO results file (one class)."""
    import coco
    import voc

    from .eval_report import class_line, score_class, write_summary

    results_path = Path(args.results)
    name_cls, name_split = _class_and_split_from_name(results_path)
    cls = args.cls or name_cls
    split = args.split
    if args.voc is not None:            # a COCO split is a file, not a name
        split = split or name_split
    whole = _evaluation_set(args, split, listed=False)
    evalset = whole
    if args.list_file is not None:
        from .eval_run import restrict_to_list

        evalset = restrict_to_list(whole, args.list_file)
    coco_results = None
    if results_path.suffix.lower() == ".json":
        coco_results = _only_listed(coco.read_results(results_path), whole.coco_ids, evalset.coco_ids)
        if not cls:
            cats = sorted(set(coco_results.category_ids.tolist()))
            names = {c.id: c.name for c in evalset.instances.categories}
            if len(cats) == 1 and cats[0] in names:
                cls = names[cats[0]]
    if not cls:
        raise ValueError(f"{results_path}: cannot tell the class from the file name "
                         "(not comp<N>_det_<split>_<class>.txt); give --class")
    gt = _ground_truth(evalset, cls, "; give --class" if not args.cls else "")
    out_dir = _output_folder(Path(args.out) if args.out else results_path.parent)
    summary_path = out_dir / f"{cls}_{evalset.split}_summary.json"
    with exclusive_lock(summary_path, what="evaluation summary"):
        results = None if coco_results is not None else \
            _only_listed(voc.read_results(results_path, image_ids=whole.voc_ids), whole.voc_ids, evalset.voc_ids)
        score = score_class(args, evalset, cls, gt, results, label=results_path.stem, out_dir=out_dir,
                            coco_results=coco_results)
        summary = {**score.summary, "model": None, "results": str(results_path), "seconds_per_image": None}
        if args.voc is not None:
            summary["voc"] = str(Path(args.voc).resolve())
        write_summary(summary_path, summary)
        log.info("wrote %s, %s", score.summary["pr_curve"], summary_path)
        print(class_line(score))
        print(f"{cls} {evalset.split}: COCO {score.coco.format()}")
        sys.stdout.flush()
    return EXIT_OK


def _only_listed(results, split_ids, listed_ids):
    """Results (``voc.Results`` or ``coco.COCOResults``) without those on images of the split left out by
    ``--list`` (detections on images outside the split stay, to be refused when scored)."""
    if len(listed_ids) == len(split_ids):
        return results
    import numpy as np

    ids = np.asarray(results.image_ids, dtype=object)
    keep = np.isin(ids, np.asarray(listed_ids, dtype=object)) | ~np.isin(ids, np.asarray(split_ids, dtype=object))
    if hasattr(results, "category_ids"):
        return type(results)(results.image_ids[keep], results.category_ids[keep], results.bboxes[keep],
                             results.scores[keep])
    return type(results)(ids[keep].tolist(), results.scores[keep], results.boxes[keep])


def main(argv=None) -> int:
    """Entry point of ``dpm-eval``; returns the exit status."""
    return run(PROG, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
