"""Builders of hostile files: zip and MAT decompression bombs, lying headers, huge images.

Shared by the tests and ``benchmarks/bench_hostile_files.py``.  Bombs of any
declared size are built in a fraction of a second: a deflate stream of zeros
is made of one full-flush block repeated (identical blocks, since a full
flush resets the compressor's history), so nothing of the declared size is
ever compressed or held in memory.
"""
from __future__ import annotations

import struct
import zlib

import numpy as np

MiB = 2 ** 20
GiB = 2 ** 30


def zeros_deflate(size: int, prefix: bytes = b"", *, zlib_wrapper: bool = False, checksum: bool = False):
    """``(compressed, crc32)``: ``prefix`` followed by zeros, ``size`` bytes in all, deflated.

    ``zlib_wrapper``: a zlib stream (header and Adler-32, as MATLAB writes) instead of raw
    deflate (as zip members hold).  ``checksum``: compute the true CRC-32 (and Adler-32) of
    the data, which takes about 0.6 s per GiB; otherwise both are 0 and a reader that reaches
    the end of the data reports a damaged file.
    """
    chunk = MiB
    comp = zlib.compressobj(9, zlib.DEFLATED, 15 if zlib_wrapper else -15)
    first = prefix + bytes(min(size, chunk) - len(prefix))
    out = [comp.compress(first) + comp.flush(zlib.Z_FULL_FLUSH)]
    left = size - len(first)
    block = comp.compress(bytes(chunk)) + comp.flush(zlib.Z_FULL_FLUSH)
    n_full, rest = divmod(left, chunk)
    out.append(block * n_full)
    tail = comp.compress(bytes(rest)) + comp.flush(zlib.Z_SYNC_FLUSH)
    crc = adler = 0
    if checksum:
        crc, adler = zlib.crc32(first), zlib.adler32(first)
        zeros = bytes(chunk)
        for _ in range(n_full):
            crc, adler = zlib.crc32(zeros, crc), zlib.adler32(zeros, adler)
        crc, adler = zlib.crc32(bytes(rest), crc), zlib.adler32(bytes(rest), adler)
    # Final empty block, then (zlib) the Adler-32 of the data.
    out.append(tail + b"\x03\x00")
    if zlib_wrapper:
        out.append(struct.pack(">I", adler))
    return b"".join(out), crc


def npy_header(shape, dtype="<f8") -> bytes:
    """The ``.npy`` (version 1.0) header of an array of ``shape`` and ``dtype``."""
    import io
    bio = io.BytesIO()
    np.lib.format.write_array_header_1_0(bio, {"descr": np.dtype(dtype).str, "fortran_order": False,
                                               "shape": tuple(shape)})
    return bio.getvalue()


