"""The limits that keep hostile or damaged files from taking the machine.

Every file ``dpm`` reads is checked against these limits *before* anything
big is allocated or decompressed (docs/limits.md lists them with what the user
sees for each failure):

* :data:`MAX_MODEL_BYTES` (64 MiB; environment ``DPM_MAX_MODEL_BYTES`` or
  ``load_model(..., max_bytes=)``): the arrays of a model file, as the file
  declares them, and the size of a ``.mat`` file before and after inflation;
* :data:`MAX_ARRAY_BYTES` (4 GiB; ``DPM_MAX_ARRAY_BYTES`` or
  ``dpm.files.read_npz(..., max_bytes=)``): any other ``.npz`` of arrays, such
  as a training checkpoint's example cache;
* :data:`MAX_PIXELS` (150 million; ``DPM_MAX_PIXELS`` or
  ``read_image(..., max_pixels=)``): the pixels of an image, from its header;
* :data:`MAX_ANNOTATION_BYTES` (2 GiB; ``DPM_MAX_ANNOTATION_BYTES`` or
  ``coco.read_instances(..., max_bytes=)``): a JSON annotation or results
  file, before it is parsed (parsing takes about ten times its size in memory);
* fixed ranges of every model field (:data:`MODEL_RANGES`).

:data:`MAX_MEMORY` (1.5 GiB; ``DPM_MAX_MEMORY``, ``dpm.detect(..., max_memory=)``
or ``--max-memory``) is not a file limit but the memory detection aims to
stay under: larger images are detected in bands (:mod:`dpm.detection.bands`).

A limit that is exceeded raises :class:`LimitError`, a ``ValueError`` whose
one-line message names the file, what is too big, the limit and how to raise it.
"""
from __future__ import annotations

import os
import re

__all__ = ["LimitError", "MAX_MODEL_BYTES", "MAX_ARRAY_BYTES", "MAX_PIXELS", "MAX_MEMORY", "MODEL_RANGES",
           "MAX_ANNOTATION_BYTES", "MAX_NPZ_MEMBERS", "MAX_MAT_ELEMENTS", "MAX_FIGURE_PIXELS", "MAX_DPI", "MAX_SHOW_SBIN",
           "limit", "env_name", "too_big", "format_bytes", "parse_size"]

MAX_MODEL_BYTES = 64 * 2 ** 20
MAX_ARRAY_BYTES = 4 * 2 ** 30
# Detection holds memory to MAX_MEMORY by working in bands (docs/limits.md); what stays is the
# decoded image, 3 bytes per pixel: 150 million pixels (a 12000 x 12000 photo is 144 million)
# is 450 MB.  Pillow refuses more than 178 million pixels on its own.
MAX_PIXELS = 150_000_000
# The memory detection aims to stay under (dpm.detection.bands).
MAX_MEMORY = 3 * 2 ** 29
# COCO train2017's instances file is 448 MiB; Python's json takes about ten times a file's size.
MAX_ANNOTATION_BYTES = 2 * 2 ** 30
MAX_NPZ_MEMBERS = 10_000        # a model of 32 components x 32 parts has about 4,300
MAX_MAT_ELEMENTS = 100_000      # MATLAB arrays in a .mat model (voc-release3.1's hold about 200)
MAX_FIGURE_PIXELS = 50_000_000  # pixels of a figure dpm-show renders
MAX_DPI = 2400.0
MAX_SHOW_SBIN = 64

# (lowest, highest) of the model's fields, inclusive.  voc-release3.1 models use sbin 8,
# interval 10, 1-6 components of 6 parts, root filters up to 15 cells a side.
MODEL_RANGES = {
    "sbin": (2, 64),                 # pixels per HOG cell (even)
    "interval": (1, 100),            # pyramid levels per octave
    "components": (1, 32),
    "parts": (0, 32),                # per component
    "filter_side": (1, 64),          # cells, root and part filters
    # weights, biases, deformation costs, bbox regressors, thresh (voc-release3.1: all within +-10)
    "weight": (-1e6, 1e6),
    # star-cascade: principal directions kept, half-width in cells of a part's search window
    # (the distance transform's largest side, dpm.dt)
    "cascade_dims": (1, 31),
    "cascade_window": (0, 46340),
}

_ENV = {"MAX_MODEL_BYTES": "DPM_MAX_MODEL_BYTES", "MAX_ARRAY_BYTES": "DPM_MAX_ARRAY_BYTES",
        "MAX_PIXELS": "DPM_MAX_PIXELS", "MAX_ANNOTATION_BYTES": "DPM_MAX_ANNOTATION_BYTES",
        "MAX_MEMORY": "DPM_MAX_MEMORY"}
_SUFFIX = {"": 1, "k": 2 ** 10, "m": 2 ** 20, "g": 2 ** 30, "t": 2 ** 40}


class LimitError(ValueError):
    """A file is larger than a documented limit (the message says how to raise it)."""


def limit(name: str, value=None) -> int:
    """The limit ``name`` (``"MAX_MODEL_BYTES"``, ``"MAX_ARRAY_BYTES"``, ``"MAX_PIXELS"``).

    ``value`` (a caller's keyword) wins; then the environment variable
    (``DPM_<name>``: a whole number, optionally with a binary suffix ``K``, ``M``,
    ``G`` or ``T``, e.g. ``256M``); then the default.
    """
    if value is not None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"the limit must be a whole number >= 0, got {value!r}")
        return value
    env = _ENV[name]
    text = os.environ.get(env, "").strip()
    if not text:
        return globals()[name]
    return parse_size(text, env)


def parse_size(text: str, name: str) -> int:
    """``"256M"`` -> 268435456, ``"1.5G"`` -> 1610612736: a number with an optional binary suffix
    ``K``, ``M``, ``G`` or ``T`` (``B``/``iB`` may follow; a fraction only with a suffix, rounded
    down to whole bytes).  ``ValueError`` naming ``name`` otherwise."""
    m = re.fullmatch(r"(\d+)(\.\d+)?\s*([kKmMgGtT]?)(?:i?[bB])?", str(text).strip())
    if not m or (m.group(2) and not m.group(3)):
        raise ValueError(f"{name}={text!r}: expected a number of bytes, optionally with K, M, G or T "
                         "(e.g. 256M or 1.5G)")
    unit = _SUFFIX[m.group(3).lower()]
    if m.group(2):
        return int(m.group(1)) * unit + int(float(m.group(2)) * unit)
    return int(m.group(1)) * unit


def env_name(name: str) -> str:
    """The environment variable that sets the limit ``name``."""
    return _ENV[name]


def too_big(source, what: str, amount: str, name: str, value: int, keyword: str, unit=None) -> LimitError:
    """The :class:`LimitError` for ``what`` of ``source`` (``amount``) over the limit ``name``."""
    shown = format_bytes(value) if unit is None else unit(value)
    return LimitError(f"{source}: {what} is {amount}, over the limit of {shown}; if you trust the file, "
                      f"raise the limit with the environment variable {env_name(name)}=<number> "
                      f"or the keyword {keyword}=")


def format_bytes(n: int) -> str:
    """``n`` bytes for people: ``20.0 GiB``, ``512 bytes``."""
    if n < 1024:
        return f"{n} bytes"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        n /= 1024.0
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}"
    return f"{n} bytes"  # pragma: no cover
