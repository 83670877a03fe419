"""The stage functions of the voc-release3.1 training pipeline (``pascal_train.m``).

* :mod:`~dpm.training.schedule`: the schedule and ``train()`` (``dpm.train``);
  :mod:`~dpm.training.stages` runs each stage, :mod:`~dpm.training.mining` gathers
  a round's examples from the images (:mod:`~dpm.training.tasks`: the per-image
  tasks), :mod:`~dpm.training.examples` keeps the example cache.
* :mod:`~dpm.training.data`: what training needs from a dataset (:class:`TrainingData`).
* :mod:`~dpm.training.config`: the original's defaults (:class:`TrainConfig`).
* :mod:`~dpm.training.init`: aspect-ratio :func:`split` and :func:`initmodel`.
* :mod:`~dpm.training.warp`: warped positives and random negatives.
* :mod:`~dpm.training.merge`: :func:`mergemodels`.
* :mod:`~dpm.training.parts`: :func:`addparts`.
* :mod:`~dpm.training.bbox`: bounding-box regression (``trainbox.m``).
* :mod:`~dpm.training.checkpoint`: atomic, keyed stage checkpoints
  (:mod:`~dpm.training.checkpoint_keys`: their keys, :func:`dataset_fingerprint`).
"""
from .bbox import bbox_features, bbox_features_from_detections, fit_bbox_regressor, fit_model_regressors, \
    predict_boxes, scale_boxes
from .checkpoint import Checkpoint, CheckpointStore
from .checkpoint_keys import dataset_fingerprint
from .config import StageConfig, TrainConfig, max_examples, random_negatives_per_image
from .data import Negative, Positive, TrainingData, clip_to_images
from .init import initmodel, root_shape, split
from .merge import mergemodels
from .parts import addparts
from .imresize import imresize
from .warp import fold_features, random_negatives, warp_box, warp_positives, warped_features

__all__ = [
    "TrainConfig", "StageConfig", "max_examples", "random_negatives_per_image",
    "TrainingData", "Positive", "Negative", "clip_to_images",
    "split", "initmodel", "root_shape",
    "warp_box", "warped_features", "warp_positives", "random_negatives", "fold_features", "imresize",
    "mergemodels", "addparts",
    "bbox_features", "bbox_features_from_detections", "fit_bbox_regressor", "fit_model_regressors",
    "predict_boxes", "scale_boxes",
    "CheckpointStore", "Checkpoint", "dataset_fingerprint",
]
