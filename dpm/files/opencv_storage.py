"""A bounded reader and a writer for the XML of OpenCV's ``cv::FileStorage`` (the subset its DPM models use).

The file is ``<?xml version="1.0"?><opencv_storage> ... </opencv_storage>``;
each child element is a named entry, one of:

* a matrix: ``<Name type_id="opencv-matrix"><rows>R</rows><cols>C</cols><dt>d</dt><data>...</data></Name>``
  (row-major numbers; read as a ``(R, C)`` float64 array);
* a sequence of entries: ``<Name><_>...</_><_>...</_></Name>``, each ``<_>`` a
  matrix or a list of numbers (read as a Python list);
* numbers: ``<Name>1 2 3</Name>`` (read as a 1-D float64 array; a scalar is one number).

The reader is bounded: the file's size is checked against
:data:`dpm.limits.MAX_MODEL_BYTES` before it is read, a document with a DTD
(``<!DOCTYPE``/``<!ENTITY``: entity expansion) is refused before it is
parsed, the parse stops past :data:`MAX_ELEMENTS` elements, nesting deeper
than a matrix inside a sequence is refused, and a matrix must hold exactly the
``rows x cols`` numbers it declares (each side at most :data:`MAX_SIDE`, at
most :data:`MAX_MATRIX_VALUES` values, its text checked for length before it
is split); a list of numbers outside a matrix has at most
:data:`MAX_LIST_CHARS` characters.  Every error is a one-line ``ValueError`` naming the
file and the element.  Only the standard library's ``xml.etree`` is used.
"""
from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from ..limits import limit, too_big

__all__ = ["MAX_SIDE", "MAX_MATRIX_VALUES", "MAX_ELEMENTS", "MAX_LIST_CHARS", "read_opencv_storage",
           "write_opencv_storage"]

ROOT = "opencv_storage"
MATRIX = "opencv-matrix"
#: Largest number of rows or columns of one matrix (a 64-cell filter of 32 channels has 2048 columns).
MAX_SIDE = 1 << 16
#: Most values of one matrix (a 64 x 64-cell filter of 32 channels has 131,072).
MAX_MATRIX_VALUES = 1 << 22
#: Most elements in a file (OpenCV's sample DPM model has 318; 32 components of 32 parts about 7,000).
MAX_ELEMENTS = 100_000
#: Most characters of a list of numbers outside a matrix (a DPM file's longest holds about 130 numbers).
MAX_LIST_CHARS = 1 << 20
#: Most characters one number may take in a matrix's data (``repr`` of a float takes at most 24).
_CHARS_PER_VALUE = 64
_DTYPES = {"d": np.float64, "f": np.float32, "i": np.int32}


def read_opencv_storage(path, *, max_bytes: int | None = None, what: str = "OpenCV XML file") -> dict:
    """The named entries of an OpenCV ``FileStorage`` XML file (see the module docstring).

    ``max_bytes`` (default ``DPM_MAX_MODEL_BYTES``, else 64 MiB) bounds the file's size.
    Raises ``FileNotFoundError``, :class:`dpm.limits.LimitError` or ``ValueError`` (one line naming the file).
    """
    path = Path(path)
    cap = limit("MAX_MODEL_BYTES", max_bytes)
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > cap:
            raise too_big(path, what, f"{size} bytes", "MAX_MODEL_BYTES", cap, "max_bytes")
        data = fh.read(cap + 1)
    if len(data) > cap:
        raise too_big(path, what, f"more than {cap} bytes", "MAX_MODEL_BYTES", cap, "max_bytes")
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise ValueError(f"{path}: not an OpenCV XML file (it declares a DTD or entities; OpenCV's files have none)")
    root = _parse(path, data)
    if root.tag != ROOT:
        raise ValueError(f"{path}: not an OpenCV XML file (root element <{root.tag}>, expected <{ROOT}>)")
    entries = {}
    for child in root:
        if child.tag in entries:
            raise ValueError(f"{path}: <{child.tag}> appears twice")
        entries[child.tag] = _entry(path, child, child.tag, depth=0)
    return entries


def _parse(path, data: bytes):
    """The root element, parsed incrementally so that a file of countless tiny elements is
    refused before it is all in memory."""
    parser = ET.XMLPullParser(events=("start",))
    count, root = 0, None
    try:
        for at in range(0, max(len(data), 1), 1 << 20):
            parser.feed(data[at:at + (1 << 20)])
            for _, el in parser.read_events():
                root = el if root is None else root
                count += 1
                if count > MAX_ELEMENTS:
                    raise ValueError(f"{path}: more than {MAX_ELEMENTS} XML elements; not an OpenCV DPM model")
        parser.close()
    except ET.ParseError as exc:
        raise ValueError(f"{path}: not an XML file ({exc})") from None
    if root is None:
        raise ValueError(f"{path}: not an XML file (no element)")
    return root


