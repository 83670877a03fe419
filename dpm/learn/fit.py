"""The latent-SVM objective, the stopping rule and :func:`fit_lsvm` (``learn.cc``'s SGD, compiled in ``dpm._learn``)."""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import numpy as np

from .examples import ExampleSet
from .groups import Collapsed, collapse_examples
from .layout import BlockLayout

__all__ = ["ITER", "INCACHE", "WAIT", "Objective", "StoppingRule", "LearnResult", "fit_lsvm", "lsvm_objective",
           "lsvm_subgradient", "score_examples"]

log = logging.getLogger(__name__)

ITER = 5_000_000   # voc-release3.1 learn.cc: number of updates
INCACHE = 3        # learn.cc: visits beyond the margin before a negative is set aside
WAIT = 10          # learn.cc: cache counter given to a negative that is set aside

# Chunk size of the compiled loop between signal checks, in feature values
# touched (about 50 ms of work): Ctrl+C is honoured well within a second.
_CHUNK_WORK = 50_000_000


class Objective(NamedTuple):
    """The LSVM objective and its parts (``objective = regularizer + loss_pos + loss_neg``)."""

    objective: float
    regularizer: float    # 0.5 * sum_b regmult_b |w_b|^2
    loss_pos: float       # C * J * sum over positive groups of the hinge
    loss_neg: float       # C * sum over negative groups of the hinge


@dataclass(frozen=True)
class StoppingRule:
    """An optional stopping rule on the objective, like voc-release4's learn.cc (spec §1.13).

    Every ``every`` updates the objective ``f`` is evaluated; a check passes
    when ``|f - f_previous| / f <= tol`` (release 4: ``delta = 1 - |Δf|/f >=
    0.9995``) and ``updates >= min_updates``.  The run stops after more than
    ``patience`` consecutive passing checks.  Release 4 used ``every=100_000,
    tol=5e-4, patience=5, min_updates=5_000_000`` with ``max_updates=10_000_000``
    (:meth:`release4`).
    """

    every: int = 100_000
    tol: float = 5e-4
    patience: int = 5
    min_updates: int = 0

    def __post_init__(self):
        if int(self.every) < 1:
            raise ValueError(f"StoppingRule.every must be >= 1, got {self.every}")
        if not (math.isfinite(self.tol) and self.tol >= 0):
            raise ValueError(f"StoppingRule.tol must be finite and >= 0, got {self.tol}")
        if int(self.patience) < 0 or int(self.min_updates) < 0:
            raise ValueError("StoppingRule.patience and min_updates must be >= 0")

    @classmethod
    def release4(cls) -> "StoppingRule":
        """voc-release4's constants (use with ``max_updates=10_000_000``)."""
        return cls(every=100_000, tol=5e-4, patience=5, min_updates=5_000_000)


@dataclass(eq=False)
class LearnResult:
    """What :func:`fit_lsvm` returns.

    Attributes
    ----------
    w : (num_weights,) float64
        Final weights, blocks concatenated (the ``.mod`` layout).
    layout : BlockLayout
    scores : (N,) float64
        ``w . x`` of every example in input order (the ``.inf`` scores).
    unique : (N,) bool
        The ``.inf`` unique flags.
    objective, regularizer, loss_pos, loss_neg : float
        The objective at ``w`` and its parts (see :class:`Objective`).
    history : (K,) float64
        The objective sampled during training, at ``history_updates``: every
        ``history_every`` updates, then the final objective (always last).
    history_updates : (K,) int64
    updates : int
        SGD updates made (learn.cc finishes the epoch in which ``max_updates`` is
        reached, so this is usually a little more).
    epochs : int
    seconds : float
        Wall time of the optimisation loop (collapse and scoring included).
    seed : int
    num_unique, num_groups : int
    stopped_early : bool
        True when the stopping rule ended the run.
    """

    w: np.ndarray
    layout: BlockLayout
    scores: np.ndarray
    unique: np.ndarray
    objective: float
    regularizer: float
    loss_pos: float
    loss_neg: float
    history: np.ndarray
    history_updates: np.ndarray
    updates: int
    epochs: int
    seconds: float
    seed: int
    num_unique: int
    num_groups: int
    stopped_early: bool = False
    info: dict = field(default_factory=dict)

    def blocks(self) -> list[np.ndarray]:
        """The weights split per block (what :func:`dpm.model.model_from_blocks` takes)."""
        return self.layout.split(self.w)


def _learner():
    """The compiled learner: its AVX2 build where the processor has AVX2 (same results, faster)."""
    from .. import _cpu
    return _cpu.best_build("dpm._learn")


