"""Fuzzing of model files and images (hypothesis), run by tests/test_fuzz_files.py in a child process.

Every mutated file must either load correctly (a model that passes
``validate_model`` and detects with finite scores and boxes; an image as an
``(H, W, 3)`` uint8 array within the pixel limit) or raise ``ValueError`` /
``FileNotFoundError`` with a one-line message naming the file.  The child runs
under an address-space cap, so an unbounded allocation fails as a
``MemoryError`` (which counts as a failure) instead of taking the machine.

Usage: ``python tests/fuzz_files.py EXAMPLES [MAT_MODEL]``.
"""
import io
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hostile
import dpm
from dpm.files import read_npz
from dpm.model import model_to_payload, validate_model

REPO = Path(__file__).resolve().parents[1]
PERSON = REPO / "dpm" / "data" / "person.npz"
TMP = Path(tempfile.mkdtemp(prefix="dpm-fuzz-"))
CLEAN = (ValueError, FileNotFoundError)


def check_error(exc, path):
    text = str(exc)
    assert isinstance(exc, CLEAN), f"{type(exc).__name__}: {text}"
    assert "\n" not in text and str(path) in text, repr(text)


def check_model_file(data: bytes, suffix: str):
    path = TMP / f"fuzzed{suffix}"
    path.write_bytes(data)
    try:
        model = dpm.load_model(path)
    except Exception as exc:  # noqa: BLE001 - the type is what is checked
        check_error(exc, path)
        return
    validate_model(model)
    with np.errstate(all="raise"):       # no overflow anywhere in detection
        dets = dpm.detect(np.zeros((48, 48, 3)) + np.arange(48)[:, None, None] * 5, model, threshold=-1e9)
    assert np.isfinite(dets.scores).all() and np.isfinite(dets.boxes).all()


def check_image_file(data: bytes, suffix: str):
    path = TMP / f"fuzzed{suffix}"
    path.write_bytes(data)
    try:
        image = dpm.read_image(path, max_pixels=4_000_000)
    except Exception as exc:  # noqa: BLE001
        check_error(exc, path)
        return
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert image.shape[0] * image.shape[1] <= 4_000_000


def mutate(data: bytes, draw) -> bytes:
    """Truncation, bit flips, overwritten runs of bytes, or 32-bit fields set to extremes."""
    b = bytearray(data)
    kind = draw(st.sampled_from(["truncate", "flip", "overwrite", "int32"]))
    if kind == "truncate":
        return bytes(b[: draw(st.integers(0, len(b)))])
    for _ in range(draw(st.integers(1, 8))):
        at = draw(st.integers(0, len(b) - 1))
        if kind == "flip":
            b[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "overwrite":
            run = draw(st.binary(min_size=1, max_size=16))
            b[at:at + len(run)] = run
        else:
            value = draw(st.sampled_from([0, 1, 0x7FFFFFFF, 0xFFFFFFFF, 0x80000000, 0xFFFF, 10 ** 9]))
            b[at:at + 4] = value.to_bytes(4, draw(st.sampled_from(["little", "big"])))
    return bytes(b)


PERSON_BYTES = PERSON.read_bytes()
PERSON_ARRAYS = read_npz(PERSON)


def payload_bytes(meta, arrays) -> bytes:
    arrays = dict(arrays, format=np.array("dpm-model"), format_version=np.array(1),
                  meta=np.array(json.dumps(meta)))
    path = TMP / "payload.npz"
    hostile.write_zip(path, [hostile.npz_member(k, v) for k, v in arrays.items()])
    return path.read_bytes()


@st.composite
def model_payloads(draw):
    """Structurally valid files with one hostile value: a field, a weight, or a member size."""
    meta, arrays = model_to_payload(dpm.load_model(PERSON))
    arrays = {k: v.copy() for k, v in arrays.items()}
    kind = draw(st.sampled_from(["field", "weight", "size", "shape"]))
    extreme = st.sampled_from([0, -1, 1, 7, 65, 101, 10 ** 6, 2 ** 31, -(2 ** 63), 1e308, float("nan"),
                               float("inf"), -float("inf")])
    if kind == "field":
        key = draw(st.sampled_from(["sbin", "interval", "thresh"]))
        meta[key] = draw(extreme)
        if key != "thresh" and isinstance(meta[key], float) and not np.isfinite(meta[key]):
            meta[key] = 10 ** 9
        comp = meta["components"][0]
        part = comp["parts"][draw(st.integers(0, len(comp["parts"]) - 1))]
        which = draw(st.sampled_from(["anchor", "partner", "filter_block", "def_block", "none"]))
        value = draw(st.integers(-(2 ** 40), 2 ** 40))
        if which == "anchor":
            part["anchor"][draw(st.integers(0, 1))] = value
        elif which != "none":
            part[which] = value
    elif kind == "weight":
        key = draw(st.sampled_from(sorted(arrays)))
        value = draw(extreme)
        if np.issubdtype(arrays[key].dtype, np.integer):
            # Integer members (a cascade's part order) take the extremes their type can hold.
            info = np.iinfo(arrays[key].dtype)
            if not (isinstance(value, int) and info.min <= value <= info.max):
                value = info.min if value < 0 else info.max
        arrays[key].flat[draw(st.integers(0, arrays[key].size - 1))] = value
    elif kind == "shape":
        key = draw(st.sampled_from(sorted(arrays)))
        arrays[key] = np.zeros(tuple(draw(st.lists(st.integers(0, 70), min_size=0, max_size=4))))
    data = payload_bytes(meta, arrays)
    if kind == "size":
        # Rewrite one member with a lying declared size.
        members = [hostile.npz_member(k, v) for k, v in arrays.items()]
        i = draw(st.integers(0, len(members) - 1))
        name, blob, crc, size, method = members[i]
        members[i] = (name, blob, crc, draw(st.sampled_from([0, 1, size - 1, size + 1, 2 ** 31, 2 ** 40])), method)
        path = TMP / "sizes.npz"
        hostile.write_zip(path, members)
        data = path.read_bytes()
    return data


def small_images():
    from PIL import Image
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, size=(24, 32, 3), dtype=np.uint8)
    out = []
    for fmt, mode in [("PNG", "RGB"), ("JPEG", "RGB"), ("GIF", "P"), ("BMP", "RGB"), ("TIFF", "RGB"),
                      ("PNG", "I;16"), ("WEBP", "RGB")]:
        im = Image.fromarray(a).convert(mode) if mode != "I;16" else Image.fromarray(a[:, :, 0].astype(np.uint16) * 200)
        bio = io.BytesIO()
        try:
            im.save(bio, format=fmt)
        except (OSError, KeyError):
            continue
        out.append((bio.getvalue(), "." + fmt.lower()))
    return out


