"""Matplotlib figures of models, features and detections.

Figures are built as bare :class:`matplotlib.figure.Figure` objects, which
render with the Agg canvas and never touch pyplot's global state, so they work
headless.  To show one in a window, create it with pyplot and pass it in as
``fig=`` (``dpm-show`` does this when a display is available).  Matplotlib is
imported inside the functions, so ``import dpm.vis`` stays cheap.
"""
from __future__ import annotations

import numbers
from collections.abc import Mapping
import os
import sys

import numpy as np

from ..limits import MAX_SHOW_SBIN
from .pictures import BS, features_picture, model_pictures
from .save import save_figure

__all__ = [
    "ROOT_COLOUR", "PART_COLOUR", "show_model", "show_features", "draw_detections", "box_patch_geometry",
    "save_detections_image", "display_available",
]

ROOT_COLOUR = "red"     # showboxes.m: root boxes red, part boxes blue
PART_COLOUR = "blue"
# One colour per class when several classes are drawn, in the models' order: 20 distinct colours,
# all dark enough for the white score labels.
CLASS_COLOURS = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#008080", "#f032e6", "#9a6324",
                 "#800000", "#808000", "#000075", "#469990", "#2f4f4f", "#1e90ff", "#ff1493", "#228b22",
                 "#b8860b", "#8b008b", "#ff4500", "#4b0082")
PANEL_TITLES = {"root": "root", "parts": "parts", "deformation": "deformation"}


def display_available() -> bool:
    """Whether a window can be opened.

    False when ``MPLBACKEND`` names a non-interactive backend; on Linux and other
    X11/Wayland systems true only when ``DISPLAY`` or ``WAYLAND_DISPLAY`` is set;
    true on Windows and macOS.
    """
    backend = os.environ.get("MPLBACKEND", "").lower()
    if backend in {"agg", "pdf", "ps", "svg", "pgf", "cairo", "template"}:
        return False
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _new_figure(fig, figsize, dpi=100):
    if fig is not None:
        fig.clear()
        fig.set_size_inches(*figsize)
        return fig
    from matplotlib.figure import Figure
    return Figure(figsize=figsize, dpi=dpi)


def _imshow_panel(ax, panel, title):
    # imagesc + colormap gray: the colour range spans the panel's own min..max.
    ax.imshow(panel, cmap="gray", interpolation="antialiased")
    ax.set_title(title, fontsize=9)
    ax.set_axis_off()


def show_model(model, components=None, negative=False, *, bs: int = BS, fig=None):
    """The ``visualizemodel.m`` figure: one row of panels per component.

    Parameters
    ----------
    model : dpm.model.Model
    components : sequence of int, optional
        0-based component indices to draw, in order (default: all).
    negative : bool
        Draw the negative root and part weights instead of the positive ones.
    bs : int
        Pixels per part cell in the pictures.
    fig : matplotlib.figure.Figure, optional
        Draw into this figure (cleared first) instead of a new headless one.

    Returns
    -------
    matplotlib.figure.Figure
        Row ``k`` holds the root, parts and deformation panels of the k-th
        requested component (:func:`dpm.vis.model_pictures`); a component
        without parts has the root panel only.  Each axes carries its panel
        array as its single image and is titled ``"root"``, ``"parts"`` or
        ``"deformation"``; the first axes of a row is labelled ``"component N"``
        (1-based ``N``).
    """
    n = len(model.components)
    if components is None:
        components = list(range(n))
    components = [int(c) for c in components]
    if not components:
        raise ValueError("no components to draw")
    for c in components:
        if not 0 <= c < n:
            raise ValueError(f"component {c} is out of range: the model has {n} (0-based indices 0..{n - 1})")
    rows = [model_pictures(model, c, bs=bs, negative=negative) for c in components]
    ncols = max(len(r) for r in rows)
    col_w = [max(list(r.values())[j].shape[1] for r in rows if len(r) > j) for j in range(ncols)]
    row_h = [max(p.shape[0] for p in r.values()) for r in rows]
    # About one screen pixel per picture pixel at 100 dpi, capped to a sane size.
    width_px, height_px = sum(col_w) * 1.1, sum(row_h) * 1.1 + 30 * len(rows) + 40
    shrink = min(1.0, 1400.0 / width_px, 1800.0 / height_px)
    fig = _new_figure(fig, (max(width_px * shrink / 100, 3.0), max(height_px * shrink / 100, 2.0)))
    gs = fig.add_gridspec(len(rows), ncols, width_ratios=col_w, height_ratios=row_h,
                          left=0.05, right=0.98, bottom=0.02, top=0.93, wspace=0.08, hspace=0.15)
    for i, (c, panels) in enumerate(zip(components, rows)):
        for j, (name, panel) in enumerate(panels.items()):
            ax = fig.add_subplot(gs[i, j])
            _imshow_panel(ax, panel, PANEL_TITLES[name])
            if j == 0:
                ax.text(-0.03, 0.5, f"component {c + 1}", transform=ax.transAxes, rotation=90,
                        ha="right", va="center", fontsize=9)
    title = f"{model.class_name or 'model'} ({n} component{'s' if n != 1 else ''})"
    if negative:
        title += ", negative weights"
    fig.suptitle(title, fontsize=11)
    return fig


