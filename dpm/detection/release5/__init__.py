"""Detection with voc-release5 star models (``imgdetect.m`` and ``process.m`` of release 5).

The files follow the data flow::

    image -> dpm.features.pyramid_r5   32-channel padded pyramid (featpyramid.m)
          -> scores.py   filter responses, bounded dt, scale prior, component scores (gdetect_dp.m)
          -> parse.py    positions above the threshold -> boxes of every filter (gdetect_parse.m)
          -> finish.py   clipboxes, reduceboxes + bboxpred_get, clipboxes, nms (process.m)
    cascade.py     the same raw detections with the model's star-cascade (cascade_detect.m, cascade.cc)
    single.py      one model on one image -> Detections (what dpm.detect calls for a StarModel)
"""
from .finish import ProcessSteps, clip_detections, predict_boxes_r5, process_star, reduce_boxes
from .parse import StarRaw, detect_raw_star, level_detections
from .scores import PreparedStar, StarLevel, loc_features, star_levels
from .cascade import check_star_cascade, detect_raw_star_cascade
from .single import detect_star, use_star_cascade

__all__ = ["PreparedStar", "ProcessSteps", "StarLevel", "StarRaw", "check_star_cascade", "clip_detections",
           "detect_raw_star", "detect_raw_star_cascade", "detect_star", "level_detections", "loc_features",
           "predict_boxes_r5", "process_star", "reduce_boxes", "star_levels", "use_star_cascade"]
