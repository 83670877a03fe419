"""Aspect-ratio split of the positives and the root-only initial model.

Ports voc-release3.1 ``split.m`` and ``initmodel.m`` (Felzenszwalb, Girshick,
McAllester, Ramanan; MIT-style licence).  Boxes are ``(x1, y1, x2, y2)``,
1-based inclusive, so a box is ``x2 - x1 + 1`` pixels wide.
"""
from __future__ import annotations

import math

import numpy as np

from ..model import NUM_FEATURES, Block, Component, Model
from ..boxes import check_boxes
from .config import TrainConfig

__all__ = ["box_array", "split", "initmodel", "root_shape"]


def box_array(positives) -> np.ndarray:
    """Boxes of positives as an ``(N, 4)`` float64 array.

    ``positives`` is an ``(N, 4)`` array-like of ``(x1, y1, x2, y2)`` rows or a
    sequence of objects with a ``box`` attribute (``voc.dataset.Positive``).
    """
    items = list(positives) if not isinstance(positives, np.ndarray) else positives
    if len(items) and hasattr(items[0], "box"):
        items = [p.box for p in items]
    return check_boxes(items)


def _heights_widths(boxes: np.ndarray):
    return boxes[:, 3] - boxes[:, 1] + 1, boxes[:, 2] - boxes[:, 0] + 1


def split(positives, n: int, *, balance_ties: bool = False) -> list[np.ndarray]:
    """Split positives into ``n`` groups of similar aspect ratio (``split.m``).

    The sorted aspect ratios ``h/w`` are cut into ``n`` equal-count bins with
    bounds ``b_i = aspects[ceil((i-1) * N / n) + 1]`` (1-based; ``inf`` past
    the end), and group ``i`` takes the positives with ``b_i <= h/w < b_{i+1}``.

    Parameters
    ----------
    positives : (N, 4) array-like or sequence of objects with ``.box``
    n : int
        Number of groups (components), >= 1.
    balance_ties : bool
        When the original rule leaves a group empty (many positives share one
        aspect ratio, e.g. fixed-size crops), cut the positives ranked by
        aspect ratio (ties in list order) into ``n`` equal-count groups
        instead.  The original then failed in ``initmodel``; ``dpm-train``
        uses this.

    Returns
    -------
    list of n int ndarrays
        Indices into ``positives``, ascending.  A group can be empty when many
        positives share one aspect ratio (as in the original), unless
        ``balance_ties``.
    """
    if int(n) != n or n < 1:
        raise ValueError(f"the number of groups must be a positive integer, got {n!r}")
    n = int(n)
    boxes = box_array(positives)
    h, w = _heights_widths(boxes)
    aspects = h / w
    srt = np.sort(aspects)
    bounds = []
    for i in range(1, n + 2):
        j = math.ceil((i - 1) * len(srt) / n) + 1
        bounds.append(np.inf if j > len(srt) else srt[j - 1])
    groups = [np.flatnonzero((aspects >= bounds[i]) & (aspects < bounds[i + 1])) for i in range(n)]
    if balance_ties and any(g.size == 0 for g in groups) and len(aspects) >= n:
        order = np.argsort(aspects, kind="stable")
        cuts = [math.ceil(i * len(order) / n) for i in range(n + 1)]
        groups = [np.sort(order[cuts[i]:cuts[i + 1]]) for i in range(n)]
    return groups


def _matlab_hist(values: np.ndarray, centers: np.ndarray) -> np.ndarray:
    # MATLAB hist(y, centers): bin edges halfway between centres, outer bins open.
    edges = centers[:-1] + np.diff(centers) / 2
    idx = np.searchsorted(edges, values, side="right")
    return np.bincount(idx, minlength=centers.size).astype(np.float64)


