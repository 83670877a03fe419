"""Detection over many image files, in parallel processes, with a progress bar."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from ..execution import make_executor, resolve_jobs
from ..image import read_image
from ..model import Model
from .multiclass import as_model_dict, detect
from .single import check_image_size

__all__ = ["IMAGE_EXTENSIONS", "list_images", "read_image_list", "detect_files", "DetectTask"]

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".ppm", ".pgm", ".pbm",
                    ".webp"}


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


def read_image_list(source):
    """Yield the image paths listed in ``source``, one per line, as the caller asks for them.

    ``source`` is a file name, ``"-"`` (standard input) or an open text file.
    Lines end at ``\n`` (a ``\r`` before it is dropped); blank lines are
    skipped; nothing else is changed (spaces are part of a name).  Paths are
    not checked here: one that cannot be read fails as that image.

    Raises
    ------
    FileNotFoundError
        ``source`` does not exist (when the first path is asked for).
    """
    import sys

    if source == "-":
        fh, own = sys.stdin, False
    elif hasattr(source, "read"):
        fh, own = source, False
    else:
        fh, own = open(source, encoding="utf-8", errors="surrogateescape", newline="\n"), True
    try:
        for line in fh:
            line = line[:-1] if line.endswith("\n") else line
            line = line[:-1] if line.endswith("\r") else line
            if line.strip():
                yield line
    finally:
        if own:
            fh.close()


@dataclass(frozen=True)
class DetectTask:
    """Detect objects in one image file (a task of :mod:`dpm.execution`)."""

    path: Path
    options: tuple  # (name, value) pairs passed to dpm.detect

    @property
    def label(self) -> str:
        return str(self.path)

    def run(self, model):
        kwargs = dict(self.options)
        image = read_image(self.path)
        check_image_sizes(image.shape, model, kwargs.get("upsample", 1))
        return detect(image, model, **kwargs)


def check_image_sizes(shape, models, upsample: int = 1) -> None:
    """:func:`dpm.detection.single.check_image_size` for one model or several: raise only if no model fits."""
    models = [models] if isinstance(models, Model) else list(as_model_dict(models).values())
    errors = []
    for m in models:
        try:
            check_image_size(shape, m, upsample)
            return
        except ValueError as exc:
            errors.append(exc)
    raise errors[0]


def detect_files(paths, model, *, n_jobs: int = 1, progress: bool = True, executor=None, total: int | None = None,
                 **detect_kwargs):
    """Detect objects in image files.

    Parameters
    ----------
    paths : iterable of path-like
        Read lazily: a long stream of paths costs memory for the images in
        flight only.
    model : Model, or several (a tuple of Models or a ``{class: Model}`` dict)
        Several models: each result is a dict of class name to Detections
        (:func:`dpm.detection.detect`, one feature pyramid per image).
    n_jobs : int, default 1
        Processes working on images (``-1``: one per core): the calling
        process and ``n_jobs - 1`` worker processes (:mod:`dpm.execution`).
        Each image is processed by one single-threaded process.
    progress : bool
        Show a progress bar with the time left on stderr.
    executor : optional
        Run on this executor instead (it is not closed): a
        :class:`dpm.execution.Executor`, a ``distributed.Client`` or any
        ``concurrent.futures.Executor`` (see :func:`dpm.execution.make_executor`).
    total : int, optional
        How many paths ``paths`` yields, when it is an iterator (default:
        ``len(paths)`` if it has one): the progress bar's total and time left.
    **detect_kwargs
        Passed to :func:`dpm.detect`.

    Yields
    ------
    (path, Detections or TaskFailed)
        In input order.  An image that fails for any reason (unreadable,
        too small, out of memory, its worker process died) yields a
        :class:`dpm.execution.TaskFailed` (an ``Exception`` whose message is
        one line naming the image) instead of stopping the batch.
    """
    options = tuple(sorted(detect_kwargs.items()))
    tasks = (DetectTask(Path(p), options) for p in paths)
    if total is None and hasattr(paths, "__len__"):
        total = len(paths)
    elif total is not None and (isinstance(total, bool) or not isinstance(total, int) or total < 0):
        raise ValueError(f"total must be a non-negative integer or None, got {total!r}")
    if executor is None:
        n = resolve_jobs(n_jobs)
        if total is not None:
            n = max(1, min(n, total))
        own = ex = make_executor(n)
    else:
        own, ex = None, make_executor(executor=executor)
    try:
        for task, result in ex.map(tasks, model, desc="detect", unit="img", total=total, progress=progress):
            yield task.path, result
    finally:
        if own is not None:
            own.close()
