"""Summary tables of average precision over classes and models.

Like voc-release3.1 ``report.m`` (spec §1.15): one column per class plus the
mean, one row per model (or run), as plain text or Markdown.
"""
from __future__ import annotations

import math
from collections.abc import Mapping

__all__ = ["ap_table", "format_table"]


def _value(x, metric):
    if x is None:
        return math.nan
    if hasattr(x, "ap"):
        x = x.ap if metric == "voc07" else x.ap_area
    return float(x)


def ap_table(results, *, metric: str = "voc07", classes=None, skip_missing: bool = False):
    """Arrange AP values as rows of a table.

    Parameters
    ----------
    results : mapping
        ``{row_name: {class_name: ap}}`` where ``ap`` is a float or an
        :class:`voc.evaluate.APResult`; a flat ``{class_name: ap}`` is one
        row named ``''``.
    metric : str {'voc07', 'area'}
        Which AP to take from ``APResult`` values.
    classes : sequence of str, optional
        Column order; default: classes in order of first appearance.
    skip_missing : bool, default False
        The mean of a row is over the classes that have a value (NaN if none
        has); by default a row that misses any class has a NaN mean.

    Returns
    -------
    classes : list of str
    rows : list of (str, list of float)
        Per row: its name and one value per class followed by the mean. A
        missing class is NaN, and so is the mean of a row that misses any
        class (a mean over fewer classes would not compare), unless
        ``skip_missing``.
    """
    if metric not in ("voc07", "area"):
        raise ValueError(f"metric must be 'voc07' or 'area', got {metric!r}")
    if not isinstance(results, Mapping):
        raise ValueError("results must be a mapping {row: {class: ap}} or {class: ap}")
    if results and not any(isinstance(v, Mapping) for v in results.values()):
        results = {"": results}
    if classes is None:
        classes = []
        for per_class in results.values():
            classes.extend(c for c in per_class if c not in classes)
    classes = list(classes)
    rows = []
    for name, per_class in results.items():
        values = [_value(per_class.get(c), metric) for c in classes]
        present = [v for v in values if not math.isnan(v)]
        if skip_missing:
            mean = math.fsum(present) / len(present) if present else math.nan
        else:
            mean = math.fsum(values) / len(values) if values and len(present) == len(values) else math.nan
        rows.append((str(name), values + [mean]))
    return classes, rows


def format_table(results, *, fmt: str = "text", metric: str = "voc07", classes=None,
                 digits: int = 3, percent: bool = False, skip_missing: bool = False) -> str:
    """Format AP per class plus the mean as a table.

    Parameters
    ----------
    results : mapping
        See :func:`ap_table`.
    fmt : str {'text', 'markdown'}
        Aligned plain text or a Markdown (GitHub) table.
    metric : str {'voc07', 'area'}
    classes : sequence of str, optional
    digits : int
        Decimals shown.
    percent : bool
        Show AP as percentages.
    skip_missing : bool
        Means over the classes that have a value (see :func:`ap_table`).

    Returns
    -------
    str
        The table, ending with a newline. Missing values show as ``-``.

    Examples
    --------
    >>> print(format_table({"inria": {"person": 0.8412}}), end="")
           person   mean
    inria   0.841  0.841
    """
    if fmt not in ("text", "markdown"):
        raise ValueError(f"fmt must be 'text' or 'markdown', got {fmt!r}")
    classes, rows = ap_table(results, metric=metric, classes=classes, skip_missing=skip_missing)
    header = [""] + classes + ["mean"]
    scale = 100.0 if percent else 1.0
    body = [[name] + ["-" if math.isnan(v) else f"{v * scale:.{digits}f}" for v in values]
            for name, values in rows]
    if fmt == "markdown":
        lines = ["| " + " | ".join(header) + " |",
                 "|---|" + "---:|" * (len(header) - 1)]
        lines += ["| " + " | ".join(r) + " |" for r in body]
        return "\n".join(lines) + "\n"
    table = [header] + body
    widths = [max(len(r[k]) for r in table) for k in range(len(header))]
    lines = []
    for r in table:
        cells = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:])]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"
