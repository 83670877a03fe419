"""The VOC devkit's detection results files.

One line per detection, fields separated by spaces::

    <image_id> <score> <x1> <y1> <x2> <y2>

with 1-based inclusive pixel coordinates (voc-release3.1 ``pascal_eval.m``,
spec §1.15; the file is named ``comp3_det_<split>_<class>.txt``).
``pascal_eval.m`` writes with ``%d``-style formats, which MATLAB silently turns
into exponent notation for non-integers; here every number is written with
the shortest text that reads back to the same float64 (integers without a
decimal point), so nothing is lost.
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Results", "read_results", "write_results", "results_filename"]

logger = logging.getLogger(__name__)


def results_filename(split: str, cls: str, competition: str = "comp3") -> str:
    """The devkit's results file name, ``comp3_det_<split>_<cls>.txt``.

    ``comp3`` is the competition "trained on VOC data only", the one
    voc-release3.1 enters.
    """
    return f"{competition}_det_{split}_{cls}.txt"


@dataclass(frozen=True, eq=False)
class Results:
    """Detections of one class over many images, as parallel arrays.

    Attributes
    ----------
    image_ids : list of str
        Image of each detection.
    scores : (N,) float64 ndarray
    boxes : (N, 4) float64 ndarray
        ``[x1 y1 x2 y2]``, 1-based inclusive.
    """

    image_ids: list
    scores: np.ndarray
    boxes: np.ndarray

    def __len__(self):
        return len(self.image_ids)

    def by_image(self) -> dict:
        """``{image_id: (N_i, 5) float64 array [x1 y1 x2 y2 score]}`` in first-seen order."""
        groups: dict[str, list[int]] = {}
        for k, image_id in enumerate(self.image_ids):
            groups.setdefault(image_id, []).append(k)
        return {i: np.column_stack([self.boxes[idx], self.scores[idx]]) for i, idx in groups.items()}


def _fmt(x: float) -> str:
    """Shortest round-trip text of a float; integers without '.0'."""
    if x.is_integer() and abs(x) < 2 ** 53:
        return str(int(x))
    return repr(x)


def _flatten(detections):
    """(image_ids, scores (N,), boxes (N, 4)) from Results, a mapping or a tuple."""
    from .evaluate import _flatten_detections

    return _flatten_detections(detections)


def write_results(path, detections) -> int:
    """Write a devkit results file.

    Parameters
    ----------
    path : str or Path
        Output file (its folder must exist). Written atomically: first to a
        temporary file next to it, then renamed.
    detections : Results, mapping or tuple
        ``Results``; ``{image_id: dets}`` with ``dets`` an object with
        ``.boxes`` (N, 4) and ``.scores`` (N,) or an (N, 5) array
        ``[x1 y1 x2 y2 score]``; or ``(image_ids, scores, boxes)``.
        Boxes are 1-based inclusive.

    Returns
    -------
    int
        Number of lines written.

    Raises
    ------
    ValueError
        Image ids containing whitespace, non-finite values, mismatched lengths.
    """
    ids, scores, boxes = _flatten(detections)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if not (len(ids) == scores.size == boxes.shape[0]):
        raise ValueError(f"write_results: {len(ids)} image ids, {scores.size} scores and "
                         f"{boxes.shape[0]} boxes")
    if not (np.isfinite(scores).all() and np.isfinite(boxes).all()):
        raise ValueError("write_results: scores and boxes must be finite")
    lines = []
    for image_id, s, b in zip(ids, scores.tolist(), boxes.tolist()):
        image_id = str(image_id)
        if not image_id or any(c.isspace() for c in image_id):
            raise ValueError(f"write_results: image id {image_id!r} is empty or contains whitespace")
        lines.append(f"{image_id} {_fmt(s)} {_fmt(b[0])} {_fmt(b[1])} {_fmt(b[2])} {_fmt(b[3])}\n")
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "w") as f:
        f.writelines(lines)
    os.replace(tmp, path)
    logger.debug("wrote %d detections to %s", len(lines), path)
    return len(lines)


def read_results(path, *, image_ids=None) -> Results:
    """Read a devkit results file.

    Parameters
    ----------
    path : str or Path
    image_ids : iterable of str, optional
        The image set the file is meant for (e.g. ``dataset.image_ids('test')``).
        A detection on any other image is an error, like the devkit's
        "unrecognized image".

    Returns
    -------
    Results
        In file order. Blank lines are skipped.

    Raises
    ------
    ValueError
        One line with the file name and line number: wrong number of fields,
        a field that is not a finite number, a box with ``x2 < x1`` or
        ``y2 < y1``, an image id outside ``image_ids``.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ValueError(f"{path}: results file not found") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text file") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot read results file: {exc.strerror or exc}") from None
    allowed = None if image_ids is None else set(image_ids)
    ids, values = [], []
    for lineno, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 6:
            raise ValueError(f"{path}:{lineno}: expected 6 fields 'image_id score x1 y1 x2 y2', "
                             f"got {len(fields)}")
        try:
            row = [float(v) for v in fields[1:]]
        except ValueError:
            bad = next(v for v in fields[1:] if not _is_float(v))
            raise ValueError(f"{path}:{lineno}: {bad!r} is not a number") from None
        if not all(math.isfinite(v) for v in row):
            raise ValueError(f"{path}:{lineno}: score and coordinates must be finite numbers")
        s, x1, y1, x2, y2 = row
        if x2 < x1 or y2 < y1:
            raise ValueError(f"{path}:{lineno}: box [{fields[2]} {fields[3]} {fields[4]} "
                             f"{fields[5]}] has x2 < x1 or y2 < y1")
        if allowed is not None and fields[0] not in allowed:
            raise ValueError(f"{path}:{lineno}: image id {fields[0]!r} is not in the image set "
                             f"({len(allowed)} images)")
        ids.append(fields[0])
        values.append(row)
    arr = np.array(values, dtype=np.float64).reshape(-1, 5)
    logger.debug("read %d detections from %s", len(ids), path)
    return Results(ids, arr[:, 0].copy(), arr[:, 1:].copy())


def _is_float(text):
    try:
        float(text)
    except ValueError:
        return False
    return True
