"""The voc-release3.1 Deformable Part Model type (:class:`Model`) and its parts.

A model is a mixture of components.  Each component has a root filter, a bias
and parts; each part has a filter (at twice the root's resolution), an anchor
and a quadratic deformation cost.  This mirrors the model structure documented
at the top of voc-release3.1 ``initmodel.m`` (spec §1.3), nested per component
instead of the original's global cell arrays.

Conventions
-----------
* Filters are ``(h, w, 31)`` float64 arrays indexed ``[y, x, channel]``.
* Anchors are 1-based ``(x, y)`` cell positions of a part's top-left corner in
  the 2x-resolution grid of its root, as in the original.
* ``deformation = [ax, bx, ay, by]`` is the cost ``ax*dx**2 + bx*dx + ay*dy**2 +
  by*dy`` of displacing the part by ``(dx, dy)`` cells from its anchor.
* Symmetry: root filters are left/right symmetric (their learner block holds
  the left ``ceil(w/2)`` columns).  A part without a partner is self-symmetric
  in the same way.  A part with a ``partner`` holds its full width, and the
  partner is ``fake``: its filter and deformation are the mirror images of the
  real part's (``parsemodel.m``).
* ``blocks`` is the learner's parameter layout (``blocksizes``, ``regmult``,
  ``learnmult``, ``lowerbounds``); filters refer to it by 0-based index.

A model may carry a star-cascade (:class:`dpm.cascade.Cascade`, made by
:func:`dpm.build_cascade`).
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from ..cascade import Cascade

__all__ = ["Block", "Part", "Component", "Model"]


@dataclass(eq=False)
class Block:
    """One block of the learner's weight vector (a 3.1 ``blocklabel``)."""

    size: int
    regmult: float
    learnmult: float
    lower_bounds: np.ndarray  # (size,) float64


@dataclass(eq=False)
class Part:
    """A part filter with its anchor and deformation cost."""

    filter: np.ndarray               # (h, w, 31) float64, at twice the root resolution
    anchor: tuple[int, int]          # 1-based (x, y) in 2x root cells
    deformation: np.ndarray          # (4,) float64 [ax, bx, ay, by]
    partner: int = -1                # index in Component.parts of the mirrored partner, or -1
    fake: bool = False               # mirror copy of ``partner``; owns no learner blocks
    filter_block: int = -1           # 0-based block index; -1 for fake parts
    def_block: int = -1

    @property
    def size(self) -> tuple[int, int]:
        """``(h, w)`` of the filter in cells."""
        return self.filter.shape[0], self.filter.shape[1]

    @property
    def self_symmetric(self) -> bool:
        """True for a part without a partner: its block holds the left half only."""
        return self.partner < 0 and not self.fake


@dataclass(eq=False)
class Component:
    """One mixture component: root filter, bias, parts, bounding-box regressor."""

    root: np.ndarray                 # (h, w, 31) float64
    bias: float
    parts: list[Part] = field(default_factory=list)
    root_block: int = -1
    bias_block: int = -1
    # (4, 3 + 2 * len(parts)) float64: rows predict x1, y1, x2, y2 from the
    # getboxes.m regressor [root width, root x1, root y1, part x1, part y1, ...].
    bbox_regressor: np.ndarray | None = None

    @property
    def root_size(self) -> tuple[int, int]:
        """``(h, w)`` of the root filter in cells."""
        return self.root.shape[0], self.root.shape[1]

    def dim(self, model: "Model") -> int:
        """Length of this component's ``.dat`` feature vector, block labels included."""
        n = 2 + 1 + model.blocks[self.root_block].size
        for p in self.parts:
            if not p.fake:
                n += 6 + model.blocks[p.filter_block].size
        return n

    @property
    def numblocks(self) -> int:
        """Number of blocks the component's feature vector touches."""
        return 2 + 2 * sum(not p.fake for p in self.parts)


@dataclass(eq=False)
class Model:
    """A Deformable Part Model (voc-release3.1 semantics).

    Attributes
    ----------
    components : list of Component
    blocks : list of Block
        The learner's parameter layout.
    sbin : int
        Pixels per HOG cell at the root's resolution (8).
    interval : int
        Pyramid levels per octave (10).
    thresh : float
        Default detection threshold (5th percentile of training-positive scores).
    class_name : str
    info : dict of str to str
        Free-form provenance (training command, dataset, source file).
    cascade : dpm.cascade.Cascade or None
        The star-cascade for this model's weights (:func:`dpm.build_cascade`), if any.
    """

    components: list[Component]
    blocks: list[Block]
    sbin: int = 8
    interval: int = 10
    thresh: float = 0.0
    class_name: str = ""
    info: dict = field(default_factory=dict)
    cascade: Cascade | None = None

    @property
    def maxsize(self) -> tuple[int, int]:
        """Elementwise maximum ``(h, w)`` of the root filters, in cells."""
        sizes = np.array([c.root_size for c in self.components])
        return int(sizes[:, 0].max()), int(sizes[:, 1].max())

    @property
    def minsize(self) -> tuple[int, int]:
        """Elementwise minimum ``(h, w)`` of the root filters, in cells."""
        sizes = np.array([c.root_size for c in self.components])
        return int(sizes[:, 0].min()), int(sizes[:, 1].min())

    @property
    def padding(self) -> tuple[int, int]:
        """``(pady, padx)`` in root cells added around each level by ``detect.m``."""
        h, w = self.maxsize
        return math.ceil(h / 2 + 1), math.ceil(w / 2 + 1)

    @property
    def num_parts(self) -> int:
        """Parts per component (the detection output assumes every component has as many)."""
        return max((len(c.parts) for c in self.components), default=0)

    def copy(self) -> "Model":
        """A deep copy (arrays included)."""
        return copy.deepcopy(self)

    def __repr__(self):
        comps = ", ".join(f"{c.root_size[0]}x{c.root_size[1]}+{len(c.parts)}p" for c in self.components)
        return (f"Model(class_name={self.class_name!r}, components=[{comps}], sbin={self.sbin}, "
                f"interval={self.interval}, thresh={self.thresh:g}, blocks={len(self.blocks)}"
                f"{', cascade' if self.cascade is not None else ''})")
