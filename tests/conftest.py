"""Shared test fixtures.

Tests that compare against the original release's outputs read them in place
from ``../shared`` (next to the repository; override with ``DPM_SHARED``) and
skip with a reason where it is absent.
"""
import importlib
import os
import signal
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DPM_SHARED", REPO.parent / "shared"))


def sigint_default():
    """``preexec_fn`` of a child that a test interrupts with SIGINT: the default disposition.

    A shell starts background jobs with SIGINT ignored, and Python then keeps it ignored in every
    child: a test run in the background would see Ctrl+C do nothing.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


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


def record_projection_dtypes(monkeypatch, module) -> list:
    """The dtypes a cascade detection module (dpm.detection.cascade or its release-5 counterpart)
    projects its levels in, one per detection, appended to the returned list as it runs."""
    seen = []
    real = module.cascade_levels

    def spy(pyramid, coeff, dtype, times):
        seen.append(np.dtype(dtype))
        return real(pyramid, coeff, dtype, times)

    monkeypatch.setattr(module, "cascade_levels", spy)
    return seen


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

# ---------------------------------------------------------------------------
# A tiny synthetic VOC folder for training tests


def _figure(img, box, rng):
    """Draw a bright standing figure (head, body, legs) filling ``box`` (1-based, inclusive)."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1 + 1, y2 - y1 + 1
    yy, xx = np.mgrid[0:img.shape[0], 0:img.shape[1]]
    cx = x1 - 1 + w / 2
    head = (xx - cx) ** 2 + (yy - (y1 - 1 + 0.12 * h)) ** 2 < (0.12 * h) ** 2
    body = (abs(xx - cx) < 0.3 * w) & (yy > y1 - 1 + 0.22 * h) & (yy < y1 - 1 + 0.62 * h)
    legs = ((abs(xx - cx + 0.15 * w) < 0.1 * w) | (abs(xx - cx - 0.15 * w) < 0.1 * w)) & \
           (yy >= y1 - 1 + 0.62 * h) & (yy <= y2 - 1)
    mask = head | body | legs
    img[mask] = 200 + rng.integers(0, 40, size=(int(mask.sum()), 3))


def _xml(image_id, size, boxes):
    w, h = size
    objs = "".join(f"<object><name>person</name><difficult>0</difficult><bndbox><xmin>{b[0]}</xmin>"
                   f"<ymin>{b[1]}</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
                   for b in boxes)
    return (f"<annotation><filename>{image_id}.jpg</filename><size><width>{w}</width><height>{h}</height>"
            f"<depth>3</depth></size>{objs}</annotation>")


