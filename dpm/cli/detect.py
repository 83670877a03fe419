"""``dpm-detect MODEL[,MODEL...] IMAGE_OR_DIR...``: detect objects in images, with one model or several."""
from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from ._common import (EXIT_OK, add_execution, add_max_memory, add_verbosity, cluster_executor, jobs,
                      report_failures, run, setup_logging, show_progress)

log = logging.getLogger("dpm.cli.detect")

PROG = "dpm-detect"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Detect objects with a Deformable Part Model (voc-release3.1 or voc-release5 .mat, "
                    "dpm .npz model, or a built-in model). "
                    "Boxes are 1-based inclusive pixel coordinates [x1 y1 x2 y2], as in PASCAL VOC.",
        epilog="examples:\n"
               "  dpm-detect person image.jpg\n"
               "  dpm-detect voc2007 photos/ --draw out/          (all 20 VOC2007 classes in one pass)\n"
               "  dpm-detect voc2007/car,voc2007/bus street.jpg --format voc -o results/\n"
               "  dpm-detect car,dog photo.jpg     (bare class names: the release-5 VOC2007 models)\n"
               "  dpm-detect person_final.mat photos/ --format voc -o comp3_det_test_person.txt -j 2\n"
               "  dpm-detect model.npz frame.png --upsample 2 --draw out/ --parts\n"
               "  find /archive -name '*.jpg' | dpm-detect person --list - -o dets.csv "
               "--scheduler tcp://head:8786\n"
               "  dpm-detect person --list paths.txt -o dets.csv --resume   # after an interruption",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?", metavar="MODEL[,MODEL...]",
                   help="model file (.mat from voc-release3.1 or voc-release5, .npz from dpm-train), the name "
                        "of a built-in model or of a group of them, or a bare class name (car: r5/voc2007/car; "
                        "person: the project's own model; see --list-models); several, separated by commas, "
                        "run in one pass (one model per class)")
    p.add_argument("inputs", nargs="*", metavar="IMAGE_OR_DIR", help="image files and/or folders of images")
    p.add_argument("--format", choices=("csv", "json", "voc", "coco"), default="csv",
                   help="output format: csv (default), json, voc (PASCAL results file: "
                        "'image_id score x1 y1 x2 y2' per box; with several models one file per class, "
                        "comp3_det_<split>_<class>.txt, in the folder given by -o) or coco (COCO results "
                        "list: image_id, category_id, bbox [x, y, w, h], score)")
    p.add_argument("--split", default="test",
                   help="with --format voc and several models: the <split> of the file names; default test")
    p.add_argument("--coco", metavar="FILE",
                   help="with --format coco: COCO instances file giving the image ids (looked up by file "
                        "name) and the category id (of the model's class, or --class); without it the "
                        "image id is the file name's number (000000397133.jpg: 397133) and the category 1")
    p.add_argument("--class", dest="cls", metavar="NAME",
                   help="with --coco: the category to report the detections as (default: the model's class)")
    p.add_argument("-o", "--output", metavar="FILE_OR_DIR",
                   help="write detections here (default: stdout); written atomically and locked "
                        "against a second run; on Ctrl+C the finished images are kept, marked "
                        "partial (see docs/output.md)")
    p.add_argument("--threshold", type=float, default=None,
                   help="score threshold (default: the model's own, model.thresh)")
    p.add_argument("--upsample", type=int, default=1, metavar="K",
                   help="detect on the image enlarged K times (for objects smaller than the model); default 1")
    add_max_memory(p)
    p.add_argument("--nms", type=float, default=0.5, metavar="OVERLAP",
                   help="non-maximum suppression overlap (original rule: intersection / area of the "
                        "lower-scoring box); 1 disables it; default 0.5")
    p.add_argument("--no-bbox-prediction", action="store_true",
                   help="report root boxes instead of the regressor's predicted boxes")
    p.add_argument("--exact", action="store_true",
                   help="detect with the exact detector even where a model carries a star-cascade "
                        "(models with a cascade use it by default: the same detections, faster; docs/cascade-building.md)")
    p.add_argument("--draw", metavar="OUTDIR",
                   help="save each image with its boxes drawn into OUTDIR as <stem>.png "
                        "(<stem>-2.png, ... when inputs share a stem)")
    p.add_argument("--parts", action="store_true", help="with --draw: draw the part boxes too")
    p.add_argument("--list", dest="list_file", metavar="FILE",
                   help="read image paths from FILE, one per line ('-': standard input), as the run "
                        "goes: any number of images in bounded memory; a path that cannot be read is "
                        "listed at the end as a failed image")
    p.add_argument("--resume", action="store_true",
                   help="with -o FILE: continue the interrupted run of FILE (FILE.partial) with the same "
                        "inputs and options, skipping the images it finished; the finished FILE is the "
                        "one an uninterrupted run writes (with --format voc and several models: the "
                        "files of the -o folder)")
    add_execution(p)
    p.add_argument("--list-models", action="store_true", help="list the built-in models and exit")
    add_verbosity(p)
    return p


