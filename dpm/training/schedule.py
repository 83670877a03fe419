"""The voc-release3.1 training schedule (``pascal_train.m`` + ``train.m``), resumable and multi-core.

Stages (spec §1.11; :meth:`dpm.training.TrainConfig.schedule` gives their
:class:`~dpm.training.StageConfig`), each ending with an atomic checkpoint:

``random``   per component: ``initmodel`` on its aspect-ratio split, warped
             positives + random negative windows, one learner call;
``hard``     merged model: latent positives + hard negatives of 200 images,
             2 iterations x 2 mining rounds, keeping the hardest negatives;
``parts``    ``addparts`` (6 per component), 1 x 4 rounds;
``parts2``   6 x 2 rounds, continuing the example cache;
``mine``     all negative images, 1 x 3 rounds, C = 0.003 nc, J = 2;
``bbox``     bounding-box regression (``trainbox.m``);
``cascade``  the star-cascade's part order and thresholds from the training
             positives (release 4/5's ``cascade_model.m``; not in 3.1; off with
             ``TrainConfig(cascade=False)``).

:func:`train` is the entry point; the stages themselves are
:class:`dpm.training.stages.Trainer`'s, the examples of a round come from
:mod:`dpm.training.mining`, the example cache is :mod:`dpm.training.examples`'s
and the checkpoints :mod:`dpm.training.checkpoint`'s.

Departures from the original, on purpose: examples live in memory (caps in
bytes replace the ``.dat`` size budgets); every learner call is seeded from
the run's seed, the stage and the round, so a run is reproducible and a
resumed run gives the same model; latent search and mining run in parallel
processes with results merged in image order, so the result does not depend
on the number of processes.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

from ..execution import Executor, make_executor, resolve_jobs
from ..model import Model, save_model
from .checkpoint import CheckpointStore, checkpoint_lock
from .config import TrainConfig
from .data import TrainingData, clip_to_images
from .examples import examples_from_arrays, examples_to_arrays
from .merge import mergemodels
from .parts import addparts
from .stages import Trainer, TrainingSummary

__all__ = ["train", "TrainingSummary"]

log = logging.getLogger(__name__)

CHECKPOINT_VERSION = 1


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
        trainer = Trainer(positives, negatives, config, seed, own or make_executor(executor=executor),
                          max_updates, summary, progress)
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


def _run_schedule(trainer: Trainer, store: CheckpointStore, config: TrainConfig, components: int,
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
            examples = examples_from_arrays(ck.arrays, model) if ck.arrays else None  # None: the next stage starts fresh
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
            examples = examples_from_arrays(part.arrays, model)
            start_t = int(part.state["iteration"]) + 1
            log.info("%s: resuming after iteration %d", stage.name, start_t)

        def on_iteration(t, m, ex, cur, res, stage=stage):
            if t + 1 < stage.iterations:
                store.save(f"{stage.name}-iter", models={"model": m}, state={"cursor": cur, "iteration": t},
                           arrays=examples_to_arrays(ex))

        t0 = time.perf_counter()
        model, examples, cursor, res = trainer.run_stage(si, stage, model, examples, cursor, on_iteration, start_t)
        secs = time.perf_counter() - t0
        # the examples are kept only where the next stage continues from them
        # (checkpoints of example sets are large: see docs/training.md)
        keep_examples = si + 1 < len(schedule) and schedule[si + 1].cont
        store.save(stage.name, models={"model": model}, state={"cursor": cursor},
                   arrays=examples_to_arrays(examples) if keep_examples else None)
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

    # 7. star-cascade
    if config.cascade:
        ck = store.load("cascade")
        if ck is None:
            t0 = time.perf_counter()
            model = trainer.stage_cascade(model)
            store.save("cascade", models={"model": model})
            summary.add(name="cascade", seconds=time.perf_counter() - t0)
        else:
            model = ck.model
            summary.add(name="cascade", resumed=True)
    return model
