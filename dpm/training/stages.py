"""The stages of the training schedule, one method each: ``random``, a latent stage, ``bbox``.

:class:`Trainer` holds what every stage uses: the learner call (seeded from
the run's seed and the stage, iteration and round, so a resumed run gives the
same model), the :class:`~dpm.training.mining.ExampleMiner` that gathers the
examples, and the :class:`TrainingSummary` of the run.  Which stage runs when,
with which :class:`~dpm.training.config.StageConfig` and which checkpoints, is
:mod:`dpm.training.schedule`'s business.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np

from ..cascade.build import build_cascade
from ..execution import Executor
from ..learn import ExampleSet, fit_lsvm
from ..model import Model, model_from_blocks
from ..progress import progress_bar
from .bbox import fit_model_regressors, scale_boxes
from .config import StageConfig, TrainConfig, random_negatives_per_image
from .examples import cache_capacity, keep_hardest, new_examples, stage_examples
from .init import initmodel, split
from .mining import ExampleMiner

__all__ = ["Trainer", "TrainingSummary"]

log = logging.getLogger(__name__)


@dataclass
class TrainingSummary:
    """What a training run did: per-stage seconds, examples, objectives."""

    stages: list = field(default_factory=list)  # dicts: name, seconds, examples, objective, kept, resumed

    def add(self, **row):
        self.stages.append(row)

    def format(self) -> str:
        lines = [f"{'stage':8s} {'time':>8s} {'examples':>9s} {'objective':>10s} {'SV kept':>8s}"]
        for r in self.stages:
            t = "resumed" if r.get("resumed") else f"{r.get('seconds', 0):7.1f}s"
            obj = r.get("objective")
            lines.append(f"{r['name']:8s} {t:>8s} {r.get('examples', 0):9d} "
                         f"{'' if obj is None else f'{obj:10.5f}':>10s} {r.get('kept', 0):8d}")
        return "\n".join(lines)


class Trainer:
    """The stages of one training run.

    Parameters
    ----------
    positives, negatives : list
        Positives (clipped to their images) and negative images, in training order.
    config : TrainConfig
    seed : int
        The run's seed; every learner call and random choice derives from it.
    executor : dpm.execution.Executor
        Runs the per-image tasks.
    max_updates : int
        SGD updates per learner call.
    summary : TrainingSummary
        Receives a row per component of the ``random`` stage.
    progress : bool
        Progress bars on stderr.
    """

    def __init__(self, positives, negatives, config: TrainConfig, seed: int, executor: Executor,
                 max_updates: int, summary: TrainingSummary, progress: bool = True):
        self.pos, self.neg = positives, negatives
        self.config, self.seed = config, int(seed)
        self.progress = progress
        self.max_updates = int(max_updates)
        self.summary = summary
        self.miner = ExampleMiner(positives, negatives, config, executor, progress)
        self.bbox_examples = 0

    @property
    def failed_images(self) -> set:
        """Paths of the images that failed and were skipped."""
        return self.miner.failed_images

    # -- the learner ---------------------------------------------------------------------

    def learner_seed(self, *path) -> int:
        return int(np.random.SeedSequence([self.seed, *path]).generate_state(1, np.uint64)[0])

    def learn(self, model: Model, examples: ExampleSet, C: float, J: float, seed_path, desc: str):
        with progress_bar(total=self.max_updates, desc=desc, unit="upd", enabled=self.progress) as bar:
            done = [0]

            def report(n, total):
                bar.update(max(0, min(n, total) - done[0]))
                done[0] = min(n, total)

            res = fit_lsvm(examples, model.blocks, C, J, seed=self.learner_seed(*seed_path),
                           max_updates=self.max_updates, progress=report)
        model = model_from_blocks(model, res.blocks())
        labels = examples.labels
        pos_scores = np.sort(res.scores[(labels == 1) & res.unique])
        if pos_scores.size:  # train.m: the ceil(0.05 P)-th smallest unique positive score
            model.thresh = float(pos_scores[max(0, math.ceil(pos_scores.size * self.config.thresh_percentile) - 1)])
        log.info("%s: %d examples (%d positive), objective %.5f (reg %.5f, pos %.5f, neg %.5f), %.1f s",
                 desc, len(examples), int((labels == 1).sum()), res.objective, res.regularizer, res.loss_pos,
                 res.loss_neg, res.seconds)
        return model, res

    # -- stages --------------------------------------------------------------------------

    def stage_random(self, ncomp: int) -> list[Model]:
        """``random``: per component, ``initmodel``, warped positives + random negatives, one learner call."""
        c = self.config
        stage = c.schedule()[0]
        groups = split([p.box for p in self.pos], ncomp)
        if any(g.size == 0 for g in groups):
            groups = split([p.box for p in self.pos], ncomp, balance_ties=True)
            log.warning("the aspect-ratio split leaves a component without positives (many boxes share one "
                        "aspect ratio): cutting the positives ranked by aspect ratio into %d equal groups "
                        "instead", ncomp)
            if any(g.size == 0 for g in groups):
                raise ValueError(f"{len(self.pos)} positive(s) cannot make {ncomp} components")
        models = []
        for ci, idx in enumerate(groups):
            t0 = time.perf_counter()
            spos = [self.pos[k] for k in idx]
            model = initmodel([p.box for p in spos], config=c)
            ex = new_examples(model)
            npos = self.miner.warped_positives(model, spos, ex)
            n = random_negatives_per_image(stage.cache_bytes, model.components[0].dim(model), npos, len(self.neg))
            self.miner.random_negatives(model, ex, n, lambda j, ci=ci: self.learner_seed(0, ci, 1, j),
                                        f"random negatives c{ci + 1}")
            log.info("component %d: root %dx%d, %d warped positives, %d random negatives (%d per image)",
                     ci + 1, *model.components[0].root_size, npos, len(ex) - npos, n)
            model, res = self.learn(model, ex, stage.C(1), stage.J, (0, ci), f"learn random c{ci + 1}")
            models.append(model)
            self.summary.add(name=f"random{ci + 1}", seconds=time.perf_counter() - t0, examples=len(ex),
                             objective=res.objective, kept=0)
        return models

    def run_stage(self, si: int, stage: StageConfig, model: Model, examples: ExampleSet | None, cursor: int,
                  on_iteration=None, start_iteration: int = 0):
        """``train.m`` with latent positives and hard negatives: stage ``si`` of the schedule.

        Returns ``(model, examples, cursor, last learner result)``; ``on_iteration(t, model,
        examples, cursor, result)`` is called after each iteration ``t`` (0-based).
        """
        ncomp = len(model.components)
        maxnum = cache_capacity(model, stage)
        negatives = self.neg if stage.num_negatives is None else self.neg[: stage.num_negatives]
        examples = stage_examples(model, stage, examples, start_iteration, len(self.pos))
        res = None
        for t in range(start_iteration, stage.iterations):
            examples.keep(examples.labels == -1)
            self.miner.latent_positives(model, examples, f"{stage.name} {t + 1}/{stage.iterations} positives")
            for tn in range(stage.negative_iterations):
                cursor = self.miner.hard_negatives(model, examples, negatives, cursor, stage.cache_bytes,
                                                   f"{stage.name} {t + 1}.{tn + 1} mining")
                model, res = self.learn(model, examples, stage.C(ncomp), stage.J, (si, t, tn),
                                        f"learn {stage.name} {t + 1}.{tn + 1}")
                if stage.keep_support_vectors:
                    examples = keep_hardest(examples, res, maxnum)
            if on_iteration is not None:
                on_iteration(t, model, examples, cursor, res)
        return model, examples, cursor, res

    def stage_cascade(self, model: Model) -> Model:
        """The trained model with a star-cascade from the training positives (release 4/5's
        ``cascade_data.m`` + ``cascade_model.m``, :func:`dpm.build_cascade`); the model alone,
        with a warning, when no cascade can be built (e.g. no positive scores above the threshold)."""
        try:
            return build_cascade(model, self.pos, executor=self.miner.executor, progress=self.progress)
        except ValueError as exc:
            log.warning("the model gets no star-cascade: %s", exc)
            return model

    def stage_bbox(self, model: Model) -> Model:
        """``bbox``: bounding-box regression (``trainbox.m``) on the latent detections of the positives."""
        rows = self.miner.latent_positives(model, new_examples(model), "bbox latent detections", want_bbox=True)
        self.bbox_examples = len(rows)
        if not rows:
            log.warning("bounding-box regression: no latent detections; the model keeps its root boxes")
            return model
        comps = np.array([r[0] for r in rows])
        A = np.array([r[1] for r in rows])
        targets = scale_boxes(np.array([r[2] for r in rows], dtype=np.float64), *self.config.box_scale)
        log.info("bounding-box regression on %d latent detections", len(rows))
        return fit_model_regressors(model, comps, A, targets,
                                    translation_invariant=self.config.bbox_translation_invariant)
