"""Compute the PCA of HOG cells the built-in models' star-cascades use (``dpm/data/hog_pca.npz``).

    python tools/make_hog_pca.py ../shared/data/person-voc            # writes dpm/data/hog_pca.npz
    python tools/make_hog_pca.py ../shared/data/person-voc --check    # compares with the shipped file

Every image of the dataset's ``trainval`` split (as ``pca_of_hog.m``, which reads
VOC's trainval list), at the scales 0.25, 0.5 and 0.75 with 8-pixel cells
(:func:`dpm.cascade.pca.hog_second_moment`), gives the uncentred second moment of
its HOG cells; its eigenvectors by decreasing eigenvalue
(:func:`dpm.cascade.pca.pca_of_hog`) are written with the eigenvalues, the
number of images and cells, and this command (fixed zip timestamps: the same
values give the same bytes).  ``--check`` writes nothing and
fails if the shipped coefficients differ from what the images give by more
than 1e-9 (the sums go through BLAS, whose last bits differ between machines).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dpm._io import atomic_write  # noqa: E402
from dpm.files import write_npz  # noqa: E402
from dpm.cascade.pca import HOG_PCA_FILE, PCA_SCALES, hog_second_moment, load_hog_pca, pca_of_hog  # noqa: E402

TOLERANCE = 1e-9


def compute(dataset: Path, split: str):
    import voc

    ds = voc.VOCDataset(dataset)
    ids = ds.image_ids(split)
    paths = [ds.image_path(i) for i in ids]
    moment, count = hog_second_moment(paths, PCA_SCALES, 8)
    coeff, values = pca_of_hog(moment, count)
    return coeff, values, len(paths), count


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dataset", type=Path, help="VOC-layout dataset folder (person-voc)")
    p.add_argument("--split", default="trainval", help="split whose images are used (default trainval)")
    p.add_argument("-o", "--out", type=Path, default=HOG_PCA_FILE, help=f"output (default {HOG_PCA_FILE})")
    p.add_argument("--check", action="store_true", help="compare with the shipped file; write nothing")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    coeff, values, nimages, ncells = compute(args.dataset, args.split)
    print(f"{nimages} images of {args.dataset.name}/{args.split}, {ncells} cells, "
          f"{time.perf_counter() - t0:.1f} s; eigenvalues {np.array2string(values[:6], precision=5)} ...")
    if args.check:
        shipped, shipped_values = load_hog_pca(args.out)
        diff = max(float(np.abs(shipped - coeff).max()), float(np.abs(shipped_values - values).max()))
        print(f"largest difference from {args.out}: {diff:.3g}")
        return 0 if diff <= TOLERANCE else 1
    command = f"python tools/make_hog_pca.py {args.dataset.name} --split {args.split}"
    arrays = {"coeff": coeff, "eigenvalues": values, "images": np.array(nimages), "cells": np.array(ncells),
              "scales": np.array(PCA_SCALES), "sbin": np.array(8),
              "source": np.array(f"{command}: every image of {args.dataset.name}'s {args.split} split")}
    atomic_write(args.out, lambda fh: write_npz(fh, arrays))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
