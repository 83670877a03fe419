"""PCA of HOG cells (spec star-cascade.md §C.1, ``pca_of_hog.m``).

The star-cascade scores hypotheses first with filters and features projected
onto the top principal directions of HOG cells.  Those directions are the
eigenvectors of the *uncentred* second moment ``E[v v^T]`` of the 31-value
cells ``v`` of training images, each image taken at the scales 0.25, 0.5 and
0.75 with cells of 8 pixels:

* :func:`hog_second_moment` accumulates ``sum v v^T`` and the number of cells
  over images (the project's own :func:`dpm.features.resize` and
  :func:`dpm.features.hog`, double precision, as the original's ``features``
  of ``resize(double(im), s)``);
* :func:`pca_of_hog` turns it into ``coeff`` (31 x 31, eigenvectors by
  decreasing eigenvalue, each column's entry of largest magnitude positive,
  as MATLAB's ``pcacov``) and the eigenvalues;
* :func:`load_hog_pca` reads the coefficients the built-in models use,
  ``dpm/data/hog_pca.npz``, made by ``tools/make_hog_pca.py`` from the images
  of the person-voc dataset (the command and its inputs are recorded in the
  file).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..features import NUM_FEATURES, hog, resize
from ..image import as_rgb, read_image

__all__ = ["PCA_SCALES", "hog_second_moment", "pca_of_hog", "load_hog_pca", "HOG_PCA_FILE"]

#: The image scales ``pca_of_hog.m`` takes every image at.
PCA_SCALES = (0.25, 0.5, 0.75)

#: The shipped coefficients (``tools/make_hog_pca.py``).
HOG_PCA_FILE = Path(__file__).resolve().parents[1] / "data" / "hog_pca.npz"


def hog_second_moment(images, scales=PCA_SCALES, sbin: int = 8) -> tuple[np.ndarray, int]:
    """Sum of ``v v^T`` over every HOG cell ``v`` of ``images`` at ``scales``, and the number of cells.

    Parameters
    ----------
    images : iterable
        Images (``(H, W, 3)`` or grey arrays, values 0..255) or paths of image files.
    scales : sequence of float
        Each image is reduced by each of these factors (in (0, 1], with
        :func:`dpm.features.resize`) before its HOG map is computed.
    sbin : int
        HOG cell size in pixels.

    Returns
    -------
    (moment, count) : ((31, 31) float64, int)
        ``moment / count`` is the uncentred second moment :func:`pca_of_hog` needs;
        sums of several calls add up (images can be split between workers).
    """
    scales = tuple(float(s) for s in scales)
    if not scales or not all(0 < s <= 1 for s in scales):
        raise ValueError(f"scales must be factors in (0, 1] (resize only reduces), got {scales!r}")
    moment = np.zeros((NUM_FEATURES, NUM_FEATURES), dtype=np.float64)
    count = 0
    for image in images:
        image = read_image(image) if isinstance(image, (str, Path)) else as_rgb(image)
        for s in scales:
            cells = hog(resize(image, s), sbin).reshape(-1, NUM_FEATURES)
            moment += cells.T @ cells
            count += cells.shape[0]
    return moment, count


def pca_of_hog(moment, count: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Principal directions of HOG cells from their second moment (``pcacov`` of ``pca_of_hog.m``).

    Parameters
    ----------
    moment : (d, d) array_like
        Symmetric positive semi-definite second-moment matrix (or the sum of
        :func:`hog_second_moment` with its ``count``).
    count : int, optional
        Divide ``moment`` by this first.

    Returns
    -------
    coeff : (d, d) float64
        Eigenvectors in columns, by decreasing eigenvalue; each column's entry
        of largest magnitude (the first such) is positive, as ``pcacov``.
    eigenvalues : (d,) float64
        Decreasing.
    """
    m = np.array(moment, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] == 0:
        raise ValueError(f"moment must be a square (d, d) matrix, got shape {m.shape}")
    if not np.isfinite(m).all():
        raise ValueError("moment holds non-finite values")
    if count is not None:
        if int(count) < 1:
            raise ValueError(f"count must be at least 1 cell, got {count!r}; were the images too small "
                             "for one HOG cell at every scale?")
        m /= int(count)
    values, vectors = np.linalg.eigh((m + m.T) / 2)
    order = np.argsort(-values, kind="stable")
    values, vectors = values[order], vectors[:, order]
    biggest = np.argmax(np.abs(vectors), axis=0)
    signs = np.sign(vectors[biggest, np.arange(vectors.shape[1])])
    signs[signs == 0] = 1.0
    return np.ascontiguousarray(vectors * signs), values


def load_hog_pca(path=None) -> tuple[np.ndarray, np.ndarray]:
    """``(coeff, eigenvalues)`` of the shipped PCA of HOG (``dpm/data/hog_pca.npz``) or of ``path``."""
    path = Path(path) if path is not None else HOG_PCA_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path}: no PCA of HOG coefficients there (make them with "
                                "tools/make_hog_pca.py, or pass coeff=)")
    with np.load(path, allow_pickle=False) as data:
        coeff = np.array(data["coeff"], dtype=np.float64)
        values = np.array(data["eigenvalues"], dtype=np.float64)
    if coeff.shape != (NUM_FEATURES, NUM_FEATURES) or values.shape != (NUM_FEATURES,):
        raise ValueError(f"{path}: coeff must be {NUM_FEATURES}x{NUM_FEATURES} and eigenvalues "
                         f"{NUM_FEATURES} values, got {coeff.shape} and {values.shape}")
    return coeff, values
