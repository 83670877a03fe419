"""Exact duplicates removed and examples that share their label ints collapsed into latent groups."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .examples import ExampleSet

__all__ = ["Collapsed", "collapse_examples"]


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
