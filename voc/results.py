"""The VOC devkit's detection results files.

One line per detection, fields separated by spaces::

    <image_id> <score> <x1> <y1> <x2> <y2>

with 1-based inclusive pixel coordinates (voc-release3.1 ``pascal_eval.m``,
spec §1.15; the file is named ``comp3_det_<split>_<class>.txt``).
``pascal_eval.m`` writes with ``%d``-style formats, which MATLAB silently turns
into exponent notation for non-integers; here every number is written with
the shortest text that reads back to the same float64 (integers without a
decimal point), so nothing is lost.

Writing goes through :class:`dpm.output.ResultsWriter`, the one writer of
every results format (``voc`` may use ``dpm``; ``dpm`` never uses ``voc``).
Image ids cannot contain whitespace (the format has no quoting the devkit
could read back): such ids are refused.  A file an interrupted run left
behind ends with a ``# partial: ...`` line; :func:`read_results` refuses it
unless asked.
"""
from __future__ import annotations

import logging
import math
import re
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


def _flatten(detections):
    """(image_ids, scores (N,), boxes (N, 4)) from Results, a mapping or a tuple."""
    from .evaluate import flatten_detections

    return flatten_detections(detections)


def write_results(path, detections) -> int:
    """Write a devkit results file.

    A thin use of :class:`dpm.output.ResultsWriter` (format ``"voc"``), the
    writer of every results file: numbers as the shortest text that reads
    back to the same float64, written atomically (a temporary sibling renamed
    into place; the previous file is kept if anything fails).  No lock file
    is taken (``dpm-detect -o`` and ``dpm-eval`` take one).

    Parameters
    ----------
    path : str or Path
        Output file (its folder must exist).
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
        Image ids containing whitespace, non-finite values, mismatched lengths
        (checked before anything is written).
    """
    from dpm.output import ResultsWriter, check_voc_image_id

    ids, scores, boxes = _flatten(detections)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if not (len(ids) == scores.size == boxes.shape[0]):
        raise ValueError(f"write_results: {len(ids)} image ids, {scores.size} scores and "
                         f"{boxes.shape[0]} boxes")
    if not (np.isfinite(scores).all() and np.isfinite(boxes).all()):
        raise ValueError("write_results: scores and boxes must be finite")
    ids = [str(i) for i in ids]
    for image_id in ids:
        check_voc_image_id(image_id)
    with ResultsWriter(path, "voc", lock=False, partial=False) as out:
        start = 0
        for end in range(1, len(ids) + 1):       # runs of one image id, in file order
            if end == len(ids) or ids[end] != ids[start]:
                out.write(ids[start], _Rows(scores[start:end], boxes[start:end]), image_id=ids[start])
                start = end
    logger.debug("wrote %d detections to %s", len(ids), path)
    return len(ids)


class _Rows:
    def __init__(self, scores, boxes):
        self.scores, self.boxes = scores, boxes


# A number as the devkit's MATLAB reader takes it: ASCII decimal, optional exponent, or
# NaN/Inf (refused afterwards as not finite).  Python's float() alone would also take
# '1_000' and non-ASCII digits.
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?(?:nan|inf|infinity)",
                     re.ASCII | re.IGNORECASE)


def _short(text, limit=40):
    return repr(text if len(text) <= limit else text[:limit] + "...")


def read_results(path, *, image_ids=None, allow_partial: bool = False) -> Results:
    """Read a devkit results file.

    Parameters
    ----------
    path : str or Path
    image_ids : iterable of str, optional
        The image set the file is meant for (e.g. ``dataset.image_ids('test')``).
        A detection on any other image is an error, like the devkit's
        "unrecognized image".
    allow_partial : bool, default False
        Read a file an interrupted run left marked partial (its last line
        ``# partial: ...``, see docs/output.md) instead of refusing it.

    Returns
    -------
    Results
        In file order. Blank lines are skipped.

    Raises
    ------
    ValueError
        One line with the file name and line number (lines are counted at
        ``\\n``): not UTF-8 text, wrong number of fields, a field that is not
        a finite decimal number, a box with ``x2 < x1`` or ``y2 < y1``, an
        image id outside ``image_ids``, a partial file (unless
        ``allow_partial``).
    """
    from dpm.output import PARTIAL_MARK

    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ValueError(f"{path}: results file not found") from None
    except IsADirectoryError:
        raise ValueError(f"{path}: is a folder, not a results file") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot read results file: {exc.strerror or exc}") from None
    allowed = None if image_ids is None else set(image_ids)
    ids, values = [], []
    for lineno, raw in enumerate(data.split(b"\n"), start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"{path}:{lineno}: not UTF-8 text (is this a results file?)") from None
        if line.startswith(PARTIAL_MARK):
            note = " ".join(line.split())
            if not allow_partial:
                raise ValueError(f"{path}:{lineno}: the file is marked partial ({note}): the run "
                                 "that wrote it stopped early; run it again, or read it with "
                                 "allow_partial=True")
            logger.warning("%s:%d: %s", path, lineno, note)
            continue
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 6:
            raise ValueError(f"{path}:{lineno}: expected 6 fields 'image_id score x1 y1 x2 y2', "
                             f"got {len(fields)}")
        bad = next((v for v in fields[1:] if not _NUMBER.fullmatch(v)), None)
        if bad is not None:
            raise ValueError(f"{path}:{lineno}: {_short(bad)} is not a number")
        row = [float(v) for v in fields[1:]]
        if not all(math.isfinite(v) for v in row):
            raise ValueError(f"{path}:{lineno}: score and coordinates must be finite numbers")
        s, x1, y1, x2, y2 = row
        if x2 < x1 or y2 < y1:
            raise ValueError(f"{path}:{lineno}: box [{fields[2]} {fields[3]} {fields[4]} "
                             f"{fields[5]}] has x2 < x1 or y2 < y1")
        if allowed is not None and fields[0] not in allowed:
            raise ValueError(f"{path}:{lineno}: image id {_short(fields[0])} is not in the image set "
                             f"({len(allowed)} images)")
        ids.append(fields[0])
        values.append(row)
    arr = np.array(values, dtype=np.float64).reshape(-1, 5)
    logger.debug("read %d detections from %s", len(ids), path)
    return Results(ids, arr[:, 0].copy(), arr[:, 1:].copy())
