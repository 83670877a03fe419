"""HOG features, image reduction and the feature pyramid (voc-release3.1 spec §1.4-§1.6).

Public names::

    hog(image, sbin=8)                          31-channel HOG map (features.cc)
    resize(image, scale)                        area-averaging reduction (resize.cc)
    feature_pyramid(image, sbin=8, interval=10) FeaturePyramid (featpyramid.m)
    flip_features(f), FLIP_PERMUTATION          left/right mirroring (flipfeat.m)

The compiled kernels are imported on first use, so ``dpm.features.flip`` works
without them.
"""
import importlib

from .flip import FLIP_PERMUTATION, flip_features

_LAZY = {
    "hog": ".hog", "resize": ".hog", "NUM_FEATURES": ".hog",
    "feature_pyramid": ".pyramid", "FeaturePyramid": ".pyramid", "pyramid_scales": ".pyramid",
}

__all__ = sorted(list(_LAZY) + ["FLIP_PERMUTATION", "flip_features"])


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'dpm.features' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
