"""Convert the original release's pretrained models into the built-in model zoo.

    python tools/convert_zoo.py /path/to/voc-release3.1

reads ``VOC2007/<class>_final.mat`` (20 classes) and ``INRIA/inria_final.mat``
with the project's own loader (:func:`dpm.model.import_mat_model`) and writes
them, exact values, as ``dpm/data/voc2007/<class>.npz`` and
``dpm/data/inria/person.npz`` (:func:`dpm.model.save_model`: the same bytes
on every run), with the release's licence copied to
``dpm/data/COPYING-voc-release3.1``.  ``--check`` writes nothing and fails if
a shipped file differs from what the conversion gives.

    python tools/convert_zoo.py /path/to/voc-release3.1 --cascades /path/to/person-voc -j 2

also gives the person models (``voc2007/person``, ``inria/person``) their
star-cascades, built from the ``trainval`` positives of the person-voc dataset
(:func:`dpm.build_cascade`, the same as ``dpm-cascade voc2007/person --voc
person-voc``); the shipped files were made this way.
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


# The zoo models that ship with a star-cascade, and the class of the positives it is built from.
CASCADED = {"voc2007/person": "person", "inria/person": "person"}


def convert(release: Path, out: Path, cascades: Path | None = None, n_jobs: int = 1) -> list[Path]:
    """Write every zoo model converted from ``release`` under ``out``; returns the files written.

    With ``cascades`` (a VOC-layout dataset), the models of :data:`CASCADED`
    get a star-cascade built from its ``trainval`` positives.
    """
    written = []
    for name in ZOO:
        model = import_mat_model(release / zoo_source(name))
        if cascades is not None and name in CASCADED:
            import voc
            from dpm.cascade.build import build_cascade

            positives = voc.training_data(cascades.absolute(), CASCADED[name]).positives
            model = build_cascade(model, positives, n_jobs=n_jobs)
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
    p.add_argument("--cascades", type=Path, metavar="DATASET",
                   help="a VOC-layout person dataset (person-voc): build the person models' star-cascades from it")
    p.add_argument("-j", "--jobs", type=int, default=1, help="processes for the cascades (default 1)")
    args = p.parse_args(argv)
    if not args.check:
        for f in convert(args.release, DATA, args.cascades, args.jobs):
            print(f.relative_to(REPO))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        bad = [f.relative_to(tmp) for f in convert(args.release, Path(tmp), args.cascades, args.jobs)
               if (DATA / f.relative_to(tmp)).read_bytes() != f.read_bytes()]
    for f in bad:
        print(f"differs: dpm/data/{f}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
