"""The examples of a training round, gathered from images.

:class:`ExampleMiner` runs the per-image tasks of :mod:`dpm.training.tasks` on
an executor and appends their examples to a stage's example set in image
order (so the result does not depend on the number of processes):

* warped positives and random negative windows (the ``random`` stage);
* latent positives: the best placement of the model on each box and its mirror;
* hard negatives (``train.m``'s mining round): negative images visited from a
  cursor, round-robin, until the example cache is full.

An image that fails to load is logged once, remembered in
:attr:`ExampleMiner.failed_images` and skipped.
"""
from __future__ import annotations

import logging

from ..execution import Executor, TaskFailed
from ..image import read_image
from ..latent import iter_placements
from ..learn import ExampleSet
from ..model import Model
from .config import TrainConfig
from .tasks import MINING_BURST, LatentTask, MineTask, RandomNegativesTask, hard_negative
from .warp import warp_positives

__all__ = ["ExampleMiner"]

log = logging.getLogger(__name__)


class ExampleMiner:
    """Examples from the training images, computed on ``executor``.

    Parameters
    ----------
    positives : list of Positive
        In training order (1-based indices of the tasks follow it).
    negatives : list of Negative
    config : TrainConfig
    executor : dpm.execution.Executor
    progress : bool
        Progress bars of the executor's maps.

    Attributes
    ----------
    failed_images : set of str
        Paths of the images that failed and were skipped.
    """

    def __init__(self, positives, negatives, config: TrainConfig, executor: Executor, progress: bool = True):
        self.pos, self.neg = positives, negatives
        self.config, self.executor, self.progress = config, executor, progress
        self.failed_images: set = set()

    def note_failure(self, path, err) -> None:
        """Log the failure of the image at ``path`` (once) and remember it."""
        path = str(path)
        if err and path not in self.failed_images:
            self.failed_images.add(path)
            log.warning("skipping an image: %s", err)

    def run_tasks(self, tasks, model, desc):
        """``(task, result)`` in order; a failed image is noted (once) and skipped."""
        for task, result in self.executor.map(tasks, model, desc=desc, progress=self.progress):
            if isinstance(result, TaskFailed):
                self.note_failure(task.path, str(result))
                continue
            yield task, result

    # -- the random stage --------------------------------------------------------------------

    def warped_positives(self, model: Model, positives, examples: ExampleSet) -> int:
        """Append the warped ``positives`` (and their mirrors) of ``model``'s first component; return the count."""
        def load(p):
            try:
                return read_image(p.path)
            except (OSError, ValueError) as exc:
                self.note_failure(p.path, str(exc))
                return None

        n = 0
        for li, blocks in warp_positives(((lambda p=p: load(p), p.box) for p in positives), model, 0):
            examples.append(li, blocks)
            n += 1
        return n

    def random_negatives(self, model: Model, examples: ExampleSet, count: int, seed_of, desc: str) -> None:
        """Append ``count`` random negative windows of each negative image; ``seed_of(j)`` seeds image ``j`` (1-based)."""
        tasks = [RandomNegativesTask(j, str(q.path), count, seed_of(j), 0) for j, q in enumerate(self.neg, start=1)]
        for _, exs in self.run_tasks(tasks, model, desc):
            for li, blocks in exs:
                examples.append(li, blocks)

    # -- latent positives --------------------------------------------------------------------

    def latent_positives(self, model: Model, examples: ExampleSet, desc: str, want_bbox=False):
        """Append the latent placement of every positive and its mirror; return the bbox rows (``want_bbox``)."""
        c = self.config
        mh, mw = model.minsize
        min_area = mh * mw * model.sbin ** 2 * (c.bbox_min_area_factor if want_bbox else 1.0)
        tasks = [LatentTask(i, str(p.path), tuple(float(v) for v in p.box),
                            c.bbox_interval if want_bbox else c.latent_interval,
                            c.bbox_overlap if want_bbox else c.overlap, min_area, want_bbox)
                 for i, p in enumerate(self.pos, start=1)]
        rows, found = [], 0
        for _, (exs, bb) in self.run_tasks(tasks, model, desc):
            for li, blocks in exs:
                examples.append(li, blocks)
            found += len(exs)
            rows.extend(bb)
        log.info("%s: %d latent positives from %d boxes (and their mirrors)", desc, found, len(self.pos))
        return rows

    # -- hard negatives ----------------------------------------------------------------------

    def hard_negatives(self, model: Model, examples: ExampleSet, negatives, cursor: int, cap_bytes: int,
                       desc: str) -> int:
        """Mine from ``negatives`` starting at ``cursor`` until the cap; return the new cursor."""
        c = self.config
        n = len(negatives)
        order = [(cursor + k) % n for k in range(n)]
        per_example = 4 * max(comp.dim(model) for comp in model.components) + 28
        added, stopped_at = 0, None
        chunk = 64
        for start in range(0, n, chunk):
            idx = order[start:start + chunk]
            room = max(0, (cap_bytes - examples.dat_nbytes) // per_example)
            limit = room + 1  # examples one image may give (the original: what its .dat budget allowed)
            tasks = [MineTask(k + 1, str(negatives[k].path), c.mining_interval, c.hard_negative_threshold,
                              min(limit, MINING_BURST)) for k in idx]
            for task, (exs, more) in self.run_tasks(tasks, model, f"{desc} {start // chunk + 1}"):
                j = task.index
                for li, blocks in exs:
                    if examples.dat_nbytes >= cap_bytes:
                        break
                    examples.append(li, blocks)
                    added += 1
                if more and limit > len(exs) and examples.dat_nbytes < cap_bytes:
                    added += self._mine_rest(model, examples, negatives[j - 1].path, j, len(exs), limit, cap_bytes)
                if examples.dat_nbytes >= cap_bytes:
                    stopped_at = j % n  # next image to visit (0-based)
                    break
            if stopped_at is not None:
                break
        log.info("%s: %d hard negatives%s", desc, added,
                 " (cache full)" if stopped_at is not None else f" from {n} images")
        return cursor if stopped_at is None else stopped_at

    def _mine_rest(self, model, examples, path, j, skip, limit, cap_bytes) -> int:
        """The hard negatives of image ``j`` after the first ``skip``, appended as they come."""
        c = self.config
        n = skip
        try:
            image = read_image(path)
            for p in iter_placements(image, model, c.hard_negative_threshold, interval=c.mining_interval,
                                     skip=skip):
                if n >= limit or examples.dat_nbytes >= cap_bytes:
                    break
                examples.append(*hard_negative(j, p))
                n += 1
        except (OSError, ValueError, MemoryError) as exc:
            self.note_failure(path, f"{path}: {exc}")
        return n - skip
