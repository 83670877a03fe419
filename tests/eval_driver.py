"""Run ``dpm-eval`` in a process of its own with a resume state recorded every 4 images, for kill tests.

    python tests/eval_driver.py DPM-EVAL-ARGUMENTS...

The state of several classes' results files (:class:`dpm.output.partial.PartialGroup`)
is otherwise recorded every 2 s: on a small test set the whole run can take
less than that, and a SIGKILL would never land in the middle of it.
"""
import functools
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv):
    sys.path.insert(0, str(REPO))
    from dpm.cli.eval import main as dpm_eval
    from dpm.output import perclass

    perclass.PartialGroup = functools.partial(perclass.PartialGroup, sync_seconds=1e9, sync_images=4)
    return dpm_eval(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
