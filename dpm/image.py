"""Reading images the way the original's ``imread`` + ``color.m`` see them.

The detector works on ``(H, W, 3)`` arrays with values 0..255 (MATLAB's
``double(uint8)``; spec §1.2).  :func:`read_image` and :func:`as_rgb` bring any
common image into that form:

* grey (``L``, 1-bit) is replicated into 3 channels, as ``color.m`` does;
* an alpha channel is dropped (``LA``, ``RGBA``);
* palette images are expanded to their colours;
* 16-bit images are scaled to 0..255 (``v / 257``, rounded);
* CMYK and YCbCr are converted to RGB.

EXIF orientation tags are ignored, as MATLAB's ``imread`` ignores them.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["read_image", "as_rgb", "upsample_image"]


def read_image(path) -> np.ndarray:
    """Read an image file as an ``(H, W, 3)`` uint8 RGB array.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        The file is not an image Pillow can decode, or is truncated; the message
        names the file.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise ValueError(f"{path}: is a directory, not an image")
    try:
        with Image.open(path) as im:
            im.load()
            return _pil_to_rgb(im)
    except UnidentifiedImageError:
        raise ValueError(f"{path}: not an image file (or a format this installation cannot decode)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read image ({' '.join(str(exc).split())})") from None


def _pil_to_rgb(im) -> np.ndarray:
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        a = np.asarray(im, dtype=np.float64)
        if mode == "I" and a.max(initial=0) <= 255:
            scaled = a
        else:
            scaled = a / 257.0
        return as_rgb(np.clip(np.floor(scaled + 0.5), 0, 255).astype(np.uint8))
    if mode == "F":
        return as_rgb(np.asarray(im, dtype=np.float64))
    if mode in ("1", "L", "LA"):
        return as_rgb(np.asarray(im.convert("L")))
    return np.ascontiguousarray(np.asarray(im.convert("RGB")))


def as_rgb(image) -> np.ndarray:
    """Bring an array image into ``(H, W, 3)`` form like ``color.m``.

    ``(H, W)`` and ``(H, W, 1)`` are replicated to 3 channels; ``(H, W, 2)``
    (grey + alpha) keeps the grey; ``(H, W, 4)`` drops the alpha.  The dtype is
    kept: values are expected to be 0..255.
    """
    a = np.asarray(image)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"expected an image of shape (H, W), (H, W, 3) or (H, W, 4), got {a.shape}")
    if a.shape[2] in (1, 2):
        a = np.repeat(a[:, :, :1], 3, axis=2)
    elif a.shape[2] == 4:
        a = a[:, :, :3]
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"empty image of shape {a.shape}")
    return np.ascontiguousarray(a)


def upsample_image(image: np.ndarray, factor: int) -> np.ndarray:
    """Enlarge an image by an integer factor with bilinear interpolation (Pillow).

    Used by ``detect(..., upsample=k)`` to find objects smaller than the root
    filter.  Pixel ``p`` (1-based) of the original covers pixels
    ``k*(p-1)+1 .. k*p`` of the result.
    """
    from PIL import Image

    if factor == 1:
        return image
    a = np.asarray(image)
    h, w = a.shape[:2]
    if a.dtype == np.uint8:
        pil = Image.fromarray(a)
        return np.asarray(pil.resize((w * factor, h * factor), Image.BILINEAR))
    chans = [np.asarray(Image.fromarray(a[:, :, c].astype(np.float32), mode="F")
                        .resize((w * factor, h * factor), Image.BILINEAR)) for c in range(a.shape[2])]
    return np.stack(chans, axis=2).astype(np.float64)
