"""Peak memory of refusing hostile files: model decompression bombs, liars, a huge PNG.

Each file is built in a temporary folder (bombs are made of repeated deflate
blocks, so building them takes little time or memory), then loaded by a fresh
Python process that imports dpm and calls ``dpm.load_model`` (or
``dpm.read_image``); the child reports its peak resident memory (``VmHWM``,
the whole process, imports included) and the one-line error it got.  Its
address space is capped (``RLIMIT_AS``, 4 GiB by default) so that a loader that
did try to allocate the declared size fails there instead of taking the machine.

Cases:

* ``npz-bomb-20GiB``: a 20 MB model ``.npz`` whose ``c0.root`` member holds (and
  declares) 20 GiB of zeros, true CRC;
* ``npz-liar``: the same data, the directory declaring 1 MiB;
* ``mat-bomb-1000x``: a 2 MB ``.mat`` whose compressed variable inflates to 2 GiB
  (a MAT v5 variable holds at most 4 GiB), its tag telling the truth;
* ``mat-liar``: the same, the tag declaring 4 KiB;
* ``mat-many-variables``: 40 compressed variables named ``model`` of 40 MiB each (1.6 GiB in all);
* ``png-20000x20000``: a 0.4 MB PNG of 20000 x 20000 pixels;
* ``baseline``: importing dpm and loading the built-in person model.

Usage::

    python benchmarks/bench_hostile_files.py [--limit-mib 100] [--address-space-gib 4]

Exits with status 1 if a file is not refused or a peak is at or over ``--limit-mib``.
"""
import argparse
import struct
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

import hostile  # noqa: E402
from dpm.files import read_npz  # noqa: E402

LOAD = ("import dpm\ntry:\n    dpm.{fn}(sys.argv[1])\n    print('loaded')\n"
        "except (ValueError, MemoryError) as e:\n    print(type(e).__name__ + ': ' + str(e))")


def many_variables(path, count, each):
    blobs = [hostile.mat_header()]
    for i in range(count):
        prefix = hostile.mat_double_element("model", (each - 64) // 8, prefix_only=True)
        data, _ = hostile.zeros_deflate(len(prefix) + (each - 64) // 8 * 8, prefix, zlib_wrapper=True,
                                        checksum=True)
        blobs.append(struct.pack("<II", 15, len(data)) + data)
    path.write_bytes(b"".join(blobs))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--limit-mib", type=float, default=100.0)
    ap.add_argument("--address-space-gib", type=float, default=4.0)
    args = ap.parse_args(argv)
    person = REPO / "dpm" / "data" / "person.npz"
    arrays = read_npz(person)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cases = []
        f = tmp / "bomb.npz"
        hostile.model_npz_bomb(f, arrays, declared=20 * hostile.GiB, checksum=True)
        cases.append(("npz-bomb-20GiB", f, "load_model", True))
        f = tmp / "liar.npz"
        hostile.model_npz_bomb(f, arrays, declared=hostile.MiB, actual=20 * hostile.GiB)
        cases.append(("npz-liar", f, "load_model", True))
        f = tmp / "bomb.mat"
        hostile.mat_bomb(f, inflated=2 * hostile.GiB, checksum=True)
        cases.append(("mat-bomb-1000x", f, "load_model", True))
        f = tmp / "liar.mat"
        hostile.mat_bomb(f, inflated=2 * hostile.GiB, declared=4096)
        cases.append(("mat-liar", f, "load_model", True))
        f = tmp / "many.mat"
        many_variables(f, 40, 40 * hostile.MiB)
        cases.append(("mat-many-variables", f, "load_model", True))   # kept: 40 MiB, bounded by the limit
        f = tmp / "huge.png"
        hostile.huge_png(f, 20000, 20000)
        cases.append(("png-20000x20000", f, "read_image", True))
        cases.append(("baseline", person, "load_model", False))
        failed = False
        print(f"{'case':20s} {'file':>10s} {'peak MiB':>9s}  result")
        for name, path, fn, must_refuse in cases:
            rc, out, err, peak = hostile.run_measured(LOAD.format(fn=fn), path,
                                                      address_space=int(args.address_space_gib * hostile.GiB))
            result = out[0] if out else f"exit {rc}: {err.strip().splitlines()[-1] if err.strip() else ''}"
            ok = rc == 0 and (result.startswith(("ValueError", "LimitError")) if must_refuse else result == "loaded")
            ok = ok and peak < args.limit_mib
            failed |= not ok
            size = path.stat().st_size
            shown = f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.0f} KB"
            print(f"{name:20s} {shown:>10s} {peak:9.1f}  {'' if ok else 'FAIL '}{result}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
