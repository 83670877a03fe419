"""``dpm-cascade MODEL --voc DIR -o OUT``: add a star-cascade to a model from its training positives."""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from ._common import EXIT_OK, add_execution, add_verbosity, cluster_executor, jobs, run, setup_logging, show_progress

PROG = "dpm-cascade"
log = logging.getLogger("dpm.cli.cascade")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Add a star-cascade (Felzenszwalb, Girshick, McAllester, CVPR 2010) to a model: the "
                    "positives of a PASCAL VOC-layout dataset or a COCO instances file are detected with the "
                    "model and with its projection onto the PCA of HOG, and the part order and the pruning "
                    "thresholds are learned from those scoring at least the threshold. The model is written "
                    "with its cascade to OUT.",
        epilog="examples:\n  dpm-cascade person --voc person-voc -o person_cascade.npz -j 2\n"
               "  dpm-cascade person.npz --coco trainval.json --images JPEGImages -o person_cascade.npz\n\n"
               "Use the positives the model was trained on (--voc: the trainval split, as dpm-train).",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL", help="model file (.npz or voc-release3.1 .mat) or built-in model name")
    d = p.add_mutually_exclusive_group(required=True)
    d.add_argument("--voc", metavar="DIR", help="VOC year folder (Annotations, ImageSets/Main, JPEGImages)")
    d.add_argument("--coco", metavar="FILE", help="COCO instances file (with --images)")
    p.add_argument("--images", metavar="DIR", help="with --coco: the folder of the images")
    p.add_argument("--split", default=None, metavar="NAME",
                   help="--voc: image set to take the positives from (default trainval); --coco: a split file, "
                        "COCO JSON or a list of image ids (default: every image)")
    p.add_argument("--class", dest="cls", metavar="NAME", help="class of the positives (default: the model's)")
    p.add_argument("-o", "--out", required=True, metavar="OUT", help="output model file (.npz)")
    p.add_argument("--threshold", type=float, default=None, metavar="T",
                   help="global detection threshold the cascade is built for (default: the model's own)")
    p.add_argument("--dims", type=int, default=5, metavar="K",
                   help="principal directions of HOG the projected filters keep (default 5, as the release)")
    add_execution(p, "positives")
    add_verbosity(p)
    return p


def _positives(args, cls):
    if args.voc is not None:
        import voc

        root = Path(args.voc).absolute()   # workers of a cluster have their own working folder
        if not root.is_dir():
            raise FileNotFoundError(f"{args.voc}: no such dataset folder")
        return voc.training_data(root, cls, positive_split=args.split or "trainval").positives
    import coco

    return coco.training_data(Path(args.coco).absolute(), Path(args.images).absolute(), cls,
                              positive_ids=args.split).positives


def _main(argv) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if (args.coco is None) != (args.images is None):
        parser.error("--coco and --images go together (the instances file and the folder of its images)")
    setup_logging(PROG, args)
    out = Path(args.out)
    if not out.parent.exists():
        raise FileNotFoundError(f"{out.parent}: output folder does not exist")
    from ..cascade.build import build_cascade
    from ..data import resolve_model
    from ..model import save_model

    model = resolve_model(args.model)
    cls = args.cls or model.class_name
    if not cls:
        raise ValueError(f"{args.model}: the model does not name its class; give it with --class")
    positives = _positives(args, cls)
    t0 = time.perf_counter()
    with cluster_executor(args) as executor:
        model = build_cascade(model, positives, threshold=args.threshold, dims=args.dims, n_jobs=jobs(args),
                              executor=executor, progress=show_progress(args))
    save_model(model, out)
    c = model.cascade
    for ci, comp in enumerate(c.components):
        n = len(comp.order) // 2
        log.info("component %d: part order %s, thresholds %s", ci, comp.order[1:n].tolist(),
                 " ".join(f"{v:.4f}" for v in comp.thresholds))
    print(f"{PROG}: wrote {out} ({model.info['cascade']}; threshold {c.threshold:.4f}; "
          f"{time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    return EXIT_OK


def main(argv=None) -> int:
    return run(PROG, _main, argv)
