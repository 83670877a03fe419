"""``dpm-convert IN OUT``: models in and out of OpenCV's cascade DPM XML, by file type."""
from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path

from ._common import EXIT_OK, add_verbosity, run, setup_logging

PROG = "dpm-convert"
log = logging.getLogger("dpm.cli.convert")
MODEL_SUFFIXES = (".npz", ".mat")
SUPPORTED = ("supported: a dpm .npz model, a voc-release3.1 .mat model, a voc-release5 star model .mat or a "
             "built-in model name -> OpenCV .xml; an OpenCV DPM .xml -> dpm .npz")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Convert a model by file type: a dpm model (.npz, with its star-cascade if it has one), a "
                    "voc-release3.1 or voc-release5 star model (.mat) or a built-in model name to the cascade "
                    "DPM XML that OpenCV's cv::dpm::DPMDetector reads (.xml); an OpenCV DPM XML file back "
                    "to a dpm model (.npz). See docs/opencv.md for what each format holds.",
        epilog="examples:\n  dpm-convert person person.xml\n  dpm-convert trained/person.npz person.xml\n"
               "  dpm-convert inriaperson.xml inriaperson.npz",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", metavar="IN", help="model to read (.npz, .mat, .xml or a built-in model name)")
    p.add_argument("output", metavar="OUT", help="file to write (.xml for OpenCV, .npz for dpm)")
    add_verbosity(p)
    return p


def convert(source, out) -> Path:
    """Convert ``source`` (a path or a built-in model name) to ``out`` by their suffixes; the path written.

    Raises ``ValueError`` (one line naming the file and what is supported) for other combinations.
    """
    from ..data import resolve_model
    from ..model import save_model
    from ..model.opencv import read_opencv_xml, write_opencv_xml

    out = Path(out)
    src = Path(source)
    if not out.parent.exists():
        raise FileNotFoundError(f"{out.parent}: output folder does not exist")
    target = out.suffix.lower()
    if src.suffix.lower() == ".xml":
        if target != ".npz":
            raise ValueError(f"{out}: an OpenCV .xml model converts to a dpm .npz model; {SUPPORTED}")
        if not src.exists():
            raise FileNotFoundError(f"{src}: no such model file")
        return save_model(read_opencv_xml(src), out)
    if target != ".xml":
        raise ValueError(f"{out}: a {src.suffix or 'built-in'} model converts to OpenCV .xml; {SUPPORTED}")
    if src.suffix and src.suffix.lower() not in MODEL_SUFFIXES:
        raise ValueError(f"{src}: unknown model file type {src.suffix!r}; {SUPPORTED}")
    return write_opencv_xml(resolve_model(source), out)


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(PROG, args)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = convert(args.input, args.output)
    for w in caught:
        log.warning("%s", " ".join(str(w.message).split()))
    print(f"{PROG}: wrote {out}", file=sys.stderr)
    return EXIT_OK


def main(argv=None) -> int:
    return run(PROG, _main, argv)
