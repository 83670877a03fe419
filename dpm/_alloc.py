"""Keep freed memory in the process between pyramid levels and detections (glibc only).

A detection allocates and frees some hundred arrays of up to a few MB (pyramid
levels, their temporaries, padded maps, filter responses, score maps).  With
glibc's default settings many of them are served by ``mmap`` and returned to the
system when freed, and the top of the heap is trimmed as soon as 128 KiB are
free there, so the next level (or the next image) faults the same memory in
again page by page: on the benchmark image (``benchmarks/bench_detect.py``,
float32 and float64 detections in alternation) 1,000 to 7,000 page faults and
5 to 25 ms of system time per detection, depending on the history of glibc's
dynamic mmap threshold.

:func:`tune_malloc` changes three ``mallopt`` parameters, once per process:

* ``M_MMAP_THRESHOLD`` = 32 MiB (glibc's largest): blocks below it come from the
  heap and stay there when freed.  Setting it also turns off glibc's dynamic
  threshold, which would otherwise lower the trim threshold again.
* ``M_TRIM_THRESHOLD`` = 16 MiB: free memory at the top of the heap is given
  back only beyond this.  It is the smallest power of two that keeps the gain:
  8 MiB still leaves ~2,600 faults per detection of the benchmark image (with
  float32 and float64 detections in alternation), 16 MiB ~350 (64 MiB or
  unlimited: the same).
* ``M_TOP_PAD`` = 1 MiB: each growth of the heap takes 1 MiB more than asked,
  which halves the remaining faults (~210); larger pads gain little.

The cost is that freed memory stays with the process: after a detection the
process keeps about its peak heap (about 130 MB resident for a 640x480 image
and the person model, up to 35 MB more than with the defaults), and up to
16 MiB of free heap top.  Blocks of
32 MiB or more are still mapped and unmapped directly.

Only on Linux with glibc (``mallopt`` found in the C library and
``gnu_get_libc_version`` present); elsewhere (musl, macOS, Windows) nothing is
done.  Nothing is done either when the environment already tunes glibc's
allocator (``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``,
``MALLOC_TOP_PAD_`` or ``GLIBC_TUNABLES`` set): the user's settings win.  The settings are process-wide; they change neither results nor the
allocator's correctness, only when memory is handed back.

"The environment" is the one the process started with
(:func:`start_environment`): glibc reads these variables once, at start, so a
value that a library puts into ``os.environ`` later tunes nothing in this
process and is not the user's.  (A Dask ``LocalCluster`` does that: it sets
``MALLOC_TRIM_THRESHOLD_=65536`` in its own process's environment for the
workers it starts, and leaves it there.)
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import os
import sys
import threading

__all__ = ["tune_malloc", "start_environment", "ALLOCATOR_VARS"]

log = logging.getLogger(__name__)

# mallopt parameters (glibc malloc.h).
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's maximum on 64-bit (HEAP_MAX / 2)
TRIM_THRESHOLD = 16 * 1024 * 1024
TOP_PAD = 1 * 1024 * 1024

# Environment variables through which the user tunes glibc's allocator.
ALLOCATOR_VARS = _ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "GLIBC_TUNABLES")

_lock = threading.Lock()
_done = False
_applied = False


def _libc():
    """The C library if it is glibc with ``mallopt``, else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)  # the process's own symbols, the C library included
        libc.gnu_get_libc_version  # glibc only (absent from musl)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return None
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return libc


def start_environment() -> dict[str, str]:
    """The allocator variables (:data:`ALLOCATOR_VARS`) this process was started with.

    Read from ``/proc/self/environ`` (the environment at start; later changes to
    ``os.environ`` do not show there), once per process.  Where that file cannot
    be read: the variables in ``os.environ`` now.
    """
    start = _proc_start_environment()
    if start is None:
        return {k: os.environ[k] for k in _ENV if k in os.environ}
    return dict(start)


@functools.cache
def _proc_start_environment() -> dict[str, str] | None:
    # The start environment never changes: read it once (the local backend asks at every submit).
    try:
        with open("/proc/self/environ", "rb") as fh:
            raw = fh.read()
    except OSError:
        return None
    env = {}
    for item in raw.split(b"\0"):
        name, sep, value = item.partition(b"=")
        name = name.decode("utf-8", "replace")
        if sep and name in _ENV:
            env[name] = value.decode("utf-8", "replace")
    return env


def tune_malloc(not_the_users: dict | None = None) -> bool:
    """Apply the settings above once per process; True if they are in effect.

    Safe to call any number of times and from any thread: only the first call
    does anything.  Returns False (and changes nothing) where glibc's
    ``mallopt`` is not available or refuses a value.

    ``not_the_users`` maps allocator variables to values that a launcher, not
    the user, put in the environment (a Dask nanny's ``MALLOC_TRIM_THRESHOLD_``):
    those do not count as the user's tuning.  A call with it looks again at a
    process that an earlier call left alone because of the environment.
    """
    global _done, _applied
    if _done and (_applied or not not_the_users):
        return _applied
    with _lock:
        if _done and (_applied or not not_the_users):
            return _applied
        theirs = {k: str(v) for k, v in (not_the_users or {}).items()}
        start = start_environment()
        users = [v for v in _ENV if v in start and start[v] != theirs.get(v)]
        libc = None if users else _libc()
        ok = False
        if libc is not None:
            ok = True
            for param, value in ((M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD),
                                 (M_TOP_PAD, TOP_PAD)):
                # mallopt returns 1 on success, 0 on error.
                ok = bool(libc.mallopt(param, value)) and ok
            if not ok:
                log.debug("mallopt refused some allocator settings")
        _applied = ok
        _done = True
        return _applied
