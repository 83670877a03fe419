"""Defaults of the voc-release3.1 training pipeline, in one frozen dataclass.

Every constant names the voc-release3.1 file it comes from (Felzenszwalb,
Girshick, McAllester, Ramanan; MIT-style licence).  The original's byte budgets
for its ``.dat`` files (``maxsize`` = 2^28 and 2^30 bytes) become caps, in bytes
of float32 feature data, on the in-memory example set, with the same rule for
the number of examples they allow: ``maxnum = floor(maxsize / (4 * max dim))``
(``train.m``), where ``dim`` counts the block-label floats as the ``.dat`` did.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["StageConfig", "TrainConfig", "max_examples", "random_negatives_per_image"]


def max_examples(cap_bytes: int, max_dim: int) -> int:
    """Number of examples a cache cap allows (``train.m``: ``maxnum``).

    Parameters
    ----------
    cap_bytes : int
        The cap in bytes (the original's ``maxsize``).
    max_dim : int
        The largest component feature-vector length, block labels included
        (``max(model.components{:}.dim)``).

    Returns
    -------
    int
        ``floor(cap_bytes / (4 * max_dim))``.
    """
    if max_dim <= 0:
        raise ValueError(f"max_dim must be positive, got {max_dim}")
    if cap_bytes < 0:
        raise ValueError(f"cap_bytes must be >= 0, got {cap_bytes}")
    return int(cap_bytes) // (4 * int(max_dim))


def random_negatives_per_image(cap_bytes: int, max_dim: int, num_positive_examples: int,
                               num_negative_images: int) -> int:
    """Random windows per negative image in the first stage (``train.m``).

    The positives (warped boxes and their mirrors) are written first and the
    random negatives fill what is left of the cap:
    ``floor((maxnum - num_positive_examples) / num_negative_images)``, at least 0.
    For the golden person run (dim 1212, 2416 positives, 200 images) this is
    ``floor((55370 - 2416) / 200) = 264``, the figure its README quotes.
    """
    if num_negative_images <= 0:
        raise ValueError(f"num_negative_images must be positive, got {num_negative_images}")
    left = max_examples(cap_bytes, max_dim) - int(num_positive_examples)
    return max(left, 0) // int(num_negative_images)


@dataclass(frozen=True)
class StageConfig:
    """One call of ``train.m`` in the ``pascal_train.m`` schedule.

    Attributes
    ----------
    name : str
        Stage name (also the checkpoint name).
    warp : bool
        Positives are warped ground-truth boxes (``poswarp``), not latent detections.
    random_negatives : bool
        Negatives are random windows (``negrandom``), not mined hard negatives.
    iterations : int
        Relabelling iterations (``iter``): positives are recomputed each time.
    negative_iterations : int
        Data-mining rounds per iteration (``negiter``), each followed by a learner call.
    cache_bytes : int
        Cap on the example set, in bytes of features (the original's ``maxsize``).
    keep_support_vectors : bool
        Keep the hardest negatives between mining rounds (``keepsv``).
    num_negatives : int or None
        Use only the first ``num_negatives`` negative images (``neg(1:200)``);
        None uses all of them.
    cont : bool
        Continue with the example set of the previous call (``cont``).
    add_parts : bool
        Add parts to every component before the stage (``addparts``).
    C_per_component : float
        Learner C divided by the number of components.
    J : float
        Weight of the positive loss.
    """

    name: str
    warp: bool
    random_negatives: bool
    iterations: int
    negative_iterations: int
    cache_bytes: int
    keep_support_vectors: bool
    num_negatives: int | None
    cont: bool = False
    add_parts: bool = False
    C_per_component: float = 0.002   # voc-release3.1: train.m (C = 0.002*model.numcomponents)
    J: float = 1.0                   # voc-release3.1: train.m

    def C(self, num_components: int) -> float:
        """The learner's C for a model with ``num_components`` components."""
        return self.C_per_component * num_components


@dataclass(frozen=True)
class TrainConfig:
    """Training defaults of voc-release3.1 (``pascal_train.m`` and its helpers)."""

    # --- features and model layout
    sbin: int = 8                    # voc-release3.1: initmodel.m (model.sbin = 8)
    interval: int = 10               # voc-release3.1: initmodel.m (model.interval = 10)
    num_parts: int = 6               # voc-release3.1: pascal_train.m (addparts(model, i, 6))

    # --- initmodel.m: root filter shape
    aspect_bin_step: float = 0.02            # voc-release3.1: initmodel.m (xx = -2:.02:2)
    aspect_log_range: float = 2.0            # voc-release3.1: initmodel.m (xx = -2:.02:2)
    aspect_kernel_halfwidth: int = 100       # voc-release3.1: initmodel.m (filter over [-100:100])
    aspect_kernel_scale: float = 400.0       # voc-release3.1: initmodel.m (exp(-k.^2/400))
    area_percentile: float = 0.2             # voc-release3.1: initmodel.m (areas(floor(n*0.2)))
    min_root_area: float = 3000.0            # voc-release3.1: initmodel.m (max(min(area, 5000), 3000))
    max_root_area: float = 5000.0            # voc-release3.1: initmodel.m

    # --- block parameters
    offset_regmult: float = 0.0              # voc-release3.1: initmodel.m
    offset_learnmult: float = 20.0           # voc-release3.1: initmodel.m
    filter_lower_bound: float = -100.0       # voc-release3.1: initmodel.m, addparts.m
    root_regmult: float = 1.0                # voc-release3.1: initmodel.m
    root_learnmult: float = 1.0              # voc-release3.1: initmodel.m
    part_regmult: float = 1.0                # voc-release3.1: addparts.m
    part_learnmult: float = 1.0              # voc-release3.1: addparts.m
    def_regmult: float = 10.0                # voc-release3.1: addparts.m (after the 13/09/2009 CHANGES fix)
    def_learnmult: float = 0.1               # voc-release3.1: addparts.m
    def_initial: tuple = (0.1, 0.0, 0.1, 0.0)              # voc-release3.1: addparts.m
    def_lower_bounds: tuple = (0.01, -100.0, 0.01, -100.0)  # voc-release3.1: addparts.m

    # --- addparts.m: part shapes
    part_area_slack: float = 1.2     # voc-release3.1: addparts.m (area in [target, 1.2*target])
    part_min_side: int = 3           # voc-release3.1: addparts.m (h, w in [3, 2*size-2])
    part_max_side_difference: int = 4  # voc-release3.1: addparts.m (|w - h| <= 4)

    # --- train.m
    overlap: float = 0.7                     # voc-release3.1: train.m / pascal_train.m
    latent_interval: int = 5                 # voc-release3.1: train.m (poslatent: model.interval = 5)
    mining_interval: int = 2                 # voc-release3.1: train.m (neghard: model.interval = 2)
    hard_negative_threshold: float = -1.05   # voc-release3.1: train.m (neghard: detect(..., -1.05, ...))
    thresh_percentile: float = 0.05          # voc-release3.1: train.m (ceil(0.05*P)-th smallest score)
    crop_margin: float = 0.5                 # voc-release3.1: croppos.m (pad = 0.5*(w+h))
    learn_iterations: int = 5_000_000        # voc-release3.1: learn.cc (ITER)
    stage1_cache_bytes: int = 2 ** 28        # voc-release3.1: pascal_train.m / train.m default maxsize
    parts_cache_bytes: int = 2 ** 30         # voc-release3.1: pascal_train.m (2^30)
    num_hard_negatives: int = 200            # voc-release3.1: pascal_train.m (neg(1:200))
    final_C_per_component: float = 0.003     # voc-release3.1: pascal_train.m (0.003*model.numcomponents)
    final_J: float = 2.0                     # voc-release3.1: pascal_train.m

    # --- trainbox.m
    bbox_interval: int = 5                   # voc-release3.1: trainbox.m (model.interval = 5)
    bbox_overlap: float = 0.7                # voc-release3.1: pascal_train.m (trainbox(cls, model, pos, 0.7))
    bbox_min_area_factor: float = 1.2        # voc-release3.1: trainbox.m (skip boxes < 1.2 * minsize area)
    bbox_translation_invariant: bool = True  # departure: fit relative to the root box (False: trainbox.m)
    # (width, height) fraction of each annotated box that the predicted boxes
    # should cover: (1, 1) in the original; < 1 when the annotations are
    # windows with a margin around the object (INRIA's 64x128 windows hold a
    # person 96 px tall: height 0.75).  Only the regression targets change.
    box_scale: tuple = (1.0, 1.0)
    # A star-cascade as the last stage (release 4/5's star-cascade/; 3.1 has none).
    cascade: bool = True

    # --- C and J of the early stages
    C_per_component: float = 0.002   # voc-release3.1: train.m (C = 0.002*model.numcomponents)
    J: float = 1.0                   # voc-release3.1: train.m

    def __post_init__(self):
        if self.sbin <= 0 or self.sbin % 2:
            raise ValueError(f"sbin must be a positive even number, got {self.sbin}")
        if self.interval < 1:
            raise ValueError(f"interval must be >= 1, got {self.interval}")
        if self.num_parts < 0:
            raise ValueError(f"num_parts must be >= 0, got {self.num_parts}")
        if not 0 < self.overlap <= 1:
            raise ValueError(f"overlap must be in (0, 1], got {self.overlap}")
        if len(self.box_scale) != 2 or not all(0 < float(f) <= 4 for f in self.box_scale):
            raise ValueError(f"box_scale must be two factors in (0, 4], got {self.box_scale!r}")
        if self.stage1_cache_bytes <= 0 or self.parts_cache_bytes <= 0:
            raise ValueError("cache caps must be positive numbers of bytes")

    def C(self, num_components: int) -> float:
        """The early stages' learner C: ``0.002 * num_components`` (``train.m``)."""
        return self.C_per_component * num_components

    def final_C(self, num_components: int) -> float:
        """The last mining stage's C: ``0.003 * num_components`` (``pascal_train.m``)."""
        return self.final_C_per_component * num_components

    def schedule(self) -> tuple[StageConfig, ...]:
        """The learner calls of ``pascal_train.m``, in order.

        ``random`` runs once per component (on the component's own split of the
        positives); the others run on the merged model.  ``parts`` and
        ``parts2`` follow ``addparts``; ``trainbox`` (bounding-box regression)
        comes after ``mine`` and is not a learner call.
        """
        return (
            # voc-release3.1: pascal_train.m -- train(cls, model, spos{i}, neg, 1, 1, 1, 1, 2^28)
            StageConfig("random", warp=True, random_negatives=True, iterations=1, negative_iterations=1,
                        cache_bytes=self.stage1_cache_bytes, keep_support_vectors=False, num_negatives=None,
                        C_per_component=self.C_per_component, J=self.J),
            # train(cls, model, pos, neg(1:200), 0, 0, 2, 2, 2^28, true, 0.7)
            StageConfig("hard", warp=False, random_negatives=False, iterations=2, negative_iterations=2,
                        cache_bytes=self.stage1_cache_bytes, keep_support_vectors=True,
                        num_negatives=self.num_hard_negatives, C_per_component=self.C_per_component, J=self.J),
            # addparts; train(cls, model, pos, neg(1:200), 0, 0, 1, 4, 2^30, true, 0.7)
            StageConfig("parts", warp=False, random_negatives=False, iterations=1, negative_iterations=4,
                        cache_bytes=self.parts_cache_bytes, keep_support_vectors=True,
                        num_negatives=self.num_hard_negatives, add_parts=True,
                        C_per_component=self.C_per_component, J=self.J),
            # train(cls, model, pos, neg(1:200), 0, 0, 6, 2, 2^30, true, 0.7, true)
            StageConfig("parts2", warp=False, random_negatives=False, iterations=6, negative_iterations=2,
                        cache_bytes=self.parts_cache_bytes, keep_support_vectors=True,
                        num_negatives=self.num_hard_negatives, cont=True,
                        C_per_component=self.C_per_component, J=self.J),
            # train(cls, model, pos, neg, 0, 0, 1, 3, 2^30, true, 0.7, true, 0.003*nc, 2)
            StageConfig("mine", warp=False, random_negatives=False, iterations=1, negative_iterations=3,
                        cache_bytes=self.parts_cache_bytes, keep_support_vectors=True, num_negatives=None,
                        cont=True, C_per_component=self.final_C_per_component, J=self.final_J),
        )

    def as_dict(self) -> dict:
        """Plain JSON-able dict of every option (for checkpoint keys and provenance)."""
        d = asdict(self)
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}
