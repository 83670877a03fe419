"""Initialise part filters from a trained root filter.

Port of voc-release3.1 ``addparts.m`` (Felzenszwalb, Girshick, McAllester,
Ramanan; MIT-style licence).  Parts live at twice the root's resolution;
anchors are 1-based ``(x, y)`` top-left cells in that 2x grid.
"""
from __future__ import annotations

import copy
import math

import numpy as np

from ..features.flip import flip_features
from ..model import NUM_FEATURES, Block, Model, Part
from .config import TrainConfig
from .ordered import ordered_sum
from .imresize import imresize

__all__ = ["part_shapes", "part_energy", "place_parts", "addparts"]


def part_energy(root) -> tuple[np.ndarray, np.ndarray]:
    """The 2x root filter and its left/right symmetric energy map.

    The root is upsampled 2x with MATLAB's ``imresize(w, 2, 'bicubic')`` (Keys'
    cubic, ``a = -0.5``, symmetric border padding; see
    :func:`dpm.training.imresize.imresize`), which is what ``addparts.m`` calls.
    Energy is ``sum_channels max(w2x, 0)^2`` plus its left/right mirror.

    Returns
    -------
    root2x : (2h, 2w, 31) float64 ndarray
    energy : (2h, 2w) float64 ndarray
    """
    root = np.asarray(root, dtype=np.float64)
    if root.ndim != 3 or root.shape[2] != NUM_FEATURES:
        raise ValueError(f"expected an (h, w, {NUM_FEATURES}) root filter, got shape {root.shape}")
    h, w = root.shape[:2]
    root2x = imresize(root, (2 * h, 2 * w), method="bicubic")
    energy = ordered_sum(np.maximum(root2x, 0) ** 2, axis=2)  # channels in order
    return root2x, energy + energy[:, ::-1]


def part_shapes(root_size, numparts: int, config: TrainConfig | None = None) -> list[tuple[int, int]]:
    """Candidate part shapes ``(h, w)`` in 2x cells (``addparts.m``).

    With ``target = 4 * h_root * w_root / numparts``: every ``h`` in
    ``[3, 2*h_root - 2]`` (outer loop) and ``w`` in ``[3, 2*w_root - 2]`` (inner
    loop) with ``target <= h*w <= 1.2*target`` and ``|w - h| <= 4``.
    """
    cfg = config or TrainConfig()
    rh, rw = (int(v) for v in root_size)
    target = 4.0 * rh * rw / numparts
    out = []
    for ph in range(cfg.part_min_side, 2 * rh - 2 + 1):
        for pw in range(cfg.part_min_side, 2 * rw - 2 + 1):
            area = ph * pw
            if target <= area <= cfg.part_area_slack * target and abs(pw - ph) <= cfg.part_max_side_difference:
                out.append((ph, pw))
    return out


def _box_sums(energy: np.ndarray, ph: int, pw: int) -> np.ndarray:
    # 'valid' correlation with a ph x pw box of ones, via an integral image.
    ii = np.zeros((energy.shape[0] + 1, energy.shape[1] + 1))
    ii[1:, 1:] = energy.cumsum(0).cumsum(1)
    return ii[ph:, pw:] - ii[:-ph, pw:] - ii[ph:, :-pw] + ii[:-ph, :-pw]


def place_parts(energy, shapes, numparts: int) -> list[tuple[int, int, int, int, bool]]:
    """Greedy part placement of ``addparts.m`` on a symmetric energy map.

    Each round scores every shape at every position by the energy it covers and
    takes the best: shapes in the given order, positions in column-major order,
    the first strict maximum wins (MATLAB's ``max``).  The scores of a
    placement and of its mirror are made exactly equal, so of a mirrored pair
    the left placement is the real part and the right one its fake partner.  A placement whose mirror
    image overlaps it is forbidden unless it is exactly centred (mirror = itself);
    when one part remains only centred placements are allowed.  An off-centre
    placement adds the part and its mirrored partner (two parts).  The covered
    energy and its mirror are then zeroed.

    Parameters
    ----------
    energy : (H, W) ndarray
        Symmetric energy (see :func:`part_energy`); it is not modified.
    shapes : list of (h, w)
    numparts : int

    Returns
    -------
    list of (x, y, h, w, paired)
        0-based top-left of each chosen placement, its shape and whether it
        brings a mirrored partner (at ``x' = W - x - w``).

    Raises
    ------
    ValueError
        No shape fits, or no allowed placement is left (e.g. one part remains
        and no shape can be centred).
    """
    energy = np.array(energy, dtype=np.float64)
    H, W = energy.shape
    if not shapes:
        raise ValueError("no candidate part shape fits this root filter")
    chosen = []
    remaining = int(numparts)
    while remaining > 0:
        best = (-np.inf, None)
        for ph, pw in shapes:
            if ph > H or pw > W:
                continue
            score = _box_sums(energy, ph, pw)
            # A placement and its mirror cover the same energy; average the two
            # sums so that rounding cannot favour either, and the left one wins.
            score = 0.5 * (score + score[:, ::-1])
            xs = np.arange(score.shape[1])
            mirror = W - xs - pw
            centred = mirror == xs
            allowed = centred if remaining == 1 else (centred | (np.abs(xs - mirror) >= pw))
            score = np.where(allowed[None, :], score, -np.inf)
            flat = score.ravel(order="F")
            k = int(np.argmax(flat))
            if flat[k] > best[0]:
                y, x = k % score.shape[0], k // score.shape[0]
                best = (flat[k], (x, y, ph, pw, bool(mirror[x] != x)))
        if best[1] is None:
            raise ValueError(f"no allowed placement left for the remaining {remaining} part(s)")
        x, y, ph, pw, paired = best[1]
        chosen.append(best[1])
        energy[y:y + ph, x:x + pw] = 0
        xm = W - x - pw
        energy[y:y + ph, xm:xm + pw] = 0
        remaining -= 2 if paired else 1
    return chosen


