"""What every command shares: logging flags, one-line errors, exit codes."""
import argparse
import logging
import os
import sys
from contextlib import contextmanager

from .._io import LockedError
from ..execution import MissingDependency

EXIT_OK = 0
EXIT_ERROR = 1      # bad input or a failed run: one line on stderr, no traceback
EXIT_USAGE = 2      # argparse's own status for bad command lines

# Exceptions that mean "the user gave us something we cannot use" (or another run
# holds the output, or the input needs more memory than there is): reported as
# one line.  Anything else is a bug and keeps its traceback.
USER_ERRORS = (ValueError, OSError, EOFError, LockedError, MemoryError, MissingDependency)


def add_verbosity(parser: argparse.ArgumentParser) -> None:
    """Add ``-v/--verbose`` and ``-q/--quiet`` to a parser."""
    g = parser.add_mutually_exclusive_group()
    g.add_argument("-v", "--verbose", action="count", default=0,
                   help="more log output (repeat for debug output)")
    g.add_argument("-q", "--quiet", action="store_true",
                   help="only warnings and errors; no progress bar")


def setup_logging(prog: str, args) -> None:
    """Route the library's ``logging`` output to stderr at the level the flags ask for."""
    if getattr(args, "quiet", False):
        level = logging.WARNING
    elif getattr(args, "verbose", 0) >= 1:
        level = logging.DEBUG
    else:
        level = logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(prog))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("matplotlib", "PIL", "distributed"):
        logging.getLogger(name).setLevel(max(level, logging.WARNING))


class _Formatter(logging.Formatter):
    def __init__(self, prog):
        super().__init__()
        self.prog = prog

    def format(self, record):
        msg = record.getMessage()
        if record.levelno >= logging.WARNING:
            return f"{self.prog}: {record.levelname.lower()}: {msg}"
        return f"{self.prog}: {msg}"


def add_execution(parser, what: str = "images") -> None:
    """Add ``-j/--jobs``, ``--scheduler`` and ``--scheduler-file`` (where the work runs) to a parser."""
    parser.add_argument("-j", "--jobs", type=int, default=None, metavar="N",
                        help=f"process {what} on N local cores in parallel (-1: all); default 1")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="run on the Dask cluster of this scheduler (tcp://host:8786; default: "
                             "$DASK_SCHEDULER_ADDRESS when set and -j is not given); needs "
                             "pip install 'dpm[distributed]', see docs/cluster.md")
    parser.add_argument("--scheduler-file", metavar="FILE",
                        help="run on the Dask cluster whose scheduler wrote FILE "
                             "(dask scheduler --scheduler-file FILE)")


def add_max_memory(parser) -> None:
    """``--max-memory SIZE``: the memory detection aims to stay under (``dpm.detect(max_memory=)``)."""
    parser.add_argument("--max-memory", metavar="SIZE", type=_size, default=None,
                        help="memory each image's detection aims to stay under, e.g. 2G or 512M; larger "
                             "images are detected level by level in bands, with the same detections "
                             "(default: DPM_MAX_MEMORY, else 1.5G; per process with -j)")


def _size(text: str) -> int:
    from ..limits import parse_size

    try:
        value = parse_size(text, "--max-memory")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"--max-memory must be positive, got {text!r}")
    return value


def jobs(args) -> int:
    """``-j``, 1 when not given."""
    return 1 if args.jobs is None else args.jobs


@contextmanager
def cluster_executor(args):
    """The Dask executor the flags ask for (closed at the end of the block), or ``None``: local ``-j``.

    ``--scheduler`` and ``--scheduler-file`` exclude each other and ``-j``;
    ``DASK_SCHEDULER_ADDRESS`` is used when none of the three is given.
    """
    given = [f for f, v in (("--scheduler", args.scheduler), ("--scheduler-file", args.scheduler_file),
                            ("-j", args.jobs)) if v is not None]
    if len(given) > 1:
        raise ValueError(f"{' and '.join(given)} exclude each other: run on a Dask cluster or on local cores")
    address = args.scheduler
    if not given and os.environ.get("DASK_SCHEDULER_ADDRESS"):
        address = os.environ["DASK_SCHEDULER_ADDRESS"]
    if address is None and args.scheduler_file is None:
        yield None
        return
    from ..execution import DaskExecutor

    executor = DaskExecutor.connect(address, scheduler_file=args.scheduler_file)
    try:
        yield executor
    finally:
        executor.close()


def show_progress(args) -> bool:
    """Progress bars are on unless ``-q`` was given."""
    return not getattr(args, "quiet", False)


def error_line(exc: BaseException) -> str:
    """Make a single line out of an exception's message."""
    msg = str(exc)
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        msg = f"{exc.filename}: {exc.strerror}"
    msg = " ".join(msg.split())
    if isinstance(exc, MemoryError):
        return f"out of memory{': ' + msg if msg else ''} (try smaller inputs or fewer processes, -j)"
    return msg or type(exc).__name__


def report_failures(prog: str, status) -> int:
    """List a batch's failed images on stderr, one line each; the exit status of the batch.

    ``status`` is a :class:`dpm.output.RunStatus`.  The successes are already
    written; any failure makes the status :data:`EXIT_ERROR`.
    """
    if not status.n_failed:
        return EXIT_OK
    total = status.total if status.total is not None else status.done
    print(f"{prog}: error: {status.n_failed} of {total} image(s) failed "
          f"({status.written} written):", file=sys.stderr)
    for _, msg in status.failures:
        print(f"  {' '.join(str(msg).split())}", file=sys.stderr)
    if status.not_listed:
        print(f"  ... and {status.not_listed} more (only the first {len(status.failures)} are listed)",
              file=sys.stderr)
    return EXIT_ERROR


def run(prog: str, body, argv=None) -> int:
    """Run ``body(argv)`` and turn user errors and Ctrl+C into one line and a status.

    ``body`` parses its own arguments and returns an exit status.
    """
    try:
        return int(body(argv) or EXIT_OK)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as exc:
        print(f"{prog}: error: {error_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
