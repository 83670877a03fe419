"""Star-cascades of voc-release5 models from the release's published statistics (``cascade_model.m``).

Release 5 ships, for each of its models, the block scores of the training
positives under the full model and under its PCA projection
(``star-cascade/data/<class>_<year>_cascade_data_{no_pca,pca_5}_<year>.mat``:
``scores`` and ``pca_scores``, one row per positive, column 0 the total score,
then one column per block in ``blocklabel`` order) and the PCA of HOG cells
(``star-cascade/pca.mat``).  :func:`cascade_from_published` turns them into a
:class:`~dpm.cascade.Cascade` exactly as ``cascade_model.m`` does:

* ``project_model.m``: the first ``dims`` (5) principal directions, padded to
  ``(32, dims + 1)`` with a last column that copies the truncation feature;
* rows whose total score (full model) is at least the threshold, in both files;
* ``parse_scores``: per component, the rows where its offset block is nonzero,
  arranged ``[0, root, def_1, part_1, ...]`` plus the offset and scale-prior
  scores (a mirrored component shares its partner's blocks, hence its rows
  and thresholds);
* ``getorder`` and the threshold table: :func:`dpm.cascade.thresholds.part_order`,
  :func:`dpm.cascade.thresholds.stage_thresholds` (the projected stages add the
  PCA file's offset and scale-prior scores, the full ones the other file's).

:func:`published_cascade_files` finds the files in the release's own layout
(``<release>/VOC2007/person_final.mat`` beside ``<release>/star-cascade/``).
"""
from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np

from ..files import read_mat
from .check import validate_cascade
from .release5 import R5_FEATURES, StarModel
from ..cascade.thresholds import identity_order, part_order, stage_thresholds
from ..cascade.types import DEFAULT_WINDOW, Cascade, CascadeComponent

__all__ = ["PUBLISHED_DIMS", "cascade_from_published", "published_cascade_files", "published_coeff"]

log = logging.getLogger(__name__)

#: Principal directions of the release's cascades (``cascade_model(model, year, 5, thresh)``).
PUBLISHED_DIMS = 5


def published_coeff(pca_path, dims: int = PUBLISHED_DIMS) -> np.ndarray:
    """``project_model.m``'s projection: ``coeff(:, 1:dims)`` of ``pca.mat`` padded to ``(32, dims + 1)``,
    the last row and column 0 but for a 1 that keeps the truncation feature."""
    mat = read_mat(pca_path, variables={"coeff"}, what="PCA file")
    if "coeff" not in mat:
        raise ValueError(f"{pca_path}: no variable named 'coeff'; expected release 5's star-cascade/pca.mat")
    coeff = np.asarray(mat["coeff"], dtype=np.float64)
    if coeff.ndim != 2 or coeff.shape[0] != R5_FEATURES - 1 or not np.isfinite(coeff).all():
        raise ValueError(f"{pca_path}: coeff has shape {coeff.shape}; expected a finite ({R5_FEATURES - 1}, k) "
                         "matrix of principal directions of HOG cells")
    if isinstance(dims, bool) or not isinstance(dims, (int, np.integer)) or not 1 <= dims <= coeff.shape[1]:
        raise ValueError(f"dims must be a whole number in 1..{coeff.shape[1]}, got {dims!r}")
    out = np.zeros((R5_FEATURES, dims + 1))
    out[:R5_FEATURES - 1, :dims] = coeff[:, :dims]
    out[-1, -1] = 1.0
    return out


def _scores(path, name: str, num_blocks: int) -> np.ndarray:
    mat = read_mat(path, variables={name}, what="cascade statistics file")
    if name not in mat:
        raise ValueError(f"{path}: no variable named {name!r}; expected release 5's "
                         "star-cascade/data/<class>_<year>_cascade_data_*.mat")
    a = np.asarray(mat[name], dtype=np.float64)
    if a.ndim != 2 or a.shape[1] < num_blocks + 1 or not np.isfinite(a).all():
        raise ValueError(f"{path}: {name} has shape {a.shape}; the model uses {num_blocks} blocks, so expected "
                         f"finite (positives, 1 + blocks) scores, blocks >= {num_blocks}: is it this model's file?")
    return a


def _blocks_used(model: StarModel) -> int:
    labels = [b for c in model.components for b in (c.offset_block, c.loc_block)]
    labels += [b for c in model.components for f in c.filters for b in (f.filter_block, f.def_block)]
    if min(labels) < 0:
        raise ValueError("model: a StarModel without block labels (read it with dpm.load_model)")
    return max(labels) + 1


