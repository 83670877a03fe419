"""``dpm-show``: look at a model (``visualizemodel.m``) or at an image's HOG features.

Examples::

    dpm-show person_final.mat                      # window if a display exists, else person_final.png
    dpm-show person.npz --out person.png --components 2 --negative
    dpm-show voc2007/car                           # a built-in model (dpm-detect --list-models)
    dpm-show --features 000061.jpg --out hog.png
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..limits import MAX_DPI, MAX_FIGURE_PIXELS, MAX_SHOW_SBIN
from ._common import EXIT_OK, add_verbosity, run, setup_logging

PROG = "dpm-show"
log = logging.getLogger("dpm.cli.show")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Show a DPM model as in voc-release3.1 visualizemodel.m (per component: root filter "
                    "glyphs, parts at their anchors, deformation costs), or the HOG features of an image. "
                    "Opens a window when a display is available and no --out is given; otherwise saves "
                    "an image file.")
    p.add_argument("model", nargs="?", metavar="MODEL",
                   help="model: a built-in name (voc2007/car, r5/voc2007/car, person, car; see dpm-detect "
                        "--list-models) or a file: a voc-release3.1 or voc-release5 .mat model, a dpm .npz "
                        "model, an OpenCV cascade DPM .xml")
    p.add_argument("--features", metavar="IMAGE",
                   help="show the HOG features of this image instead of a model")
    p.add_argument("-o", "--out", metavar="FILE",
                   help="save the figure here (format from the suffix, e.g. .png, .pdf, .svg); default when "
                        "no display: MODEL's stem + .png, or IMAGE's stem + _hog.png, in the current directory")
    p.add_argument("--components", type=int, nargs="+", metavar="N",
                   help="1-based components to draw, in this order (default: all)")
    p.add_argument("--negative", action="store_true",
                   help="draw the negative filter weights instead of the positive ones")
    p.add_argument("--sbin", type=int, default=8,
                   help=f"HOG cell size in pixels for --features: an even number, 2..{MAX_SHOW_SBIN} (default 8)")
    p.add_argument("--dpi", type=float, default=100.0,
                   help=f"resolution of the saved image, at most {MAX_DPI:g} (default 100); the figure may have "
                        f"at most {MAX_FIGURE_PIXELS:,} pixels")
    add_verbosity(p)
    return p


def _parse(argv):
    parser = build_parser()
    args = parser.parse_args(argv)
    if (args.model is None) == (args.features is None):
        parser.error("give either a MODEL or --features IMAGE")
    if args.features is not None and (args.components or args.negative):
        parser.error("--components and --negative apply to models, not to --features")
    if not 0 < args.dpi <= MAX_DPI:     # also refuses nan
        parser.error(f"--dpi must be a number in (0, {MAX_DPI:g}], got {args.dpi:g}")
    if not 2 <= args.sbin <= MAX_SHOW_SBIN or args.sbin % 2:
        parser.error(f"--sbin must be an even number in 2..{MAX_SHOW_SBIN}, got {args.sbin}")
    return args


def _components(spec, n):
    if spec is None:
        return list(range(n))
    bad = [c for c in spec if not 1 <= c <= n]
    if bad:
        raise ValueError(f"--components {' '.join(map(str, bad))}: out of range, the model has {n} "
                         f"component{'s' if n != 1 else ''} (1..{n})")
    return [c - 1 for c in spec]


def _body(argv) -> int:
    args = _parse(argv)
    setup_logging(PROG, args)
    from .. import vis

    if args.model is not None:
        source = Path(args.model)
        # a built-in name (voc2007/car) saves as voc2007_car.png; a file as its stem
        default_out = Path((source.stem if source.exists() else args.model.replace("/", "_")) + ".png")
    else:
        source = Path(args.features)
        default_out = Path(source.stem + "_hog.png")

    interactive = args.out is None and vis.display_available()
    out = None if interactive else Path(args.out) if args.out is not None else default_out
    if out is not None:
        vis.check_output_path(out)      # fail before any work

    # Load and check the input before opening anything.
    if args.model is not None:
        from ..data import resolve_model
        model = resolve_model(args.model)
        components = _components(args.components, len(model.components))
        log.debug("%r", model)
        def draw(fig=None):
            return vis.show_model(model, components, negative=args.negative, fig=fig)
    else:
        from ..image import read_image
        image = read_image(source)
        def draw(fig=None):
            return vis.show_features(image, args.sbin, fig=fig)

    if interactive:
        import matplotlib
        import matplotlib.pyplot as plt

        backend = matplotlib.get_backend()
        if backend.lower() in _non_interactive_backends():
            log.warning("no interactive matplotlib backend (using %s); saving to %s instead", backend, default_out)
            plt.close("all")
            out = default_out
            vis.check_output_path(out)
        else:
            fig = plt.figure()
            draw(fig)
            fig.canvas.manager.set_window_title(f"{PROG}: {source.name}")
            plt.show()
            return EXIT_OK
    fig = draw()
    vis.save_figure(fig, out, dpi=args.dpi)
    log.info("wrote %s", out)
    return EXIT_OK


def _non_interactive_backends() -> set:
    try:  # matplotlib >= 3.9
        from matplotlib.backends import BackendFilter, backend_registry
        names = backend_registry.list_builtin(BackendFilter.NON_INTERACTIVE)
    except ImportError:
        from matplotlib import rcsetup
        names = rcsetup.non_interactive_bk
    return {n.lower() for n in names}


def main(argv=None) -> int:
    """Entry point of ``bin/dpm-show``; returns the exit status."""
    return run(PROG, _body, argv)
