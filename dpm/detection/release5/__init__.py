"""Detection with voc-release5 star models (``imgdetect.m`` and ``process.m`` of release 5)."""
from .parse import StarRaw, detect_raw_star, level_detections
from .scores import PreparedStar, StarLevel, loc_features, star_levels

__all__ = ["PreparedStar", "StarLevel", "StarRaw", "detect_raw_star", "level_detections", "loc_features",
           "star_levels"]
