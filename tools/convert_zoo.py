"""Convert the original releases' pretrained models into the built-in model zoo.

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

    python tools/convert_zoo.py --release5 /path/to/voc-release5 [--check]

converts voc-release5's star models (``VOC2007/``, ``VOC2010/``, ``INRIA/``:
``dpm/data/r5/...``), each with the star-cascade of the release's published
statistics (``star-cascade/``, :func:`dpm.model.release5_cascade.cascade_from_published`,
attached by the loader), and copies the release's licence to
``dpm/data/COPYING-voc-release5``.  Either release may be given alone.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dpm.data import ZOO, ZOO_R5, zoo_source  # noqa: E402
from dpm.model import import_mat_model, save_model  # noqa: E402

DATA = REPO / "dpm" / "data"
LICENCE = "COPYING-voc-release3.1"
LICENCE_R5 = "COPYING-voc-release5"


# The zoo models that ship with a star-cascade, and the class of the positives it is built from.
CASCADED = {"voc2007/person": "person", "inria/person": "person"}


def convert(release: Path, out: Path, cascades: Path | None = None, n_jobs: int = 1) -> list[Path]:
    """Write every release-3.1 zoo model converted from ``release`` under ``out``; returns the files written.

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
        written.append(_save(model, out / f"{name}.npz"))
    shutil.copyfile(release / "COPYING", out / LICENCE)
    written.append(out / LICENCE)
    return written


def convert_release5(release: Path, out: Path) -> list[Path]:
    """Write every release-5 zoo model converted from ``release`` (with its published cascade) under ``out``."""
    written = []
    for name in ZOO_R5:
        model = import_mat_model(release / zoo_source(name))
        if model.cascade is None:
            raise ValueError(f"{release / zoo_source(name)}: no published cascade statistics found in "
                             f"{release / 'star-cascade'}; the zoo's release-5 models ship with their cascade")
        written.append(_save(model, out / f"{name}.npz"))
    shutil.copyfile(release / "COPYING", out / LICENCE_R5)
    written.append(out / LICENCE_R5)
    return written


def _save(model, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    return save_model(model, target)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("release", type=Path, nargs="?",
                   help="the voc-release3.1 folder (holding VOC2007/, INRIA/, COPYING)")
    p.add_argument("--release5", type=Path, metavar="DIR",
                   help="the voc-release5 folder (holding VOC2007/, VOC2010/, INRIA/, star-cascade/, COPYING)")
    p.add_argument("--check", action="store_true", help="compare with the shipped files instead of writing")
    p.add_argument("--cascades", type=Path, metavar="DATASET",
                   help="a VOC-layout person dataset (person-voc): build the person models' star-cascades from it")
    p.add_argument("-j", "--jobs", type=int, default=1, help="processes for the cascades (default 1)")
    args = p.parse_args(argv)
    if args.release is None and args.release5 is None:
        p.error("give the voc-release3.1 folder, --release5 DIR, or both")

    def run(out: Path) -> list[Path]:
        files = convert(args.release, out, args.cascades, args.jobs) if args.release is not None else []
        return files + (convert_release5(args.release5, out) if args.release5 is not None else [])

    if not args.check:
        for f in run(DATA):
            print(f.relative_to(REPO))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        made = run(Path(tmp))
        bad = [f.relative_to(tmp) for f in made
               if not (DATA / f.relative_to(tmp)).is_file() or (DATA / f.relative_to(tmp)).read_bytes() != f.read_bytes()]
    for f in bad:
        print(f"differs: dpm/data/{f}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
