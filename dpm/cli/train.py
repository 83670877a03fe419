"""``dpm-train CLASS --voc DIR`` or ``--coco FILE --images DIR``: train a Deformable Part Model.

The command only builds the training data with the dataset package
(:func:`voc.training_data` or :func:`coco.training_data`) and calls
:func:`dpm.train` (the voc-release3.1 schedule).
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ._common import EXIT_OK, add_verbosity, run, setup_logging, show_progress

PROG = "dpm-train"
log = logging.getLogger("dpm.cli.train")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Train a Deformable Part Model for one class on a PASCAL VOC-layout dataset or a COCO "
                    "instances file with the "
                    "voc-release3.1 schedule (root init, latent positives, hard negatives, parts, "
                    "bounding-box regression). Every stage ends with a checkpoint: running the same "
                    "command again resumes after the last finished stage.",
        epilog="examples:\n  dpm-train person --voc VOC2007 --components 1 -j 2\n"
               "  dpm-train person --coco trainval.json --images JPEGImages --negatives train.json -j 2\n\n"
               "--voc: positives from split trainval, negatives from split train (pascal_data.m).\n"
               "--coco: positives and negatives from every image of the file, unless --positives or\n"
               "--negatives name a split file (a COCO JSON of the same images, or a list of image ids).",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("cls", metavar="CLASS", help="object class, e.g. person")
    d = p.add_mutually_exclusive_group(required=True)
    d.add_argument("--voc", metavar="DIR", help="VOC year folder (Annotations, ImageSets/Main, JPEGImages)")
    d.add_argument("--coco", metavar="FILE", help="COCO instances file (with --images)")
    p.add_argument("--images", metavar="DIR", help="with --coco: the folder of the images")
    p.add_argument("--positives", metavar="SPLIT",
                   help="with --coco: images to take positives from (COCO JSON or id list; default: all)")
    p.add_argument("--negatives", metavar="SPLIT",
                   help="with --coco: images to take negatives from (COCO JSON or id list; default: all)")
    p.add_argument("--components", type=int, default=1, metavar="N", help="mixture components (default 1)")
    p.add_argument("--out", metavar="MODEL", help="output model file (default: CLASS.npz)")
    p.add_argument("--cache-dir", metavar="DIR", help="checkpoints (default: MODEL.cache next to the model)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0): same seed, same model")
    p.add_argument("-j", "--jobs", type=int, default=1, metavar="N",
                   help="processes for latent search and mining (-1: all cores); default 1")
    p.add_argument("--restart", action="store_true", help="discard the checkpoints and start over")
    p.add_argument("--remove-checkpoints", action="store_true",
                   help="delete the checkpoint folder once the model is written (it can take gigabytes; "
                        "without it, a rerun of a finished command returns at once)")
    p.add_argument("--box-scale", type=float, nargs=2, default=None, metavar=("W", "H"),
                   help="the annotated boxes include a margin around the object: predict boxes covering the "
                        "central W x H fraction of them (e.g. 0.6 0.75 for INRIA's 64x128 windows, which hold a "
                        "person 96 px tall); default 1 1, as the original")
    p.add_argument("--updates", type=int, default=None, metavar="N",
                   help="SGD updates per learner call (default 5,000,000 as in learn.cc)")
    add_verbosity(p)
    return p


def _main(argv) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if (args.coco is None) != (args.images is None):
        parser.error("--coco and --images go together (the instances file and the folder of its images)")
    if args.coco is None and (args.positives or args.negatives):
        parser.error("--positives and --negatives only apply with --coco")
    setup_logging(PROG, args)
    from ..training.pipeline import train

    if args.components < 1:
        raise ValueError(f"--components must be at least 1, got {args.components}")
    if args.updates is not None and args.updates < 1:
        raise ValueError(f"--updates must be positive, got {args.updates}")
    out = Path(args.out or f"{args.cls}.npz")
    if not out.parent.exists():
        raise FileNotFoundError(f"{out.parent}: output folder does not exist")
    config = None
    if args.box_scale is not None and not all(0 < f <= 4 for f in args.box_scale):
        raise ValueError(f"--box-scale factors must be in (0, 4], got {args.box_scale[0]:g} {args.box_scale[1]:g}")
    if args.box_scale is not None:
        from ..training.config import TrainConfig

        config = TrainConfig(box_scale=tuple(args.box_scale))
    if args.voc is not None:
        import voc

        if not Path(args.voc).is_dir():
            raise FileNotFoundError(f"{args.voc}: no such dataset folder")
        data = voc.training_data(args.voc, args.cls)
    else:
        import coco

        data = coco.training_data(args.coco, args.images, args.cls, positive_ids=args.positives,
                                  negative_ids=args.negatives)
    model, summary = train(data, args.cls, components=args.components, out=out, cache_dir=args.cache_dir,
                           seed=args.seed, n_jobs=args.jobs, restart=args.restart, max_updates=args.updates,
                           progress=show_progress(args), config=config,
                           keep_checkpoints=not args.remove_checkpoints)
    log.info("summary:\n%s", summary.format())
    print(f"{PROG}: wrote {out} ({len(model.components)} component(s), "
          f"{sum(len(c.parts) for c in model.components)} parts, threshold {model.thresh:.4f})", file=sys.stderr)
    return EXIT_OK


def main(argv=None) -> int:
    return run(PROG, _main, argv)