def _component_rows(model: StarModel, ci: int, blocks: np.ndarray):
    """``parse_scores`` for component ``ci``: ``(rows (m, 2n), offset and loc score (m,))``."""
    comp = model.components[ci]
    rows = np.flatnonzero(blocks[:, comp.offset_block] != 0)
    cols = [comp.root.filter_block] + [b for p in comp.parts for b in (p.def_block, p.filter_block)]
    out = np.zeros((rows.size, 2 * len(comp.filters)))
    out[:, 1:] = blocks[np.ix_(rows, cols)]
    return out, blocks[rows, comp.offset_block] + blocks[rows, comp.loc_block]


def cascade_from_published(model: StarModel, stats_no_pca, stats_pca, pca, threshold: float | None = None, *,
                           dims: int = PUBLISHED_DIMS, window: int = DEFAULT_WINDOW) -> Cascade:
    """The star-cascade ``cascade_model.m`` builds for a release-5 model from its published statistics.

    Parameters
    ----------
    model : StarModel
        Read by :func:`dpm.load_model` (it carries the block labels).
    stats_no_pca, stats_pca : str or Path
        ``<class>_<year>_cascade_data_no_pca_<year>.mat`` and ``..._pca_5_<year>.mat``.
    pca : str or Path
        ``star-cascade/pca.mat``.
    threshold : float, optional
        The global threshold (default ``model.thresh``): positives scoring
        below it are left out, and detection keeps what scores above it.
    dims, window
        Principal directions kept (5, the release's) and the part window (4 cells).

    Raises
    ------
    ValueError
        A file is not what it should be (one line naming it), or no positive
        scores at least ``threshold``.
    """
    if not isinstance(model, StarModel):
        raise ValueError(f"model must be a dpm.StarModel (a voc-release5 model), got {type(model).__name__}")
    threshold = model.thresh if threshold is None else float(threshold)
    if not np.isfinite(threshold):
        raise ValueError(f"threshold must be a finite score, got {threshold}")
    coeff = published_coeff(pca, dims)
    num_blocks = _blocks_used(model)
    full = _scores(stats_no_pca, "scores", num_blocks)
    proj = _scores(stats_pca, "pca_scores", num_blocks)
    if proj.shape != full.shape:
        raise ValueError(f"{stats_pca}: {proj.shape[0]} positives, {stats_no_pca} has {full.shape[0]}; "
                         "pass the two statistics files of one model")
    keep = full[:, 0] >= threshold
    if not keep.any():
        raise ValueError(f"threshold: all {full.shape[0]} positives of {stats_no_pca} score below "
                         f"threshold={threshold:.4f} (best {full[:, 0].max():.4f}); pass a lower threshold")
    full, proj = full[keep, 1:], proj[keep, 1:]
    comps = []
    for ci, comp in enumerate(model.components):
        n = len(comp.filters)
        s, off = _component_rows(model, ci, full)
        ps, poff = _component_rows(model, ci, proj)
        if s.shape[0] == 0:
            warnings.warn(f"cascade: component {ci} has no positive scoring at least {threshold:.4f}; "
                          "it will never fire", stacklevel=2)
            comps.append(CascadeComponent(identity_order(n), np.full(4 * n, np.inf)))
            continue
        if ps.shape[0] != s.shape[0]:
            raise ValueError(f"{stats_pca}: component {ci} has {ps.shape[0]} positives, {stats_no_pca} "
                             f"{s.shape[0]}; pass the two statistics files of one model")
        order = part_order(s)
        t = stage_thresholds(ps, s, off, order, threshold, projected_offset=poff)
        comps.append(CascadeComponent(order, t))
        log.info("cascade component %d: %d positives at or above %.4f; part order %s", ci, s.shape[0],
                 threshold, order[1:n].tolist())
    cascade = Cascade(coeff=coeff, components=comps, threshold=threshold, window=window)
    validate_cascade(cascade, model, source=str(stats_no_pca), features=R5_FEATURES)
    return cascade


def published_cascade_files(model: StarModel, model_path) -> tuple | None:
    """``(stats_no_pca, stats_pca, pca)`` of ``model`` in the release's layout, or None if absent.

    ``model_path`` is the model's file (``<release>/<set>/<class>_final.mat``);
    the statistics are looked for in ``<release>/star-cascade/`` under the
    release's own class name and the model's year.
    """
    root = Path(model_path).resolve().parent.parent / "star-cascade"
    name, year = model.info.get("class") or model.class_name, model.info.get("year", "")
    if not name or not year:
        return None
    stem = f"{name}_{year}_cascade_data"
    files = (root / "data" / f"{stem}_no_pca_{year}.mat", root / "data" / f"{stem}_pca_{PUBLISHED_DIMS}_{year}.mat",
             root / "pca.mat")
    return files if all(f.is_file() for f in files) else None