def make_voc(root: Path, n_pos=5, n_neg=4, seed=0, extra_positive_boxes=()):
    """A VOC folder with ``n_pos`` images of one figure each and ``n_neg`` figure-free images."""
    rng = np.random.default_rng(seed)
    for sub in ("Annotations", "ImageSets/Main", "JPEGImages"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    ids_pos, ids_neg = [], []
    for i in range(n_pos):
        image_id = f"pos{i:02d}"
        img = rng.integers(0, 90, size=(200, 120, 3)).astype(np.uint8)
        box = (21 + i % 3, 21, 100 + i % 3, 180)
        _figure(img, box, rng)
        Image.fromarray(img).save(root / "JPEGImages" / f"{image_id}.jpg", quality=95)
        boxes = [box] + list(extra_positive_boxes if i == 0 else [])
        (root / "Annotations" / f"{image_id}.xml").write_text(_xml(image_id, (120, 200), boxes))
        ids_pos.append(image_id)
    for j in range(n_neg):
        image_id = f"neg{j:02d}"
        img = rng.integers(0, 120, size=(160, 160, 3)).astype(np.uint8)
        img[:, 40 + 20 * j:50 + 20 * j] = 220  # a vertical bar: something to mine
        Image.fromarray(img).save(root / "JPEGImages" / f"{image_id}.jpg", quality=95)
        (root / "Annotations" / f"{image_id}.xml").write_text(_xml(image_id, (160, 160), []))
        ids_neg.append(image_id)
    main = root / "ImageSets" / "Main"
    main.joinpath("trainval.txt").write_text("\n".join(ids_pos + ids_neg) + "\n")
    main.joinpath("train.txt").write_text("\n".join(ids_pos + ids_neg) + "\n")
    return root


# -- several classes: a VOC folder with two of them, and a small random model per class ------------

def make_two_class_voc(root: Path, n_pos=4, n_neg=4, seed=0, copies=1):
    """:func:`make_voc` with a second class: the bar of each figure-free image is a ``bar`` object.

    Every image is in ``ImageSets/Main/test.txt``.  ``copies`` > 1 repeats each
    image under new ids (``pos00-c1``, ...) with the same objects: a larger
    split for runs that must last a while.
    """
    make_voc(root, n_pos=n_pos, n_neg=n_neg, seed=seed)
    for j in range(n_neg):
        box = (31 + 20 * j, 30, 60 + 20 * j, 120)
        obj = (f"<object><name>bar</name><difficult>0</difficult><bndbox><xmin>{box[0]}</xmin>"
               f"<ymin>{box[1]}</ymin><xmax>{box[2]}</xmax><ymax>{box[3]}</ymax></bndbox></object>")
        xml = root / "Annotations" / f"neg{j:02d}.xml"
        xml.write_text(xml.read_text().replace("</annotation>", obj + "</annotation>"))
    ids = [f"pos{i:02d}" for i in range(n_pos)] + [f"neg{j:02d}" for j in range(n_neg)]
    for c in range(1, copies):
        for i in ids[:n_pos + n_neg]:
            new = f"{i}-c{c}"
            (root / "JPEGImages" / f"{new}.jpg").write_bytes((root / "JPEGImages" / f"{i}.jpg").read_bytes())
            (root / "Annotations" / f"{new}.xml").write_text(
                (root / "Annotations" / f"{i}.xml").read_text().replace(f"<filename>{i}.jpg", f"<filename>{new}.jpg"))
            ids.append(new)
    (root / "ImageSets" / "Main" / "test.txt").write_text("\n".join(ids) + "\n")
    return root


@pytest.fixture(scope="session")
def class_model_files(tmp_path_factory):
    """``{class: path}`` of three small root-only ``.npz`` models with random weights: person, bar, cat.

    Their windows (48x32 pixels) are the size of the objects of
    :func:`make_two_class_voc`'s ``person`` and ``bar``; ``cat`` has no object there.
    """
    import dataclasses

    from dpm.model import save_model
    from dpm.training import initmodel

    folder = tmp_path_factory.mktemp("class-models")
    h, w = SMALL_MODEL_ROOT
    out = {}
    for seed, cls in enumerate(("person", "bar", "cat")):
        model = initmodel(np.array([[1, 1, 8 * w, 8 * h]], float), size=(h, w))
        root = model.components[0].root
        root[:] = np.random.default_rng(20 + seed).standard_normal(root.shape) * 0.01
        out[cls] = folder / f"{cls}.npz"
        save_model(dataclasses.replace(model, class_name=cls), out[cls])
    return out


@pytest.fixture(params=builds_of("dpm._learn"))
def learner_build(request, monkeypatch):
    """Each build of the learner (dpm._learn and its AVX2 build), in use for the test."""
    import dpm.learn

    module = importlib.import_module(request.param)
    monkeypatch.setattr(dpm.learn.fit, "_learner", lambda: module)
    return module


@pytest.fixture
def problem(rng):
    """A random latent-SVM problem: ``(ExampleSet, BlockLayout)`` (tests/learn_reference.py)."""
    from learn_reference import random_examples, random_layout

    layout = random_layout(rng)
    return random_examples(rng, layout), layout
