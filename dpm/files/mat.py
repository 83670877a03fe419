"""A bounded MATLAB v5 ``.mat`` reader.

``scipy.io.loadmat`` inflates compressed variables and allocates the arrays,
cells and structs a file declares without bounds: a 20 MB file can expand a
thousandfold, and a cell array that declares 10**9 elements is allocated before
a single one is read.  :func:`read_mat` walks the file's data elements itself
first (MAT-file format, level 5):

* the file is at most ``max_bytes``;
* a compressed variable (``miCOMPRESSED``) is inflated with
  ``zlib.decompressobj().decompress(data, max_length)``: first its 8-byte tag,
  whose declared size must fit in what is left of ``max_bytes``, then exactly
  that many bytes, never more;
* every array (``miMATRIX``) is checked recursively: dimensions that agree with
  the data it holds (a numeric array's element count, a cell's or struct's
  number of nested arrays), at most :data:`dpm.limits.MAX_MAT_ELEMENTS` arrays
  and 32 levels of nesting, and the memory of the arrays scipy will build
  (at most ``max_bytes`` in all); sparse, object and function arrays are
  refused;

and only then hands the inflated, checked variables to ``scipy.io.loadmat``.
"""
from __future__ import annotations

import io
import math
import struct
import zlib
from pathlib import Path

from ..limits import MAX_MAT_ELEMENTS, format_bytes, limit, too_big

__all__ = ["matlab_cells", "matlab_index", "read_mat"]

_MI_MATRIX, _MI_COMPRESSED = 14, 15
# MAT data types: bytes per stored value (miUTF8 is variable-length: at least 1 byte a char)
_MI_SIZE = {1: 1, 2: 1, 3: 2, 4: 2, 5: 4, 6: 4, 7: 4, 9: 8, 12: 8, 13: 8, 16: 1, 17: 2, 18: 4}
_MI_INT8, _MI_INT32, _MI_UINT32 = 1, 5, 6
# MATLAB array classes -> bytes per value in the array scipy builds (char: numpy 'U1', 4 bytes)
_CELL, _STRUCT, _CHAR = 1, 2, 4
_MX_SIZE = {4: 4, 6: 8, 7: 4, 8: 1, 9: 1, 10: 2, 11: 2, 12: 4, 13: 4, 14: 8, 15: 8}
_MX_NAMES = {3: "object", 5: "sparse", 16: "function handle", 17: "opaque"}
_MAX_DEPTH = 32
_OBJECT_BYTES = 256   # what scipy spends per cell or struct element, beyond its pointer


class _Damaged(ValueError):
    pass


def matlab_index(value) -> int:
    """A MATLAB 1-based index as a 0-based one; ``IndexError`` below 1 (never wrapped around)."""
    i = int(value) - 1
    if i < 0:
        raise IndexError(f"index {int(value)} is not a 1-based index")
    return i


def matlab_cells(x) -> list:
    """A MATLAB cell or struct array read with ``squeeze_me=True`` as a Python list."""
    import numpy as np

    return list(np.atleast_1d(x)) if isinstance(x, np.ndarray) else [x]


def read_mat(path, *, max_bytes: int | None = None, variables=None, what: str = "model file",
             limit_name: str = "MAX_MODEL_BYTES", **loadmat_options) -> dict:
    """``scipy.io.loadmat`` of a MATLAB v5 file whose sizes are all checked first.

    Parameters
    ----------
    path : str or Path
    max_bytes : int, optional
        Most bytes the file may hold, inflated, and most bytes of arrays it may
        make.  Default: the limit ``limit_name`` (``DPM_MAX_MODEL_BYTES``, 64 MiB).
    variables : collection of str, optional
        Read only these variables (the others are skipped after inflation).
    what, limit_name
        For messages, as in :func:`dpm.files.read_npz`.
    **loadmat_options
        Passed to ``scipy.io.loadmat`` (``squeeze_me``, ``struct_as_record``...).

    Raises
    ------
    dpm.limits.LimitError
        The file is larger than the limit, or inflates or expands beyond it.
    ValueError
        Not a MATLAB v5 file (v7.3/HDF5 and v4 are refused), damaged, or holding
        arrays a model never holds (sparse, objects, function handles).
    """
    import scipy.io as sio

    path = Path(path)
    max_bytes = limit(limit_name, max_bytes)
    size = path.stat().st_size
    if size > max_bytes:
        raise too_big(path, f"the {what}", format_bytes(size), limit_name, max_bytes, "max_bytes")
    data = path.read_bytes()
    if data[:4] == b"\x89HDF" or data[128:132] == b"\x89HDF":
        raise ValueError(f"{path}: MATLAB v7.3 (HDF5) files are not supported; re-save it in MATLAB "
                         "with save(..., '-v7')")
    if len(data) < 128 or data[126:128] not in (b"IM", b"MI"):
        raise ValueError(f"{path}: not a MATLAB v5 .mat file")
    walker = _Walker(path, "<" if data[126:128] == b"IM" else ">", max_bytes, what, limit_name)
    kept = [data[:128]]
    pos = 128
    while len(data) - pos >= 8:
        try:
            name, element, pos = walker.top_level(data, pos, variables)
            if element is not None:
                walker.check(element, 0, len(element))
                kept.append(element)
        except (_Damaged, struct.error, zlib.error) as exc:
            raise ValueError(f"{path}: damaged .mat file ({exc})") from None
    try:
        return sio.loadmat(io.BytesIO(b"".join(kept)), **loadmat_options)
    except Exception as exc:  # scipy raises a zoo of types for damaged data
        raise ValueError(f"{path}: not a readable MATLAB .mat file ({' '.join(str(exc).split())})") from None


