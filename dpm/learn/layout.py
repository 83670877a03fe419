"""The learner's weight blocks: sizes, lower bounds and per-block multipliers (the ``.hdr`` of ``learn.cc``)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .examples import as_block_sizes

__all__ = ["BlockLayout"]


@dataclass(frozen=True, eq=False)
class BlockLayout:
    """The learner's parameter layout: what a ``.hdr`` plus a ``.lob`` file hold.

    Attributes
    ----------
    sizes : (B,) int64
    regmult : (B,) float64
        Regularisation multiplier per block.
    learnmult : (B,) float64
        Step-size multiplier per block.
    lower_bounds : (sum(sizes),) float64
        Per-weight lower bounds, blocks concatenated (the ``.lob`` layout).
    """

    sizes: np.ndarray
    regmult: np.ndarray
    learnmult: np.ndarray
    lower_bounds: np.ndarray

    def __post_init__(self):
        sizes = as_block_sizes(self.sizes)
        nb = sizes.size
        reg = np.asarray(self.regmult, dtype=np.float64).ravel()
        lrn = np.asarray(self.learnmult, dtype=np.float64).ravel()
        if reg.shape != (nb,) or lrn.shape != (nb,):
            raise ValueError(f"regmult and learnmult need {nb} values (one per block), "
                             f"got {reg.size} and {lrn.size}")
        if not (np.all(np.isfinite(reg)) and np.all(reg >= 0)):
            raise ValueError("regmult must be finite and >= 0")
        if not (np.all(np.isfinite(lrn)) and np.all(lrn >= 0)):
            raise ValueError("learnmult must be finite and >= 0")
        if self.lower_bounds is None:
            lb = np.full(int(sizes.sum()), -np.inf)
        else:
            lb = np.asarray(self.lower_bounds, dtype=np.float64).ravel()
        if lb.shape != (int(sizes.sum()),):
            raise ValueError(f"lower bounds have {lb.size} values, the layout needs {int(sizes.sum())} "
                             f"(the sum of the block sizes)")
        if np.any(np.isnan(lb)) or np.any(lb == np.inf):
            raise ValueError("lower bounds must not be NaN or +inf")
        for name, val in (("sizes", sizes), ("regmult", reg), ("learnmult", lrn), ("lower_bounds", lb)):
            val = np.array(val, copy=True)
            val.setflags(write=False)
            object.__setattr__(self, name, val)

    @classmethod
    def from_blocks(cls, blocks: Sequence) -> "BlockLayout":
        """The layout of a list of :class:`dpm.model.Block` (e.g. ``model.blocks``)."""
        blocks = list(blocks)
        if not blocks:
            raise ValueError("the layout has no blocks")
        return cls(sizes=[b.size for b in blocks], regmult=[b.regmult for b in blocks],
                   learnmult=[b.learnmult for b in blocks],
                   lower_bounds=np.concatenate([np.asarray(b.lower_bounds, dtype=np.float64).ravel()
                                                for b in blocks]))

    @classmethod
    def coerce(cls, layout) -> "BlockLayout":
        """Accept a BlockLayout, a Model, a list of Blocks, or ``(sizes, regmult, learnmult[, lower_bounds])``."""
        if isinstance(layout, BlockLayout):
            return layout
        if hasattr(layout, "blocks") and hasattr(layout, "components"):
            return cls.from_blocks(layout.blocks)
        if isinstance(layout, dict):
            return cls(**layout)
        seq = list(layout)
        if seq and all(hasattr(b, "lower_bounds") and hasattr(b, "size") for b in seq):
            return cls.from_blocks(seq)
        if len(seq) in (3, 4):
            return cls(*seq) if len(seq) == 4 else cls(*seq, lower_bounds=None)
        raise ValueError("layout must be a BlockLayout, a Model, a list of Blocks, or "
                         "(sizes, regmult, learnmult[, lower_bounds])")

    @property
    def num_blocks(self) -> int:
        return int(self.sizes.size)

    @property
    def num_weights(self) -> int:
        return int(self.sizes.sum())

    @property
    def offsets(self) -> np.ndarray:
        """``(B + 1,)`` int64: block ``b`` is ``w[offsets[b]:offsets[b + 1]]``."""
        return np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64)

    def split(self, w) -> list[np.ndarray]:
        """Split a concatenated weight vector into per-block arrays (copies)."""
        w = np.asarray(w, dtype=np.float64).ravel()
        if w.size != self.num_weights:
            raise ValueError(f"weight vector has {w.size} values, the layout needs {self.num_weights}")
        return [a.copy() for a in np.split(w, self.offsets[1:-1])]
