"""``dpm-dataset convert SRC DST --to coco|voc``: move annotations between the VOC and COCO formats.

The conversion itself is :func:`coco.voc_to_coco` and :func:`coco.coco_to_voc`
(see docs/datasets.md for the rules); this command only parses arguments.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ._common import EXIT_OK, add_verbosity, run, setup_logging

PROG = "dpm-dataset"
log = logging.getLogger("dpm.cli.dataset")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Dataset tools. 'convert' writes the annotations of a VOC folder as COCO instances files "
                    "(one per split), or a COCO instances file as a VOC folder.",
        epilog="examples:\n"
               "  dpm-dataset convert person-voc person-coco --to coco\n"
               "      -> person-coco/{train,val,trainval,test}.json; images stay in person-voc/JPEGImages\n"
               "  dpm-dataset convert instances_val.json VOCval --to voc --images val2017 --split val\n"
               "      -> VOCval/Annotations/*.xml, VOCval/ImageSets/Main/val.txt, VOCval/JPEGImages (links)",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    c = sub.add_parser("convert", help="VOC folder -> COCO instances files, or COCO file -> VOC folder",
                       description="Convert annotations between the VOC and COCO formats.")
    c.add_argument("src", metavar="SRC", help="VOC year folder (--to coco) or COCO instances file (--to voc)")
    c.add_argument("dst", metavar="DST", help="output folder (created)")
    c.add_argument("--to", required=True, choices=("coco", "voc"), help="the format to write")
    c.add_argument("--splits", nargs="+", metavar="NAME",
                   help="--to coco: the splits to convert (default: every split in ImageSets/Main)")
    c.add_argument("--images", metavar="DIR", help="--to voc: the folder of the COCO file's images")
    c.add_argument("--split", metavar="NAME",
                   help="--to voc: name of the split file written (default: the COCO file's name, e.g. val)")
    c.add_argument("--image-files", choices=("link", "copy", "none"), default="link",
                   help="--to voc: put the images into JPEGImages/ as symbolic links (default), copies, "
                        "or not at all")
    add_verbosity(c)
    return p


def _main(argv) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(PROG, args)
    import coco

    if args.to == "coco":
        for opt in ("images", "split"):
            if getattr(args, opt) is not None:
                parser.error(f"--{opt} only applies with --to voc")
        written = coco.voc_to_coco(args.src, args.dst, splits=args.splits)
        for path in written:
            print(path)
    else:
        if args.splits is not None:
            parser.error("--splits only applies with --to coco (give --split NAME)")
        if args.images is None and args.image_files != "none":
            parser.error("--to voc needs --images DIR (or --image-files none)")
        split = args.split or Path(args.src).stem
        out = coco.coco_to_voc(args.src, args.images or ".", args.dst, split=split, images=args.image_files)
        print(out)
    sys.stdout.flush()
    return EXIT_OK


def main(argv=None) -> int:
    """Entry point of ``dpm-dataset``; returns the exit status."""
    return run(PROG, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
