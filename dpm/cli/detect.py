"""``dpm-detect MODEL[,MODEL...] IMAGE_OR_DIR...``: detect objects in images, with one model or several."""
from __future__ import annotations

import argparse
import logging
import time

from ._common import EXIT_OK, add_verbosity, report_failures, run, setup_logging, show_progress

log = logging.getLogger("dpm.cli.detect")

PROG = "dpm-detect"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Detect objects with a Deformable Part Model (voc-release3.1 .mat or dpm .npz model). "
                    "Boxes are 1-based inclusive pixel coordinates [x1 y1 x2 y2], as in PASCAL VOC.",
        epilog="examples:\n"
               "  dpm-detect person image.jpg\n"
               "  dpm-detect voc2007 photos/ --draw out/          (all 20 VOC2007 classes in one pass)\n"
               "  dpm-detect voc2007/car,voc2007/bus street.jpg --format voc -o results/\n"
               "  dpm-detect person_final.mat photos/ --format voc -o comp3_det_test_person.txt -j 2\n"
               "  dpm-detect model.npz frame.png --upsample 2 --draw out/ --parts",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?", metavar="MODEL[,MODEL...]",
                   help="model file (.mat from voc-release3.1 or .npz from dpm-train), the name of a built-in "
                        "model or of a group of them (see --list-models); several, separated by commas, "
                        "run in one pass (one model per class)")
    p.add_argument("inputs", nargs="*", metavar="IMAGE_OR_DIR", help="image files and/or folders of images")
    p.add_argument("--format", choices=("csv", "json", "voc"), default="csv",
                   help="output format: csv (default), json, or voc (PASCAL results file: "
                        "'image_id score x1 y1 x2 y2' per box; with several models one file per class, "
                        "comp3_det_<split>_<class>.txt, in the folder given by -o)")
    p.add_argument("--split", default="test",
                   help="with --format voc and several models: the <split> of the file names; default test")
    p.add_argument("-o", "--output", metavar="FILE_OR_DIR",
                   help="write detections here (default: stdout); written atomically and locked "
                        "against a second run; on Ctrl+C the finished images are kept, marked "
                        "partial (see docs/output.md)")
    p.add_argument("--threshold", type=float, default=None,
                   help="score threshold (default: the model's own, model.thresh)")
    p.add_argument("--upsample", type=int, default=1, metavar="K",
                   help="detect on the image enlarged K times (for objects smaller than the model); default 1")
    p.add_argument("--nms", type=float, default=0.5, metavar="OVERLAP",
                   help="non-maximum suppression overlap (original rule: intersection / area of the "
                        "lower-scoring box); 1 disables it; default 0.5")
    p.add_argument("--no-bbox-prediction", action="store_true",
                   help="report root boxes instead of the regressor's predicted boxes")
    p.add_argument("--draw", metavar="OUTDIR",
                   help="save each image with its boxes drawn into OUTDIR as <stem>.png "
                        "(<stem>-2.png, ... when inputs share a stem)")
    p.add_argument("--parts", action="store_true", help="with --draw: draw the part boxes too")
    p.add_argument("-j", "--jobs", type=int, default=1, metavar="N",
                   help="process images in parallel on N cores (-1: all); default 1")
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
    if not args.inputs:
        parser.error("no images given (IMAGE_OR_DIR...)")
    if args.upsample < 1:
        raise ValueError(f"--upsample must be a positive integer, got {args.upsample}")
    if not 0 <= args.nms <= 1:
        raise ValueError(f"--nms must be an overlap between 0 and 1, got {args.nms}")

    from ..batch import detect_files, list_images
    from ..multiclass import as_model_dict
    from ..output import Drawings, PerClassWriter, ResultsWriter, write_batch

    models = resolve_models(args.model)
    model = models[0] if len(models) == 1 else tuple(models)
    classes = list(as_model_dict(models)) if len(models) > 1 else []
    if classes and args.format == "voc":
        if args.output is None:
            raise ValueError("--format voc with several models writes one file per class: give a folder "
                             "with -o")
    paths = list_images(args.inputs)
    if classes and args.format == "voc":
        writer = PerClassWriter(args.output, classes, split=args.split, total=len(paths))
    else:
        writer = ResultsWriter(args.output, args.format, total=len(paths))
    drawings = Drawings(args.draw, paths, parts=args.parts) if args.draw else None
    log.info("%s: %d image(s), %d model(s) (%s), threshold %s", "detecting", len(paths), len(models),
             args.model, "the models' own" if args.threshold is None else f"{args.threshold:g}")
    t0 = time.perf_counter()
    with writer as out:
        status = write_batch(
            detect_files(paths, model, n_jobs=args.jobs, progress=show_progress(args),
                         threshold=args.threshold, upsample=args.upsample,
                         nms=None if args.nms >= 1 else args.nms,
                         bbox_prediction=not args.no_bbox_prediction),
            out, drawings=drawings)
    log.info("%d image(s) written, %.3f s per image%s", status.written,
             (time.perf_counter() - t0) / max(1, status.done),
             " (drawing included)" if drawings is not None else "")
    return report_failures(PROG, status)


def main(argv=None) -> int:
    return run(PROG, _main, argv)
