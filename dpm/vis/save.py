"""Writing figures to image files: the format from the file's suffix, checked before any rendering,
the size bounded (:data:`dpm.limits.MAX_FIGURE_PIXELS`), the file written atomically, PNGs stored
compactly.  Every figure ``dpm`` writes (``dpm-show``, ``dpm-detect --draw``, ``dpm-eval``'s curves)
goes through :func:`save_figure`.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..limits import MAX_DPI, MAX_FIGURE_PIXELS

__all__ = ["check_output_path", "check_figure_size", "save_figure"]


def check_output_path(path) -> str:
    """Check that a figure can be written to ``path``; return its format (the suffix).

    Raises
    ------
    ValueError
        Unknown image suffix, missing or unwritable directory, or ``path`` is a
        directory; the message names the file.
    """
    from matplotlib.backend_bases import FigureCanvasBase

    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise ValueError(f"{path}: is a directory, not an output file")
    if not parent.is_dir():
        raise ValueError(f"{path}: cannot write: directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise ValueError(f"{path}: cannot write: directory {parent} is not writable")
    if path.exists() and not os.access(path, os.W_OK):
        raise ValueError(f"{path}: cannot write: the file is read-only")
    fmt = path.suffix[1:].lower()
    supported = FigureCanvasBase.get_supported_filetypes()
    if fmt not in supported:
        raise ValueError(f"{path}: cannot infer an image format from the suffix "
                         f"(use one of: {', '.join('.' + s for s in sorted(supported))})")
    return fmt


def check_figure_size(fig, dpi=None) -> None:
    """``ValueError`` unless ``fig`` at ``dpi`` (default: its own) is at most
    :data:`dpm.limits.MAX_FIGURE_PIXELS` pixels, with ``0 < dpi <= MAX_DPI``."""
    if dpi is None:
        dpi = fig.dpi
    try:
        dpi = float(dpi)
    except (TypeError, ValueError):
        raise ValueError(f"dpi must be a number, got {dpi!r}") from None
    if not 0 < dpi <= MAX_DPI:
        raise ValueError(f"dpi must be in (0, {MAX_DPI:g}], got {dpi:g}")
    w, h = (float(v) * dpi for v in fig.get_size_inches())
    if w * h > MAX_FIGURE_PIXELS:
        raise ValueError(f"a figure of {w:.0f}x{h:.0f} pixels (at dpi {dpi:g}) is more than "
                         f"{MAX_FIGURE_PIXELS:,} pixels; use a lower dpi")


def save_figure(fig, path, dpi=None) -> Path:
    """Save a figure; the image format follows the suffix of ``path``.

    The file is written atomically (:func:`dpm._io.atomic_write`): rendered in
    memory, then written to a temporary sibling renamed into place, so an
    interrupted run never leaves a half-written image.

    Raises
    ------
    ValueError
        Unknown image suffix, missing or unwritable directory, or ``path`` is
        a directory (the message names the file); ``dpi`` out of range or a
        figure of more than :data:`dpm.limits.MAX_FIGURE_PIXELS` pixels.
        Checked before rendering.
    """
    import io

    from .._io import atomic_write

    path = Path(path)
    fmt = check_output_path(path)
    check_figure_size(fig, dpi)
    dpi = dpi if dpi is not None else "figure"
    buf = io.BytesIO()
    if fmt == "png":
        _save_compact_png(fig, buf, dpi)
    else:
        fig.savefig(buf, format=fmt, dpi=dpi)
    atomic_write(path, buf.getvalue())
    return path


def _save_compact_png(fig, out_file, dpi) -> None:
    # Matplotlib writes RGBA; model figures are grey and opaque, so store them
    # as 8-bit grey (or RGB when opaque): same pixels, a fraction of the bytes.
    import io

    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    buf.seek(0)
    with Image.open(buf) as im:
        rgba = np.asarray(im.convert("RGBA"))
    if (rgba[:, :, 3] == 255).all():
        rgb = rgba[:, :, :3]
        if (rgb[:, :, 0] == rgb[:, :, 1]).all() and (rgb[:, :, 1] == rgb[:, :, 2]).all():
            out = Image.fromarray(np.ascontiguousarray(rgb[:, :, 0]))
        else:
            out = Image.fromarray(np.ascontiguousarray(rgb))
    else:
        out = Image.fromarray(rgba)
    out.save(out_file, format="PNG", optimize=True)