def write_zip(path, members) -> None:
    """Write a zip64 archive of ``members``: ``(name, data, crc, declared_size, method)``.

    ``data`` is stored as is (already deflated for method 8); ``declared_size`` is what
    the directory says the member inflates to, true or not.
    """
    with open(path, "wb") as fh:
        central = []
        for name, data, crc, declared, method in members:
            offset = fh.tell()
            name_b = name.encode()
            extra = struct.pack("<HHQQ", 1, 16, declared, len(data))
            fh.write(struct.pack("<4sHHHHHLLLHH", b"PK\x03\x04", 45, 0, method, 0, 0x21, crc,
                                 0xFFFFFFFF, 0xFFFFFFFF, len(name_b), len(extra)) + name_b + extra)
            fh.write(data)
            extra_c = struct.pack("<HHQQQ", 1, 24, declared, len(data), offset)
            central.append(struct.pack("<4sHHHHHHLLLHHHHHLL", b"PK\x01\x02", 45, 45, 0, method, 0, 0x21, crc,
                                       0xFFFFFFFF, 0xFFFFFFFF, len(name_b), len(extra_c), 0, 0, 0, 0,
                                       0xFFFFFFFF) + name_b + extra_c)
        cd_offset = fh.tell()
        cd = b"".join(central)
        fh.write(cd)
        eocd64 = fh.tell()
        fh.write(struct.pack("<4sQHHLLQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0, len(members), len(members),
                             len(cd), cd_offset))
        fh.write(struct.pack("<4sLQL", b"PK\x06\x07", 0, eocd64, 1))
        fh.write(struct.pack("<4sHHHHLLH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0))


def npz_member(name, array):
    """A well-formed deflated member ``(name, data, crc, size, 8)`` holding ``array``."""
    import io
    bio = io.BytesIO()
    np.lib.format.write_array(bio, np.asanyarray(array), allow_pickle=False)
    raw = bio.getvalue()
    comp = zlib.compressobj(6, zlib.DEFLATED, -15)
    return (f"{name}.npy", comp.compress(raw) + comp.flush(), zlib.crc32(raw), len(raw), 8)


def model_npz_bomb(path, model_arrays: dict, *, declared: int = 20 * GiB, actual: int | None = None,
                   member: str = "c0.root", checksum: bool = False) -> None:
    """A model ``.npz`` whose ``member`` is ``actual`` bytes of zeros (a float64 vector) that the
    directory declares as ``declared`` bytes; the other members are ``model_arrays``."""
    actual = declared if actual is None else actual
    header = npy_header(((actual - 128) // 8,))
    header = npy_header(((actual - len(header)) // 8,))
    data, crc = zeros_deflate(len(header) + (actual - len(header)) // 8 * 8, header, checksum=checksum)
    members = [npz_member(k, v) for k, v in model_arrays.items() if k != member]
    members.append((f"{member}.npy", data, crc, declared, 8))
    write_zip(path, members)


def mat_header() -> bytes:
    text = b"MATLAB 5.0 MAT-file, written by the dpm tests"
    return text.ljust(116, b" ") + bytes(8) + struct.pack("<H", 0x0100) + b"IM"


def mat_double_element(name: str, count: int, prefix_only: bool = False) -> bytes:
    """The start of an uncompressed miMATRIX holding a ``count`` x 1 double array named ``name``
    (with its data tag; the ``count * 8`` bytes of data follow unless ``prefix_only``)."""
    name_b = name.encode()
    name_el = struct.pack("<II", 1, len(name_b)) + name_b.ljust((len(name_b) + 7) // 8 * 8, b"\0")
    body = (struct.pack("<IIII", 6, 8, 6, 0) + struct.pack("<IIii", 5, 8, count, 1) + name_el
            + struct.pack("<II", 9, count * 8))
    head = struct.pack("<II", 14, len(body) + count * 8)
    return head + body + (b"" if prefix_only else bytes(count * 8))


def mat_bomb(path, *, inflated: int, declared: int | None = None, name: str = "model",
             checksum: bool = False) -> int:
    """A MAT v5 file with one compressed variable that inflates to about ``inflated`` bytes of
    zeros (a double array), its tag declaring ``declared`` bytes (default: the truth).  Returns
    the file's size."""
    count = (inflated - 64) // 8
    prefix = mat_double_element(name, count, prefix_only=True)
    if declared is not None:
        prefix = struct.pack("<II", 14, declared - 8) + prefix[8:]
    data, _ = zeros_deflate(len(prefix) + count * 8, prefix, zlib_wrapper=True, checksum=checksum)
    blob = mat_header() + struct.pack("<II", 15, len(data)) + data
    with open(path, "wb") as fh:
        fh.write(blob)
    return len(blob)


def huge_png(path, width: int, height: int) -> int:
    """A valid greyscale PNG of ``width`` x ``height`` black pixels, written without holding the
    image (its IDAT is a zeros deflate stream).  Returns the file's size."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    # Every row: filter byte 0 then zeros, so the whole image is zeros.
    idat, _ = zeros_deflate(height * (width + 1), zlib_wrapper=True, checksum=True)
    blob = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    with open(path, "wb") as fh:
        fh.write(blob)
    return len(blob)


_PEAK = """\
    try:
        with open('/proc/self/status') as _fh:
            _peak = next(int(line.split()[1]) for line in _fh if line.startswith('VmHWM:'))
    except (OSError, StopIteration):
        _peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(_peak, flush=True)
"""


def run_measured(code: str, *args, address_space: int | None = None, env=None, timeout=120):
    """Run ``code`` in a fresh Python (this checkout first on the path) with ``sys.argv[1:] = args``.

    The child prints its peak resident memory (whole process, in KiB) as its last line:
    ``VmHWM`` of ``/proc/self/status`` on Linux (``ru_maxrss`` there also counts the
    forked parent's memory before ``exec``), else ``ru_maxrss``.  ``address_space`` (bytes) caps its virtual memory (``RLIMIT_AS``), so a
    runaway allocation fails there instead of taking the machine.
    Returns ``(returncode, stdout lines without the last, stderr, peak MiB)``.
    """
    import os
    import resource
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    wrapped = ("import resource, sys\ntry:\n" + "".join(f"    {line}\n" for line in code.splitlines())
               + "finally:\n" + _PEAK)
    child_env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(repo), str(repo / "tests")]),
                     OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    child_env.update(env or {})

    def cap():
        if address_space is not None:
            resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))

    proc = subprocess.run([sys.executable, "-c", wrapped, *map(str, args)], capture_output=True, text=True,
                          env=child_env, preexec_fn=cap, timeout=timeout)
    lines = proc.stdout.splitlines()
    peak = int(lines[-1]) / 1024 if lines and lines[-1].isdigit() else float("nan")
    return proc.returncode, lines[:-1], proc.stderr, peak
