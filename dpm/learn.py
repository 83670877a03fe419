"""The latent-SVM learner: in-memory example sets and ``fit_lsvm``.

This is voc-release3.1 ``learn.cc`` (spec §1.12) without its temporary files.
Examples live in an :class:`ExampleSet`, a sparse block layout like the ``.dat``
records; :func:`fit_lsvm` removes exact duplicates, collapses examples that
share their label ints into latent groups, and runs the compiled SGD loop of
``dpm._learn``.

The objective (Felzenszwalb et al., PAMI 2010, eq. 11, with learn.cc's
per-block multipliers) is::

    0.5 * sum_b regmult_b * |w_b|^2 + C * sum_g c_g * max(0, 1 - y_g * max_{m in g} w . x_m)

with ``c_g = J`` for positive groups and 1 for negative ones; ``learnmult_b``
scales block ``b``'s steps only.

References
----------
P. Felzenszwalb, R. Girshick, D. McAllester, D. Ramanan, "Object Detection with
Discriminatively Trained Part Based Models", IEEE TPAMI 32(9), 2010.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Callable, NamedTuple, Sequence

import numpy as np

__all__ = [
    "ExampleSet", "BlockLayout", "StoppingRule", "LearnResult", "Objective", "Collapsed",
    "fit_lsvm", "collapse_examples", "lsvm_objective", "lsvm_subgradient", "score_examples",
    "ITER", "INCACHE", "WAIT",
]

log = logging.getLogger(__name__)

ITER = 5_000_000   # voc-release3.1 learn.cc: number of updates
INCACHE = 3        # learn.cc: visits beyond the margin before a negative is set aside
WAIT = 10          # learn.cc: cache counter given to a negative that is set aside
LABELSIZE = 5      # label ints per example: (label, id, level, xc, yc)

# Chunk size of the compiled loop between signal checks, in feature values
# touched (about 50 ms of work): Ctrl+C is honoured well within a second.
_CHUNK_WORK = 50_000_000


# --------------------------------------------------------------------------------------------
# Example sets
# --------------------------------------------------------------------------------------------

class ExampleSet:
    """Feature vectors for the learner, in the sparse block layout of a ``.dat`` file.

    Each example has ``labelsize`` label ints (``label, id, level, xc, yc``: the
    class label +1/-1, then what identifies the window) and a list of non-zero
    blocks, each a 0-based block index and its float32 values.  Examples with
    the same label ints are alternative latent placements of one window.

    Parameters
    ----------
    block_sizes : sequence of int, optional
        The layout's block sizes.  When given, :meth:`append` checks block
        indices and value counts against it.
    labelsize : int
        Label ints per example (5 in voc-release3.1).

    Attributes
    ----------
    label_ints : (N, labelsize) int32 ndarray
    example_ptr : (N + 1,) int64 ndarray
        Example ``i`` owns block entries ``example_ptr[i]:example_ptr[i + 1]``.
    block_ids : (E,) int32 ndarray
        0-based block index of each entry (the ``.dat``'s 1-based label minus one).
    block_ptr : (E + 1,) int64 ndarray
        Entry ``e`` owns ``data[block_ptr[e]:block_ptr[e + 1]]``.
    data : (D,) float32 ndarray
        Every entry's values, back to back, in ``.dat`` order (filter blocks
        column-major, as MATLAB writes them).

    The arrays are views of growing buffers: :meth:`append` may replace them,
    so do not keep them across appends.
    """

    def __init__(self, block_sizes=None, labelsize: int = LABELSIZE):
        labelsize = int(labelsize)
        if labelsize < 1:
            raise ValueError(f"labelsize must be >= 1 (the class label comes first), got {labelsize}")
        self.labelsize = labelsize
        self.block_sizes = None if block_sizes is None else _as_sizes(block_sizes)
        self._n = 0
        self._ne = 0
        self._nd = 0
        self._label_ints = np.zeros((16, labelsize), dtype=np.int32)
        self._example_ptr = np.zeros(17, dtype=np.int64)
        self._block_ids = np.zeros(16, dtype=np.int32)
        self._block_ptr = np.zeros(17, dtype=np.int64)
        self._data = np.zeros(1024, dtype=np.float32)

    # -- construction -----------------------------------------------------------------------

    @classmethod
    def from_arrays(cls, label_ints, example_ptr, block_ids, block_ptr, data, *, block_sizes=None,
                    validate=True, copy=True) -> "ExampleSet":
        """Wrap existing arrays (see the class attributes for their meaning).

        The arrays are converted to the attribute dtypes (copied, or with
        ``copy=False`` only when needed: the set then owns arrays the caller
        must no longer use); with ``validate`` the structure, labels and values
        are checked.
        """
        def conv(a, dtype):
            a = np.array(a, dtype=dtype, copy=True) if copy else np.ascontiguousarray(a, dtype=dtype)
            return a if a.flags.writeable else a.copy()

        label_ints = conv(label_ints, np.int32)
        if label_ints.ndim != 2 or label_ints.shape[1] < 1:
            raise ValueError(f"label_ints must have shape (N, labelsize), got {label_ints.shape}")
        ex = cls(block_sizes=block_sizes, labelsize=label_ints.shape[1])
        ex._label_ints = label_ints
        ex._example_ptr = conv(example_ptr, np.int64)
        ex._block_ids = conv(block_ids, np.int32)
        ex._block_ptr = conv(block_ptr, np.int64)
        ex._data = conv(data, np.float32)
        ex._n = ex._label_ints.shape[0]
        ex._ne = ex._block_ids.shape[0]
        ex._nd = ex._data.shape[0]
        if validate:
            ex.validate()
        return ex

    def append(self, label_ints, blocks) -> int:
        """Add one example; return its index.

        Parameters
        ----------
        label_ints : sequence of int, length ``labelsize``
            ``(label, id, level, xc, yc)``; ``label`` must be +1 or -1.
        blocks : sequence of (int, array_like)
            ``(block index, values)`` pairs: 0-based block index and the block's
            1-D values (converted to float32), in ``.dat`` order.

        Raises
        ------
        ValueError
            Wrong number of label ints, a label other than +1/-1, a negative
            block index, non-finite values, or (when the set knows its block
            sizes) a block index out of range or a wrong number of values.
        """
        lab = np.asarray(label_ints)
        if (lab.shape != (self.labelsize,) or not np.issubdtype(lab.dtype, np.integer)
                or np.any(lab < -2**31) or np.any(lab >= 2**31)):
            raise ValueError(f"example {self._n}: label_ints must be {self.labelsize} int32 integers, "
                             f"got {np.asarray(label_ints).tolist()!r}")
        if lab[0] not in (1, -1):
            raise ValueError(f"example {self._n}: label {int(lab[0])} is not +1 or -1")
        ids, vals = [], []
        for bid, values in blocks:
            ids.append(int(bid))
            vals.append(np.asarray(values, dtype=np.float32).ravel())
        ids = np.array(ids, dtype=np.int64)
        lens = np.array([v.size for v in vals], dtype=np.int64)
        flat = np.concatenate(vals) if vals else np.zeros(0, dtype=np.float32)
        if np.any(ids < 0):
            raise ValueError(f"example {self._n}: block index {ids[ids < 0][0]} is negative")
        if self.block_sizes is not None:
            bad = np.flatnonzero(ids >= self.block_sizes.size)
            if bad.size:
                raise ValueError(f"example {self._n}: block index {ids[bad[0]]} is out of range "
                                 f"(the layout has {self.block_sizes.size} blocks)")
            bad = np.flatnonzero(lens != self.block_sizes[ids])
            if bad.size:
                k = bad[0]
                raise ValueError(f"example {self._n}: block {ids[k]} has {lens[k]} values, "
                                 f"the layout says {int(self.block_sizes[ids[k]])}")
        if not np.all(np.isfinite(flat)):
            k = int(np.searchsorted(np.cumsum(lens), int(np.argmin(np.isfinite(flat))), side="right"))
            raise ValueError(f"example {self._n}: block {ids[k]} has NaN or infinite values")
        if ids.size and ids.max() >= 2**31:
            raise ValueError(f"example {self._n}: block index {ids.max()} is too large")
        self._reserve(1, ids.size, flat.size)
        n, ne, nd = self._n, self._ne, self._nd
        self._label_ints[n] = lab
        self._block_ids[ne:ne + ids.size] = ids
        self._data[nd:nd + flat.size] = flat
        self._block_ptr[ne + 1:ne + ids.size + 1] = nd + np.cumsum(lens)
        self._ne = ne + ids.size
        self._nd = nd + flat.size
        self._n = n + 1
        self._example_ptr[self._n] = self._ne
        return n

    def extend(self, other: "ExampleSet") -> None:
        """Append every example of ``other`` (same labelsize)."""
        if other.labelsize != self.labelsize:
            raise ValueError(f"labelsize differs: {other.labelsize} vs {self.labelsize}")
        n, ne, nd = len(other), other._ne, other._nd
        self._reserve(n, ne, nd)
        self._label_ints[self._n:self._n + n] = other.label_ints
        self._example_ptr[self._n + 1:self._n + n + 1] = other.example_ptr[1:] + self._ne
        self._block_ids[self._ne:self._ne + ne] = other.block_ids
        self._block_ptr[self._ne + 1:self._ne + ne + 1] = other.block_ptr[1:] + self._nd
        self._data[self._nd:self._nd + nd] = other.data
        self._n += n
        self._ne += ne
        self._nd += nd

    def _reserve(self, n, ne, nd, exact=False):
        # amortised growth: capacities grow by half (exact: to the need)
        def grow(arr, need, extra=0):
            cap = arr.shape[0] - extra
            if need <= cap:
                return arr
            new_cap = need if exact else max(need, cap + cap // 2, 16)
            new = np.zeros((new_cap + extra,) + arr.shape[1:], dtype=arr.dtype)  # pages mapped on use
            new[:arr.shape[0]] = arr
            return new
        self._label_ints = grow(self._label_ints, self._n + n)
        self._example_ptr = grow(self._example_ptr, self._n + n, 1)
        self._block_ids = grow(self._block_ids, self._ne + ne)
        self._block_ptr = grow(self._block_ptr, self._ne + ne, 1)
        self._data = grow(self._data, self._nd + nd)

    def reserve(self, examples: int = 0, entries: int = 0, values: int = 0) -> None:
        """Make room for this many examples, block entries and float32 values in all.

        Appends up to these totals then never reallocate: a caller that knows
        its cap (training's byte budget) avoids the transient double copy of a
        growing buffer.  Totals below the current capacity are a no-op.
        """
        self._reserve(max(0, int(examples) - self._n), max(0, int(entries) - self._ne),
                      max(0, int(values) - self._nd), exact=True)

    @property
    def capacity_nbytes(self) -> int:
        """Bytes allocated by the buffers (at least :attr:`nbytes`)."""
        return int(self._label_ints.nbytes + self._example_ptr.nbytes + self._block_ids.nbytes
                   + self._block_ptr.nbytes + self._data.nbytes)

    # -- views ------------------------------------------------------------------------------

    @property
    def label_ints(self) -> np.ndarray:
        return self._label_ints[:self._n]

    @property
    def labels(self) -> np.ndarray:
        """``(N,)`` int32: the class label (+1/-1) of each example."""
        return self._label_ints[:self._n, 0]

    @property
    def example_ptr(self) -> np.ndarray:
        return self._example_ptr[:self._n + 1]

    @property
    def block_ids(self) -> np.ndarray:
        return self._block_ids[:self._ne]

    @property
    def block_ptr(self) -> np.ndarray:
        return self._block_ptr[:self._ne + 1]

    @property
    def data(self) -> np.ndarray:
        return self._data[:self._nd]

    def __len__(self) -> int:
        return self._n

    def __repr__(self):
        npos = int(np.count_nonzero(self.labels > 0))
        return (f"ExampleSet({self._n} examples: {npos} positive, {self._n - npos} negative; "
                f"{self._ne} blocks, {self._nd} values)")

    @property
    def nbytes(self) -> int:
        """Bytes held by the examples (used parts of the arrays)."""
        return int(self.label_ints.nbytes + self.example_ptr.nbytes + self.block_ids.nbytes
                   + self.block_ptr.nbytes + self.data.nbytes)

    @property
    def dat_nbytes(self) -> int:
        """Size the examples take in a ``.dat`` file (``train.m`` compares it with ``maxsize``)."""
        return int(4 * (self._n * (self.labelsize + 2) + self._ne + self._nd))

    def example_dims(self) -> np.ndarray:
        """``(N,)`` int64: each example's ``.dat`` ``dim`` (values plus one label float per block)."""
        ep = self.example_ptr
        return (self.block_ptr[ep[1:]] - self.block_ptr[ep[:-1]]) + np.diff(ep)

    def example(self, i: int):
        """``(label_ints, [(block index, values), ...])`` of example ``i`` (values are views)."""
        i = int(i)
        if not 0 <= i < self._n:
            raise IndexError(f"example {i} out of range (the set has {self._n})")
        bp = self.block_ptr
        e0, e1 = self.example_ptr[i], self.example_ptr[i + 1]
        return (self.label_ints[i].copy(),
                [(int(self.block_ids[e]), self.data[bp[e]:bp[e + 1]]) for e in range(e0, e1)])

    def _select(self, indices):
        # sorted unique example indices, their entry counts, entry indices and value counts
        idx = np.asarray(indices)
        if idx.dtype == bool:
            if idx.shape != (self._n,):
                raise ValueError(f"boolean mask has shape {idx.shape}, expected ({self._n},)")
            idx = np.flatnonzero(idx)
        idx = np.unique(idx.astype(np.int64).ravel())
        if idx.size and (idx[0] < 0 or idx[-1] >= self._n):
            raise ValueError(f"indices must lie in 0..{self._n - 1}")
        ep, bp = self.example_ptr, self.block_ptr
        ne = ep[idx + 1] - ep[idx]
        e_idx = _ranges(ep[idx], ne)
        nd = bp[e_idx + 1] - bp[e_idx]
        return idx, ne, e_idx, nd

    def subset(self, indices) -> "ExampleSet":
        """A new set with the chosen examples, in their original order.

        Like ``rewritedat.m``: ``indices`` (0-based ints or a boolean mask of
        length N) are sorted and de-duplicated.
        """
        idx, ne, e_idx, nd = self._select(indices)
        d_idx = _ranges(self.block_ptr[e_idx], nd)
        return ExampleSet.from_arrays(
            self.label_ints[idx], np.concatenate([[0], np.cumsum(ne)]), self.block_ids[e_idx],
            np.concatenate([[0], np.cumsum(nd)]), self.data[d_idx],
            block_sizes=self.block_sizes, validate=False)

    def keep(self, indices) -> None:
        """Keep only the chosen examples, in place and in their original order.

        Same selection rule as :meth:`subset` (sorted, de-duplicated indices or
        a boolean mask), but the buffers are compacted where they are: no
        second copy of the features is made, and the capacity is kept for the
        examples that come next.
        """
        idx, ne, e_idx, nd = self._select(indices)
        ep, bp = self.example_ptr, self.block_ptr
        # values move left run by run (runs of consecutive kept examples); a
        # destination never passes its source, so each move is a safe overlap
        data = self._data
        starts = np.flatnonzero(np.diff(idx, prepend=-2) != 1)
        ends = np.append(starts[1:], idx.size)
        dst = 0
        for s, e in zip(starts, ends):
            lo, hi = int(bp[ep[idx[s]]]), int(bp[ep[idx[e - 1] + 1]])
            if lo != dst:
                data[dst:dst + hi - lo] = data[lo:hi]  # numpy copies overlapping ranges correctly
            dst += hi - lo
        n, E = idx.size, e_idx.size
        self._label_ints[:n] = self.label_ints[idx]
        self._block_ids[:E] = self.block_ids[e_idx]
        self._example_ptr[1:n + 1] = np.cumsum(ne)
        self._block_ptr[1:E + 1] = np.cumsum(nd)
        self._example_ptr[0] = 0
        self._block_ptr[0] = 0
        self._n, self._ne, self._nd = n, E, dst

    def validate(self, block_sizes=None) -> None:
        """Check the structure, labels and values; raise ``ValueError`` naming the first bad example.

        ``block_sizes`` (default: the set's own, if any) also checks block
        indices and value counts.
        """
        sizes = self.block_sizes if block_sizes is None else _as_sizes(block_sizes)
        n = self._n
        ep, bp, ids, data = self.example_ptr, self.block_ptr, self.block_ids, self.data
        if self.label_ints.shape != (n, self.labelsize):
            raise ValueError(f"label_ints has shape {self.label_ints.shape}, expected ({n}, {self.labelsize})")
        if ep.shape != (n + 1,) or ep[0] != 0 or np.any(np.diff(ep) < 0) or ep[-1] != ids.size:
            raise ValueError("example_ptr must rise from 0 to the number of block entries")
        if bp.shape != (ids.size + 1,) or bp[0] != 0 or np.any(np.diff(bp) < 0) or bp[-1] != data.size:
            raise ValueError("block_ptr must rise from 0 to the number of values")
        entry_example = np.repeat(np.arange(n), np.diff(ep))
        bad = np.flatnonzero((self.labels != 1) & (self.labels != -1))
        if bad.size:
            raise ValueError(f"example {bad[0]}: label {int(self.labels[bad[0]])} is not +1 or -1")
        bad = np.flatnonzero(ids < 0)
        if bad.size:
            raise ValueError(f"example {entry_example[bad[0]]}: block index {int(ids[bad[0]])} is negative")
        if sizes is not None:
            bad = np.flatnonzero(ids >= sizes.size)
            if bad.size:
                raise ValueError(f"example {entry_example[bad[0]]}: block index {int(ids[bad[0]])} is out of "
                                 f"range (the layout has {sizes.size} blocks)")
            bad = np.flatnonzero(np.diff(bp) != sizes[ids])
            if bad.size:
                e = bad[0]
                raise ValueError(f"example {entry_example[e]}: block {int(ids[e])} has {int(bp[e + 1] - bp[e])} "
                                 f"values, the layout says {int(sizes[ids[e]])}")
        finite = np.isfinite(data)
        if not finite.all():
            d = int(np.argmin(finite))
            e = int(np.searchsorted(bp, d, side="right")) - 1
            raise ValueError(f"example {entry_example[e]}: block {int(ids[e])} has a NaN or infinite value")

    # -- files ------------------------------------------------------------------------------

    @classmethod
    def read_dat(cls, path, block_sizes, *, num=None, labelsize: int = LABELSIZE) -> "ExampleSet":
        """Read a voc-release3.1 ``.dat`` file (see :func:`dpm.learnfiles.read_dat`)."""
        from .learnfiles import read_dat
        return read_dat(path, block_sizes, num=num, labelsize=labelsize)

    def write_dat(self, path) -> None:
        """Write the examples as a voc-release3.1 ``.dat`` file (see :func:`dpm.learnfiles.write_dat`)."""
        from .learnfiles import write_dat
        write_dat(path, self)


def _ranges(starts, lengths):
    """Concatenated ``arange(s, s + n)`` for each pair."""
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offs = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    return offs + np.arange(total, dtype=np.int64)


def _as_sizes(sizes) -> np.ndarray:
    arr = np.asarray(sizes)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"block sizes must be a non-empty 1-D sequence, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)) or np.any(arr < 1):
        raise ValueError("block sizes must be positive integers")
    return arr.astype(np.int64)


# --------------------------------------------------------------------------------------------
# Block layout
# --------------------------------------------------------------------------------------------

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
        sizes = _as_sizes(self.sizes)
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


# --------------------------------------------------------------------------------------------
# Duplicates and latent groups
# --------------------------------------------------------------------------------------------

class Collapsed(NamedTuple):
    """Unique examples grouped by label ints (learn.cc's sort, unique and ``collapse``).

    Attributes
    ----------
    unique : (N,) bool
        False for an exact copy (same label ints, blocks and value bits) of an
        earlier example.  learn.cc flags an arbitrary copy (its qsort is not
        stable); here the first in file order is the unique one.
    member_ptr : (G + 1,) int64
        Group ``g`` holds ``members[member_ptr[g]:member_ptr[g + 1]]``.
    members : (M,) int64
        Indices of the unique examples, grouped.
    group_y : (G,) int8
        The class label of each group.
    """

    unique: np.ndarray
    member_ptr: np.ndarray
    members: np.ndarray
    group_y: np.ndarray


def collapse_examples(examples: ExampleSet) -> Collapsed:
    """Find the unique examples and collapse those sharing label ints into latent groups."""
    n = len(examples)
    L = examples.label_ints
    ep, bp = examples.example_ptr, examples.block_ptr
    # record length in values: one label float per block plus the block values
    length = np.diff(ep) + (bp[ep[1:]] - bp[ep[:-1]])
    # Sort by label ints, then length, like learn.cc, but numerically rather
    # than in memcmp byte order and by file index rather than bytes after that
    # (a stable sort).  This only changes the order of the groups and of the
    # members within a group, which the random permutation makes irrelevant.
    order = np.lexsort((length,) + tuple(L[:, k] for k in range(L.shape[1] - 1, -1, -1)))
    Ls = L[order]
    same_label = np.zeros(n, dtype=bool)
    if n > 1:
        same_label[1:] = np.all(Ls[1:] == Ls[:-1], axis=1)
    same_len = np.zeros(n, dtype=bool)
    if n > 1:
        same_len[1:] = same_label[1:] & (length[order][1:] == length[order][:-1])
    unique = np.ones(n, dtype=bool)
    # Byte comparison only where label ints and lengths agree.
    run_starts = np.flatnonzero(~same_len)
    run_ends = np.append(run_starts[1:], n)
    ids, data_bits = examples.block_ids, examples.data.view(np.uint32)
    for s, e in zip(run_starts, run_ends):
        if e - s < 2:
            continue
        seen = set()
        for j in order[s:e]:   # ascending file index within the run (stable sort)
            key = (ids[ep[j]:ep[j + 1]].tobytes(), data_bits[bp[ep[j]]:bp[ep[j + 1]]].tobytes())
            if key in seen:
                unique[j] = False
            else:
                seen.add(key)
    keep = unique[order]
    members = order[keep].astype(np.int64)
    new_group = ~same_label[keep]
    if members.size:
        new_group[0] = True
    starts = np.flatnonzero(new_group)
    member_ptr = np.append(starts, members.size).astype(np.int64)
    group_y = L[members[starts], 0].astype(np.int8)
    return Collapsed(unique, member_ptr, members, group_y)


# --------------------------------------------------------------------------------------------
# Objective, scores, fitting
# --------------------------------------------------------------------------------------------

class Objective(NamedTuple):
    """The LSVM objective and its parts (``objective = regularizer + loss_pos + loss_neg``)."""

    objective: float
    regularizer: float    # 0.5 * sum_b regmult_b |w_b|^2
    loss_pos: float       # C * J * sum over positive groups of the hinge
    loss_neg: float       # C * sum over negative groups of the hinge


@dataclass(frozen=True)
class StoppingRule:
    """An optional stopping rule on the objective, like voc-release4's learn.cc (spec §1.13).

    Every ``every`` updates the objective ``f`` is evaluated; a check passes
    when ``|f - f_previous| / f <= tol`` (release 4: ``delta = 1 - |Δf|/f >=
    0.9995``) and ``updates >= min_updates``.  The run stops after more than
    ``patience`` consecutive passing checks.  Release 4 used ``every=100_000,
    tol=5e-4, patience=5, min_updates=5_000_000`` with ``max_updates=10_000_000``
    (:meth:`release4`).
    """

    every: int = 100_000
    tol: float = 5e-4
    patience: int = 5
    min_updates: int = 0

    def __post_init__(self):
        if int(self.every) < 1:
            raise ValueError(f"StoppingRule.every must be >= 1, got {self.every}")
        if not (math.isfinite(self.tol) and self.tol >= 0):
            raise ValueError(f"StoppingRule.tol must be finite and >= 0, got {self.tol}")
        if int(self.patience) < 0 or int(self.min_updates) < 0:
            raise ValueError("StoppingRule.patience and min_updates must be >= 0")

    @classmethod
    def release4(cls) -> "StoppingRule":
        """voc-release4's constants (use with ``max_updates=10_000_000``)."""
        return cls(every=100_000, tol=5e-4, patience=5, min_updates=5_000_000)


@dataclass(eq=False)
class LearnResult:
    """What :func:`fit_lsvm` returns.

    Attributes
    ----------
    w : (num_weights,) float64
        Final weights, blocks concatenated (the ``.mod`` layout).
    layout : BlockLayout
    scores : (N,) float64
        ``w . x`` of every example in input order (the ``.inf`` scores).
    unique : (N,) bool
        The ``.inf`` unique flags.
    objective, regularizer, loss_pos, loss_neg : float
        The objective at ``w`` and its parts (see :class:`Objective`).
    history : (K,) float64
        The objective sampled during training, at ``history_updates``: every
        ``history_every`` updates, then the final objective (always last).
    history_updates : (K,) int64
    updates : int
        SGD updates made (learn.cc finishes the epoch in which ``max_updates`` is
        reached, so this is usually a little more).
    epochs : int
    seconds : float
        Wall time of the optimisation loop (collapse and scoring included).
    seed : int
    num_unique, num_groups : int
    stopped_early : bool
        True when the stopping rule ended the run.
    """

    w: np.ndarray
    layout: BlockLayout
    scores: np.ndarray
    unique: np.ndarray
    objective: float
    regularizer: float
    loss_pos: float
    loss_neg: float
    history: np.ndarray
    history_updates: np.ndarray
    updates: int
    epochs: int
    seconds: float
    seed: int
    num_unique: int
    num_groups: int
    stopped_early: bool = False
    info: dict = field(default_factory=dict)

    def blocks(self) -> list[np.ndarray]:
        """The weights split per block (what :func:`dpm.model.model_from_blocks` takes)."""
        return self.layout.split(self.w)


def _learner():
    """The compiled learner: its AVX2 build where the processor has AVX2 (same results, faster)."""
    from . import _cpu
    return _cpu.best_build(__package__ + "._learn")


def _problem(examples: ExampleSet, layout: BlockLayout, C: float, J: float, collapsed: Collapsed | None = None):
    _learn = _learner()
    if collapsed is None:
        collapsed = collapse_examples(examples)
    # learn.cc reads regmult and learnmult from the .hdr as float32.
    reg = layout.regmult.astype(np.float32).astype(np.float64)
    lrn = layout.learnmult.astype(np.float32).astype(np.float64)
    prob = _learn.Problem(
        np.ascontiguousarray(examples.data), np.ascontiguousarray(examples.block_ptr),
        np.ascontiguousarray(examples.block_ids), np.ascontiguousarray(examples.example_ptr),
        collapsed.member_ptr, collapsed.members, collapsed.group_y,
        layout.offsets, reg, lrn, np.ascontiguousarray(layout.lower_bounds), float(C), float(J))
    return prob, collapsed


def _check_inputs(examples, layout, C, J):
    if not isinstance(examples, ExampleSet):
        raise TypeError(f"examples must be an ExampleSet, got {type(examples).__name__}")
    layout = BlockLayout.coerce(layout)
    if len(examples) == 0:
        raise ValueError("the example set is empty; the learner needs at least one example")
    examples.validate(layout.sizes)
    for name, val in (("C", C), ("J", J)):
        if not (isinstance(val, (int, float, np.floating, np.integer)) and math.isfinite(val) and val > 0):
            raise ValueError(f"{name} must be a positive finite number, got {val!r}")
    return layout


def _check_weights(w, layout, name):
    w = np.array(w, dtype=np.float64, copy=True).ravel()
    if w.size != layout.num_weights:
        raise ValueError(f"{name} has {w.size} values, the layout needs {layout.num_weights}")
    if not np.all(np.isfinite(w)):
        raise ValueError(f"{name} has NaN or infinite values")
    return w


def lsvm_objective(examples: ExampleSet, layout, C: float, J: float, w) -> Objective:
    """The objective at ``w`` (duplicates removed, groups scored by their best member)."""
    layout = _check_inputs(examples, layout, C, J)
    w = _check_weights(w, layout, "w")
    prob, _ = _problem(examples, layout, C, J)
    reg, lpos, lneg = prob.objective(w)
    return Objective(reg + lpos + lneg, reg, lpos, lneg)


def lsvm_subgradient(examples: ExampleSet, layout, C: float, J: float, w) -> np.ndarray:
    """A subgradient of the objective at ``w`` (see ``dpm._learn.Problem.subgradient``)."""
    layout = _check_inputs(examples, layout, C, J)
    w = _check_weights(w, layout, "w")
    prob, _ = _problem(examples, layout, C, J)
    out = np.empty(layout.num_weights, dtype=np.float64)
    prob.subgradient(w, out)
    return out


def score_examples(examples: ExampleSet, layout, w) -> np.ndarray:
    """``(N,)`` float64: ``w . x`` for every example, in order (learn.cc ``score``)."""
    layout = _check_inputs(examples, layout, 1.0, 1.0)
    w = _check_weights(w, layout, "w")
    prob, _ = _problem(examples, layout, 1.0, 1.0)
    out = np.empty(len(examples), dtype=np.float64)
    prob.score_examples(w, out)
    return out


def _check_seed(seed) -> int:
    if seed is None:
        return int(np.random.SeedSequence().entropy) % (1 << 64)
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an integer in [0, 2**64) or None, got {seed!r}")
    seed = int(seed)
    if not 0 <= seed < (1 << 64):
        raise ValueError(f"seed must be in [0, 2**64), got {seed}")
    return seed


def fit_lsvm(examples: ExampleSet, layout, C: float, J: float, *, seed,
             max_updates: int = ITER, init=None, stop: StoppingRule | None = None,
             history_every: int | None = None,
             progress: Callable[[int, int], None] | None = None) -> LearnResult:
    """Train a latent SVM by stochastic subgradient descent (voc-release3.1 ``learn.cc``).

    Parameters
    ----------
    examples : ExampleSet
        Feature vectors; examples sharing their label ints form one latent group.
    layout : BlockLayout, Model, list of dpm.model.Block, or tuple
        Block sizes, ``regmult``, ``learnmult`` and lower bounds.
    C : float
        Loss weight (``train.m``: 0.002 per component).
    J : float
        Extra weight of the positive loss.
    seed : int or None
        Seed of the permutation generator, in ``[0, 2**64)``.  The same seed
        gives bit-identical weights; None draws one (recorded in the result).
    max_updates : int
        learn.cc's ITER (5,000,000).  No epoch starts after this many updates.
    init : (num_weights,) array_like, optional
        Initial weights (the ``.mod`` learn.cc reads); zeros by default.
    stop : StoppingRule, optional
        Stop early when the objective settles.  Off by default, as in 3.1.
    history_every : int, optional
        Sample the objective every this many updates.  Default: every
        ``max(100_000, 20 * unique examples)`` updates, which costs at most about 5%
        (``stop.every`` when a stopping rule is given).
    progress : callable, optional
        Called as ``progress(updates, max_updates)`` about 20 times a second.

    Returns
    -------
    LearnResult

    Raises
    ------
    ValueError
        An empty set, labels other than +1/-1, block indices out of range,
        blocks of the wrong size, NaN/inf features, lower bounds or ``init`` of
        the wrong size, non-positive C or J.  Messages name the example index.
    KeyboardInterrupt
        On Ctrl+C, within a fraction of a second.

    Notes
    -----
    The algorithm of learn.cc ``gd`` (spec §1.12): each epoch visits the groups
    in cache in a random order; for group ``i`` with ``T = t + 1000``, every
    block is regularised by ``w_b -= (1/T) regmult_b learnmult_b w_b`` and, if
    the best member ``x`` has ``y w.x < 1``, ``w_b += c y (cnum C / T)
    learnmult_b x_b``; ``cnum`` is the number of groups in cache.  A negative
    beyond the margin four visits in a row sits out seven epochs; positives
    never leave.  Lower bounds are projected after every epoch.  Departures:
    an explicit portable seed (learn.cc: clock-seeded ``drand48``); the
    regularisation is applied through per-block scale factors (the same
    iterates up to rounding); a 4-way split dot product (rounding only).
    """
    _learn = _learner()
    t0 = time.perf_counter()
    layout = _check_inputs(examples, layout, C, J)
    seed = _check_seed(seed)
    if isinstance(max_updates, bool) or not isinstance(max_updates, (int, np.integer)) or max_updates < 0:
        raise ValueError(f"max_updates must be a non-negative integer, got {max_updates!r}")
    max_updates = int(max_updates)
    w0 = np.zeros(layout.num_weights) if init is None else _check_weights(init, layout, "init")
    if stop is not None and not isinstance(stop, StoppingRule):
        raise ValueError("stop must be a StoppingRule or None")

    prob, col = _problem(examples, layout, C, J)
    num_unique = int(np.count_nonzero(col.unique))
    num_groups = int(col.group_y.size)
    log.info("%d examples, %d unique, %d collapsed into latent groups; %d blocks, %d weights",
             len(examples), num_unique, num_groups, layout.num_blocks, layout.num_weights)
    if stop is not None:
        every = int(stop.every)
    elif history_every is not None:
        every = int(history_every)
        if every < 1:
            raise ValueError(f"history_every must be >= 1, got {history_every}")
    else:
        every = max(100_000, 20 * num_unique)

    sgd = _learn.SGD(prob, w0, seed, max_updates)
    hist, hist_t = [], []
    next_sample = every
    passes = 0
    stopped = False
    t_report = time.perf_counter()
    while True:
        done = sgd.run(_CHUNK_WORK, next_sample)
        if sgd.updates >= next_sample:
            reg, lp, ln = prob.objective(sgd.weights())
            f = reg + lp + ln
            if stop is not None and hist:
                rel = abs(hist[-1] - f) / f if f > 0 else 0.0
                passes = passes + 1 if (rel <= stop.tol and sgd.updates >= stop.min_updates) else 0
            hist.append(f)
            hist_t.append(sgd.updates)
            log.debug("update %d: objective %.6f", sgd.updates, f)
            next_sample += every
            if stop is not None and passes > stop.patience:
                sgd.finish()
                stopped = True
                done = True
        if progress is not None and (done or time.perf_counter() - t_report > 0.05):
            progress(int(sgd.updates), max_updates)
            t_report = time.perf_counter()
        if done:
            break

    w = sgd.weights()
    reg, lp, ln = prob.objective(w)
    hist.append(reg + lp + ln)
    hist_t.append(sgd.updates)
    scores = np.empty(len(examples), dtype=np.float64)
    prob.score_examples(w, scores)
    seconds = time.perf_counter() - t0
    log.info("%d updates in %d epochs, %.2f s: objective %.6f (regularizer %.6f, positive loss %.6f, "
             "negative loss %.6f)", sgd.updates, sgd.epochs, seconds, reg + lp + ln, reg, lp, ln)
    return LearnResult(w=w, layout=layout, scores=scores, unique=col.unique.copy(),
                       objective=reg + lp + ln, regularizer=reg, loss_pos=lp, loss_neg=ln,
                       history=np.array(hist, dtype=np.float64), history_updates=np.array(hist_t, dtype=np.int64),
                       updates=int(sgd.updates), epochs=int(sgd.epochs), seconds=seconds, seed=seed,
                       num_unique=num_unique, num_groups=num_groups, stopped_early=stopped,
                       info={"C": float(C), "J": float(J), "max_updates": max_updates})
