"""Detection over many image files, in parallel processes, with a progress bar."""
from __future__ import annotations

import logging
import os
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from multiprocessing import get_context
from pathlib import Path

from .detection import check_image_size, detect
from .image import read_image
from .progress import progress_bar

__all__ = ["IMAGE_EXTENSIONS", "list_images", "detect_files", "single_threaded_env"]

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".ppm", ".pgm", ".pbm",
                    ".webp"}

# Native thread pools that would otherwise compete with our worker processes.
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
                "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def list_images(inputs) -> list[Path]:
    """Expand files and folders into a list of image paths.

    A folder contributes its image files (by extension, not recursive, sorted
    by name); a file is taken as given, whatever its extension.

    Raises
    ------
    FileNotFoundError
        An input does not exist.
    ValueError
        A folder holds no image files.
    """
    out = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in IMAGE_EXTENSIONS)
            if not found:
                raise ValueError(f"{p}: folder holds no image files ({', '.join(sorted(IMAGE_EXTENSIONS))})")
            out.extend(found)
        elif p.exists():
            out.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such file or folder")
    return out


@contextmanager
def single_threaded_env():
    """Ask native libraries in child processes for one thread each (restored afterwards)."""
    saved = {k: os.environ.get(k) for k in _THREAD_VARS}
    for k in _THREAD_VARS:
        os.environ.setdefault(k, "1")
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


_worker_model = None


def _init_worker(model):
    global _worker_model
    _worker_model = model


def _detect_one(path, kwargs):
    try:
        image = read_image(path)
        check_image_size(image.shape, _worker_model, kwargs.get("upsample", 1))
        return path, image.shape[:2], detect(image, _worker_model, **kwargs)
    except (ValueError, OSError) as exc:
        msg = str(exc)
        if str(path) not in msg:
            exc = ValueError(f"{path}: {msg}")
        return path, None, exc


def detect_files(paths, model, *, n_jobs: int = 1, progress: bool = True, **detect_kwargs):
    """Detect objects in image files.

    Parameters
    ----------
    paths : list of path-like
    model : Model
    n_jobs : int, default 1
        Processes working on images (``-1``: one per core): the calling
        process and ``n_jobs - 1`` worker processes.  Each image is processed
        by one single-threaded process; images are handed out one at a time to
        whichever process is free, so the caller works on images while the
        workers start.
    progress : bool
        Show a progress bar with the time left on stderr.
    **detect_kwargs
        Passed to :func:`dpm.detect`.

    Yields
    ------
    (path, Detections or Exception)
        In input order.  An image that cannot be read yields the exception
        (``ValueError``/``OSError``) instead of stopping the batch.
    """
    paths = [Path(p) for p in paths]
    if n_jobs == -1 or n_jobs == 0:
        n_jobs = os.cpu_count() or 1
    n_jobs = max(1, min(int(n_jobs), len(paths) or 1))
    with progress_bar(total=len(paths), desc="detect", unit="img", enabled=progress) as bar:
        _init_worker(model)
        if n_jobs == 1:
            for p in paths:
                path, _, result = _detect_one(p, detect_kwargs)
                bar.update(1)
                yield path, result
            return
        workers = n_jobs - 1
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"),
                                   initializer=_init_worker, initargs=(model,))
        try:
            yield from _run_shared(pool, workers, paths, detect_kwargs, bar)
        finally:  # on an error, Ctrl+C or an abandoned iteration, drop the queued images
            pool.shutdown(wait=True, cancel_futures=True)


def _run_shared(pool, workers, paths, detect_kwargs, bar):
    # Images go, in order, to the pool (at most two queued per worker) or to this
    # process whenever the next result to yield is not ready yet.
    queued = {}   # index -> future
    mine = {}     # index -> result computed here
    next_index = 0
    emit = 0

    def refill():
        nonlocal next_index
        while next_index < len(paths) and len(queued) < 2 * workers:
            with single_threaded_env():  # workers start during the first submits
                queued[next_index] = pool.submit(_detect_one, paths[next_index], detect_kwargs)
            next_index += 1

    refill()
    while emit < len(paths):
        if emit in mine:
            result = mine.pop(emit)
        elif emit in queued and (queued[emit].done() or next_index >= len(paths)):
            result = queued.pop(emit).result()
            refill()
        else:
            index = next_index
            next_index += 1
            mine[index] = _detect_one(paths[index], detect_kwargs)
            refill()
            continue
        path, _, result = result
        bar.update(1)
        emit += 1
        yield path, result
