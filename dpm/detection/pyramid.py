"""Image -> the feature pyramid detection scores: its precision and which features (exact or fast).

Two documented departures, on by default for speed (docs/detection.md): the
filter responses are computed in float32 (``dtype``; ``np.float64`` gives the
original's double precision), and with float32 responses the features too are
computed in single precision (``exact_features=False``; ``True`` gives the
original's double-precision features rounded once).
"""
from __future__ import annotations

import numpy as np

from ..features import feature_pyramid

__all__ = ["DEFAULT_DTYPE", "detection_pyramid", "features_exact"]

# Precision of the filter responses in detection (see ``dpm.detection.detect_one``'s ``dtype``).
DEFAULT_DTYPE = np.float32


def detection_pyramid(image, sbin: int, interval: int, dtype=DEFAULT_DTYPE, exact_features: bool | None = None):
    """The feature pyramid detection uses for ``dtype`` responses (see :func:`dpm.detection.detect_one`).

    Levels come straight in the responses' precision: float64 (the
    original's features), or float32 computed in single precision
    (``exact_features=False``, the default with float32) or the float64
    features rounded once (``exact_features=True``).
    """
    dtype = np.dtype(dtype)
    return feature_pyramid(image, sbin, interval, dtype=dtype, exact=features_exact(dtype, exact_features))


def features_exact(dtype, exact_features: bool | None = None) -> bool:
    """Whether detection with ``dtype`` responses and ``exact_features`` (True, False or None: fast
    features with float32, exact with float64) uses the exact features; ``ValueError`` if not valid."""
    dtype = np.dtype(dtype)
    if exact_features is None:
        exact_features = dtype != np.float32
    if not isinstance(exact_features, (bool, np.bool_)):
        raise ValueError(f"exact_features must be True, False or None, got {exact_features!r}")
    if not exact_features and dtype != np.float32:
        raise ValueError(f"exact_features=False (single-precision features) needs dtype=np.float32, got "
                         f"dtype={dtype.name}; float64 responses use the exact features")
    return bool(exact_features)

