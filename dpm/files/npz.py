"""A bounded ``.npz`` reader: nothing is decompressed or allocated before it is checked.

``np.load`` trusts a file: a 20 MB ``.npz`` whose members declare (or expand to)
20 GiB makes it allocate 20 GiB.  :func:`read_npz` reads the zip archive entry by
entry and, before it decompresses a byte,

1. checks the end-of-central-directory record: at most ``max_members`` entries
   and a central directory of matching size (so listing the archive is cheap);
2. checks every member: a ``.npy`` name, stored or deflated, not encrypted,
   and the sum of the declared uncompressed sizes at most ``max_bytes``;
3. parses each member's ``.npy`` header (``numpy.lib.format``, at most 64 KiB):
   a plain numeric, boolean or string dtype (no objects, no records) and a shape
   whose size times the item size is exactly the member's declared size less
   the header;

then reads the data in 1 MiB chunks into one array of that size.  Inflation
stops at the declared size (``zipfile`` never inflates past it), so a member
that lies about its size cannot make it allocate more; a member that holds
less is reported as damaged, and the CRC is checked.
"""
from __future__ import annotations

import io
import math
import os
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ..limits import MAX_NPZ_MEMBERS, format_bytes, limit, too_big

__all__ = ["read_npz", "write_npz"]

_CHUNK = 2 ** 20
_MAX_HEADER = 65536
_KINDS = set("biufcSU")
_EOCD = struct.Struct("<4s4H2LH")           # end of central directory record
_EOCD64_LOCATOR = struct.Struct("<4sLQL")
_EOCD64 = struct.Struct("<4sQ2H2L4Q")


def read_npz(path, *, max_bytes: int | None = None, max_members: int = MAX_NPZ_MEMBERS,
             what: str = "arrays file", limit_name: str = "MAX_ARRAY_BYTES") -> dict:
    """Read the arrays of an ``.npz`` file (``np.savez``), checking every size first.

    Parameters
    ----------
    path : str or Path
    max_bytes : int, optional
        Most bytes of array data the file may declare, all members together.
        Default: the environment variable named by ``limit_name``
        (``DPM_MAX_ARRAY_BYTES``), else 4 GiB (:data:`dpm.limits.MAX_ARRAY_BYTES`).
    max_members : int
        Most arrays in the file.
    what : str
        What the file is, for messages (``"model file"``).
    limit_name : str
        The :mod:`dpm.limits` limit that ``max_bytes`` defaults to.

    Returns
    -------
    dict of str to ndarray
        Member names without ``.npy``, in file order.

    Raises
    ------
    FileNotFoundError
        No such file.
    dpm.limits.LimitError
        The file declares more data or members than the limits; nothing big was
        read.  A ``ValueError``.
    ValueError
        Not a readable ``.npz``, object (pickled) or record arrays, sizes that
        disagree with the headers, truncated or corrupt data.  The one-line
        message names the file (and the member).
    """
    path = Path(path)
    max_bytes = limit(limit_name, max_bytes)
    try:
        with open(path, "rb") as fh:
            _check_directory(fh, path, max_members)
            with zipfile.ZipFile(fh) as zf:
                infos = zf.infolist()
                _check_members(infos, path, max_bytes, max_members, what, limit_name)
                return {info.filename[:-4]: _read_member(zf, info, path) for info in infos}
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, struct.error, NotImplementedError,
            UnicodeDecodeError, RuntimeError, zlib.error) as exc:
        raise ValueError(f"{path}: not a readable .npz {what} ({_one_line(exc)})") from None


def _one_line(exc) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _check_directory(fh, path: Path, max_members: int) -> None:
    """Refuse archives whose central directory is too big to list, before ``zipfile`` reads it."""
    size = fh.seek(0, os.SEEK_END)
    tail_start = max(0, size - (_EOCD.size + 65535))
    fh.seek(tail_start)
    tail = fh.read()
    at = len(tail) - _EOCD.size
    if at < 0:
        raise ValueError(f"{path}: not a zip archive (too short)")
    if tail[at:at + 4] != b"PK\x05\x06":
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or at + _EOCD.size > len(tail):
            raise ValueError(f"{path}: not a zip archive (no end-of-directory record)")
    _, _, _, _, entries, cd_size, _, _ = _EOCD.unpack_from(tail, at)
    if entries == 0xFFFF or cd_size == 0xFFFFFFFF:
        loc = at - _EOCD64_LOCATOR.size
        if loc >= 0 and tail[loc:loc + 4] == b"PK\x06\x07":
            _, _, offset, _ = _EOCD64_LOCATOR.unpack_from(tail, loc)
            fh.seek(offset)
            rec = fh.read(_EOCD64.size)
            if len(rec) == _EOCD64.size and rec[:4] == b"PK\x06\x06":
                fields = _EOCD64.unpack(rec)
                entries, cd_size = fields[7], fields[8]
    if entries > max_members:
        raise ValueError(f"{path}: the archive lists {entries} members, more than the {max_members} "
                         "an arrays file may have; refusing to read it")
    # Each central-directory entry takes 46 bytes plus its name and extra fields.
    if cd_size > entries * (46 + 1024) + 1024 or cd_size > size:
        raise ValueError(f"{path}: damaged zip archive (a central directory of {cd_size} bytes for "
                         f"{entries} members)")


