"""Example sets of the latent-SVM learner: examples in a sparse block layout, like the ``.dat`` records."""
from __future__ import annotations

import numpy as np

__all__ = ["ExampleSet", "LABELSIZE", "as_block_sizes"]

LABELSIZE = 5      # label ints per example: (label, id, level, xc, yc)


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
        self.block_sizes = None if block_sizes is None else as_block_sizes(block_sizes)
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
        sizes = self.block_sizes if block_sizes is None else as_block_sizes(block_sizes)
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
        from ..learnfiles import read_dat
        return read_dat(path, block_sizes, num=num, labelsize=labelsize)

    def write_dat(self, path) -> None:
        """Write the examples as a voc-release3.1 ``.dat`` file (see :func:`dpm.learnfiles.write_dat`)."""
        from ..learnfiles import write_dat
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


def as_block_sizes(sizes) -> np.ndarray:
    arr = np.asarray(sizes)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"block sizes must be a non-empty 1-D sequence, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)) or np.any(arr < 1):
        raise ValueError("block sizes must be positive integers")
    return arr.astype(np.int64)