IMAGES = small_images()
SETTINGS = dict(deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck),
                print_blob=False)


def run(examples: int, mat_model: str | None):
    @settings(max_examples=examples, **SETTINGS)
    @given(st.data())
    def npz_bytes(data):
        check_model_file(mutate(PERSON_BYTES, data.draw), ".npz")

    @settings(max_examples=examples, **SETTINGS)
    @given(model_payloads())
    def npz_payloads(data):
        check_model_file(data, ".npz")

    @settings(max_examples=max(examples // 3, 10), **SETTINGS)
    @given(st.integers(1, 4096), st.integers(0, 10), st.booleans())
    def npz_bombs(mib, shift, lie):
        declared = mib * hostile.MiB << shift
        path = TMP / "bomb.npz"
        hostile.model_npz_bomb(path, PERSON_ARRAYS, declared=hostile.MiB if lie else declared,
                               actual=min(declared, 2 * hostile.GiB))
        check_model_file(path.read_bytes(), ".npz")

    @settings(max_examples=max(examples // 3, 10), **SETTINGS)
    @given(st.integers(1, 2 ** 31 // hostile.MiB), st.one_of(st.none(), st.integers(16, 2 ** 32 - 1)))
    def mat_bombs(mib, declared):
        path = TMP / "bomb.mat"
        hostile.mat_bomb(path, inflated=mib * hostile.MiB, declared=declared)
        check_model_file(path.read_bytes(), ".mat")

    @settings(max_examples=examples, **SETTINGS)
    @given(st.sampled_from(IMAGES), st.data())
    def images(image, data):
        blob, suffix = image
        check_image_file(mutate(blob, data.draw), suffix)

    @settings(max_examples=max(examples // 3, 10), **SETTINGS)
    @given(st.integers(1, 2 ** 20), st.integers(1, 2 ** 20))
    def huge_pngs(w, h):
        path = TMP / "huge.png"
        if w * h > 3 * 10 ** 8:                  # the deflate stream alone would be large
            h = max(1, 3 * 10 ** 8 // w)
        hostile.huge_png(path, w, h)
        check_image_file(path.read_bytes(), ".png")

    tests = [npz_bytes, npz_payloads, npz_bombs, mat_bombs, images, huge_pngs]
    if mat_model:
        mat_bytes = Path(mat_model).read_bytes()

        @settings(max_examples=examples, **SETTINGS)
        @given(st.data())
        def mat_files(data):
            check_model_file(mutate(mat_bytes, data.draw), ".mat")
        tests.append(mat_files)
    for test in tests:
        test()
        print(f"{test.__name__}: ok", flush=True)


if __name__ == "__main__":
    os.environ.setdefault("DPM_MAX_MODEL_BYTES", str(64 * hostile.MiB))
    run(int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else None)
