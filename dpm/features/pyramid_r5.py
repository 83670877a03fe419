"""Release 5's feature pyramid: 32-channel features, padded, with the truncation feature.

Port of voc-release5 ``features/featpyramid.m`` and the 32nd channel of its
``features.cc`` (Girshick, Felzenszwalb, McAllester, Ramanan; MIT-style
licence).  Release 5's ``features.cc`` computes the 31 HOG values of release
3.1 (:func:`dpm.features.hog`; it accumulates in single precision, the values
agree to about 1.5e-7) and returns them as single precision with a 32nd
channel, the truncation feature, that is 0 inside the image.  The pyramid then
pads every level with ``pady + 1`` rows and ``padx + 1`` columns of zeros (the
extra one makes up for the border cell ``features.cc`` drops) and sets the
truncation feature to 1 in the padding, so a filter learns what it means to
hang over the image's edge.

Differences from release 3.1's pyramid (:func:`dpm.features.feature_pyramid`):
the padding is part of the levels (``getpadding.m``: the largest detection
window, not half of it), levels are float32 like the original's ``single``,
and an optional extra octave of ``sbin / 4`` cells comes first (INRIA person).
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from .hog import hog, resize
from .kernels import fast_hog
from .pyramid import feature_pyramid, pyramid_scales

__all__ = ["PaddedPyramid", "TRUNCATION_CHANNEL", "feature_pyramid_r5", "hog32", "pad_level", "repad_pyramid"]

#: 0-based channel of the truncation feature (release 5's ``truncation_dim`` = 32).
TRUNCATION_CHANNEL = 31


@dataclass(eq=False)
class PaddedPyramid:
    """A release-5 feature pyramid (``pyra`` of ``featpyramid.m``).

    Attributes
    ----------
    levels : list of (h + 2*pady + 2, w + 2*padx + 2, 32) float32
        Padded levels; ``levels[l]`` is the original's ``pyra.feat{l+1}``.
    scales : (L,) float64
        Image scale of each level (a cell covers ``sbin / scales[l]`` pixels).
    sbin, interval : int
    padx, pady : int
        The padding of ``getpadding.m`` (each level has one more cell).
    extra_octave : bool
        Levels ``0 .. interval-1`` are ``sbin / 4`` cells (scales 4 .. 2).
    image_shape : (int, int)
    """

    levels: list
    scales: np.ndarray
    sbin: int
    interval: int
    padx: int
    pady: int
    extra_octave: bool
    image_shape: tuple

    def __len__(self) -> int:
        return len(self.levels)


def hog32(image, sbin: int = 8) -> np.ndarray:
    """Release 5's ``features(double(im), sbin)``: ``(h, w, 32)`` float32, channel 31 (the
    truncation feature) zero.  ``image`` as for :func:`dpm.features.hog`."""
    f = hog(image, sbin)
    out = np.zeros(f.shape[:2] + (TRUNCATION_CHANNEL + 1,), dtype=np.float32)
    out[:, :, :TRUNCATION_CHANNEL] = f
    return out


def pad_level(feat: np.ndarray, pady: int, padx: int) -> np.ndarray:
    """The padded 32-channel level (float32) of ``(h, w, 31)`` (or 32, the last one zero) features: one
    copy of them, and zeros with the truncation feature set in ``pady + 1`` rows and ``padx + 1``
    columns around them."""
    h, w = feat.shape[:2]
    y, x = pady + 1, padx + 1
    out = np.empty((h + 2 * y, w + 2 * x, TRUNCATION_CHANNEL + 1), dtype=np.float32)
    for band in (out[:y], out[y + h:], out[y:y + h, :x], out[y:y + h, x + w:]):
        band[:, :, :TRUNCATION_CHANNEL] = 0
        band[:, :, TRUNCATION_CHANNEL] = 1
    inner = out[y:y + h, x:x + w]
    inner[:, :, :TRUNCATION_CHANNEL] = feat[:, :, :TRUNCATION_CHANNEL]
    inner[:, :, TRUNCATION_CHANNEL] = 0
    return out


def feature_pyramid_r5(image, sbin: int = 8, interval: int = 10, *, padx: int, pady: int,
                       extra_octave: bool = False, exact: bool = True) -> PaddedPyramid:
    """``featpyramid(im, model, padx, pady)`` of voc-release5.

    Parameters
    ----------
    image : (H, W, 3) array_like
        Pixel values 0..255 (``double(im)``).
    sbin : int, default 8
        A multiple of 4 (the extra octave uses ``sbin / 4``).
    interval : int, default 10
    padx, pady : int
        Padding in cells (:attr:`dpm.model.release5.StarModel.padding` gives
        ``getpadding.m``'s).
    extra_octave : bool, default False
        ``model.features.extra_octave``.
    exact : bool, default True
        The release's features (:func:`hog32`), or, with False, the
        single-precision features of :func:`dpm.features.feature_pyramid`'s
        ``exact=False`` (the detection default, docs/detection.md "Fast
        features") from the same reduced images.

    Returns
    -------
    PaddedPyramid
        With ``sc = 2**(1/interval)``, ``e = interval if extra_octave else 0``
        and ``i = 1..interval``: the image reduced by ``1/sc**(i-1)`` gives
        level ``i-1`` (``sbin/4`` cells, only with the extra octave), level
        ``e+i-1`` (``sbin/2``) and level ``e+interval+i-1`` (``sbin``); then
        it is halved for each further octave up to ``max_scale``.
    """
    for name, value in (("padx", padx), ("pady", pady)):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < 0:
            raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")
    if isinstance(sbin, numbers.Integral) and sbin % 4:
        raise ValueError(f"sbin must be a multiple of 4 for a release-5 pyramid, got {sbin!r}")
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
        raise ValueError(f"image must be a non-empty (H, W, 3) array, got shape {image.shape}")
    h, w = image.shape[:2]
    base = pyramid_scales(h, w, sbin, interval)        # checks sbin and interval; [sbin/2 octave, sbin octaves]
    extra = interval if extra_octave else 0
    scales = np.concatenate([2 * base[:interval], base]) if extra else base
    # The sbin / 2 and sbin levels are release 3.1's pyramid (the same resizes and HOG; its float32
    # levels are the double features rounded once, as release 5's single(...)), which computes the
    # gradients of each first-octave image once for both cell sizes.
    levels = [None] * extra + list(feature_pyramid(image, sbin, interval, dtype=np.float32, exact=exact).levels)
    if extra:
        image = np.asarray(image, dtype=np.float64)
        sc = 2.0 ** (1.0 / interval)
        for i in range(1, interval + 1):
            scaled = resize(image, 1 / sc ** (i - 1))
            levels[i - 1] = hog(scaled, sbin // 4) if exact else fast_hog(scaled, sbin // 4)[0]
    levels = [pad_level(f, int(pady), int(padx)) for f in levels]
    return PaddedPyramid(levels=levels, scales=scales, sbin=int(sbin), interval=int(interval), padx=int(padx),
                         pady=int(pady), extra_octave=bool(extra), image_shape=(h, w))


def repad_pyramid(pyramid: PaddedPyramid, *, padx: int, pady: int) -> PaddedPyramid:
    """``pyramid`` with another padding: exactly the pyramid :func:`feature_pyramid_r5` builds with
    ``padx``, ``pady`` (the levels' features are the same; only their padding differs), so models of
    different window sizes share the features of one image."""
    for name, value in (("padx", padx), ("pady", pady)):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < 0:
            raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")
    y, x = pyramid.pady + 1, pyramid.padx + 1
    levels = [pad_level(f[y:f.shape[0] - y, x:f.shape[1] - x], int(pady), int(padx)) for f in pyramid.levels]
    return PaddedPyramid(levels=levels, scales=pyramid.scales, sbin=pyramid.sbin, interval=pyramid.interval,
                         padx=int(padx), pady=int(pady), extra_octave=pyramid.extra_octave,
                         image_shape=pyramid.image_shape)
