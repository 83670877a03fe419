"""``dpm-learn C J hdr dat mod inf lob``: a drop-in for voc-release3.1's ``learn`` binary.

``train.m`` runs ``./learn C J hdrfile datfile modfile inffile lobfile``.  This
command takes the same seven arguments, reads the same files and writes the
same outputs: the final weights over ``modfile`` (which also holds the initial
weights) and one ``label<TAB>score<TAB>unique`` line per example in
``inffile``.  Exit status: 0 on success, 1 on any error (one line on stderr,
as learn.cc's ``check`` did, wrong argument counts included), 130 on Ctrl+C.

Additions: ``--seed`` (learn.cc seeded from the clock; the default here is a
fixed seed, so runs repeat), ``--iter`` (learn.cc's ITER), ``-v``/``-q``.
"""
import argparse
import logging
import sys

from ._common import EXIT_ERROR, EXIT_OK, add_verbosity, run, setup_logging, show_progress

PROG = "dpm-learn"
DEFAULT_SEED = 0

log = logging.getLogger(PROG)


def _number(text):
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def _parser():
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Train a latent SVM on voc-release3.1 learner files (a drop-in for train.m's `learn`).",
        epilog="Reads hdr, dat, mod (initial weights) and lob; writes mod (final weights) and inf.")
    p.add_argument("C", type=_number, help="loss weight (train.m: 0.002 per component)")
    p.add_argument("J", type=_number, help="extra weight of the positive loss")
    for name, what in (("hdr", "header file"), ("dat", "examples"), ("mod", "weights: read, then overwritten"),
                       ("inf", "info file written: label, score, unique flag per example"),
                       ("lob", "lower bounds")):
        p.add_argument(name, help=what)
    p.add_argument("--seed", type=int, default=DEFAULT_SEED,
                   help=f"seed of the example order (default {DEFAULT_SEED}; learn.cc used the clock)")
    p.add_argument("--iter", type=int, default=None, metavar="N",
                   help="number of updates (learn.cc's ITER, 5000000)")
    add_verbosity(p)
    return p


def _body(argv):
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        # learn.cc exits with 1 on a wrong command line, as on every other error.
        return EXIT_ERROR if exc.code not in (0, None) else EXIT_OK
    setup_logging(PROG, args)

    import numpy as np

    from .. import learnfiles as lf
    from ..learn import ITER, fit_lsvm

    hdr, layout = lf.read_layout(args.hdr, args.lob)
    log.info("%d examples with label size %d and %d blocks", hdr.num, hdr.labelsize, layout.num_blocks)
    if hdr.num == 0:
        raise ValueError(f"{args.hdr}: the header announces 0 examples; the learner needs at least one")
    init = lf.read_vector(args.mod, layout.num_weights, what="weights")
    examples = lf.read_dat(args.dat, hdr)
    max_updates = ITER if args.iter is None else args.iter

    bar = None
    progress = None
    if show_progress(args):
        try:
            from tqdm import tqdm
        except ImportError:  # progress is optional
            tqdm = None
        if tqdm is not None:
            bar = tqdm(total=max_updates, unit="upd", unit_scale=True, desc=PROG, disable=None,
                       file=sys.stderr, leave=False)

            def progress(done, total):
                bar.update(min(done, total) - bar.n)
    try:
        result = fit_lsvm(examples, layout, args.C, args.J, seed=args.seed, max_updates=max_updates,
                          init=init, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    lf.write_vector(args.mod, result.w)
    lf.write_inf(args.inf, examples.labels, result.scores, result.unique.astype(np.int32))
    log.info("wrote %s and %s", args.mod, args.inf)
    return EXIT_OK


def main(argv=None) -> int:
    """Entry point of ``dpm-learn``; returns the exit status."""
    return run(PROG, _body, argv)


if __name__ == "__main__":
    sys.exit(main())
