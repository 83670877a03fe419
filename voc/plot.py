"""Precision-recall curves as image files (matplotlib, no display needed).

The devkit's ``pascal_eval.m`` plots ``recall`` against ``precision`` with the
AP in the title; here several curves can share one figure, each with its AP in
the legend, to compare models or classes.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np

__all__ = ["plot_pr_curves"]

logger = logging.getLogger(__name__)


def _named_curves(curves):
    if isinstance(curves, Mapping):
        return list(curves.items())
    if hasattr(curves, "precision") and hasattr(curves, "recall"):
        curves = [curves]
    out = []
    for k, c in enumerate(curves):
        if isinstance(c, tuple) and len(c) == 2 and isinstance(c[0], str):
            out.append(c)
        else:
            out.append((getattr(c, "cls", "") or f"curve {k + 1}", c))
    return out


def plot_pr_curves(curves, path, *, title: str | None = None, metric: str = "voc07",
                   dpi: int = 100, figsize=(6.0, 5.0)) -> Path:
    """Draw precision against recall for one or more results and save the figure.

    Parameters
    ----------
    curves : APResult, sequence or mapping
        One :class:`voc.evaluate.APResult`, a sequence of them (labelled by
        their class, or ``(label, result)`` pairs), or ``{label: result}``.
    path : str or Path
        Output image; the format follows the suffix (``.png``, ``.pdf``,
        ``.svg``, ...).
    title : str, optional
        Default: ``"<class> (IoU >= 0.5)"`` for a single curve, nothing otherwise.
    metric : str {'voc07', 'area', 'both'}
        Which AP the legend shows: 11-point (VOC2007), all-point, or both.
    dpi : int
    figsize : (float, float)
        Inches.

    Returns
    -------
    Path
        ``path``.

    Notes
    -----
    Uses matplotlib's object API with the Agg canvas, so it works without a
    display and leaves pyplot's global state alone.
    """
    if metric not in ("voc07", "area", "both"):
        raise ValueError(f"metric must be 'voc07', 'area' or 'both', got {metric!r}")
    named = _named_curves(curves)
    if not named:
        raise ValueError("plot_pr_curves: no curves to plot")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for label, res in named:
        if metric == "voc07":
            ap_text = f"AP {res.ap:.3f}"
        elif metric == "area":
            ap_text = f"AP {res.ap_area:.3f} (area)"
        else:
            ap_text = f"AP {res.ap:.3f}, area {res.ap_area:.3f}"
        recall = np.asarray(res.recall, dtype=np.float64)
        precision = np.asarray(res.precision, dtype=np.float64)
        ax.plot(recall, precision, "-", linewidth=1.5, label=f"{label}: {ap_text}")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.grid(True, alpha=0.3)
    if title is None and len(named) == 1:
        res = named[0][1]
        cls = getattr(res, "cls", "") or named[0][0]
        title = f"{cls} (IoU >= {getattr(res, 'iou_threshold', 0.5):g})"
    if title:
        ax.set_title(title)
    ax.legend(loc="lower left", fontsize="small")
    fig.tight_layout()
    from dpm.vis.save import save_figure  # dpm's one figure writer: format checked, file written atomically

    path = save_figure(fig, path)
    logger.debug("wrote precision-recall curve %s", path)
    return path
