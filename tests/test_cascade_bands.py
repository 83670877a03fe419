"""Star-cascade detection in bounded memory (dpm.detection.cascade_bands, dpm.detection.release5.bands):
the same detections as the cascade on the whole pyramid."""
import dataclasses
import warnings

import numpy as np
import pytest

import dpm
from dpm.cascade import Cascade, CascadeComponent
from dpm.cli.detect import main as detect_main
from dpm.data import resolve_models
from dpm.detection import detect
from dpm.detection.cascade import detect_cascade_raw
from dpm.detection.cascade_bands import BandGeometry, detect_cascade_raw_bounded
from dpm.detection.finish import upsampled
from dpm.detection.release5 import detect_raw_star_cascade
from dpm.detection.release5.bands import (check_star_memory, detect_raw_star_cascade_bounded, star_needs_bands,
                                          star_unbounded_peak)
from dpm.features.pyramid_r5 import feature_pyramid_r5

from conftest import shared_path

FIELDS = ("boxes", "scores", "components", "root_boxes", "part_boxes", "levels")
MEMORY = 2 ** 30


def assert_same(a, b):
    assert len(a) == len(b)
    assert a.image_shape == b.image_shape and a.class_name == b.class_name
    for f in FIELDS:
        assert np.array_equal(getattr(a, f), getattr(b, f)), f


def assert_same_star(a, b):
    assert len(a) == len(b)
    for f in ("ds", "bs", "boxes", "levels"):
        assert np.array_equal(getattr(a, f), getattr(b, f)), f


@pytest.fixture(scope="module")
def photo():
    return dpm.read_image(shared_path("models", "voc-release3.1", "000034.jpg"))


@pytest.fixture(scope="module")
def pets():
    """A PETS frame of person-voc enlarged twice: people the built-in person model finds (about 90)."""
    return upsampled(dpm.read_image(shared_path("data", "person-voc", "JPEGImages", "pets_0001.jpg")), 2)


@pytest.mark.parametrize("band_rows", [2, 9])
def test_release31_bands_equal_the_whole_pyramid(pets, band_rows):
    # Bands of 2 root rows: every band's search reaches across several others (its margins).
    model = resolve_models("person")[0]
    whole = detect_cascade_raw(pets, model, model.cascade)
    assert len(whole) > 50
    got = detect_cascade_raw_bounded(pets, model, model.cascade, max_memory=MEMORY, band_rows=band_rows)
    assert_same(got, whole)


def test_release31_bands_exact_features_and_no_pruning(photo):
    model = resolve_models("voc2007/person")[0]
    image = photo[:240, 100:420]
    whole = detect_cascade_raw(image, model, model.cascade, model.cascade.threshold - 1, exact_features=True)
    assert len(whole) > 0
    got = detect_cascade_raw_bounded(image, model, model.cascade, model.cascade.threshold - 1, max_memory=MEMORY,
                                     exact_features=True, band_rows=4)
    assert_same(got, whole)
    # Every threshold at -inf: the bands visit every position of the exact detector, none lost at a band's edge.
    comps = [CascadeComponent(np.array(list(range(1 + len(c.parts))) * 2, dtype=np.int64),
                              np.full(4 * (1 + len(c.parts)), -np.inf)) for c in model.components]
    open_cascade = Cascade(model.cascade.coeff, comps, model.thresh - 1.5)
    whole = detect_cascade_raw(image, model, open_cascade, skip_border=False)
    got = detect_cascade_raw_bounded(image, model, open_cascade, max_memory=MEMORY, skip_border=False, band_rows=3)
    assert len(whole) > 50
    assert_same(got, whole)


@pytest.mark.parametrize("name, exact, band_rows", [("r5/voc2007/person", False, 5), ("r5/voc2007/car", True, 11)])
def test_release5_bands_equal_the_whole_pyramid(photo, name, exact, band_rows):
    model = resolve_models(name)[0]
    pady, padx = model.padding
    pyramid = feature_pyramid_r5(photo, model.sbin, model.interval, padx=padx, pady=pady, exact=exact)
    threshold = model.cascade.threshold - 0.5
    whole = detect_raw_star_cascade(photo, model, None, threshold, pyramid=pyramid, exact_projections=exact)
    assert len(whole) > 100
    got = detect_raw_star_cascade_bounded(photo, model, None, threshold, max_memory=MEMORY, exact_features=exact,
                                          band_rows=band_rows)
    assert_same_star(got, whole)


