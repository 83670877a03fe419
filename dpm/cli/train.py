"""``dpm-train CLASS --voc DIR``: train a Deformable Part Model (voc-release3.1 schedule)."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ._common import (EXIT_ERROR, EXIT_OK, USER_ERRORS, add_execution, add_verbosity, cluster_executor,
                      error_line, jobs, run, setup_logging, show_progress)

PROG = "dpm-train"
log = logging.getLogger("dpm.cli.train")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Train a Deformable Part Model for each CLASS on a PASCAL VOC-layout dataset or a COCO "
                    "instances file with the "
                    "voc-release3.1 schedule (root init, latent positives, hard negatives, parts, "
                    "bounding-box regression). Every stage ends with a checkpoint: running the same "
                    "command again resumes after the last finished stage.",
        epilog="examples:\n  dpm-train person --voc VOC2007 --components 1 -j 2\n"
               "  dpm-train person --coco trainval.json --images JPEGImages --negatives train.json -j 2\n"
               "  dpm-train all --voc VOC2007 --out models/ --scheduler tcp://head:8786\n\n"
               "--voc: positives from split trainval, negatives from split train (pascal_data.m).\n"
               "--coco: positives and negatives from every image of the file, unless --positives or\n"
               "--negatives name a split file (a COCO JSON of the same images, or a list of image ids).\n\n"
               "Several classes (or 'all': every class of the trainval split) train concurrently on a\n"
               "Dask cluster (one after the other on local cores), each with its own model\n"
               "<OUT>/<CLASS>.npz and checkpoints <OUT>/<CLASS>.npz.cache; --out then names a folder\n"
               "(default: the current one).",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("classes", nargs="+", metavar="CLASS",
                   help="object class, e.g. person; several, or 'all' for every class of the dataset")
    d = p.add_mutually_exclusive_group(required=True)
    d.add_argument("--voc", metavar="DIR", help="VOC year folder (Annotations, ImageSets/Main, JPEGImages)")
    d.add_argument("--coco", metavar="FILE", help="COCO instances file (with --images)")
    p.add_argument("--images", metavar="DIR", help="with --coco: the folder of the images")
    p.add_argument("--positives", metavar="SPLIT",
                   help="with --coco: images to take positives from (COCO JSON or id list; default: all)")
    p.add_argument("--negatives", metavar="SPLIT",
                   help="with --coco: images to take negatives from (COCO JSON or id list; default: all)")
    p.add_argument("--components", type=int, default=1, metavar="N", help="mixture components (default 1)")
    p.add_argument("--out", metavar="MODEL",
                   help="output model file (default: CLASS.npz); with several classes, a folder for "
                        "<CLASS>.npz (created if needed)")
    p.add_argument("--cache-dir", metavar="DIR",
                   help="checkpoints (default: MODEL.cache next to the model); with several classes, "
                        "DIR/<CLASS>")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0): same seed, same model")
    add_execution(p, "latent search and mining")
    p.add_argument("--classes-at-once", type=int, default=None, metavar="K",
                   help="with several classes on a cluster: train at most K at once (each holds its "
                        "examples and runs its learner on this machine: about 2 GiB and one core per "
                        "class); default all")
    p.add_argument("--restart", action="store_true", help="discard the checkpoints and start over")
    p.add_argument("--remove-checkpoints", action="store_true",
                   help="delete the checkpoint folder once the model is written (it can take gigabytes; "
                        "without it, a rerun of a finished command returns at once)")
    p.add_argument("--no-cascade", action="store_true",
                   help="skip the last stage, the star-cascade (part order and pruning thresholds from the "
                        "training positives, for faster detection; docs/cascade-building.md)")
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
    if args.components < 1:
        raise ValueError(f"--components must be at least 1, got {args.components}")
    if args.updates is not None and args.updates < 1:
        raise ValueError(f"--updates must be positive, got {args.updates}")
    if args.classes_at_once is not None and args.classes_at_once < 1:
        raise ValueError(f"--classes-at-once must be at least 1, got {args.classes_at_once}")
    if args.box_scale is not None and not all(0 < f <= 4 for f in args.box_scale):
        raise ValueError(f"--box-scale factors must be in (0, 4], got {args.box_scale[0]:g} {args.box_scale[1]:g}")
    source = _Source(args)
    classes = source.classes(args.classes)
    several = len(classes) > 1
    if several:
        folder = Path(args.out or ".")
        folder.mkdir(parents=True, exist_ok=True)
        jobs_ = {c: (folder / f"{c}.npz", Path(args.cache_dir) / c if args.cache_dir else None) for c in classes}
    else:
        out = Path(args.out or f"{classes[0]}.npz")
        if not out.parent.exists():
            raise FileNotFoundError(f"{out.parent}: output folder does not exist")
        jobs_ = {classes[0]: (out, args.cache_dir)}
    with cluster_executor(args) as executor:
        if not several:
            cls, (out, cache) = next(iter(jobs_.items()))
            _train_one(args, source, cls, out, cache, executor, show_progress(args))
            return EXIT_OK
        return _train_many(args, source, jobs_, executor)


class _Source:
    """The dataset given on the command line (--voc or --coco), as training data per class."""

    def __init__(self, args):
        self.args = args
        if args.voc is not None:
            self.voc = Path(args.voc).absolute()   # workers of a cluster have their own working folder
            if not self.voc.is_dir():
                raise FileNotFoundError(f"{args.voc}: no such dataset folder")

    def classes(self, names) -> list[str]:
        if names == ["all"]:
            if self.args.voc is not None:
                import voc as vocpkg

                found = vocpkg.VOCDataset(self.voc).class_names("trainval")
            else:
                import coco

                found = [c.name for c in coco.read_instances(self.args.coco).categories]
            if not found:
                raise ValueError("the dataset holds no objects: no class to train")
            return found
        if "all" in names:
            raise ValueError("'all' trains every class of the dataset: give it alone")
        return list(dict.fromkeys(names))

    def training_data(self, cls):
        a = self.args
        if a.voc is not None:
            import voc

            return voc.training_data(self.voc, cls)
        import coco

        return coco.training_data(Path(a.coco).absolute(), Path(a.images).absolute(), cls,
                                  positive_ids=a.positives, negative_ids=a.negatives)


def _train_one(args, source, cls, out, cache_dir, executor, progress):
    from ..training.schedule import train

    config = None
    if args.box_scale is not None or args.no_cascade:
        from ..training.config import TrainConfig

        config = TrainConfig(box_scale=tuple(args.box_scale or (1.0, 1.0)), cascade=not args.no_cascade)
    model, summary = train(source.training_data(cls), cls, components=args.components, out=out,
                           cache_dir=cache_dir, seed=args.seed, n_jobs=jobs(args), restart=args.restart,
                           max_updates=args.updates, progress=progress, config=config,
                           keep_checkpoints=not args.remove_checkpoints, executor=executor)
    log.info("summary of %s:\n%s", cls, summary.format())
    print(f"{PROG}: wrote {out} ({len(model.components)} component(s), "
          f"{sum(len(c.parts) for c in model.components)} parts, threshold {model.thresh:.4f})", file=sys.stderr)


def _train_many(args, source, jobs_, executor) -> int:
    """Every class: concurrently on a cluster (the learners run here), one after the other locally."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    class_of = threading.local()

    class Named(logging.Filter):
        def filter(self, record):
            cls = getattr(class_of, "name", None)
            if cls:
                record.msg, record.args = f"{cls}: {record.getMessage()}", None
            return True

    def one(item):
        cls, (out, cache) = item
        class_of.name = cls
        try:
            _train_one(args, source, cls, out, cache, executor, False)
            return cls, None
        except USER_ERRORS as exc:
            return cls, error_line(exc)
        finally:
            class_of.name = None

    named = Named()
    for h in logging.getLogger().handlers:
        h.addFilter(named)
    log.info("training %d classes %s: %s", len(jobs_), "concurrently on the cluster" if executor else
             "one after the other", " ".join(jobs_))
    try:
        if executor is not None:
            at_once = min(len(jobs_), args.classes_at_once or len(jobs_))
            pool = ThreadPoolExecutor(max_workers=at_once, thread_name_prefix="dpm-train")
            try:
                results = list(pool.map(one, jobs_.items()))
            finally:  # on Ctrl+C, do not wait: closing the cluster's client ends the other classes' work
                pool.shutdown(wait=False, cancel_futures=True)
        else:
            results = [one(item) for item in jobs_.items()]
    finally:
        for h in logging.getLogger().handlers:
            h.removeFilter(named)
    failed = [(c, m) for c, m in results if m is not None]
    for cls, msg in failed:
        print(f"{PROG}: error: {cls}: {msg}", file=sys.stderr)
    return EXIT_ERROR if failed else EXIT_OK


def main(argv=None) -> int:
    return run(PROG, _main, argv)
