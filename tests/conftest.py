"""Shared test fixtures.

Tests that compare against the original release's outputs read them in place
from ``../shared`` (next to the repository; override with ``DPM_SHARED``) and
skip with a reason where it is absent.
"""
import importlib
import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DPM_SHARED", REPO.parent / "shared"))


def shared_path(*parts):
    """Return a path inside ``../shared``, skipping the test if it is missing."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (the original release's outputs live in ../shared)")
    return path


@pytest.fixture(scope="session")
def golden():
    """Load a golden ``.npz`` by stem: ``golden('features')['f8_000034']``."""
    cache = {}

    def load(stem):
        if stem not in cache:
            cache[stem] = np.load(shared_path("golden", f"{stem}.npz"))
        return cache[stem]

    return load


@pytest.fixture(scope="session")
def models_dir():
    return shared_path("models", "voc-release3.1")


def keys_cubic(x):
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB imresize 'bicubic'), a plain reference."""
    a = abs(x)
    if a <= 1:
        return 1.5 * a ** 3 - 2.5 * a ** 2 + 1
    if a <= 2:
        return -0.5 * a ** 3 + 2.5 * a ** 2 - 4 * a + 2
    return 0.0


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def builds_of(module):
    """Full names of the builds of a compiled module that can run here: the
    portable one, then its AVX2 build where it was built and the processor
    has AVX2 (the last one is what the package uses)."""
    from dpm import _cpu

    names = [module]
    if _cpu.have_avx2():
        try:
            importlib.import_module(module + "_avx2")
            names.append(module + "_avx2")
        except ImportError:
            pass
    return names


# -- small, fast inputs for batch and fault tests ------------------------------------------------

SMALL_MODEL_ROOT = (6, 4)     # cells: the model's window is 48x32 pixels


@pytest.fixture(scope="session")
def small_model_file(tmp_path_factory):
    """A one-component, root-only ``.npz`` model with random weights (48x32-pixel window)."""
    from dpm.model import save_model
    from dpm.training import initmodel

    h, w = SMALL_MODEL_ROOT
    model = initmodel(np.array([[1, 1, 8 * w, 8 * h]], float), size=(h, w))
    root = model.components[0].root
    root[:] = np.random.default_rng(7).standard_normal(root.shape) * 0.01
    path = tmp_path_factory.mktemp("small-model") / "small.npz"
    save_model(model, path)
    return path


def write_good_image(path, rng, size=None):
    """A small random image (64..127 x 64..127 pixels), in the format of ``path``'s suffix."""
    from PIL import Image

    h, w = size or (int(rng.integers(64, 128)), int(rng.integers(64, 128)))
    Image.fromarray(rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)).save(path)
    return path


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    import struct
    import zlib

    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


HOSTILE = ("zero.jpg", "truncated.jpg", "text.png", "tiny.png", "bomb.png")


def write_hostile_image(path, kind, rng):
    """Write one hostile input: ``zero`` (0 bytes), ``truncated`` (half a JPEG), ``text``
    (text in an image's name), ``tiny`` (smaller than the small model), ``bomb`` (a 100-byte
    PNG declaring 30000x30000 pixels)."""
    import io
    import struct
    import zlib

    from PIL import Image

    path = Path(path)
    if kind == "zero":
        path.write_bytes(b"")
    elif kind == "truncated":
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, size=(96, 96, 3), dtype=np.uint8)).save(buf, "JPEG")
        path.write_bytes(buf.getvalue()[:len(buf.getvalue()) // 2])
    elif kind == "text":
        path.write_text("this is not an image\n")
    elif kind == "tiny":
        write_good_image(path, rng, size=(16, 16))
    elif kind == "bomb":
        ihdr = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
                         + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _png_chunk(b"IEND", b""))
    else:
        raise ValueError(kind)
    return path