def test_release5_extra_octave_bands():
    # INRIA person: an extra octave of sbin / 4 cells (the part levels of the first root octave).
    model = resolve_models("r5/inria/person")[0]
    assert model.extra_octave
    image = dpm.read_image(shared_path("data", "person-voc", "JPEGImages", "pets_0001.jpg"))[:300, :400]
    pady, padx = model.padding
    pyramid = feature_pyramid_r5(image, model.sbin, model.interval, padx=padx, pady=pady, extra_octave=True,
                                 exact=False)
    threshold = model.cascade.threshold - 1
    whole = detect_raw_star_cascade(image, model, None, threshold, pyramid=pyramid)
    assert len(whole) > 10
    got = detect_raw_star_cascade_bounded(image, model, None, threshold, max_memory=MEMORY, band_rows=6)
    assert_same_star(got, whole)


def test_detect_chooses_the_bands_by_the_estimate(photo, monkeypatch):
    r5, r31 = resolve_models("r5/voc2007/car")[0], resolve_models("person")[0]
    peak = star_unbounded_peak(photo.shape[:2], r5)
    assert star_needs_bands(photo.shape[:2], r5, cascade=True, max_memory=peak + 1) == 0
    assert star_needs_bands(photo.shape[:2], r5, cascade=True, max_memory=peak - 1) == peak - 1
    assert star_unbounded_peak((12000, 12000), r5) > 20 * 2 ** 30
    calls = []
    import dpm.detection.release5.single as single5

    real = single5.detect_raw_star_cascade_bounded
    monkeypatch.setattr(single5, "detect_raw_star_cascade_bounded", lambda *a, **k: calls.append(k) or real(*a, **k))
    thresholds = {"car": r5.cascade.threshold - 0.5, "person": r31.cascade.threshold - 1}
    whole = detect(photo, [r5, r31], threshold=thresholds, max_memory=2 ** 40)
    assert not calls and len(whole["car"]) > 0
    got = detect(photo, [r5, r31], threshold=thresholds, max_memory=64 * 2 ** 20)
    assert calls
    for name in whole:
        assert_same(got[name], whole[name])
    assert_same(dpm.detect(photo, r5, threshold=thresholds["car"], max_memory="64M"), whole["car"])


def test_release5_exact_detector_refuses_images_too_large(photo, tmp_path, capsys):
    model = resolve_models("r5/voc2007/car")[0]
    with pytest.raises(ValueError, match=r"max_memory=.*no banded path.*star-cascade.*voc2007/<class>"):
        check_star_memory(photo.shape[:2], model, max_memory=2 ** 20)
    with pytest.raises(ValueError, match="no banded path"):
        dpm.detect(photo, model, cascade=False, max_memory="1M")
    with pytest.raises(ValueError, match="no banded path"):
        detect(photo, [model, resolve_models("person")[0]], cascade=False, max_memory="1M")
    path = tmp_path / "p.png"
    from PIL import Image

    Image.fromarray(photo[:300, :400]).save(path)
    assert detect_main(["car", str(path), "--exact", "--max-memory", "1M", "-q"]) != 0
    err = capsys.readouterr().err
    # the batch's report: the image and its one-line reason
    assert "1 of 1 image(s) failed" in err and "Traceback" not in err
    assert any(str(path) in line and "no banded path" in line for line in err.splitlines())
    # With its cascade (the default), the same image in bounded memory.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        assert detect_main(["car", str(path), "--max-memory", "1M", "-q", "-o", str(tmp_path / "c.csv")]) == 0


def test_band_geometry_reaches_every_row_a_search_reads():
    g = BandGeometry(root_pad=11, root_xpad=5, part_pad=22, border=6, root_heights=(11, 9), anchors=(0, 3, 12),
                     part_heights=(6, 6, 5), window=4, part_stages=12)
    assert g.margin == 49
    height, part_height = 180, 370
    for q0, q1 in [(0, 10), (30, 31), (60, 200), (150, 200), (100, 180)]:
        c0, c1, e1 = g.crop(q0, q1, height, part_height)
        # rows of the maps the searched positions q0 .. q1-1 read: their root filters, their part windows
        assert c0 <= max(0, q0 - g.root_pad) and c1 >= min(height, q1 - 1 - g.root_pad + 11)
        assert 2 * c0 <= max(0, 2 * q0 + 0 - g.window - g.part_pad)
        assert e1 >= min(part_height, 2 * (q1 - 1) + 12 + 5 + g.window - g.part_pad)
        # the border rows the kernel skips at a map's ends are real ends or outside q0 .. q1-1
        assert c0 == 0 or q0 - c0 >= g.border
        positions = (c1 - c0) + 2 * g.root_pad - 11 + 1
        assert c1 == height or q1 - c0 <= positions - g.border


def test_crop_of_a_cascade_model_copy_keeps_the_results(pets):
    # A model whose cascade has another window: the margins follow it.
    model = resolve_models("person")[0]
    cascade = dataclasses.replace(model.cascade, window=2)
    whole = detect_cascade_raw(pets[:400], model, cascade)
    got = detect_cascade_raw_bounded(pets[:400], model, cascade, max_memory=MEMORY, band_rows=3)
    assert_same(got, whole)