def _main(argv) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(PROG, args)
    from ..data import model_table, resolve_models

    if args.list_models:
        for row in model_table():
            print("\t".join(row))
        return EXIT_OK
    if args.model is None:
        parser.error("no model given (a model file or a built-in model name, see --list-models)")
    if not args.inputs and args.list_file is None:
        parser.error("no images given (IMAGE_OR_DIR... or --list FILE)")
    if args.inputs and args.list_file is not None:
        parser.error("give images (IMAGE_OR_DIR...) or --list FILE, not both")
    if args.resume and not args.output:
        parser.error("--resume continues a results file: give it with -o FILE")
    if args.draw and (args.list_file is not None or args.resume):
        parser.error("--draw needs the whole list of images up front: not with --list or --resume")
    if args.upsample < 1:
        raise ValueError(f"--upsample must be a positive integer, got {args.upsample}")
    if not 0 <= args.nms <= 1:
        raise ValueError(f"--nms must be an overlap between 0 and 1, got {args.nms}")
    if args.coco is not None and args.format != "coco":
        parser.error("--coco only applies with --format coco")
    if args.cls is not None and args.coco is None:
        parser.error("--class only applies with --coco")

    from ..detection.batch import detect_files, list_images, read_image_list
    from ..detection.multiclass import as_model_dict
    from ..output import Drawings, PerClassWriter, ResultsWriter, write_batch

    models = resolve_models(args.model)
    model = models[0] if len(models) == 1 else tuple(models)
    classes = list(as_model_dict(models)) if len(models) > 1 else []
    per_class = bool(classes) and args.format == "voc"
    if per_class and args.output is None:
        raise ValueError("--format voc with several models writes one file per class: give a folder with -o")
    if classes and args.format == "coco":
        raise ValueError("--format coco takes one model (one category); run once per class")
    if args.list_file is not None:
        if args.list_file != "-" and not Path(args.list_file).is_file():
            raise FileNotFoundError(f"{args.list_file}: no such list of images")
        paths, total = read_image_list(args.list_file), None
    else:
        paths = list_images(args.inputs)
        total = len(paths)
    fmt, image_ids = args.format, None
    if args.coco is not None:
        paths = list(paths)  # ids are looked up for every file up front
        total = len(paths)
        fmt, image_ids = _coco_ids(args, model, paths)
    drawings = Drawings(args.draw, paths, parts=args.parts) if args.draw else None
    options = dict(threshold=args.threshold, upsample=args.upsample, nms=None if args.nms >= 1 else args.nms,
                   bbox_prediction=not args.no_bbox_prediction, **({"cascade": False} if args.exact else {}))
    log.info("detecting in %s, %d model(s) (%s), threshold %s",
             f"{total} image(s)" if total is not None else f"the images listed in {args.list_file}",
             len(models), args.model, "the models' own" if args.threshold is None else f"{args.threshold:g}")
    key = {"model": model_key(model), "format": args.format, "inputs": args.list_file or list(map(str, args.inputs)),
           **{k: v for k, v in options.items()}}
    if per_class:
        writer = PerClassWriter(args.output, classes, split=args.split, total=total, resumable=True,
                                resume=args.resume, key=key)
    else:
        writer = ResultsWriter(args.output, fmt, total=total, resumable=args.output is not None,
                               resume=args.resume, key=key)
    t0 = time.perf_counter()
    with cluster_executor(args) as executor, writer as out:
        todo = skip_done(paths, getattr(out, "resumed", 0), getattr(out, "resumed_last", None))
        left = None if total is None else max(0, total - getattr(out, "resumed", 0))
        if executor is not None:
            results = on_workers(todo, lambda ps: detect_files(ps, model, executor=executor,
                                                               progress=show_progress(args), total=left,
                                                               max_memory=args.max_memory, **options))
        else:
            results = detect_files(todo, model, n_jobs=jobs(args), progress=show_progress(args), total=left,
                                   max_memory=args.max_memory, **options)
        status = write_batch(results, out, image_ids=image_ids, drawings=drawings)
    log.info("%d image(s) written, %.3f s per image%s", status.written,
             (time.perf_counter() - t0) / max(1, status.done - getattr(out, "resumed", 0)),
             " (drawing included)" if drawings is not None else "")
    return report_failures(PROG, status)


def _coco_ids(args, model, paths):
    """The COCO results format with the category of the model's class, and each image's id."""
    import coco

    from ..output.formats import CocoFormat

    instances = coco.read_instances(args.coco)
    cls = args.cls or model.class_name
    if not cls:
        raise ValueError(f"{args.model}: the model does not name its class; give --class")
    category = instances.category(cls)
    return CocoFormat(category.id), coco.image_ids_of_files(instances, paths)


def model_key(model) -> str:
    """A short content key of a model (what a resumed run checks it uses)."""
    from ..execution.base import model_payload

    return model_payload(model)[0][:16]


def skip_done(paths, n: int, last):
    """``paths`` after the first ``n`` (done by an interrupted run), checking the ``n``-th is ``last``."""
    it = iter(paths)
    seen = None
    for _ in range(n):
        seen = next(it, None)
        if seen is None:
            raise ValueError(f"the interrupted run handled {n} images, but there are fewer inputs now; "
                             "resume with the same inputs, or start over without --resume")
    if n and str(Path(seen)) != str(last):
        raise ValueError(f"the inputs differ from the interrupted run's: image {n} was {last}, now {seen}; "
                         "resume with the same inputs, or start over without --resume")
    return it


def on_workers(paths, run):
    """``run(absolute paths)`` as ``(path as given, result)`` pairs.

    Workers of a cluster have their own working folder: they are sent absolute
    paths (of the same files, on a shared file system), and results keep the
    names the user gave.  Both streams are read in step (a window apart).
    """
    from itertools import tee

    given, sent = tee(paths)
    for name, (_, result) in zip(given, run(Path(p).absolute() for p in sent)):
        yield Path(name), result


def main(argv=None) -> int:
    return run(PROG, _main, argv)
