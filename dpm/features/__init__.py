"""HOG features, image reduction and the feature pyramid (voc-release3.1 spec §1.4-§1.6).

Public names::

    hog(image, sbin=8)                          31-channel HOG map (features.cc)
    resize(image, scale)                        area-averaging reduction (resize.cc)
    feature_pyramid(image, sbin=8, interval=10) FeaturePyramid (featpyramid.m)
    flip_features(f), FLIP_PERMUTATION          left/right mirroring (flipfeat.m)

``dpm.features.hog`` is the function; its module is ``dpm.features.hog`` in
``sys.modules`` only.
"""
from .flip import FLIP_PERMUTATION, flip_features
from .hog import NUM_FEATURES, hog, resize  # binds the name ``hog`` to the function, not the submodule
from .pyramid import FeaturePyramid, feature_pyramid, pyramid_scales

__all__ = ["FLIP_PERMUTATION", "FeaturePyramid", "NUM_FEATURES", "feature_pyramid", "flip_features", "hog",
           "pyramid_scales", "resize"]
