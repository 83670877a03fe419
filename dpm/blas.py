"""SciPy's BLAS for the kernels: its Cython BLAS functions, and the thread count of its OpenBLAS.

The convolution kernels (``dpm/_convolve.pyx``) call the GEMM of the BLAS that
SciPy bundles, through ``scipy.linalg.cython_blas`` (:func:`cython_blas`).
That OpenBLAS has one thread pool for the whole process; detection runs one
image per single-threaded process, so :func:`limit_blas_threads` limits it
for a block of code and restores it afterwards (see :mod:`dpm.convolve`,
"BLAS threads"); :func:`get_blas_threads` reads it.
"""
from __future__ import annotations

import contextlib
import ctypes
import importlib.machinery
import importlib.util
import logging
import sys
import threading
from pathlib import Path

__all__ = ["cython_blas", "get_blas_threads", "limit_blas_threads", "openblas_path"]

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------
# BLAS


def _scipy_dir() -> Path | None:
    """SciPy's package folder, found without importing SciPy."""
    spec = importlib.util.find_spec("scipy")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).resolve().parent


def cython_blas():
    """``scipy.linalg.cython_blas``, loaded by itself if possible.

    Importing it the usual way runs ``scipy.linalg/__init__`` (about 0.2 s,
    paid again by every worker process); the extension module itself needs
    none of it.  Falls back to the normal import.
    """
    module = sys.modules.get("scipy.linalg.cython_blas")
    if module is not None:
        return module
    folder = _scipy_dir()
    for suffix in importlib.machinery.EXTENSION_SUFFIXES if folder else ():
        path = folder / "linalg" / f"cython_blas{suffix}"
        if path.is_file():
            try:
                spec = importlib.util.spec_from_file_location("scipy.linalg.cython_blas", path)
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
                return module
            except Exception as exc:  # any failure: the normal import below
                log.debug("loading %s by itself failed (%s)", path, exc)
            break
    import scipy.linalg.cython_blas as module

    return module




# ---------------------------------------------------------------------------
# BLAS thread control


class _OpenBLAS:
    """``get``/``set`` of the thread count of SciPy's OpenBLAS, located lazily."""

    _NAMES = (
        ("scipy_openblas_get_num_threads", "scipy_openblas_set_num_threads"),
        ("openblas_get_num_threads64_", "openblas_set_num_threads64_"),
        ("openblas_get_num_threads", "openblas_set_num_threads"),
    )

    def __init__(self):
        self._lock = threading.Lock()
        self._located = False
        self._get = self._set = None
        self.path = None
        # Active limits (one token per open block, innermost last) and the
        # setting found when the first one opened.
        self._active = []
        self._saved = None

    def _candidates(self):
        root = _scipy_dir()
        if root is None:
            return
        # Where the wheels bundle it (Linux/Windows, macOS, older layouts).  A
        # system-wide library is not searched for: loading a second OpenBLAS
        # would start its own thread pool.
        for folder in (root.parent / "scipy.libs", root / ".dylibs", root / ".libs"):
            if folder.is_dir():
                yield from sorted(p for p in folder.iterdir() if "openblas" in p.name.lower())

    def _locate(self):
        self._located = True
        # Importing the kernel module already loaded SciPy's BLAS; opening the
        # same file again returns the already-loaded library, not a new copy.
        for cand in self._candidates():
            try:
                lib = ctypes.CDLL(str(cand))
            except OSError:
                continue
            for get_name, set_name in self._NAMES:
                getter = getattr(lib, get_name, None)
                setter = getattr(lib, set_name, None)
                if getter is not None and setter is not None:
                    getter.restype = ctypes.c_int
                    getter.argtypes = []
                    setter.restype = None
                    setter.argtypes = [ctypes.c_int]
                    self._get, self._set, self.path = getter, setter, str(cand)
                    log.debug("BLAS thread control through %s (%s)", cand, set_name)
                    return
        log.info(
            "cannot locate SciPy's OpenBLAS to limit its threads; set OPENBLAS_NUM_THREADS "
            "(or MKL_NUM_THREADS / VECLIB_MAXIMUM_THREADS) in the environment instead"
        )

    def available(self):
        with self._lock:
            if not self._located:
                self._locate()
            return self._set is not None

    def get(self):
        return self._get() if self.available() else None

    def enter(self, n):
        """Apply limit ``n``; return a token for :meth:`leave`."""
        token = [int(n)]
        if not self.available():
            return token
        with self._lock:
            if not self._active:
                self._saved = self._get()
            self._active.append(token)
            self._set(token[0])
        return token

    def leave(self, token):
        """Close a limit: the innermost still-open one applies, or the saved setting."""
        if self._set is None:
            return
        with self._lock:
            self._active = [t for t in self._active if t is not token]
            if self._active:
                self._set(self._active[-1][0])
            elif self._saved is not None:
                self._set(self._saved)
                self._saved = None


_OPENBLAS = _OpenBLAS()


def get_blas_threads() -> int | None:
    """Return the current thread count of SciPy's OpenBLAS, or None if it cannot be located."""
    return _OPENBLAS.get()


@contextlib.contextmanager
def limit_blas_threads(n: int | None):
    """Limit SciPy's OpenBLAS to ``n`` threads inside a ``with`` block.

    Parameters
    ----------
    n : int or None
        Number of threads (>= 1).  None leaves the setting untouched.

    Notes
    -----
    The OpenBLAS setting is process-wide.  While blocks are open (nested, or
    concurrently in several threads) the most recently opened one that is
    still open applies; when the last one closes, the setting found before the
    first one opened is restored.  Without a locatable OpenBLAS this does nothing
    (see the module docstring).
    """
    if n is None:
        yield
        return
    n = int(n)
    if n < 1:
        raise ValueError(f"blas_threads must be >= 1 or None, got {n}")
    token = _OPENBLAS.enter(n)
    try:
        yield
    finally:
        _OPENBLAS.leave(token)


def openblas_path() -> str | None:
    """The file of SciPy's OpenBLAS that the thread control uses, or None if it cannot be located."""
    return _OPENBLAS.path if _OPENBLAS.available() else None