def _check_members(infos, path: Path, max_bytes: int, max_members: int, what: str, limit_name: str) -> None:
    if len(infos) > max_members:
        raise ValueError(f"{path}: the archive holds {len(infos)} members, more than {max_members}")
    names = set()
    total = 0
    for info in infos:
        name = info.filename
        if not name.endswith(".npy") or "/" in name:
            raise ValueError(f"{path}: member {name!r} is not a .npy array; not an .npz {what}")
        if name in names:
            raise ValueError(f"{path}: member {name!r} appears twice; damaged .npz {what}")
        names.add(name)
        if info.flag_bits & 0x1:
            raise ValueError(f"{path}: member {name!r} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ValueError(f"{path}: member {name!r} uses zip compression method {info.compress_type}; "
                             "only stored and deflated members are read")
        total += info.file_size
        if total > max_bytes:
            amount = (f"{format_bytes(total)} (member {name!r} alone {format_bytes(info.file_size)})"
                      if total != info.file_size else format_bytes(total))
            raise too_big(path, f"the array data it declares", amount, limit_name, max_bytes, "max_bytes")


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> np.ndarray:
    name = info.filename
    with zf.open(info) as fp:
        prefix = _read_exact(fp, 10, path, name)
        if prefix[:6] != b"\x93NUMPY":
            raise ValueError(f"{path}: member {name!r} is not a .npy array (bad magic)")
        major = prefix[6]
        if major == 1:
            hlen = struct.unpack("<H", prefix[8:10])[0]
        elif major == 2:
            prefix += _read_exact(fp, 2, path, name)
            hlen = struct.unpack("<I", prefix[8:12])[0]
        else:
            raise ValueError(f"{path}: member {name!r} has .npy format version {major}.{prefix[7]}, "
                             "this dpm reads 1.0 and 2.0")
        if hlen > _MAX_HEADER:
            raise ValueError(f"{path}: member {name!r} has a {hlen}-byte .npy header (at most {_MAX_HEADER})")
        header = prefix + _read_exact(fp, hlen, path, name)
        try:
            bio = io.BytesIO(header)
            version = np.lib.format.read_magic(bio)
            read = np.lib.format.read_array_header_1_0 if version[0] == 1 else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read(bio, max_header_size=_MAX_HEADER)
        except Exception as exc:  # numpy's header parser raises several types (tokenize errors too)
            raise ValueError(f"{path}: member {name!r} has a damaged .npy header ({_one_line(exc)})") from None
        if dtype.hasobject or dtype.names is not None or dtype.subdtype is not None or dtype.kind not in _KINDS:
            raise ValueError(f"{path}: member {name!r} holds {dtype} values; only plain numbers, booleans and "
                             "strings are read (no pickled objects or records)")
        if dtype.itemsize == 0:
            raise ValueError(f"{path}: member {name!r} has an unsized dtype {dtype}")
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes != info.file_size - len(header):
            raise ValueError(f"{path}: member {name!r} is damaged: its header describes {nbytes} bytes of "
                             f"{dtype} {tuple(shape)}, the archive declares {info.file_size - len(header)}")
        buf = np.empty(nbytes, dtype=np.uint8)
        view = memoryview(buf)
        done = 0
        while done < nbytes:
            n = fp.readinto(view[done:done + _CHUNK])
            if not n:
                raise ValueError(f"{path}: member {name!r} is truncated ({done} of {nbytes} bytes)")
            done += n
        if fp.read(1):
            raise ValueError(f"{path}: member {name!r} holds more data than its header describes")
    return buf.view(dtype).reshape(shape, order="F" if fortran else "C")


def _read_exact(fp, n: int, path: Path, name: str) -> bytes:
    data = fp.read(n)
    if len(data) != n:
        raise ValueError(f"{path}: member {name!r} is truncated")
    return data


def write_npz(fh, arrays: dict) -> None:
    """``np.savez_compressed`` into ``fh`` with fixed entry timestamps and names in sorted order,
    so equal arrays give equal bytes."""
    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(arrays):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w", force_zip64=True) as entry:
                np.lib.format.write_array(entry, np.asanyarray(arrays[name]), allow_pickle=False)
