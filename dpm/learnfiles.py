"""Read and write voc-release3.1's learner interchange files (spec §1.14).

``train.m`` and ``learn.cc`` talk through five files, all little-endian:

``.hdr``
    int32 ``num``, int32 ``labelsize`` (5), int32 ``numblocks``, int32
    ``blocksizes[numblocks]``, float32 ``regmult[numblocks]``, float32
    ``learnmult[numblocks]`` (``writeheader.m``).
``.dat``
    ``num`` examples back to back, no file header.  Each is int32 ``[label id
    level xc yc numblocks dim]`` and ``dim`` float32 values: ``numblocks`` runs
    of ``[block label (1-based, as a float), blocksizes[label - 1] values]``.
``.mod``, ``.lob``
    float64 weights and lower bounds, blocks concatenated (``Σ blocksizes`` values).
``.inf``
    text, one ``"%d\\t%f\\t%d\\n"`` line (label, score, unique flag) per example.

Readers check every size and raise ``ValueError`` naming the file and the
byte offset (and example index) of the first problem.  Writers write to a
temporary file next to the destination and rename it into place.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from ._io import atomic_write
from .learn import LABELSIZE, BlockLayout, ExampleSet

__all__ = [
    "Header", "read_hdr", "write_hdr", "read_dat", "write_dat", "read_vector", "write_vector",
    "read_inf", "write_inf", "read_layout",
]


@dataclass(frozen=True, eq=False)
class Header:
    """The content of a ``.hdr`` file.

    Attributes
    ----------
    num : int
        Number of examples in the ``.dat`` file.
    labelsize : int
    block_sizes : (B,) int64
    regmult, learnmult : (B,) float64 (stored as float32 in the file)
    """

    num: int
    labelsize: int
    block_sizes: np.ndarray
    regmult: np.ndarray
    learnmult: np.ndarray

    def layout(self, lower_bounds=None) -> BlockLayout:
        """A :class:`dpm.learn.BlockLayout` with these blocks and the given lower bounds."""
        return BlockLayout(self.block_sizes, self.regmult, self.learnmult, lower_bounds)


def _read_bytes(path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


# --------------------------------------------------------------------------------------------
# .hdr
# --------------------------------------------------------------------------------------------

def read_hdr(path) -> Header:
    """Read a ``.hdr`` file.

    Raises
    ------
    ValueError
        Truncated or trailing bytes, a negative count, ``labelsize < 1``,
        block sizes < 1, or NaN/negative multipliers.
    """
    raw = _read_bytes(path)
    if len(raw) < 12:
        raise ValueError(f"{path}: truncated .hdr: {len(raw)} bytes, the first 3 int32 need 12")
    num, labelsize, nb = struct.unpack_from("<3i", raw, 0)
    if num < 0:
        raise ValueError(f"{path}: byte offset 0: negative example count {num}")
    if labelsize < 1:
        raise ValueError(f"{path}: byte offset 4: label size {labelsize} must be >= 1")
    if nb < 1:
        raise ValueError(f"{path}: byte offset 8: number of blocks {nb} must be >= 1")
    need = 12 + 12 * nb
    if len(raw) != need:
        what = "truncated" if len(raw) < need else "trailing bytes in"
        raise ValueError(f"{path}: {what} .hdr: {len(raw)} bytes, {nb} blocks need {need}")
    sizes = np.frombuffer(raw, dtype="<i4", count=nb, offset=12).astype(np.int64)
    reg = np.frombuffer(raw, dtype="<f4", count=nb, offset=12 + 4 * nb).astype(np.float64)
    lrn = np.frombuffer(raw, dtype="<f4", count=nb, offset=12 + 8 * nb).astype(np.float64)
    bad = np.flatnonzero(sizes < 1)
    if bad.size:
        raise ValueError(f"{path}: byte offset {12 + 4 * bad[0]}: block {bad[0] + 1} has size {sizes[bad[0]]}")
    for name, arr, off in (("regmult", reg, 12 + 4 * nb), ("learnmult", lrn, 12 + 8 * nb)):
        bad = np.flatnonzero(~np.isfinite(arr) | (arr < 0))
        if bad.size:
            raise ValueError(f"{path}: byte offset {off + 4 * bad[0]}: {name} of block {bad[0] + 1} is "
                             f"{arr[bad[0]]}; it must be finite and >= 0")
    return Header(num=num, labelsize=labelsize, block_sizes=sizes, regmult=reg, learnmult=lrn)


def write_hdr(path, num: int, block_sizes, regmult, learnmult, labelsize: int = LABELSIZE) -> None:
    """Write a ``.hdr`` file (``writeheader.m``)."""
    sizes = np.asarray(block_sizes, dtype="<i4").ravel()
    reg = np.asarray(regmult, dtype="<f4").ravel()
    lrn = np.asarray(learnmult, dtype="<f4").ravel()
    if reg.size != sizes.size or lrn.size != sizes.size:
        raise ValueError(f"{sizes.size} blocks but {reg.size} regmult and {lrn.size} learnmult values")
    payload = struct.pack("<3i", int(num), int(labelsize), sizes.size) + sizes.tobytes() + reg.tobytes() + lrn.tobytes()
    atomic_write(path, payload)


# --------------------------------------------------------------------------------------------
# .dat
# --------------------------------------------------------------------------------------------

def read_dat(path, block_sizes, *, num=None, labelsize: int = LABELSIZE) -> ExampleSet:
    """Read a ``.dat`` file into an :class:`~dpm.learn.ExampleSet`.

    Parameters
    ----------
    path : path-like
    block_sizes : sequence of int or Header
        The block sizes from the ``.hdr`` (a :class:`Header` also supplies
        ``num`` and ``labelsize``).
    num : int, optional
        Number of examples the header announces; the file must hold exactly
        that many.  By default the whole file is read.
    labelsize : int

    Raises
    ------
    ValueError
        A truncated example, bytes left after ``num`` examples, ``numblocks`` or
        ``dim`` inconsistent with the block runs, a block label that is not an
        integer in ``1..B``, a class label other than +1/-1, or a NaN/infinite
        value.  The message gives the example index and its byte offset.
    """
    if isinstance(block_sizes, Header):
        hdr = block_sizes
        num = hdr.num if num is None else num
        labelsize = hdr.labelsize
        block_sizes = hdr.block_sizes
    sizes = np.asarray(block_sizes, dtype=np.int64).ravel()
    nb = sizes.size
    raw = _read_bytes(path)
    nbytes = len(raw)
    head = 4 * (labelsize + 2)
    ints = np.frombuffer(raw, dtype="<i4", count=nbytes // 4)
    floats = ints.view("<f4")

    label_rows, ex_nent = [], []
    block_ids, entry_start = [], []
    i = 0
    off = 0
    while (num is None and off < nbytes) or (num is not None and i < num):
        where = f"{path}: example {i} (byte offset {off})"
        if off + head > nbytes:
            raise ValueError(f"{where}: truncated .dat: the example header needs {head} bytes, "
                             f"{nbytes - off} are left")
        k = off // 4
        lab = ints[k:k + labelsize]
        nblocks, dim = int(ints[k + labelsize]), int(ints[k + labelsize + 1])
        if lab[0] not in (1, -1):
            raise ValueError(f"{where}: label {int(lab[0])} is not +1 or -1")
        if nblocks < 0 or dim < 0:
            raise ValueError(f"{where}: negative numblocks {nblocks} or dim {dim}")
        end = off + head + 4 * dim
        if end > nbytes:
            raise ValueError(f"{where}: truncated .dat: dim {dim} needs {4 * dim} bytes of values, "
                             f"{nbytes - off - head} are left")
        p = k + labelsize + 2
        stop = end // 4
        label_rows.append(lab)
        ex_nent.append(nblocks)
        for b in range(nblocks):
            if p >= stop:
                raise ValueError(f"{where}: its {dim} values end inside block {b + 1} of {nblocks} "
                                 f"(numblocks and dim disagree)")
            fl = float(floats[p])
            if not (np.isfinite(fl) and fl == int(fl) and 1 <= fl <= nb):
                raise ValueError(f"{where}: block label {fl:g} at byte offset {4 * p} is not an integer "
                                 f"in 1..{nb}")
            bl = int(fl)
            size = int(sizes[bl - 1])
            if p + 1 + size > stop:
                raise ValueError(f"{where}: block {b + 1} (label {bl}, {size} values) runs past the "
                                 f"example's {dim} values (numblocks and dim disagree)")
            block_ids.append(bl - 1)
            entry_start.append(p + 1)
            p += 1 + size
        if p != stop:
            raise ValueError(f"{where}: {nblocks} blocks use {p - (k + labelsize + 2)} values but dim is {dim}")
        i += 1
        off = end
    if num is not None and off != nbytes:
        raise ValueError(f"{path}: {nbytes - off} bytes left at byte offset {off} after the {num} examples "
                         f"the header announces")

    n = len(label_rows)
    label_ints = np.array(label_rows, dtype=np.int32).reshape(n, labelsize)
    example_ptr = np.concatenate([[0], np.cumsum(ex_nent)]).astype(np.int64)
    ids = np.array(block_ids, dtype=np.int32)
    lengths = sizes[ids] if ids.size else np.zeros(0, dtype=np.int64)
    block_ptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    # gather every entry's values (skipping the block label floats)
    starts = np.array(entry_start, dtype=np.int64)
    total = int(block_ptr[-1])
    if total:
        idx = np.repeat(starts - block_ptr[:-1], lengths) + np.arange(total, dtype=np.int64)
        data = floats[idx].astype(np.float32)
    else:
        data = np.zeros(0, dtype=np.float32)
    finite = np.isfinite(data)
    if not finite.all():
        d = int(np.argmin(finite))
        e = int(np.searchsorted(block_ptr, d, side="right")) - 1
        ex = int(np.searchsorted(example_ptr, e, side="right")) - 1
        byte = 4 * int(idx[d])
        raise ValueError(f"{path}: example {ex}: NaN or infinite value at byte offset {byte} "
                         f"(block {int(ids[e]) + 1})")
    return ExampleSet.from_arrays(label_ints, example_ptr, ids, block_ptr, data, block_sizes=sizes,
                                  validate=False)


def write_dat(path, examples: ExampleSet) -> None:
    """Write an :class:`~dpm.learn.ExampleSet` as a ``.dat`` file (the bytes ``detect.m`` writes)."""
    n = len(examples)
    L = examples.label_ints
    ep, bp, ids, data = examples.example_ptr, examples.block_ptr, examples.block_ids, examples.data
    nent = np.diff(ep)
    nval = bp[ep[1:]] - bp[ep[:-1]]
    dims = nent + nval
    head = examples.labelsize + 2
    total = int(n * head + dims.sum())
    out = np.empty(total, dtype="<u4")
    out_f = out.view("<f4")
    out_i = out.view("<i4")
    # position of each example's header, then each entry's label float, then values
    ex_off = np.concatenate([[0], np.cumsum(head + dims)[:-1]]).astype(np.int64) if n else np.zeros(0, np.int64)
    for j in range(examples.labelsize):
        out_i[ex_off + j] = L[:, j]
    out_i[ex_off + examples.labelsize] = nent
    out_i[ex_off + examples.labelsize + 1] = dims
    if ids.size:
        entry_example = np.repeat(np.arange(n), nent)
        # offset of entry e inside its example's value run
        lens = np.diff(bp)
        before = np.concatenate([[0], np.cumsum(lens + 1)])
        within = before[:-1] - before[ep[:-1]][entry_example]
        entry_off = ex_off[entry_example] + head + within
        out_f[entry_off] = ids.astype(np.float32) + 1
        idx = np.repeat(entry_off + 1 - bp[:-1], lens) + np.arange(data.size, dtype=np.int64)
        out_f[idx] = data
    atomic_write(path, out.tobytes())


# --------------------------------------------------------------------------------------------
# .mod, .lob
# --------------------------------------------------------------------------------------------

def read_vector(path, size: int, *, what: str = "weights") -> np.ndarray:
    """Read a ``.mod`` or ``.lob`` file: exactly ``size`` little-endian float64 values.

    Raises
    ------
    ValueError
        The file holds a different number of values (or a partial value), or
        NaN values.
    """
    raw = _read_bytes(path)
    if len(raw) != 8 * size:
        raise ValueError(f"{path}: {what} file of the wrong size: {len(raw)} bytes, the blocks need "
                         f"{size} float64 values ({8 * size} bytes)")
    vec = np.frombuffer(raw, dtype="<f8").astype(np.float64)
    bad = np.flatnonzero(np.isnan(vec))
    if bad.size:
        raise ValueError(f"{path}: byte offset {8 * bad[0]}: NaN in the {what}")
    return vec


def write_vector(path, values) -> None:
    """Write float64 values (a ``.mod`` or ``.lob`` file)."""
    atomic_write(path, np.asarray(values, dtype="<f8").ravel().tobytes())


def read_layout(hdr_path, lob_path=None):
    """Read a ``.hdr`` (and optionally its ``.lob``): ``(Header, BlockLayout)``."""
    hdr = read_hdr(hdr_path)
    lb = None
    if lob_path is not None:
        lb = read_vector(lob_path, int(hdr.block_sizes.sum()), what="lower bounds")
    return hdr, hdr.layout(lb)


# --------------------------------------------------------------------------------------------
# .inf
# --------------------------------------------------------------------------------------------

def write_inf(path, labels, scores, unique) -> None:
    """Write a ``.inf`` file: ``"%d\\t%f\\t%d\\n"`` (label, score, unique) per example."""
    labels = np.asarray(labels).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    unique = np.asarray(unique).ravel()
    if not labels.size == scores.size == unique.size:
        raise ValueError("labels, scores and unique flags need the same length")
    lines = "".join("%d\t%f\t%d\n" % (int(a), float(s), int(u)) for a, s, u in zip(labels, scores, unique))
    atomic_write(path, lines.encode("ascii"))


def read_inf(path):
    """Read a ``.inf`` file (``readinfo.m``): ``(labels int32, scores float64, unique int32)``."""
    labels, scores, unique = [], [], []
    with open(path, "r", encoding="ascii", errors="replace") as fh:
        for k, line in enumerate(fh, 1):
            parts = line.split()
            if not parts:
                continue
            try:
                if len(parts) != 3:
                    raise ValueError
                labels.append(int(parts[0]))
                scores.append(float(parts[1]))
                unique.append(int(parts[2]))
            except ValueError:
                raise ValueError(f"{path}: line {k}: expected 'label score unique', got {line.strip()!r}") from None
    return (np.array(labels, dtype=np.int32), np.array(scores, dtype=np.float64),
            np.array(unique, dtype=np.int32))
