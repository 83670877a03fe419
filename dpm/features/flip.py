"""Horizontal mirroring of HOG maps (port of ``flipfeat.m``: voc-release3.1's 31 channels, voc-release5's
32, whose last, the truncation feature, is not permuted)."""
import numpy as np

__all__ = ["FLIP_PERMUTATION", "flip_features"]


def _flip_permutation() -> np.ndarray:
    # Channel k of the mirrored map is channel perm[k] of the original (0-based):
    # contrast-sensitive bins o -> (9 - o) mod 18, insensitive 18 + j -> 18 + (9 - j) mod 9,
    # texture channels swap the left and right normalisation blocks (27 <-> 29, 28 <-> 30).
    sensitive = [(9 - o) % 18 for o in range(18)]
    insensitive = [18 + (9 - j) % 9 for j in range(9)]
    texture = [29, 30, 27, 28]
    return np.array(sensitive + insensitive + texture, dtype=np.intp)


FLIP_PERMUTATION = _flip_permutation()


def flip_features(f: np.ndarray) -> np.ndarray:
    """Mirror a feature map or filter left/right.

    Parameters
    ----------
    f : (H, W, 31) or (H, W, 32) ndarray
        HOG features or a filter, indexed ``[y, x, channel]``; a 32nd channel
        (release 5's truncation feature) is mirrored spatially only.

    Returns
    -------
    ndarray of the same shape
        The features of the horizontally flipped image: columns reversed and
        orientation channels permuted as in ``flipfeat.m``.
    """
    f = np.asarray(f)
    if f.ndim != 3 or f.shape[2] not in (FLIP_PERMUTATION.size, FLIP_PERMUTATION.size + 1):
        raise ValueError(f"expected an (H, W, 31) or (H, W, 32) feature array, got shape {f.shape}")
    perm = FLIP_PERMUTATION if f.shape[2] == FLIP_PERMUTATION.size else np.append(FLIP_PERMUTATION,
                                                                                  FLIP_PERMUTATION.size)
    return np.ascontiguousarray(f[:, ::-1, perm])
