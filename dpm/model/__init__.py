"""Models and their files, in one place.

* :mod:`dpm.model.types`: the voc-release3.1 model (:class:`Model`, its
  components, parts and learner blocks) that detection and training use;
* :mod:`dpm.model.blocks`: the learner's parameter layout of a model
  (:func:`model_blocks`, :func:`model_from_blocks`);
* :mod:`dpm.model.check`: the checks every loaded or built model passes
  (:func:`validate_model`, :func:`validate_cascade`);
* :mod:`dpm.model.load`: :func:`load_model`, the one bounded loader of every
  model file, which tells the format from the file;
* formats: :mod:`dpm.model.native` (the project's own ``.npz``,
  :func:`save_model`; star models' payload in :mod:`dpm.model.native_star`),
  :mod:`dpm.model.release31` (voc-release3.1 ``.mat``),
  :mod:`dpm.model.release5` (voc-release5 star models, :class:`StarModel`),
  :mod:`dpm.model.opencv` and :mod:`dpm.model.opencv_read` (OpenCV's cascade
  DPM XML, ``dpm-convert``).

Files are read by the bounded readers of :mod:`dpm.files` (sizes checked
before anything is decompressed; limit 64 MiB, ``DPM_MAX_MODEL_BYTES``).
"""
from __future__ import annotations

from .blocks import fold_half, model_blocks, model_from_blocks, unfold_half
from .check import NUM_FEATURES, validate_model
from .load import import_mat_model, load_model
from .native import model_from_payload, model_to_payload, save_model
from .release5 import StarModel
from .types import Block, Component, Model, Part

__all__ = [
    "NUM_FEATURES", "Block", "Part", "Component", "Model",
    "load_model", "save_model", "import_mat_model", "model_blocks", "model_from_blocks",
    "fold_half", "unfold_half", "validate_model", "model_to_payload", "model_from_payload", "StarModel",
]
