"""Convert the original release's pretrained models into the built-in model zoo.

    python tools/convert_zoo.py /path/to/voc-release3.1

reads ``VOC2007/<class>_final.mat`` (20 classes) and ``INRIA/inria_final.mat``
with the project's own loader (:func:`dpm.model.import_mat_model`) and writes
them, exact values, as ``dpm/data/voc2007/<class>.npz`` and
``dpm/data/inria/person.npz`` (:func:`dpm.model.save_model`: the same bytes
on every run), with the release's licence copied to
``dpm/data/COPYING-voc-release3.1``.  ``--check`` writes nothing and fails if
a shipped file differs from what the conversion gives.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dpm.data import ZOO, zoo_source  # noqa: E402
from dpm.model import import_mat_model, save_model  # noqa: E402

DATA = REPO / "dpm" / "data"
LICENCE = "COPYING-voc-release3.1"


def convert(release: Path, out: Path) -> list[Path]:
    """Write every zoo model converted from ``release`` under ``out``; returns the files written."""
    written = []
    for name in ZOO:
        model = import_mat_model(release / zoo_source(name))
        target = out / f"{name}.npz"
        target.parent.mkdir(parents=True, exist_ok=True)
        written.append(save_model(model, target))
    shutil.copyfile(release / "COPYING", out / LICENCE)
    written.append(out / LICENCE)
    return written


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("release", type=Path, help="the voc-release3.1 folder (holding VOC2007/, INRIA/, COPYING)")
    p.add_argument("--check", action="store_true", help="compare with the shipped files instead of writing")
    args = p.parse_args(argv)
    if not args.check:
        for f in convert(args.release, DATA):
            print(f.relative_to(REPO))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        bad = [f.relative_to(tmp) for f in convert(args.release, Path(tmp))
               if (DATA / f.relative_to(tmp)).read_bytes() != f.read_bytes()]
    for f in bad:
        print(f"differs: dpm/data/{f}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
