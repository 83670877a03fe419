"""Merge single-component models into one mixture model.

Port of voc-release3.1 ``mergemodels.m`` (Felzenszwalb, Girshick, McAllester,
Ramanan; MIT-style licence).
"""
from __future__ import annotations

import copy
from typing import Sequence

import numpy as np

from ..model import Block, Model

__all__ = ["mergemodels"]


def _copy_block(b: Block) -> Block:
    return Block(size=int(b.size), regmult=float(b.regmult), learnmult=float(b.learnmult),
                 lower_bounds=np.array(b.lower_bounds, dtype=np.float64, copy=True))


def mergemodels(models: Sequence[Model]) -> Model:
    """Concatenate the components of several models into one mixture.

    Components keep their order (model by model).  The learner blocks are
    renumbered sequentially by kind: first every component's offset, then every
    root, then every (non-fake) part filter, then every deformation, each in
    component order; block settings (size, regmult, learnmult, lower bounds)
    travel with their block.  ``maxsize``/``minsize`` of the result are the
    elementwise max/min over all roots (they are derived from the components
    here).  ``sbin``, ``interval``, ``thresh``, ``class_name`` and ``info`` come
    from the first model.

    A block shared by several filters of one input model stays shared.  The
    result is not validated: components may (transiently) differ in their
    number of parts, which the detector does not accept.

    Parameters
    ----------
    models : sequence of Model

    Returns
    -------
    Model
        A new model; the inputs are not modified.

    Raises
    ------
    ValueError
        No models, or models with different ``sbin``.
    """
    models = list(models)
    if not models:
        raise ValueError("mergemodels needs at least one model")
    sbins = {m.sbin for m in models}
    if len(sbins) > 1:
        raise ValueError(f"cannot merge models with different sbin values {sorted(sbins)}")
    copies = [copy.deepcopy(m) for m in models]
    comps = [(mi, c) for mi, m in enumerate(copies) for c in m.components]
    blocks: list[Block] = []
    new_index: dict[tuple[int, int], int] = {}

    def renumber(mi: int, old: int) -> int:
        key = (mi, old)
        if key not in new_index:
            new_index[key] = len(blocks)
            blocks.append(_copy_block(copies[mi].blocks[old]))
        return new_index[key]

    for mi, c in comps:
        c.bias_block = renumber(mi, c.bias_block)
    for mi, c in comps:
        c.root_block = renumber(mi, c.root_block)
    for mi, c in comps:
        for p in c.parts:
            if not p.fake:
                p.filter_block = renumber(mi, p.filter_block)
    for mi, c in comps:
        for p in c.parts:
            if not p.fake:
                p.def_block = renumber(mi, p.def_block)
    first = copies[0]
    return Model(components=[c for _, c in comps], blocks=blocks, sbin=first.sbin,
                 interval=first.interval, thresh=first.thresh, class_name=first.class_name,
                 info=dict(first.info))
