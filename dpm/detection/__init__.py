"""Detection with Deformable Part Models: voc-release3.1 ``detect.m`` and ``process.m``, one model or many.

The files follow the data flow (spec §1.9, §1.10)::

    image -> pyramid.py     the feature pyramid (dpm.features) in the precision detection uses
          -> scores.py      root and part filter responses, part distance transforms, component scores
             (cascade.py    or, for a model with a star-cascade, pruned scores: dpm/detection/_cascade.pyx)
          -> parse.py       positions above the threshold, backtracked to root and part boxes (raw detections)
          -> finish.py      bounding-box prediction (getboxes), non-maximum suppression, clipping
          -> results.py     Detections
    single.py      one model on one image
    multiclass.py  several models on one image, one feature pyramid per (sbin, interval)
    batch.py       many image files through dpm.execution (local processes or a cluster)

Scores and boxes are those of the original code: the same raw detections in
the same order, boxes in 1-based inclusive pixel coordinates (see :mod:`dpm.boxes`).

One documented departure, on by default for speed: filter responses are
computed in float32 (``dtype=``; ``np.float64`` gives the original's double
precision).  Scores then differ from the original's by about 1e-6; see
:func:`detect` and docs/detection.md.  Everything after the convolutions is
computed in float64.

Reference: P. Felzenszwalb, R. Girshick, D. McAllester, D. Ramanan, "Object
Detection with Discriminatively Trained Part Based Models", PAMI 2010; the
voc-release3.1 code (MIT-style licence).
"""
from .cascade import CascadeStats, detect_cascade, detect_cascade_raw
from .finish import finish_detections, upsampled
from .multiclass import as_model_dict, detect, pyramid_groups
from .parse import boxes_at, detect_raw, detections_from_placements
from .pyramid import DEFAULT_DTYPE, detection_pyramid
from .results import Detections
from .scores import LevelScores, PartArgmax, PreparedModel, score_levels
from .single import check_image_size, detect_one

__all__ = ["CascadeStats", "DEFAULT_DTYPE", "Detections", "detect_cascade", "detect_cascade_raw", "LevelScores", "PartArgmax", "PreparedModel", "as_model_dict", "boxes_at",
           "check_image_size", "detect", "detect_one", "detect_raw", "detection_pyramid", "detections_from_placements", "finish_detections", "pyramid_groups",
           "score_levels", "upsampled"]