def _entry(path, el, where, depth):
    if el.get("type_id") == MATRIX:
        return _matrix(path, el, where)
    if el.get("type_id") is not None:
        raise ValueError(f"{path}: <{where}> has type_id {el.get('type_id')!r}; only {MATRIX!r} is read")
    kids = list(el)
    if kids:
        if depth > 0:
            raise ValueError(f"{path}: <{where}> nests sequences; OpenCV's DPM files hold one level")
        if any(k.tag != "_" for k in kids):
            bad = next(k.tag for k in kids if k.tag != "_")
            raise ValueError(f"{path}: <{where}> holds <{bad}>; a sequence holds <_> elements")
        return [_entry(path, k, f"{where}[{i}]", depth + 1) for i, k in enumerate(kids)]
    if len(el.text or "") > MAX_LIST_CHARS:
        raise ValueError(f"{path}: <{where}> holds more than {MAX_LIST_CHARS} characters of numbers")
    return _numbers(path, el.text, where)


def _numbers(path, text, where) -> np.ndarray:
    words = (text or "").split()
    try:
        values = np.array([_number(w) for w in words], dtype=np.float64)
    except ValueError:
        bad = next(w for w in words if not _is_number(w))
        raise ValueError(f"{path}: <{where}> holds {bad[:40]!r}, not a number") from None
    return values


def _number(word: str) -> float:
    low = word.lower()
    if low in (".inf", "+.inf"):
        return math.inf
    if low == "-.inf":
        return -math.inf
    if low == ".nan":
        return math.nan
    return float(word)


def _is_number(word: str) -> bool:
    try:
        _number(word)
        return True
    except ValueError:
        return False


def _matrix(path, el, where) -> np.ndarray:
    fields = {}
    for k in el:
        if k.tag not in ("rows", "cols", "dt", "data") or k.tag in fields or len(k):
            raise ValueError(f"{path}: <{where}> is a malformed matrix (element <{k.tag}>)")
        fields[k.tag] = k.text or ""
    if set(fields) != {"rows", "cols", "dt", "data"}:
        missing = sorted({"rows", "cols", "dt", "data"} - set(fields))
        raise ValueError(f"{path}: <{where}> is a matrix without <{missing[0]}>")
    dims = []
    for name in ("rows", "cols"):
        text = fields[name].strip()
        if not text.isdigit() or not 0 <= int(text) <= MAX_SIDE:
            raise ValueError(f"{path}: <{where}> <{name}> is {text[:40]!r}, expected a whole number 0..{MAX_SIDE}")
        dims.append(int(text))
    if dims[0] * dims[1] > MAX_MATRIX_VALUES:
        raise ValueError(f"{path}: <{where}> declares {dims[0]}x{dims[1]} values, more than {MAX_MATRIX_VALUES}")
    if len(fields["data"]) > _CHARS_PER_VALUE * max(dims[0] * dims[1], 1):
        raise ValueError(f"{path}: <{where}> holds more data than its {dims[0]}x{dims[1]} values")
    dt = fields["dt"].strip()
    if dt not in _DTYPES:
        raise ValueError(f"{path}: <{where}> has element type {dt[:10]!r}; read: {', '.join(_DTYPES)}")
    values = _numbers(path, fields["data"], f"{where}/data")
    if values.size != dims[0] * dims[1]:
        raise ValueError(f"{path}: <{where}> declares {dims[0]}x{dims[1]} values and holds {values.size}")
    return values.reshape(dims)


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------

def _fmt(v) -> str:
    v = float(v)
    if math.isinf(v):
        return ".Inf" if v > 0 else "-.Inf"
    if math.isnan(v):
        return ".Nan"
    if v == int(v) and abs(v) < 2 ** 53:
        return f"{int(v)}."
    return repr(v)


def _row(values) -> str:
    return " ".join(_fmt(v) for v in np.asarray(values, dtype=np.float64).ravel())


def _matrix_text(name: str, m: np.ndarray, indent: str) -> str:
    m = np.atleast_2d(np.asarray(m, dtype=np.float64))
    rows = "\n".join(f"{indent}  {_row(r)}" for r in m)
    return (f'{indent}<{name} type_id="{MATRIX}">\n{indent}  <rows>{m.shape[0]}</rows>\n'
            f"{indent}  <cols>{m.shape[1]}</cols>\n{indent}  <dt>d</dt>\n{indent}  <data>\n{rows}</data></{name}>\n")


def write_opencv_storage(fh, entries: dict) -> None:
    """Write ``entries`` (name -> int, float, 1-D array of numbers, 2-D matrix, or list of
    matrices / 1-D arrays) as OpenCV ``FileStorage`` XML to the text file ``fh``.

    Numbers are written with ``repr`` (they read back exactly); a 2-D array is a matrix,
    a 1-D array a list of numbers, a list a sequence of ``<_>`` entries.
    """
    out = ['<?xml version="1.0"?>\n', f"<{ROOT}>\n"]
    for name, value in entries.items():
        if isinstance(value, list):
            out.append(f"<{name}>\n")
            for item in value:
                item = np.asarray(item)
                if item.ndim == 2:
                    out.append(_matrix_text("_", item, "  "))
                else:
                    out.append(f"  <_>\n    {_row(item)}</_>\n")
            out.append(f"</{name}>\n")
        elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            out.append(f"<{name}>{int(value)}</{name}>\n")
        elif np.ndim(value) == 2:
            out.append(_matrix_text(name, value, ""))
        else:
            out.append(f"<{name}>{_row(value)}</{name}>\n")
    out.append(f"</{ROOT}>\n")
    fh.write("".join(out))