def root_shape(positives, config: TrainConfig | None = None) -> tuple[int, int]:
    """Root filter size ``(h, w)`` in cells chosen by ``initmodel.m``.

    * Aspect: the mode of a histogram of ``log(h/w)`` over ``-2:0.02:2``,
      smoothed with ``exp(-k^2/400)``, ``k = -100..100`` (first maximum wins).
    * Area: the 20th-percentile box area (``areas(floor(0.2 N))`` of the sorted
      areas), clamped to ``[3000, 5000]`` square pixels.
    * ``w = sqrt(area/aspect)``, ``h = w*aspect``, size ``round([h w] / sbin)``
      with MATLAB rounding (half away from zero), at least 1 cell.

    With fewer than 5 positives ``floor(0.2 N)`` is 0, where the original fails
    on a zero index; here the smallest area is used instead.
    """
    cfg = config or TrainConfig()
    boxes = box_array(positives)
    if boxes.shape[0] == 0:
        raise ValueError("cannot initialise a model from zero positives")
    h, w = _heights_widths(boxes)
    nbins = int(round(2 * cfg.aspect_log_range / cfg.aspect_bin_step))
    centers = -cfg.aspect_log_range + cfg.aspect_bin_step * np.arange(nbins + 1)
    k = np.arange(-cfg.aspect_kernel_halfwidth, cfg.aspect_kernel_halfwidth + 1, dtype=np.float64)
    # exp and log one value at a time through the C library: numpy's own
    # vector versions (used where the processor has AVX-512) round differently.
    kernel = np.array([math.exp(v) for v in -k ** 2 / cfg.aspect_kernel_scale])
    hist = _matlab_hist(np.array([math.log(v) for v in h / w]), centers)
    smooth = _conv_same(hist, kernel)
    aspect = math.exp(centers[int(np.argmax(smooth))])
    areas = np.sort(h * w)
    idx = max(int(math.floor(len(areas) * cfg.area_percentile)), 1)
    area = float(areas[idx - 1])
    area = max(min(area, cfg.max_root_area), cfg.min_root_area)
    width = math.sqrt(area / aspect)
    height = width * aspect
    return max(int(math.floor(height / cfg.sbin + 0.5)), 1), max(int(math.floor(width / cfg.sbin + 0.5)), 1)


def _conv_same(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    # MATLAB conv(x, k, 'same') for an odd-length kernel: the central part of
    # the full convolution, starting at (1-based) floor(len(k)/2) + 1.  Summed
    # tap by tap in kernel order (np.convolve's order is BLAS's to choose).
    full = np.zeros(x.size + k.size - 1)
    for t in range(k.size):
        full[t:t + x.size] += k[t] * x
    start = k.size // 2
    return full[start:start + x.size]


def initmodel(positives, *, config: TrainConfig | None = None, size: tuple[int, int] | None = None) -> Model:
    """A one-component, root-only model sized from the positives (``initmodel.m``).

    Parameters
    ----------
    positives : (N, 4) array-like or sequence of objects with ``.box``
        Boxes ``(x1, y1, x2, y2)``, 1-based inclusive.
    config : TrainConfig, optional
        Defaults of voc-release3.1 (``sbin`` 8, ``interval`` 10, block settings).
    size : (h, w), optional
        Root size in cells; by default chosen by :func:`root_shape`.

    Returns
    -------
    Model
        Root filter of zeros; bias 0; two blocks: the offset (size 1, regmult 0,
        learnmult 20, lower bound -100) and the root's left half
        (``ceil(w/2) * h * 31`` values, regmult 1, learnmult 1, lower bounds
        -100).  ``maxsize = minsize`` = the root size.

    Notes
    -----
    In the original, ``initmodel(pos, sbin, size)`` tests ``nargin < 4`` and
    ``nargin < 5`` in a three-argument function, so its ``sbin`` and ``size``
    arguments are never honoured: sbin is always 8 and the size always derived.
    Here ``config.sbin`` and ``size`` are honoured; with the defaults the
    result is the original's.
    """
    cfg = config or TrainConfig()
    if size is None:
        h, w = root_shape(positives, cfg)
    else:
        h, w = (int(v) for v in size)
        if h < 1 or w < 1:
            raise ValueError(f"root size must be at least 1x1 cells, got {size}")
    half = (w + 1) // 2
    blocks = [
        Block(size=1, regmult=cfg.offset_regmult, learnmult=cfg.offset_learnmult,
              lower_bounds=np.full(1, cfg.filter_lower_bound)),
        Block(size=half * h * NUM_FEATURES, regmult=cfg.root_regmult, learnmult=cfg.root_learnmult,
              lower_bounds=np.full(half * h * NUM_FEATURES, cfg.filter_lower_bound)),
    ]
    comp = Component(root=np.zeros((h, w, NUM_FEATURES)), bias=0.0, parts=[], root_block=1, bias_block=0)
    return Model(components=[comp], blocks=blocks, sbin=cfg.sbin, interval=cfg.interval)
