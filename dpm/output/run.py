"""Write a batch of per-image results: every image written or listed, none lost to another."""
from __future__ import annotations

import logging
__all__ = ["write_batch"]

log = logging.getLogger(__name__)


def write_batch(results, writer, *, image_ids=None, drawings=None, on_result=None):
    """Write ``(path, Detections or exception)`` pairs (as :func:`dpm.detection.batch.detect_files` yields them).

    Parameters
    ----------
    results : iterable of (path, Detections or BaseException)
    writer : ResultsWriter
        Entered (``with``); each image is written or listed as failed in it.
    image_ids : sequence of str, optional
        The image id of each result, in order (default: from the path, by the format).
    drawings : Drawings, optional
        Also draw each written image.  A drawing that cannot be made (a full
        disk, say) is listed as that image's failure; its results stay written.
    on_result : callable, optional
        ``on_result(path, image_id, detections)`` for every written image.

    Returns
    -------
    RunStatus
        ``writer.status``: counts and the ``(image, message)`` failures.
    """
    ids = iter(image_ids) if image_ids is not None else None
    for path, result in results:
        image_id = next(ids) if ids is not None else None
        if not writer.add(path, result, image_id=image_id):
            log.info("failed: %s", writer.last_failure)
            continue
        if on_result is not None:
            on_result(path, image_id, result)
        if drawings is not None:
            try:
                drawings.draw(path, result)
            except (ValueError, OSError) as exc:
                writer.status.add_failure(path, f"{path}: drawing not saved: {' '.join(str(exc).split())}")
    return writer.status

