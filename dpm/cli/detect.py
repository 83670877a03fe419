"""``dpm-detect MODEL IMAGE_OR_DIR...``: detect objects in images."""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from ._common import EXIT_ERROR, EXIT_OK, add_verbosity, run, setup_logging, show_progress

log = logging.getLogger("dpm.cli.detect")

PROG = "dpm-detect"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Detect objects with a Deformable Part Model (voc-release3.1 .mat or dpm .npz model). "
                    "Boxes are 1-based inclusive pixel coordinates [x1 y1 x2 y2], as in PASCAL VOC.",
        epilog="examples:\n"
               "  dpm-detect person image.jpg\n"
               "  dpm-detect person_final.mat photos/ --format voc -o comp3_det_test_person.txt -j 2\n"
               "  dpm-detect model.npz frame.png --upsample 2 --draw out/ --parts",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?", help="model file (.mat from voc-release3.1 or .npz from dpm-train), "
                                 "or the name of a built-in model (see --list-models)")
    p.add_argument("inputs", nargs="*", metavar="IMAGE_OR_DIR", help="image files and/or folders of images")
    p.add_argument("--format", choices=("csv", "json", "voc"), default="csv",
                   help="output format: csv (default), json, or voc (PASCAL results file: "
                        "'image_id score x1 y1 x2 y2' per box)")
    p.add_argument("-o", "--output", metavar="FILE", help="write detections here (default: stdout)")
    p.add_argument("--threshold", type=float, default=None,
                   help="score threshold (default: the model's own, model.thresh)")
    p.add_argument("--upsample", type=int, default=1, metavar="K",
                   help="detect on the image enlarged K times (for objects smaller than the model); default 1")
    p.add_argument("--nms", type=float, default=0.5, metavar="OVERLAP",
                   help="non-maximum suppression overlap (original rule: intersection / area of the "
                        "lower-scoring box); 1 disables it; default 0.5")
    p.add_argument("--no-bbox-prediction", action="store_true",
                   help="report root boxes instead of the regressor's predicted boxes")
    p.add_argument("--draw", metavar="OUTDIR", help="save each image with its boxes drawn into OUTDIR")
    p.add_argument("--parts", action="store_true", help="with --draw: draw the part boxes too")
    p.add_argument("-j", "--jobs", type=int, default=1, metavar="N",
                   help="process images in parallel on N cores (-1: all); default 1")
    p.add_argument("--list-models", action="store_true", help="list the built-in models and exit")
    add_verbosity(p)
    return p


def _fmt(x: float) -> str:
    # Full precision: the shortest text that reads back to the same float.
    return repr(float(x))


def _write_csv(out, results):
    out.write("image,score,x1,y1,x2,y2,component\n")
    for path, dets in results:
        for i in range(len(dets)):
            b = dets.boxes[i]
            out.write(",".join([str(path), _fmt(dets.scores[i])] + [_fmt(v) for v in b]
                               + [str(int(dets.components[i]) + 1)]) + "\n")


def _write_voc(out, results):
    for path, dets in results:
        for i in range(len(dets)):
            b = dets.boxes[i]
            out.write(" ".join([Path(path).stem, _fmt(dets.scores[i])] + [_fmt(v) for v in b]) + "\n")


def _write_json(out, results):
    doc = []
    for path, dets in results:
        doc.append({
            "image": str(path),
            "height": int(dets.image_shape[0]), "width": int(dets.image_shape[1]),
            "detections": [{
                "score": float(dets.scores[i]),
                "box": [float(v) for v in dets.boxes[i]],
                "component": int(dets.components[i]) + 1,
                "root_box": [float(v) for v in dets.root_boxes[i]],
                "part_boxes": [[float(v) for v in pb] for pb in dets.part_boxes[i]],
            } for i in range(len(dets))],
        })
    json.dump({"box_convention": "1-based inclusive pixels [x1, y1, x2, y2]; components 1-based",
               "images": doc}, out, indent=1)
    out.write("\n")


WRITERS = {"csv": _write_csv, "voc": _write_voc, "json": _write_json}


def _main(argv) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(PROG, args)
    from ..data import builtin_models, resolve_model

    if args.list_models:
        for name, desc in builtin_models().items():
            print(f"{name}\t{desc}")
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

    model = resolve_model(args.model)
    paths = list_images(args.inputs)
    draw_dir = None
    if args.draw:
        draw_dir = Path(args.draw)
        draw_dir.mkdir(parents=True, exist_ok=True)
        from ..vis import save_detections_image  # noqa: F401  (fail early if drawing is unavailable)

    log.info("%s: %d image(s), model %s, threshold %g", "detecting", len(paths), args.model,
             model.thresh if args.threshold is None else args.threshold)
    results, failures = [], []
    t0 = time.perf_counter()
    for path, res in detect_files(paths, model, n_jobs=args.jobs, progress=show_progress(args),
                                  threshold=args.threshold, upsample=args.upsample,
                                  nms=None if args.nms >= 1 else args.nms,
                                  bbox_prediction=not args.no_bbox_prediction):
        if isinstance(res, Exception):
            failures.append((path, res))
            log.warning("%s", " ".join(str(res).split()))
            continue
        results.append((path, res))
        if draw_dir is not None:
            _draw(draw_dir, path, res, args.parts)
    elapsed = time.perf_counter() - t0

    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    try:
        WRITERS[args.format](out, results)
    finally:
        if args.output:
            out.close()
    ndet = sum(len(d) for _, d in results)
    log.info("%d detection(s) in %d image(s), %.3f s per image%s", ndet, len(results),
             elapsed / max(1, len(results) + len(failures)),
             " (drawing included)" if draw_dir is not None else "")
    if failures:
        print(f"{PROG}: error: {len(failures)} of {len(paths)} image(s) failed:", file=sys.stderr)
        for path, exc in failures:
            print(f"  {' '.join(str(exc).split())}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


def _draw(draw_dir: Path, path: Path, dets, parts: bool):
    from ..image import read_image
    from ..vis import save_detections_image

    target = draw_dir / (Path(path).stem + ".png")
    save_detections_image(target, read_image(path), dets, parts=parts)


def main(argv=None) -> int:
    return run(PROG, _main, argv)
