"""What a star-cascade is (spec star-cascade.md §C.1, §C.3-§C.5): the data every cascade module shares.

A :class:`Cascade` belongs to one :class:`dpm.model.Model`.  It holds the PCA
projection of HOG cells and, per component, the stage order and the pruning
thresholds, in exactly the layout ``cascade_model.m`` builds and ``cascade.cc``
reads (0-based here):

- ``order`` (length ``2n``, ``n`` = 1 + number of parts): the filter placed at
  each stage, 0 for the root and ``i`` for part ``i`` (1-based part index, part
  ``i`` is ``component.parts[i - 1]``): ``[0, o_1 .. o_{n-1}, 0, o_1 .. o_{n-1}]``,
  the first ``n`` stages with projected filters, the last ``n`` with full filters.
- ``thresholds`` (length ``4n``): ``thresholds[2 s]`` is the deformation
  pruning threshold and ``thresholds[2 s + 1]`` the hypothesis pruning
  threshold of stage ``s`` (table at the end of ``cascade_model.m``), the last
  entry is the global threshold.  A component without positives has every
  entry at ``+inf`` (it never fires).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Half-width in cells of the window around a part's anchor probe where the
# cascade places it (cascade.cc's S).
DEFAULT_WINDOW = 4


@dataclass(eq=False)
class CascadeComponent:
    order: np.ndarray        # (2n,) int64, see the module docstring
    thresholds: np.ndarray   # (4n,) float64, see the module docstring


@dataclass(eq=False)
class Cascade:
    """A model's star-cascade.

    Attributes
    ----------
    coeff : (d, k) float64
        Projection of d-dimensional HOG cells onto k principal directions
        (the first k columns of the PCA of §C.1; k = 5 in the release).
    components : list of CascadeComponent
        One per model component, in the model's order.
    threshold : float
        The global threshold the thresholds were computed for (§C.4's ``T``).
    window : int
        Half-width in cells of the part search window around each anchor probe.
    """

    coeff: np.ndarray
    components: list
    threshold: float
    window: int = DEFAULT_WINDOW

    @property
    def dims(self) -> int:
        """Number of principal directions the projected filters and features have."""
        return int(self.coeff.shape[1])


def project(features: np.ndarray, coeff: np.ndarray, dtype=np.float64) -> np.ndarray:
    """A feature map or filter ``(h, w, d)`` projected onto ``coeff`` ``(d, k)``: ``(h, w, k)``, computed
    and returned in ``dtype`` (float64, or float32: the cascade's projected maps)."""
    features = np.asarray(features, dtype=dtype)
    return np.ascontiguousarray(features @ np.asarray(coeff, dtype=dtype))
