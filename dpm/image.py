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

Images larger than a limit (150 million pixels by default; ``max_pixels=`` or the
environment variable ``DPM_MAX_PIXELS``) are refused from their header, before
any pixel is decoded: a 0.4 MB PNG can declare 20000 x 20000 pixels (1.2 GB
decoded).  Detection itself stays within ``max_memory`` (docs/limits.md).
"""
from __future__ import annotations

import re
import warnings
from pathlib import Path
from struct import error as struct_error

import numpy as np

from .limits import limit, too_big

__all__ = ["read_image", "as_rgb", "upsample_image"]


def read_image(path, *, max_pixels: int | None = None) -> np.ndarray:
    """Read an image file as an ``(H, W, 3)`` uint8 RGB array.

    Parameters
    ----------
    path : str or Path
    max_pixels : int, optional
        Most pixels (width x height) the image may have, checked from its header
        before decoding.  Default: the environment variable ``DPM_MAX_PIXELS``,
        else 150 million (:data:`dpm.limits.MAX_PIXELS`).

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    dpm.limits.LimitError
        The image has more than ``max_pixels`` pixels (a ``ValueError``).
    ValueError
        The file is not an image Pillow can decode, or is truncated or corrupt;
        the message names the file.
    MemoryError
        Decoding ran out of memory (within ``max_pixels``); the message names
        the file and its size.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    max_pixels = limit("MAX_PIXELS", max_pixels)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise ValueError(f"{path}: is a directory, not an image")
    size = None
    try:
        with warnings.catch_warnings():
            # The size is checked against max_pixels below; Pillow's own bomb warning
            # (above 89 million pixels) would only repeat it.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                size = im.size
                if size[0] * size[1] > max_pixels:
                    raise too_big(path, "the image", f"{size[0]}x{size[1]} = {size[0] * size[1]:,} pixels",
                                  "MAX_PIXELS", max_pixels, "max_pixels", unit=lambda v: f"{v:,} pixels")
                im.load()
                return _pil_to_rgb(im)
    except UnidentifiedImageError:
        raise ValueError(f"{path}: not an image file (or a format this installation cannot decode)") from None
    except Image.DecompressionBombError as exc:
        # Beyond Pillow's own limit (2 x PIL.Image.MAX_IMAGE_PIXELS), checked as Pillow opens the file.
        declared = re.search(r"\((\d+) pixels\)", str(exc))
        if declared and int(declared.group(1)) > max_pixels:
            n = int(declared.group(1))
            raise too_big(path, "the image", f"{n:,} pixels", "MAX_PIXELS", max_pixels, "max_pixels",
                          unit=lambda v: f"{v:,} pixels") from None
        raise ValueError(f"{path}: cannot read image ({' '.join(str(exc).split())}); raise "
                         "PIL.Image.MAX_IMAGE_PIXELS as well to read it") from None
    except MemoryError:
        shown = f"a {size[0]}x{size[1]} image" if size else "the image"
        raise MemoryError(f"{path}: not enough memory to decode {shown}; lower DPM_MAX_PIXELS (or max_pixels=) "
                          "to refuse such images up front") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, struct_error) as exc:
        if str(exc).startswith(str(path)):
            raise
        raise ValueError(f"{path}: cannot read image ({' '.join(str(exc).split()) or type(exc).__name__})") \
            from None


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
    # In strips: converting the whole image and taking it as an array would hold the decoded
    # image four times over (Pillow's copy, then its bytes joined from chunks); this holds it twice.
    w, h = im.size
    out = np.empty((h, w, 3), dtype=np.uint8)
    step = max(1, 2 ** 24 // (4 * max(w, 1)))
    for y0 in range(0, h, step):
        strip = im.crop((0, y0, w, min(h, y0 + step)))
        out[y0:y0 + strip.size[1]] = np.asarray(strip if strip.mode == "RGB" else strip.convert("RGB"))
    return out


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
