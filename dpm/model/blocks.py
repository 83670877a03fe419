"""The learner's block layout of a model (``writeheader``/``writelob``/``readmodel``/``parsemodel``).

A model's weights are, for the learner, one 1-D float64 block per ``Block`` of
``model.blocks``: root filters and self-symmetric part filters hold their left
``ceil(w/2)`` columns, stored column-major like MATLAB's ``A(:)``; fake parts own
no blocks and are rebuilt from their partners.  :mod:`dpm.model` re-exports
these functions.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..features.flip import flip_features

if TYPE_CHECKING:  # pragma: no cover
    from .types import Model

__all__ = ["fold_half", "unfold_half", "model_blocks", "model_from_blocks"]



def fold_half(f: np.ndarray) -> np.ndarray:
    """The left ``ceil(w/2)`` columns of a symmetric filter (its learner block)."""
    return f[:, : (f.shape[1] + 1) // 2, :]


def unfold_half(half: np.ndarray, width: int) -> np.ndarray:
    """Rebuild a full symmetric filter from its left half (``parsemodel.m``)."""
    h, hw, nf = half.shape
    full = np.empty((h, width, nf), dtype=np.float64)
    full[:, :hw] = half
    k = width // 2
    if k:
        full[:, width - k:] = flip_features(half[:, :k])
    return full


def _block_values(arr: np.ndarray) -> np.ndarray:
    # Filter blocks are stored column-major (y fastest, then x, then channel): MATLAB's A(:).
    return np.asarray(arr, dtype=np.float64).ravel(order="F")


def model_blocks(model: Model) -> list[np.ndarray]:
    """The model's weights as one 1-D float64 array per learner block (``.mod`` layout)."""
    out: list[np.ndarray | None] = [None] * len(model.blocks)
    for c in model.components:
        out[c.bias_block] = np.array([c.bias], dtype=np.float64)
        out[c.root_block] = _block_values(fold_half(c.root))
        for p in c.parts:
            if p.fake:
                continue
            f = fold_half(p.filter) if p.self_symmetric else p.filter
            out[p.filter_block] = _block_values(f)
            out[p.def_block] = np.asarray(p.deformation, dtype=np.float64).copy()
    for i, (b, v) in enumerate(zip(model.blocks, out)):
        if v is None:
            raise ValueError(f"model block {i} is not used by any filter")
        if v.size != b.size:
            raise ValueError(f"model block {i} holds {v.size} values but its size is {b.size}")
    return out


def model_from_blocks(model: Model, blocks) -> Model:
    """A copy of ``model`` whose weights come from per-block arrays (``parsemodel.m``).

    ``blocks`` is a list of 1-D arrays in block order or one concatenated vector
    (the ``.mod`` layout).  Fake parts are rebuilt from their partners: the filter
    mirrored and the linear x deformation coefficient negated.  The copy has no
    cascade: a cascade's thresholds belong to the weights they were learned for.
    """
    sizes = [b.size for b in model.blocks]
    if not isinstance(blocks, (list, tuple)):
        vec = np.asarray(blocks, dtype=np.float64).ravel()
        if vec.size != sum(sizes):
            raise ValueError(f"weight vector has {vec.size} values, the model needs {sum(sizes)}")
        blocks = np.split(vec, np.cumsum(sizes)[:-1])
    if len(blocks) != len(sizes):
        raise ValueError(f"got {len(blocks)} blocks, the model has {len(sizes)}")
    new = model.copy()
    new.cascade = None
    for c in new.components:
        c.bias = float(blocks[c.bias_block][0])
        h, w, nf = c.root.shape
        half = np.asarray(blocks[c.root_block], dtype=np.float64).reshape((h, (w + 1) // 2, nf), order="F")
        c.root = unfold_half(half, w)
        for p in c.parts:
            if p.fake:
                continue
            h, w, nf = p.filter.shape
            vals = np.asarray(blocks[p.filter_block], dtype=np.float64)
            if p.self_symmetric:
                p.filter = unfold_half(vals.reshape((h, (w + 1) // 2, nf), order="F"), w)
            else:
                p.filter = vals.reshape((h, w, nf), order="F").copy()
            p.deformation = np.asarray(blocks[p.def_block], dtype=np.float64).copy()
        for p in c.parts:
            if p.fake:
                src = c.parts[p.partner]
                p.filter = flip_features(src.filter)
                p.deformation = src.deformation * np.array([1.0, -1.0, 1.0, 1.0])
    return new