def _problem(examples: ExampleSet, layout: BlockLayout, C: float, J: float, collapsed: Collapsed | None = None):
    _learn = _learner()
    if collapsed is None:
        collapsed = collapse_examples(examples)
    # learn.cc reads regmult and learnmult from the .hdr as float32.
    reg = layout.regmult.astype(np.float32).astype(np.float64)
    lrn = layout.learnmult.astype(np.float32).astype(np.float64)
    prob = _learn.Problem(
        np.ascontiguousarray(examples.data), np.ascontiguousarray(examples.block_ptr),
        np.ascontiguousarray(examples.block_ids), np.ascontiguousarray(examples.example_ptr),
        collapsed.member_ptr, collapsed.members, collapsed.group_y,
        layout.offsets, reg, lrn, np.ascontiguousarray(layout.lower_bounds), float(C), float(J))
    return prob, collapsed


def _check_inputs(examples, layout, C, J):
    if not isinstance(examples, ExampleSet):
        raise TypeError(f"examples must be an ExampleSet, got {type(examples).__name__}")
    layout = BlockLayout.coerce(layout)
    if len(examples) == 0:
        raise ValueError("the example set is empty; the learner needs at least one example")
    examples.validate(layout.sizes)
    for name, val in (("C", C), ("J", J)):
        if not (isinstance(val, (int, float, np.floating, np.integer)) and math.isfinite(val) and val > 0):
            raise ValueError(f"{name} must be a positive finite number, got {val!r}")
    return layout


def _check_weights(w, layout, name):
    w = np.array(w, dtype=np.float64, copy=True).ravel()
    if w.size != layout.num_weights:
        raise ValueError(f"{name} has {w.size} values, the layout needs {layout.num_weights}")
    if not np.all(np.isfinite(w)):
        raise ValueError(f"{name} has NaN or infinite values")
    return w


def lsvm_objective(examples: ExampleSet, layout, C: float, J: float, w) -> Objective:
    """The objective at ``w`` (duplicates removed, groups scored by their best member)."""
    layout = _check_inputs(examples, layout, C, J)
    w = _check_weights(w, layout, "w")
    prob, _ = _problem(examples, layout, C, J)
    reg, lpos, lneg = prob.objective(w)
    return Objective(reg + lpos + lneg, reg, lpos, lneg)


def lsvm_subgradient(examples: ExampleSet, layout, C: float, J: float, w) -> np.ndarray:
    """A subgradient of the objective at ``w`` (see ``dpm._learn.Problem.subgradient``)."""
    layout = _check_inputs(examples, layout, C, J)
    w = _check_weights(w, layout, "w")
    prob, _ = _problem(examples, layout, C, J)
    out = np.empty(layout.num_weights, dtype=np.float64)
    prob.subgradient(w, out)
    return out


def score_examples(examples: ExampleSet, layout, w) -> np.ndarray:
    """``(N,)`` float64: ``w . x`` for every example, in order (learn.cc ``score``)."""
    layout = _check_inputs(examples, layout, 1.0, 1.0)
    w = _check_weights(w, layout, "w")
    prob, _ = _problem(examples, layout, 1.0, 1.0)
    out = np.empty(len(examples), dtype=np.float64)
    prob.score_examples(w, out)
    return out


def _check_seed(seed) -> int:
    if seed is None:
        return int(np.random.SeedSequence().entropy) % (1 << 64)
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an integer in [0, 2**64) or None, got {seed!r}")
    seed = int(seed)
    if not 0 <= seed < (1 << 64):
        raise ValueError(f"seed must be in [0, 2**64), got {seed}")
    return seed