def addparts(model: Model, component: int = 0, numparts: int = 6, *,
             config: TrainConfig | None = None) -> Model:
    """Add ``numparts`` part filters to one component (``addparts.m``).

    Parts are placed greedily on the energy of the 2x root filter
    (:func:`part_energy`, :func:`part_shapes`, :func:`place_parts`).  Each part's
    filter is its crop of the 2x root.  A centred part is self-symmetric (its
    block holds the left ``ceil(w/2)`` columns); an off-centre part stores its
    full width and is followed by a *fake* mirrored partner (the flipped filter
    at the mirror anchor), the two cross-linked through ``partner``.

    New blocks, appended per real part: the filter (regmult 1, learnmult 1,
    lower bounds -100), then the deformation (initial ``[0.1 0 0.1 0]``,
    regmult 10, learnmult 0.1, lower bounds ``[0.01 -100 0.01 -100]``).

    Parameters
    ----------
    model : Model
    component : int
        0-based component index.
    numparts : int
        Number of parts (fake partners count).
    config : TrainConfig, optional

    Returns
    -------
    Model
        A new model; the input is not modified.  The component's parts are
        appended to any it already has, and its bounding-box regressor is
        dropped.  Until every component has its parts the model is not
        detectable (the detector needs equal part counts), as in
        ``pascal_train.m``'s loop over components.
    """
    cfg = config or TrainConfig()
    if not 0 <= component < len(model.components):
        raise ValueError(f"component {component} does not exist (the model has {len(model.components)})")
    if int(numparts) != numparts or numparts < 0:
        raise ValueError(f"numparts must be a non-negative integer, got {numparts!r}")
    # deepcopy, not Model.copy(): the latter validates, and while parts are added
    # one component at a time the components have different numbers of parts.
    new = copy.deepcopy(model)
    comp = new.components[component]
    if numparts == 0:
        return new
    comp.bbox_regressor = None  # its layout depends on the parts
    root2x, energy = part_energy(comp.root)
    W = energy.shape[1]
    shapes = part_shapes(comp.root_size, numparts, cfg)
    for x, y, ph, pw, paired in place_parts(energy, shapes, numparts):
        crop = np.ascontiguousarray(root2x[y:y + ph, x:x + pw])
        ncols = pw if paired else math.ceil(pw / 2)
        size = ncols * ph * NUM_FEATURES
        new.blocks.append(Block(size=size, regmult=cfg.part_regmult, learnmult=cfg.part_learnmult,
                                lower_bounds=np.full(size, cfg.filter_lower_bound)))
        fblock = len(new.blocks) - 1
        new.blocks.append(Block(size=4, regmult=cfg.def_regmult, learnmult=cfg.def_learnmult,
                                lower_bounds=np.array(cfg.def_lower_bounds, dtype=np.float64)))
        dblock = len(new.blocks) - 1
        deformation = np.array(cfg.def_initial, dtype=np.float64)
        part = Part(filter=crop, anchor=(x + 1, y + 1), deformation=deformation,
                    filter_block=fblock, def_block=dblock)
        comp.parts.append(part)
        if paired:
            mirrored_def = deformation.copy()
            mirrored_def[1] = 0.0 - mirrored_def[1]
            fake = Part(filter=flip_features(crop), anchor=(W - x - pw + 1, y + 1), deformation=mirrored_def,
                        partner=len(comp.parts) - 1, fake=True)
            comp.parts.append(fake)
            part.partner = len(comp.parts) - 1
    return new
