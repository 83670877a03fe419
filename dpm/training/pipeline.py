"""The voc-release3.1 training schedule (``pascal_train.m`` + ``train.m``), resumable and multi-core.

Stages (spec §1.11), each ending with an atomic checkpoint:

``random``   per component: ``initmodel`` on its aspect-ratio split, warped
             positives + random negative windows, one learner call;
``hard``     merged model: latent positives + hard negatives of 200 images,
             2 iterations x 2 mining rounds, keeping the hardest negatives;
``parts``    ``addparts`` (6 per component), 1 x 4 rounds;
``parts2``   6 x 2 rounds, continuing the example cache;
``mine``     all negative images, 1 x 3 rounds, C = 0.003 nc, J = 2;
``bbox``     bounding-box regression (``trainbox.m``).

Departures from the original, on purpose: examples live in memory (caps in
bytes replace the ``.dat`` size budgets); every learner call is seeded from
the run's seed, the stage and the round, so a run is reproducible and a
resumed run gives the same model; latent search and mining run in parallel
processes with results merged in image order, so the result does not depend
on the number of processes.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..execution import Executor, TaskFailed, make_executor, resolve_jobs
from ..image import read_image
from ..latent import iter_placements, mround
from ..learn import ExampleSet, fit_lsvm
from ..model import Model, model_from_blocks, save_model
from ..progress import progress_bar
from .bbox import fit_model_regressors
from .checkpoint import CheckpointStore, checkpoint_lock
from .data import TrainingData, clip_to_images
from .config import StageConfig, TrainConfig, max_examples, random_negatives_per_image
from .init import initmodel, split
from .merge import mergemodels
from .parts import addparts
from .tasks import MINING_BURST, LatentTask, MineTask, RandomNegativesTask, croppos, hard_negative
from .warp import warp_positives

__all__ = ["train", "TrainingSummary", "croppos", "scale_boxes"]

log = logging.getLogger(__name__)

CHECKPOINT_VERSION = 1


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


def scale_boxes(boxes, width_scale: float = 1.0, height_scale: float = 1.0) -> np.ndarray:
    """Boxes shrunk (or grown) about their centres: ``(N, 4)`` 1-based inclusive boxes.

    Width ``x2 - x1 + 1`` becomes ``width_scale`` times as large, likewise the
    height; the centre ``((x1 + x2) / 2, (y1 + y2) / 2)`` stays.
    """
    b = np.array(boxes, dtype=np.float64, copy=True).reshape(-1, 4)
    if width_scale == 1.0 and height_scale == 1.0:
        return b
    for lo, hi, f in ((0, 2, width_scale), (1, 3, height_scale)):
        c = (b[:, lo] + b[:, hi]) / 2
        half = (f * (b[:, hi] - b[:, lo] + 1) - 1) / 2
        b[:, lo], b[:, hi] = c - half, c + half
    return b



# --------------------------------------------------------------------------------------------
# The stages
# --------------------------------------------------------------------------------------------

class _Trainer:
    def __init__(self, cls, positives, negatives, config: TrainConfig, seed: int, executor: Executor,
                 max_updates: int, summary: TrainingSummary, progress: bool = True):
        self.cls = cls
        self.pos, self.neg = positives, negatives
        self.config, self.seed, self.executor = config, int(seed), executor
        self.progress = progress
        self.max_updates = int(max_updates)
        self.summary = summary
        self.failed_images: set = set()
        self.bbox_examples = 0

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

    # -- examples ------------------------------------------------------------------------

    def _note_failure(self, path, err):
        path = str(path)
        if err and path not in self.failed_images:
            self.failed_images.add(path)
            log.warning("skipping an image: %s", err)

    def run_tasks(self, tasks, model, desc):
        """``(task, result)`` in order; a failed image is noted (once) and skipped."""
        for task, result in self.executor.map(tasks, model, desc=desc, progress=self.progress):
            if isinstance(result, TaskFailed):
                self._note_failure(task.path, str(result))
                continue
            yield task, result

    def latent_positives(self, model: Model, examples: ExampleSet, desc: str, want_bbox=False):
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
            self._note_failure(path, f"{path}: {exc}")
        return n - skip

    def keep_hardest(self, examples: ExampleSet, res, maxnum: int) -> ExampleSet:
        """``keepsv``: keep the positives and the round(maxnum/2) highest-scoring unique negatives."""
        labels = examples.labels
        pos = np.flatnonzero(labels == 1)
        negs = np.flatnonzero((labels == -1) & res.unique)
        order = np.argsort(-res.scores[negs], kind="stable")
        keep = negs[order[: int(mround(maxnum / 2))]]
        examples.keep(np.concatenate([pos, keep]))
        return examples

    # -- stages --------------------------------------------------------------------------

    def stage_random(self, ncomp: int) -> list[Model]:
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
            ex = ExampleSet(block_sizes=[b.size for b in model.blocks])
            npos = 0
            def load(p):
                try:
                    return read_image(p.path)
                except (OSError, ValueError) as exc:
                    self._note_failure(p.path, str(exc))
                    return None

            for li, blocks in warp_positives(((lambda p=p: load(p), p.box) for p in spos), model, 0):
                ex.append(li, blocks)
                npos += 1
            n = random_negatives_per_image(stage.cache_bytes, model.components[0].dim(model), npos, len(self.neg))
            tasks = [RandomNegativesTask(j, str(q.path), n, self.learner_seed(0, ci, 1, j), 0)
                     for j, q in enumerate(self.neg, start=1)]
            for _, exs in self.run_tasks(tasks, model, f"random negatives c{ci + 1}"):
                for li, blocks in exs:
                    ex.append(li, blocks)
            log.info("component %d: root %dx%d, %d warped positives, %d random negatives (%d per image)",
                     ci + 1, *model.components[0].root_size, npos, len(ex) - npos, n)
            model, res = self.learn(model, ex, stage.C(1), stage.J, (0, ci), f"learn random c{ci + 1}")
            models.append(model)
            self.summary.add(name=f"random{ci + 1}", seconds=time.perf_counter() - t0, examples=len(ex),
                             objective=res.objective, kept=0)
        return models

    def run_stage(self, si: int, stage: StageConfig, model: Model, examples: ExampleSet | None, cursor: int,
                  on_iteration=None, start_iteration: int = 0):
        """``train.m`` with latent positives and hard negatives."""
        ncomp = len(model.components)
        maxdim = max(comp.dim(model) for comp in model.components)
        maxnum = max_examples(stage.cache_bytes, maxdim)
        negatives = self.neg if stage.num_negatives is None else self.neg[: stage.num_negatives]
        if examples is None or (not stage.cont and start_iteration == 0):
            # a stage that does not continue the cache starts empty -- unless it
            # resumes after one of its own iterations: then it goes on with the
            # checkpointed examples, exactly as the uninterrupted run did
            examples = ExampleSet(block_sizes=[b.size for b in model.blocks])
        else:
            examples.block_sizes = np.array([b.size for b in model.blocks])
        # room for a full cache (plus the positives and one example past the cap),
        # allocated once: growing a buffer would hold two copies for a moment
        most = maxnum + 2 * len(self.pos) + 1
        blocks_per_example = max(2 + 2 * len(comp.parts) for comp in model.components)
        examples.reserve(most, most * blocks_per_example, stage.cache_bytes // 4 + maxdim)
        res = None
        for t in range(start_iteration, stage.iterations):
            examples.keep(examples.labels == -1)
            self.latent_positives(model, examples, f"{stage.name} {t + 1}/{stage.iterations} positives")
            for tn in range(stage.negative_iterations):
                cursor = self.hard_negatives(model, examples, negatives, cursor, stage.cache_bytes,
                                             f"{stage.name} {t + 1}.{tn + 1} mining")
                model, res = self.learn(model, examples, stage.C(ncomp), stage.J, (si, t, tn),
                                        f"learn {stage.name} {t + 1}.{tn + 1}")
                if stage.keep_support_vectors:
                    examples = self.keep_hardest(examples, res, maxnum)
            if on_iteration is not None:
                on_iteration(t, model, examples, cursor, res)
        return model, examples, cursor, res

    def stage_bbox(self, model: Model) -> Model:
        rows = self.latent_positives(model, ExampleSet(block_sizes=[b.size for b in model.blocks]),
                                     "bbox latent detections", want_bbox=True)
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


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------

def _examples_arrays(ex: ExampleSet) -> dict:
    return {"label_ints": ex.label_ints, "example_ptr": ex.example_ptr, "block_ids": ex.block_ids,
            "block_ptr": ex.block_ptr, "data": ex.data}


def _examples_from(arrays: dict, model: Model) -> ExampleSet:
    return ExampleSet.from_arrays(arrays["label_ints"], arrays["example_ptr"], arrays["block_ids"],
                                  arrays["block_ptr"], arrays["data"], block_sizes=[b.size for b in model.blocks],
                                  validate=False, copy=False)


def train(data: TrainingData, cls: str, *, components: int = 1, out=None, cache_dir=None, seed: int = 0,
          n_jobs: int = 1, restart: bool = False, config: TrainConfig | None = None,
          max_updates: int | None = None, progress: bool = True, executor: Executor | None = None,
          keep_checkpoints: bool = True) -> tuple[Model, TrainingSummary]:
    """Train a model for class ``cls`` with the voc-release3.1 schedule (``pascal_train.m``).

    Parameters
    ----------
    data : TrainingData
        Positives (image + box) and negative images, in training order
        (:mod:`dpm.training.data`): from ``voc.training_data``,
        ``coco.training_data`` or built by hand.
    cls : str
        Class name (recorded in the model).
    components : int
        Mixture components (aspect-ratio clusters).
    out : path, optional
        Write the final model here (atomically).
    cache_dir : path, optional
        Checkpoints; a rerun with the same data and options resumes after the
        last finished stage (default ``<out>.cache`` or ``./dpm-train-cache``).
    seed : int
        Seeds every random choice: the same seed gives the same model.
    n_jobs : int
        Processes for latent search and mining (-1: all cores).
    restart : bool
        Discard checkpoints and start over.
    config : TrainConfig, optional
    max_updates : int, optional
        SGD updates per learner call (default ``config.learn_iterations``, 5,000,000).
    progress : bool
        Progress bars with the time left on stderr.
    executor : optional
        Run latent search and mining on this executor (default: one made for
        ``n_jobs``): a :class:`dpm.execution.Executor`, a ``distributed.Client``
        or any ``concurrent.futures.Executor``.  The model does not depend on it.
    keep_checkpoints : bool
        With False, the checkpoints are deleted once the model is written
        (they can take gigabytes; see docs/training.md).

    Raises
    ------
    ValueError
        No positives, no negatives, a bad box or option.
    dpm._io.LockedError
        Another process is training with the same checkpoint folder.
    """
    if not isinstance(data, TrainingData):
        raise ValueError(f"data must be a dpm.training.TrainingData (e.g. voc.training_data(folder, {cls!r})), "
                         f"got {type(data).__name__}")
    config = config or TrainConfig()
    if int(components) < 1:
        raise ValueError(f"components must be at least 1, got {components}")
    n_jobs = resolve_jobs(n_jobs)
    data.check(cls)
    positives = clip_to_images(data.positives)
    if not positives:
        raise ValueError(f"{data.name or 'data'}: no positive of class {cls!r} lies inside its image")
    negatives = list(data.negatives)
    max_updates = int(max_updates or config.learn_iterations)
    if cache_dir is None:
        cache_dir = Path(str(out) + ".cache") if out else Path("dpm-train-cache")
    fingerprint = data.fingerprint()
    key = {"version": CHECKPOINT_VERSION, "data": fingerprint, "folders": _folders(data),
           "class": cls, "components": int(components),
           "seed": int(seed), "max_updates": max_updates, "config": config.as_dict()}
    with checkpoint_lock(cache_dir):
        store = CheckpointStore(cache_dir, key, restart=restart)
        log.info("training %s: %d positives, %d negative images, %d component(s); checkpoints in %s (%s)",
                 cls, len(positives), len(negatives), components, store.directory, store.status)
        summary = TrainingSummary()
        t_all = time.perf_counter()
        own = make_executor(n_jobs) if executor is None else None
        trainer = _Trainer(cls, positives, negatives, config, seed, own or make_executor(executor=executor),
                           max_updates, summary,
                           progress)
        try:
            model = _run_schedule(trainer, store, config, components, summary)
        finally:
            if own is not None:
                own.close()
        model.class_name = cls
        # provenance that does not depend on the dataset's format or location
        model.info.update({"trained_by": "dpm-train", "training_data": fingerprint,
                           "positives": str(len(data.positives)), "negative_images": str(len(negatives)),
                           "seed": str(seed), "components": str(components),
                           "updates_per_learner_call": str(max_updates)})
        if tuple(config.box_scale) != (1.0, 1.0):
            model.info["box_scale"] = "{:g} {:g}".format(*config.box_scale)
        if trainer.failed_images:
            log.warning("%d image(s) failed and were skipped", len(trainer.failed_images))
        if out is not None:
            save_model(model, out)
        if not keep_checkpoints:
            log.info("removing the checkpoints in %s (%s)", store.directory, _size(store.disk_usage()))
            store.clear(remove_directory=True)
        log.info("training finished in %.1f s", time.perf_counter() - t_all)
    return model, summary


def _folders(data: TrainingData) -> list:
    """The image folders of the data: a checkpoint is not reused for images elsewhere."""
    return sorted({str(p.path.parent.resolve()) for p in (*data.positives, *data.negatives)})


def _size(nbytes: int) -> str:
    return f"{nbytes / 2 ** 20:.1f} MiB"


def _run_schedule(trainer: _Trainer, store: CheckpointStore, config: TrainConfig, components: int,
                  summary: TrainingSummary) -> Model:
    schedule = config.schedule()

    def timed(name, fn):
        t0 = time.perf_counter()
        r = fn()
        log.info("stage %s done in %.1f s", name, time.perf_counter() - t0)
        return r, time.perf_counter() - t0

    # 1. random: one root per component
    ck = store.load("random")
    if ck is None:
        models, secs = timed("random", lambda: trainer.stage_random(components))
        store.save("random", models={f"c{i}": m for i, m in enumerate(models)})
    else:
        models = list(ck.models.values())
        summary.add(name="random", resumed=True)
    model = mergemodels(models) if len(models) > 1 else models[0]

    # 2-5: latent stages; parts are added before 'parts'
    examples, cursor = None, 0
    for si, stage in enumerate(schedule[1:], start=1):
        ck = store.load(stage.name)
        if ck is not None:
            model = ck.model
            examples = _examples_from(ck.arrays, model) if ck.arrays else None  # None: the next stage starts fresh
            cursor = int(ck.state.get("cursor", 0))
            summary.add(name=stage.name, resumed=True, examples=len(examples) if examples else 0)
            continue
        if stage.add_parts:
            for ci in range(len(model.components)):
                model = addparts(model, ci, config.num_parts, config=config)
        start_t = 0
        part = store.load(f"{stage.name}-iter")
        if part is not None:
            model, cursor = part.model, int(part.state["cursor"])
            examples = _examples_from(part.arrays, model)
            start_t = int(part.state["iteration"]) + 1
            log.info("%s: resuming after iteration %d", stage.name, start_t)

        def on_iteration(t, m, ex, cur, res, stage=stage):
            if t + 1 < stage.iterations:
                store.save(f"{stage.name}-iter", models={"model": m}, state={"cursor": cur, "iteration": t},
                           arrays=_examples_arrays(ex))

        t0 = time.perf_counter()
        model, examples, cursor, res = trainer.run_stage(si, stage, model, examples, cursor, on_iteration, start_t)
        secs = time.perf_counter() - t0
        # the examples are kept only where the next stage continues from them
        # (checkpoints of example sets are large: see docs/training.md)
        keep_examples = si + 1 < len(schedule) and schedule[si + 1].cont
        store.save(stage.name, models={"model": model}, state={"cursor": cursor},
                   arrays=_examples_arrays(examples) if keep_examples else None)
        store.remove(f"{stage.name}-iter")  # superseded by the stage's own checkpoint
        summary.add(name=stage.name, seconds=secs, examples=len(examples),
                    objective=None if res is None else res.objective,
                    kept=int((examples.labels == -1).sum()))
        log.info("stage %s done in %.1f s", stage.name, secs)

    # 6. bounding-box regression
    ck = store.load("bbox")
    if ck is None:
        t0 = time.perf_counter()
        model = trainer.stage_bbox(model)
        store.save("bbox", models={"model": model})
        summary.add(name="bbox", seconds=time.perf_counter() - t0, examples=trainer.bbox_examples)
    else:
        model = ck.model
        summary.add(name="bbox", resumed=True)
    return model
