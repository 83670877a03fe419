"""The example cache of a latent stage: started, capped, kept in checkpoints.

A stage's examples live in one :class:`dpm.learn.ExampleSet` (the original
wrote them to ``.dat`` files of at most ``maxsize`` bytes).  Its cap is the
original's rule in bytes (:func:`dpm.training.config.max_examples`); room for
a full cache is allocated once when the stage starts; after a learner call
``keepsv`` keeps the positives and the hardest negatives (:func:`keep_hardest`);
a checkpoint stores the set as plain numpy arrays (:func:`examples_to_arrays`,
:func:`examples_from_arrays`).
"""
from __future__ import annotations

import numpy as np

from ..latent import mround
from ..learn import ExampleSet
from ..model import Model
from .config import StageConfig, max_examples

__all__ = ["new_examples", "cache_capacity", "stage_examples", "keep_hardest", "examples_to_arrays",
           "examples_from_arrays"]


def new_examples(model: Model) -> ExampleSet:
    """An empty example set laid out for ``model``'s blocks."""
    return ExampleSet(block_sizes=[b.size for b in model.blocks])


def cache_capacity(model: Model, stage: StageConfig) -> int:
    """``maxnum``: the examples of ``model``'s largest component that fit in the stage's cap."""
    return max_examples(stage.cache_bytes, max(comp.dim(model) for comp in model.components))


def stage_examples(model: Model, stage: StageConfig, examples: ExampleSet | None, start_iteration: int,
                   positives: int) -> ExampleSet:
    """The example set a latent stage starts from, with room for a full cache.

    A stage that does not continue the cache (``stage.cont``) starts empty --
    unless it resumes after one of its own iterations: then it goes on with
    the checkpointed ``examples``, exactly as the uninterrupted run did.
    ``positives`` is the number of positive boxes (each gives up to two
    examples: the box and its mirror).
    """
    if examples is None or (not stage.cont and start_iteration == 0):
        examples = new_examples(model)
    else:
        examples.block_sizes = np.array([b.size for b in model.blocks])
    # room for a full cache (plus the positives and one example past the cap),
    # allocated once: growing a buffer would hold two copies for a moment
    maxdim = max(comp.dim(model) for comp in model.components)
    most = cache_capacity(model, stage) + 2 * positives + 1
    blocks_per_example = max(2 + 2 * len(comp.parts) for comp in model.components)
    examples.reserve(most, most * blocks_per_example, stage.cache_bytes // 4 + maxdim)
    return examples


def keep_hardest(examples: ExampleSet, res, maxnum: int) -> ExampleSet:
    """``keepsv``: keep the positives and the round(maxnum/2) highest-scoring unique negatives.

    ``res`` is the learner's result on ``examples`` (its ``scores`` and ``unique``).
    """
    labels = examples.labels
    pos = np.flatnonzero(labels == 1)
    negs = np.flatnonzero((labels == -1) & res.unique)
    order = np.argsort(-res.scores[negs], kind="stable")
    keep = negs[order[: int(mround(maxnum / 2))]]
    examples.keep(np.concatenate([pos, keep]))
    return examples


def examples_to_arrays(ex: ExampleSet) -> dict:
    """The arrays of an example set, by name, for :meth:`dpm.training.CheckpointStore.save`."""
    return {"label_ints": ex.label_ints, "example_ptr": ex.example_ptr, "block_ids": ex.block_ids,
            "block_ptr": ex.block_ptr, "data": ex.data}


def examples_from_arrays(arrays: dict, model: Model) -> ExampleSet:
    """The example set :func:`examples_to_arrays` saved, laid out for ``model``'s blocks (not copied)."""
    return ExampleSet.from_arrays(arrays["label_ints"], arrays["example_ptr"], arrays["block_ids"],
                                  arrays["block_ptr"], arrays["data"], block_sizes=[b.size for b in model.blocks],
                                  validate=False, copy=False)