def show_features(image, sbin: int = 8, *, bs: int | None = None, fig=None):
    """An image and the glyph picture of its HOG features.

    Parameters
    ----------
    image : (H, W, 3) or (H, W) array_like
        Values 0..255 (uint8 or float).
    sbin : int
        Pixels per HOG cell.
    bs : int, optional
        Pixels per cell side in the glyph picture (default ``2*sbin``, at
        least 12, so the glyphs keep their angles at the image's scale).
    fig : matplotlib.figure.Figure, optional
        Draw into this figure instead of a new headless one.

    Returns
    -------
    matplotlib.figure.Figure
        Two axes sharing image coordinates (stacked for landscape images, side
        by side for portrait ones): the image, and
        :func:`dpm.vis.features_picture` of ``dpm.features.hog(image, sbin)``.
        Feature cell ``(i, j)`` (0-based) summarises roughly pixels
        ``(i+1)*sbin .. (i+2)*sbin - 1`` (the map drops one border cell), and
        is drawn over that extent, so both panels zoom together.
    """
    from ..features import hog
    from ..image import as_rgb

    if (isinstance(sbin, bool) or not isinstance(sbin, numbers.Integral) or not 2 <= sbin <= MAX_SHOW_SBIN
            or sbin % 2):
        raise ValueError(f"sbin must be an even number in 2..{MAX_SHOW_SBIN}, got {sbin!r}")
    rgb = as_rgb(image)
    if bs is None:
        bs = max(2 * int(sbin), 12)
    feats = hog(np.asarray(rgb, dtype=np.float64), sbin)
    pic = features_picture(feats, bs)
    h, w = feats.shape[:2]
    H, W = rgb.shape[:2]
    stacked = W >= H
    # Show the glyph picture near its own resolution (bs/sbin screen pixels per
    # image pixel), within a figure of at most 16 inches at 100 dpi.
    zoom = bs / float(sbin)
    fw, fh = (W * zoom, 2 * H * zoom + 60) if stacked else (2 * W * zoom, H * zoom + 40)
    shrink = min(1.0, 1600.0 / fw, 1600.0 / fh)
    fig = _new_figure(fig, (max(fw * shrink / 100, 3.0), max(fh * shrink / 100, 2.0)))
    grid = (2, 1) if stacked else (1, 2)
    ax_im = fig.add_subplot(*grid, 1)
    ax_im.imshow(_display_image(rgb), interpolation="nearest")
    ax_im.set_title(f"image {W}x{H}", fontsize=9)
    ax_hog = fig.add_subplot(*grid, 2, sharex=ax_im, sharey=ax_im)
    ax_hog.imshow(pic, cmap="gray", vmin=0.0, vmax=1.0, interpolation="antialiased",
                  extent=(sbin - 0.5, (w + 1) * sbin - 0.5, (h + 1) * sbin - 0.5, sbin - 0.5))
    ax_hog.set_title(f"HOG features, sbin {sbin}: {h}x{w} cells", fontsize=9)
    ax_hog.set_facecolor("black")
    for ax in (ax_im, ax_hog):
        ax.set_xlim(-0.5, W - 0.5)
        ax.set_ylim(H - 0.5, -0.5)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.96, hspace=0.06, wspace=0.02)
    return fig


def _display_image(image):
    a = np.asarray(image)
    if a.dtype == np.uint8:
        return a
    return np.clip(a.astype(np.float64) / 255.0, 0.0, 1.0)


def _detection_arrays(detections):
    """``boxes (N, 4)``, ``scores (N,) or None``, ``part_boxes (N, P, 4) or None``."""
    if hasattr(detections, "boxes"):
        boxes = np.asarray(detections.boxes, dtype=np.float64).reshape(-1, 4)
        scores = getattr(detections, "scores", None)
        parts = getattr(detections, "part_boxes", None)
    else:
        arr = np.asarray(detections, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] not in (4, 5):
            if arr.size == 0:
                arr = arr.reshape(0, 4)
            else:
                raise ValueError(f"expected Detections or an (N, 4) / (N, 5) box array, got shape {arr.shape}")
        boxes, scores, parts = arr[:, :4], (arr[:, 4] if arr.shape[1] == 5 else None), None
    if scores is not None:
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if parts is not None:
        parts = np.asarray(parts, dtype=np.float64)
        parts = parts.reshape(len(boxes), -1, 4) if parts.size else None
    return boxes, scores, parts