def fit_lsvm(examples: ExampleSet, layout, C: float, J: float, *, seed,
             max_updates: int = ITER, init=None, stop: StoppingRule | None = None,
             history_every: int | None = None,
             progress: Callable[[int, int], None] | None = None) -> LearnResult:
    """Train a latent SVM by stochastic subgradient descent (voc-release3.1 ``learn.cc``).

    Parameters
    ----------
    examples : ExampleSet
        Feature vectors; examples sharing their label ints form one latent group.
    layout : BlockLayout, Model, list of dpm.model.Block, or tuple
        Block sizes, ``regmult``, ``learnmult`` and lower bounds.
    C : float
        Loss weight (``train.m``: 0.002 per component).
    J : float
        Extra weight of the positive loss.
    seed : int or None
        Seed of the permutation generator, in ``[0, 2**64)``.  The same seed
        gives bit-identical weights; None draws one (recorded in the result).
    max_updates : int
        learn.cc's ITER (5,000,000).  No epoch starts after this many updates.
    init : (num_weights,) array_like, optional
        Initial weights (the ``.mod`` learn.cc reads); zeros by default.
    stop : StoppingRule, optional
        Stop early when the objective settles.  Off by default, as in 3.1.
    history_every : int, optional
        Sample the objective every this many updates.  Default: every
        ``max(100_000, 20 * unique examples)`` updates, which costs at most about 5%
        (``stop.every`` when a stopping rule is given).
    progress : callable, optional
        Called as ``progress(updates, max_updates)`` about 20 times a second.

    Returns
    -------
    LearnResult

    Raises
    ------
    ValueError
        An empty set, labels other than +1/-1, block indices out of range,
        blocks of the wrong size, NaN/inf features, lower bounds or ``init`` of
        the wrong size, non-positive C or J.  Messages name the example index.
    KeyboardInterrupt
        On Ctrl+C, within a fraction of a second.

    Notes
    -----
    The algorithm of learn.cc ``gd`` (spec §1.12): each epoch visits the groups
    in cache in a random order; for group ``i`` with ``T = t + 1000``, every
    block is regularised by ``w_b -= (1/T) regmult_b learnmult_b w_b`` and, if
    the best member ``x`` has ``y w.x < 1``, ``w_b += c y (cnum C / T)
    learnmult_b x_b``; ``cnum`` is the number of groups in cache.  A negative
    beyond the margin four visits in a row sits out seven epochs; positives
    never leave.  Lower bounds are projected after every epoch.  Departures:
    an explicit portable seed (learn.cc: clock-seeded ``drand48``); the
    regularisation is applied through per-block scale factors (the same
    iterates up to rounding); a 4-way split dot product (rounding only).
    """
    _learn = _learner()
    t0 = time.perf_counter()
    layout = _check_inputs(examples, layout, C, J)
    seed = _check_seed(seed)
    if isinstance(max_updates, bool) or not isinstance(max_updates, (int, np.integer)) or max_updates < 0:
        raise ValueError(f"max_updates must be a non-negative integer, got {max_updates!r}")
    max_updates = int(max_updates)
    w0 = np.zeros(layout.num_weights) if init is None else _check_weights(init, layout, "init")
    if stop is not None and not isinstance(stop, StoppingRule):
        raise ValueError("stop must be a StoppingRule or None")

    prob, col = _problem(examples, layout, C, J)
    num_unique = int(np.count_nonzero(col.unique))
    num_groups = int(col.group_y.size)
    log.info("%d examples, %d unique, %d collapsed into latent groups; %d blocks, %d weights",
             len(examples), num_unique, num_groups, layout.num_blocks, layout.num_weights)
    if stop is not None:
        every = int(stop.every)
    elif history_every is not None:
        every = int(history_every)
        if every < 1:
            raise ValueError(f"history_every must be >= 1, got {history_every}")
    else:
        every = max(100_000, 20 * num_unique)

    sgd = _learn.SGD(prob, w0, seed, max_updates)
    hist, hist_t = [], []
    next_sample = every
    passes = 0
    stopped = False
    t_report = time.perf_counter()
    while True:
        done = sgd.run(_CHUNK_WORK, next_sample)
        if sgd.updates >= next_sample:
            reg, lp, ln = prob.objective(sgd.weights())
            f = reg + lp + ln
            if stop is not None and hist:
                rel = abs(hist[-1] - f) / f if f > 0 else 0.0
                passes = passes + 1 if (rel <= stop.tol and sgd.updates >= stop.min_updates) else 0
            hist.append(f)
            hist_t.append(sgd.updates)
            log.debug("update %d: objective %.6f", sgd.updates, f)
            next_sample += every
            if stop is not None and passes > stop.patience:
                sgd.finish()
                stopped = True
                done = True
        if progress is not None and (done or time.perf_counter() - t_report > 0.05):
            progress(int(sgd.updates), max_updates)
            t_report = time.perf_counter()
        if done:
            break

    w = sgd.weights()
    reg, lp, ln = prob.objective(w)
    hist.append(reg + lp + ln)
    hist_t.append(sgd.updates)
    scores = np.empty(len(examples), dtype=np.float64)
    prob.score_examples(w, scores)
    seconds = time.perf_counter() - t0
    log.info("%d updates in %d epochs, %.2f s: objective %.6f (regularizer %.6f, positive loss %.6f, "
             "negative loss %.6f)", sgd.updates, sgd.epochs, seconds, reg + lp + ln, reg, lp, ln)
    return LearnResult(w=w, layout=layout, scores=scores, unique=col.unique.copy(),
                       objective=reg + lp + ln, regularizer=reg, loss_pos=lp, loss_neg=ln,
                       history=np.array(hist, dtype=np.float64), history_updates=np.array(hist_t, dtype=np.int64),
                       updates=int(sgd.updates), epochs=int(sgd.epochs), seconds=seconds, seed=seed,
                       num_unique=num_unique, num_groups=num_groups, stopped_early=stopped,
                       info={"C": float(C), "J": float(J), "max_updates": max_updates})