def _inflate(source, size: int) -> bytearray:
    """The first ``size`` bytes (at most) that the zlib stream ``source`` inflates to.

    The input is fed in 64 KiB pieces and the output capped at ``size``, so neither
    side is ever held beyond that.
    """
    inflater = zlib.decompressobj()
    out = bytearray(size)
    done = pos = 0
    while done < size and not inflater.eof:
        data = inflater.unconsumed_tail
        if not data:
            data = source[pos:pos + 65536]
            pos += len(data)
            if not data:
                break
        piece = inflater.decompress(data, min(size - done, 2 ** 20))
        out[done:done + len(piece)] = piece
        done += len(piece)
    del out[done:]
    return out


class _Walker:
    def __init__(self, path, order, max_bytes, what, limit_name):
        self.path, self.order, self.max_bytes = path, order, max_bytes
        self.what, self.limit_name = what, limit_name
        self.inflated = 0      # bytes of inflated variables
        self.made = 0          # bytes of arrays scipy will make
        self.elements = 0

    def _too_big(self, thing, amount):
        return too_big(self.path, thing, format_bytes(amount), self.limit_name, self.max_bytes, "max_bytes")

    def tag(self, buf, pos, end):
        """``(type, nbytes, data start, next element)`` of the data element at ``pos``."""
        if pos + 8 > end:
            raise _Damaged(f"a data element at byte {pos} is cut short")
        first, second = struct.unpack_from(self.order + "II", buf, pos)
        if first >> 16:                      # small data element: type and size in 4 bytes
            nbytes = first >> 16
            if nbytes > 4:
                raise _Damaged(f"a small data element at byte {pos} claims {nbytes} bytes")
            return first & 0xFFFF, nbytes, pos + 4, pos + 8
        if second > end - pos - 8:
            raise _Damaged(f"a data element at byte {pos} claims {second} bytes, only {end - pos - 8} follow")
        return first, second, pos + 8, min(pos + 8 + ((second + 7) & ~7), end)

    def top_level(self, data, pos, variables):
        """``(name, element or None, next position)`` of the variable at ``pos``: its bytes,
        inflated and bounded, if it is one of ``variables`` (None: all)."""
        mdtype, nbytes, start, _ = self.tag(data, pos, len(data))
        nxt = start + nbytes                 # top-level elements are not padded
        source = memoryview(data)[start:nxt]
        if mdtype == _MI_MATRIX:
            head = data[pos:min(nxt, pos + 264)]
        elif mdtype == _MI_COMPRESSED:
            head = _inflate(source, 256)
        else:
            raise _Damaged(f"unexpected data type {mdtype} at byte {pos}; expected a MATLAB array")
        if len(head) < 8:
            raise _Damaged("a variable holds less than one data element")
        declared = struct.unpack(self.order + "II", head[:8])[1] + 8
        if self.inflated + declared > self.max_bytes:
            raise self._too_big("inflated, a variable" if self.inflated == 0 else "inflated, the file",
                                self.inflated + declared)
        name = self._name(head, len(head))
        if variables is not None and name not in variables:
            return name, None, nxt
        if mdtype == _MI_MATRIX:
            element = data[pos:nxt]
        else:
            element = _inflate(source, declared)
            if len(element) < declared:
                raise _Damaged(f"a compressed variable inflates to {len(element)} bytes, its tag says {declared}")
        self.inflated += len(element)
        return name, element, nxt

    def _name(self, head, end) -> str:
        """The name of the array whose element starts ``head`` (what fits in it; "" if not)."""
        try:
            pos = 8                          # past the array's own tag, whatever size it claims
            for _ in range(2):               # flags, dimensions
                pos = self.tag(head, pos, end)[3]
            t, n, d, _ = self.tag(head, pos, end)
            return bytes(head[d:d + n]).decode("latin-1") if t == _MI_INT8 else ""
        except (_Damaged, struct.error):
            return ""

    def check(self, buf, pos, end, depth=0) -> str:
        """Check the array element at ``pos`` and everything in it; return its name."""
        mdtype, nbytes, start, nxt = self.tag(buf, pos, end)
        if mdtype != _MI_MATRIX:
            raise _Damaged(f"data type {mdtype} where a MATLAB array was expected")
        return self._array(buf, start, start + nbytes, depth)

    def _array(self, buf, pos, end, depth) -> str:
        self.elements += 1
        if self.elements > MAX_MAT_ELEMENTS:
            raise ValueError(f"{self.path}: holds more than {MAX_MAT_ELEMENTS} MATLAB arrays; not a model")
        if depth > _MAX_DEPTH:
            raise _Damaged(f"arrays nested more than {_MAX_DEPTH} deep")
        if pos == end:                       # an empty array ([]) is a bare tag
            return ""
        t, n, d, pos = self.tag(buf, pos, end)
        if t != _MI_UINT32 or n != 8:
            raise _Damaged("an array without its flags")
        flags = struct.unpack_from(self.order + "I", buf, d)[0]
        cls, is_complex = flags & 0xFF, bool(flags & 0x800)
        t, n, d, pos = self.tag(buf, pos, end)
        if t != _MI_INT32 or n % 4 or not 8 <= n <= 4 * 32:
            raise _Damaged("an array with bad dimensions")
        dims = struct.unpack_from(f"{self.order}{n // 4}i", buf, d)
        if min(dims) < 0:
            raise _Damaged(f"negative dimensions {dims}")
        count = math.prod(dims)
        t, n, d, pos = self.tag(buf, pos, end)
        if t != _MI_INT8:
            raise _Damaged("an array without a name")
        name = bytes(buf[d:d + n]).decode("latin-1")
        if cls in _MX_NAMES:
            raise ValueError(f"{self.path}: holds a MATLAB {_MX_NAMES[cls]} array{f' {name!r}' if name else ''}, "
                             f"which a {self.what} never holds")
        if cls in _MX_SIZE:
            for _ in range(2 if is_complex else 1):
                t, n, d, pos = self.tag(buf, pos, end)
                stored = _MI_SIZE.get(t)
                if stored is None:
                    raise _Damaged(f"array data of unknown type {t}")
                if (count > n // stored) or (t != 16 and cls != _CHAR and count * stored != n):
                    raise _Damaged(f"an array of dimensions {dims} holds {n} bytes of type {t}")
            self._spend(count * _MX_SIZE[cls] * (2 if is_complex else 1))
        elif cls in (_CELL, _STRUCT):
            fields = 1
            if cls == _STRUCT:
                t, n, d, pos = self.tag(buf, pos, end)
                width = struct.unpack_from(self.order + "i", buf, d)[0] if n == 4 else 0
                t, n, d, pos = self.tag(buf, pos, end)
                if width <= 0 or t != _MI_INT8 or n % width:
                    raise _Damaged("a struct with bad field names")
                fields = n // width
            items = count * fields
            if items * 8 > end - pos:        # every nested array takes at least its 8-byte tag
                raise _Damaged(f"an array of dimensions {dims} declares {items} elements, "
                               f"but {end - pos} bytes cannot hold them")
            self._spend(items * (8 + _OBJECT_BYTES))
            for _ in range(items):
                t, n, d, nxt = self.tag(buf, pos, end)
                if t != _MI_MATRIX:
                    raise _Damaged(f"data type {t} inside a cell or struct")
                self._array(buf, d, d + n, depth + 1)
                pos = nxt
        else:
            raise _Damaged(f"unknown MATLAB array class {cls}")
        return name

    def _spend(self, nbytes):
        self.made += nbytes
        if self.made > self.max_bytes:
            raise self._too_big("the arrays it makes (as loaded)", self.made)