def box_patch_geometry(box):
    """Rectangle ``(x, y, width, height)`` in imshow coordinates for a 1-based inclusive box.

    ``imshow`` centres 0-based pixel ``j`` at ``x = j``, so 1-based pixel ``x``
    is centred at ``x - 1`` and spans ``[x - 1.5, x - 0.5]``.  The box covering
    pixels ``x1..x2`` and ``y1..y2`` therefore has its outline along
    ``x1 - 1.5 .. x2 - 0.5`` and ``y1 - 1.5 .. y2 - 0.5``: on the outer edge of
    its boundary pixels.  Fractional boxes (from bounding-box prediction) use
    the same formula.
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    return x1 - 1.5, y1 - 1.5, x2 - x1 + 1.0, y2 - y1 + 1.0


def draw_detections(image, detections, *, parts=False, ax=None):
    """Draw an image with detection boxes (``showboxes.m`` colours).

    Parameters
    ----------
    image : (H, W, 3) or (H, W) array_like
        Values 0..255.
    detections : dpm.detection.Detections, dict of class name to Detections, or (N, 4) / (N, 5) array_like
        Boxes ``[x1 y1 x2 y2]`` in **1-based inclusive pixel coordinates**
        (optionally a score column).  Anything with ``boxes``, ``scores`` and
        ``part_boxes`` attributes works.  A dict (several classes,
        :func:`dpm.detection.multiclass.detect`) draws each class in its own colour
        (:data:`CLASS_COLOURS`) with ``class score`` labels.
    parts : bool
        Also draw each detection's part boxes.
    ax : matplotlib.axes.Axes, optional
        Draw here; default: a new headless figure sized to the image.

    Returns
    -------
    matplotlib.axes.Axes
        Final boxes in :data:`ROOT_COLOUR` with their score as a label, part
        boxes in :data:`PART_COLOUR`; the highest score is drawn last (on top).
        See :func:`box_patch_geometry` for where the outlines go.
    """
    from matplotlib.patches import Rectangle

    img = np.asarray(image)
    if img.ndim not in (2, 3) or img.shape[0] == 0 or img.shape[1] == 0:
        raise ValueError(f"expected an (H, W) or (H, W, 3) image, got shape {img.shape}")
    H, W = img.shape[:2]
    if ax is None:
        from matplotlib.figure import Figure
        fig = Figure(figsize=(W / 100.0, H / 100.0), dpi=100)
        ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.imshow(_display_image(img), cmap="gray" if img.ndim == 2 else None, interpolation="nearest")
    ax.set_xlim(-0.5, W - 0.5)
    ax.set_ylim(H - 0.5, -0.5)
    ax.set_axis_off()
    if isinstance(detections, Mapping):
        layers = [(dets, CLASS_COLOURS[k % len(CLASS_COLOURS)], f"{name} ")
                  for k, (name, dets) in enumerate(detections.items())]
    else:
        layers = [(detections, ROOT_COLOUR, "")]
    for dets, colour, label in layers:
        boxes, scores, part_boxes = _detection_arrays(dets)
        order = np.argsort(scores, kind="stable") if scores is not None else np.arange(len(boxes))
        for i in order:
            if parts and part_boxes is not None:
                for pb in part_boxes[i]:
                    x, y, bw, bh = box_patch_geometry(pb)
                    ax.add_patch(Rectangle((x, y), bw, bh, fill=False, edgecolor=PART_COLOUR, linewidth=1.0))
            x, y, bw, bh = box_patch_geometry(boxes[i])
            ax.add_patch(Rectangle((x, y), bw, bh, fill=False, edgecolor=colour, linewidth=2.0))
            if scores is not None:
                above = y > 0.04 * H
                ax.text(x, y, f"{label}{scores[i]:.2f}", color="white", fontsize=8, ha="left",
                        va="bottom" if above else "top", clip_on=True,
                        bbox=dict(facecolor=colour, edgecolor="none", pad=1.0, alpha=0.8))
    return ax


def save_detections_image(path, image, detections, parts=False):
    """Write the image with its detections drawn (``dpm-detect --draw``).

    The file has the image's own size in pixels (``W x H``); its format follows
    the suffix of ``path`` (PNG, JPEG, ...).  See :func:`draw_detections`.

    Returns
    -------
    pathlib.Path
    """
    img = np.asarray(image)
    if img.ndim not in (2, 3):
        raise ValueError(f"expected an (H, W) or (H, W, 3) image, got shape {img.shape}")
    ax = draw_detections(img, detections, parts=parts)
    return save_figure(ax.figure, path, dpi=100)
