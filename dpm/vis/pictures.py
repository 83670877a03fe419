"""Pictures of filters, models and features as plain arrays (no matplotlib).

Ports of voc-release3.1 ``foldHOG.m``, ``HOGpicture.m`` and the drawing part of
``visualizemodel.m`` (Felzenszwalb, Girshick, McAllester, Ramanan; MIT-style
licence), spec §1.16.  Every function here returns numpy arrays indexed
``[y, x]`` (0-based), so the geometry can be tested without rendering.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = [
    "component_filters",
    "BS", "PAD", "DEF_SCALE", "fold_hog", "hog_glyphs", "hog_picture", "imresize_bicubic",
    "model_pictures", "features_picture",
]

BS = 20          # pixels per cell side in a HOG picture (visualizemodel.m)
PAD = 2          # zero padding around panels; part borders are 2*PAD pixels wide
DEF_SCALE = 500  # deformation costs are multiplied by this before display
MAX_GLYPH = 256  # largest cell side in a HOG picture (a 64x64-cell filter is then 16384 pixels a side)
GREY = 128       # part border value
N_ORIENT = 9     # contrast-insensitive orientations in a picture (20 degrees apart)


def fold_hog(w) -> np.ndarray:
    """Fold a 31-channel filter into 9 orientation weights (``foldHOG.m``).

    Parameters
    ----------
    w : (h, w, C) array_like, C >= 27
        A filter or feature map indexed ``[y, x, channel]`` in the
        ``features.cc`` layout: channels 0-17 contrast-sensitive orientations,
        18-26 contrast-insensitive ones, then texture channels (ignored).

    Returns
    -------
    (h, w, 9) float64 ndarray
        ``max(w[..., k], 0) + max(w[..., k+9], 0) + max(w[..., 18+k], 0)`` for
        ``k = 0..8``: the positive weight of each undirected orientation.
    """
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 3 or w.shape[2] < 3 * N_ORIENT:
        raise ValueError(f"expected an (h, w, 31) filter or feature map, got shape {w.shape}")
    pos = np.maximum(w[:, :, : 3 * N_ORIENT], 0.0)
    return pos[:, :, 0:9] + pos[:, :, 9:18] + pos[:, :, 18:27]


def hog_glyphs(bs: int = BS) -> np.ndarray:
    """The 9 orientation glyphs of ``HOGpicture.m``.

    Glyph ``k`` is a ``bs x bs`` image of a bar 2 pixels wide and ``bs`` pixels
    long through the glyph centre, rotated clockwise (as displayed, y down) by
    ``20 * k`` degrees from vertical: glyph 0 is a vertical stroke, the edge
    direction of orientation bin 0 (a horizontal gradient).  The original
    rotates a rasterised bar with ``imrotate(..., 'crop')`` and nearest-neighbour
    sampling; here the rotated bar is drawn analytically: a pixel is lit when
    its centre lies within distance 1 of the bar's axis and within ``bs/2``
    of the glyph centre along it.  For even ``bs`` this is the original's
    picture; for odd ``bs`` the original's bar sits half a pixel right of the
    centre, here it is centred (so glyphs mirror exactly).

    Returns
    -------
    (9, bs, bs) float64 ndarray of 0.0 and 1.0
    """
    bs = int(bs)
    if not 2 <= bs <= MAX_GLYPH:
        raise ValueError(f"glyph size bs must be 2..{MAX_GLYPH} pixels, got {bs}")
    c = (bs - 1) / 2.0
    dy, dx = np.mgrid[0:bs, 0:bs].astype(np.float64) - c
    glyphs = np.empty((N_ORIENT, bs, bs), dtype=np.float64)
    for k in range(N_ORIENT):
        # Bin k's gradient direction (cos, sin) in (x, y-down) is the bar's normal.
        # Bins k and 9-k are mirror images: take both from the same angle so the
        # mirror symmetry holds bit for bit.
        j = min(k, N_ORIENT - k) if k else 0
        theta = j * math.pi / N_ORIENT
        cs, sn = math.cos(theta), math.sin(theta)
        if k != j:
            cs = -cs
        across = np.abs(dx * cs + dy * sn)
        along = np.abs(dx * sn - dy * cs)
        glyphs[k] = (across <= 1.0 + 1e-9) & (along <= bs / 2.0 + 1e-9)
    return glyphs


def hog_picture(w, bs: int = BS, negative: bool = False) -> np.ndarray:
    """Picture of a filter's orientation weights as glyphs (``HOGpicture.m``).

    Parameters
    ----------
    w : (h, w, 9) or (h, w, 31) array_like
        Nine orientation weights per cell, or a full filter / feature map,
        which is folded with :func:`fold_hog` first.
    bs : int
        Pixels per cell side.
    negative : bool
        Draw the negative weights instead (the picture of ``-w``).

    Returns
    -------
    (h*bs, w*bs) float64 ndarray
        Cell ``(i, j)`` is ``sum_k glyph_k * max(w[i, j, k], 0)``.
    """
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 3:
        raise ValueError(f"expected an (h, w, 9) or (h, w, 31) array, got shape {w.shape}")
    if negative:
        w = -w
    if w.shape[2] == N_ORIENT:
        w9 = np.maximum(w, 0.0)
    elif w.shape[2] >= 3 * N_ORIENT:
        w9 = fold_hog(w)
    else:
        raise ValueError(f"expected 9 orientation weights or a 31-channel filter, got {w.shape[2]} channels")
    h, wd = w9.shape[:2]
    glyphs = hog_glyphs(bs)
    pic = np.einsum("ijk,kab->iajb", w9, glyphs, optimize=True)
    return pic.reshape(h * bs, wd * bs)


def _cubic(x: np.ndarray) -> np.ndarray:
    # MATLAB's bicubic kernel (Keys, a = -0.5).
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    return ((1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
            + (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2)))


def _resize_matrix(n_in: int, scale: float) -> np.ndarray:
    # Row u of the (n_out, n_in) matrix holds the weights of output sample u
    # (imresize.m ``contributions`` for scale >= 1: no kernel widening).
    n_out = int(math.ceil(n_in * scale))
    u = np.arange(1, n_out + 1, dtype=np.float64)
    x = u / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(x - 2.0)
    idx = left[:, None] + np.arange(6)[None, :]           # 1-based input indices
    wts = _cubic(x[:, None] - idx)
    wts /= wts.sum(axis=1, keepdims=True)
    # Out-of-range indices reflect symmetrically: [1..n, n..1] repeated.
    period = 2 * n_in
    m = np.mod(idx - 1, period).astype(np.intp)
    src = np.where(m < n_in, m, period - 1 - m)
    mat = np.zeros((n_out, n_in), dtype=np.float64)
    np.add.at(mat, (np.repeat(np.arange(n_out), idx.shape[1]), src.ravel()), wts.ravel())
    return mat


def imresize_bicubic(im, scale: float = 2.0) -> np.ndarray:
    """Enlarge a 2-D array like MATLAB's ``imresize(im, scale)`` (bicubic).

    Output sample ``u`` (1-based) sits at input position ``u/scale + (1 - 1/scale)/2``;
    weights come from the Keys cubic kernel (a = -0.5), normalised to sum 1,
    and indices beyond the border reflect symmetrically, as in ``imresize.m``.
    Only enlargement (``scale >= 1``) is supported.

    Returns
    -------
    (ceil(H*scale), ceil(W*scale)) float64 ndarray
    """
    im = np.asarray(im, dtype=np.float64)
    if im.ndim != 2:
        raise ValueError(f"expected a 2-D array, got shape {im.shape}")
    if not scale >= 1:
        raise ValueError(f"only enlargement is supported (scale >= 1), got {scale}")
    return _resize_matrix(im.shape[0], scale) @ im @ _resize_matrix(im.shape[1], scale).T


def _to_uint8(x: np.ndarray) -> np.ndarray:
    # MATLAB uint8(): round half away from zero, saturate, NaN -> 0.
    x = np.nan_to_num(np.asarray(x, dtype=np.float64), nan=0.0, posinf=255.0, neginf=0.0)
    return np.clip(np.floor(np.maximum(x, 0.0) + 0.5), 0, 255).astype(np.uint8)


def component_filters(comp) -> tuple:
    """``(root, parts)`` of a component: the root filter ``(h, w, C)`` and, per part, ``(filter,
    (ax, ay), deformation)`` with the anchor 1-based in part cells (release 3.1's convention).

    Takes a release-3.1 component (:class:`dpm.model.Component`: ``root`` an array, 1-based anchors)
    or a release-5 one (:class:`dpm.model.release5.StarComponent`: filters behind deformation rules,
    0-based anchors ``(ax, ay, ds)``, parts one octave finer than the root).
    """
    if hasattr(comp.root, "filter"):     # release 5
        parts = [(f.filter, (int(f.anchor[0]) + 1, int(f.anchor[1]) + 1), f.deformation) for f in comp.parts]
        return comp.root.filter, parts
    return comp.root, [(p.filter, (int(p.anchor[0]), int(p.anchor[1])), p.deformation) for p in comp.parts]


def model_pictures(model, component: int, *, bs: int = BS, pad: int = PAD,
                   negative: bool = False) -> dict:
    """The three panels ``visualizemodel.m`` draws for one component.

    Parameters
    ----------
    model : dpm.model.Model or dpm.model.release5.StarModel
    component : int
        0-based component index.
    bs, pad : int
        Pixels per part cell (a root cell is ``2*bs``) and panel padding.
    negative : bool
        Picture the negative weights of the root and parts instead.

    Returns
    -------
    dict of str to uint8 ndarray
        ``"root"``: the root's glyph picture enlarged 2x (bicubic, as
        ``imresize``), zero-padded by ``pad`` and scaled so that the largest
        folded root weight maps to 255 (saturating), shape
        ``(2*h*bs + 2*pad, 2*w*bs + 2*pad)``.  For components with parts also
        ``"parts"``: the root panel with each part's picture (same scale,
        padded by ``pad``, outer ``2*pad`` pixels grey 128) pasted with its
        top-left corner at 1-based pixel ``(anchor - 1)*bs + 1``, later parts
        on top; and ``"deformation"``: zeros with each part's box pasted at the
        same place, grey border and inside, at pixel ``x``, the cost
        ``d . (px**2, px, py**2, py) * 500`` with ``px = (centre_x - x)/bs``,
        rounded and saturated to 0..255.  Panels grow (zero-filled) if a part
        reaches past the root, as MATLAB's indexed assignment does.

    Notes
    -----
    The original takes the part box centre as ``size/2`` in 1-based pixels, half
    a pixel off the true centre ``(size + 1)/2``; this port uses the true centre
    so that a left/right symmetric model gives a symmetric deformation panel.
    """
    comps = model.components
    if not 0 <= component < len(comps):
        raise ValueError(f"component {component} is out of range: the model has {len(comps)} "
                         f"(0-based indices 0..{len(comps) - 1})")
    root, parts = component_filters(comps[component])
    root = np.asarray(root, dtype=np.float64)
    folded = fold_hog(-root if negative else root)
    scale = float(folded.max()) if folded.size else 0.0
    if not scale > 0:
        scale = 1.0   # nothing to draw; avoid 0/0
    im = imresize_bicubic(hog_picture(folded, bs), 2.0)
    im = np.pad(im, pad)
    root_pic = _to_uint8(im * (255.0 / scale))
    out = {"root": root_pic}
    if not parts:
        return out

    placed = []
    for i, (filt, (ax, ay), deformation) in enumerate(parts):
        if ax < 1 or ay < 1:
            raise ValueError(f"component {component} part {i}: anchor {(ax, ay)} is not 1-based "
                             f"(both coordinates must be >= 1)")
        p = np.pad(hog_picture(filt, bs, negative=negative), pad)
        p = _to_uint8(p * (255.0 / scale))
        b = 2 * pad
        p[:, :b] = GREY
        p[:, -b:] = GREY
        p[:b, :] = GREY
        p[-b:, :] = GREY
        d = p.astype(np.float64)
        ph, pw = p.shape
        cy, cx = (ph + 1) / 2.0, (pw + 1) / 2.0
        ys = np.arange(b + 1, ph - b + 1, dtype=np.float64)      # 1-based interior pixels
        xs = np.arange(b + 1, pw - b + 1, dtype=np.float64)
        px = (cx - xs)[None, :] / bs
        py = (cy - ys)[:, None] / bs
        a_x, b_x, a_y, b_y = np.asarray(deformation, dtype=np.float64)
        cost = a_x * px ** 2 + b_x * px + a_y * py ** 2 + b_y * py
        d[b:ph - b, b:pw - b] = _to_uint8(cost * DEF_SCALE)
        y0, x0 = (ay - 1) * bs, (ax - 1) * bs                     # 0-based top-left
        placed.append((y0, x0, p, d.astype(np.uint8)))

    height = max([root_pic.shape[0]] + [y0 + p.shape[0] for y0, _, p, _ in placed])
    width = max([root_pic.shape[1]] + [x0 + p.shape[1] for _, x0, p, _ in placed])
    parts_pic = np.zeros((height, width), dtype=np.uint8)
    parts_pic[: root_pic.shape[0], : root_pic.shape[1]] = root_pic
    def_pic = np.zeros((height, width), dtype=np.uint8)
    for y0, x0, p, d in placed:
        parts_pic[y0:y0 + p.shape[0], x0:x0 + p.shape[1]] = p
        def_pic[y0:y0 + d.shape[0], x0:x0 + d.shape[1]] = d
    out["parts"] = parts_pic
    out["deformation"] = def_pic
    return out


def features_picture(features, bs: int = BS) -> np.ndarray:
    """Glyph picture of an image's HOG features, scaled to 0..1.

    Parameters
    ----------
    features : (h, w, 31) array_like
        A feature map (``dpm.features.hog``).
    bs : int
        Pixels per cell side.

    Returns
    -------
    (h*bs, w*bs) float64 ndarray in [0, 1]
        :func:`hog_picture` of the folded features divided by the largest
        folded value and clipped at 1 (crossing glyphs saturate).

    Notes
    -----
    ``visualizeHOG.m`` draws channels 0-8 only; folding all 27 orientation
    channels shows every edge whatever its contrast polarity.
    """
    folded = fold_hog(features)
    top = float(folded.max()) if folded.size else 0.0
    pic = hog_picture(folded, bs)
    if top > 0:
        pic = np.minimum(pic / top, 1.0)
    return pic
