"""``--draw OUTDIR``: one drawing per input image, never two inputs on one file.

Naming rule (stable: it depends only on the list of inputs, in order, not on
which images fail): an image's drawing is ``<stem>.png``; when an earlier
input already took that name (``a/x.jpg`` then ``b/x.jpg``, or ``x.jpg`` then
``x.png``), the next free of ``<stem>-2.png``, ``<stem>-3.png``, ...  Names
are compared without case, so the rule also holds on case-insensitive file
systems (``X.jpg`` and ``x.jpg`` give ``X.png`` and ``x-2.png``).  Every
drawing is written atomically (:func:`dpm.vis.save_detections_image`).
"""
from __future__ import annotations

from pathlib import Path

__all__ = ["drawing_names", "Drawings"]


def drawing_names(paths, suffix: str = ".png") -> list[str]:
    """File names of the drawings of ``paths``, in order, all different (see the module docstring)."""
    taken, names = set(), []
    for p in paths:
        stem = Path(p).stem
        name, k = stem + suffix, 1
        while name.casefold() in taken:
            k += 1
            name = f"{stem}-{k}{suffix}"
        taken.add(name.casefold())
        names.append(name)
    return names


class Drawings:
    """Draw each image's detections into ``folder`` under the names of :func:`drawing_names`.

    ``folder`` is created if needed.  ``parts=True`` draws the part boxes too.
    """

    def __init__(self, folder, paths, *, parts: bool = False):
        from ..vis import save_detections_image  # noqa: F401  (fail early if drawing is unavailable)

        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.parts = parts
        self._names = {}
        for p, name in zip(paths, drawing_names(paths)):
            self._names.setdefault(str(p), []).append(name)
        self._used = {}

    def target(self, path) -> Path:
        """The drawing file of the next occurrence of ``path`` in the input list."""
        names = self._names[str(path)]
        k = self._used.get(str(path), 0)
        self._used[str(path)] = k + 1
        return self.folder / names[min(k, len(names) - 1)]

    def draw(self, path, detections) -> Path:
        """Read ``path`` again and save it with ``detections`` drawn; returns the drawing's path."""
        from ..image import read_image
        from ..vis import save_detections_image

        return save_detections_image(self.target(path), read_image(path), detections, parts=self.parts)
