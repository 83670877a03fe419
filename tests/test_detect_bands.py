"""Detection in bounded memory (dpm.detection.bands): the same detections as the whole pyramid."""
import dataclasses
import warnings

import numpy as np
import pytest

import dpm
from dpm.cli.detect import main as detect_main
from dpm.convolve import FilterBank
from dpm.data import resolve_models as _resolve_models


def resolve_models(spec):
    """The models without the star-cascades some ship with: the banded path is the exact detector's."""
    return [dataclasses.replace(m, cascade=None) for m in _resolve_models(spec)]


from dpm.detection import bands, detect, detect_one, single
from dpm.features import feature_pyramid
from dpm.features.bands import pyramid_plan
from dpm.limits import MAX_MEMORY

from conftest import shared_path

FIELDS = ("boxes", "scores", "components", "root_boxes", "part_boxes", "levels")


def assert_same(a, b):
    assert len(a) == len(b)
    assert a.image_shape == b.image_shape and a.class_name == b.class_name
    for f in FIELDS:
        assert np.array_equal(getattr(a, f), getattr(b, f)), f


@pytest.fixture(scope="module")
def photo():
    return dpm.read_image(shared_path("models", "voc-release3.1", "000034.jpg"))


def bounded(**kwargs):
    """detect with a bound so small that every level is computed in several bands (and a warning
    says the bound cannot be held)."""
    image = kwargs["image"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        return detect(max_memory=bands.BASE_BYTES + image.nbytes * kwargs.get("upsample", 1) ** 2 + 2 ** 24,
                      **kwargs)


@pytest.mark.parametrize("dtype,exact", [(np.float32, True), (np.float64, True), (np.float32, False)])
def test_level_rows_in_any_bands_are_the_pyramids_levels(rng, dtype, exact):
    image = (rng.random((203, 261, 3)) * 255).astype(np.uint8)
    image[:40] = 0          # flat regions: zero gradients, zero feature rows
    image[120:160, 50:200] = (90, 140, 30)
    pyramid = feature_pyramid(image, 8, 10, dtype=dtype, exact=exact)
    for cache, band_bytes in ((0, 3000), (10 ** 9, 10 ** 9)):
        levels, scales = pyramid_plan(image, 8, 10, cache_bytes=cache, band_bytes=band_bytes, exact=exact)
        assert np.array_equal(scales, pyramid.scales)
        assert len(levels) == len(pyramid.levels)
        for plan, level in zip(levels, pyramid.levels):
            assert plan.shape == level.shape
            for band in (1, 4):
                rows = [plan.rows(a, min(a + band, plan.shape[0]), dtype) for a in range(0, plan.shape[0], band)]
                assert np.array_equal(np.concatenate(rows), level), (plan.index, band)


@pytest.mark.parametrize("dtype,exact", [(np.float32, False), (np.float64, False), (np.float64, True)])
def test_responses_fed_in_bands_are_one_convolution(rng, dtype, exact):
    filters = [rng.standard_normal(s + (31,)) for s in [(6, 6), (5, 11), (3, 4)]]
    bank = FilterBank(filters, dtype=dtype)
    feats = rng.random((97, 143, 31)).astype(dtype)
    feats[30:32] = 0
    feats[:, :4] = 0
    whole = bank.convolve(feats, pad=(7, 3), exact_order=exact)
    for band in (1, 2, 5, 97):
        fed = bank.band_responses(97, 143, pad=(7, 3), exact_order=exact)
        start, n = 0, band
        while start < 97:
            nxt = fed.feed(feats[start:min(97, start + n)], start)
            n = band if nxt > start else 2 * n
            start = nxt
        assert all(np.array_equal(a, b) for a, b in zip(whole, fed.responses)), band
    with pytest.raises(ValueError, match="from row 0"):
        bank.band_responses(97, 143).feed(feats[5:9], 5)


@pytest.mark.parametrize("name,crop,upsample,exact_features", [
    ("person", (slice(0, 300), slice(0, 400)), 1, True),
    ("person", (slice(0, 300), slice(0, 400)), 1, None),
    ("person", (slice(100, 260), slice(200, 420)), 2, True),
    ("person", (slice(100, 260), slice(200, 420)), 2, False),
    ("voc2007/person", (slice(None), slice(None)), 1, True),
    ("voc2007/person", (slice(None), slice(None)), 1, None),
    ("voc2007/person", (slice(0, 300), slice(0, 400)), 2, None),
])
def test_bounded_detection_equals_the_whole_pyramid(photo, name, crop, upsample, exact_features):
    model = resolve_models(name)[0]
    image = photo[crop]
    for nms in (None, 0.5):
        kwargs = dict(image=image, models=model, threshold=-2.0, upsample=upsample, nms=nms,
                      exact_features=exact_features)
        whole = detect(max_memory=2 ** 40, **kwargs)
        assert len(whole) > (5 if nms is None else 0)
        assert_same(bounded(**kwargs), whole)


@pytest.mark.parametrize("exact_features", [True, None])
def test_several_models_in_one_bounded_pass(photo, exact_features):
    models = dict(zip(("builtin", "person", "horse"), resolve_models("person") + resolve_models("voc2007/person,voc2007/horse")))
    image = photo[:320, 100:560]
    threshold = {name: m.thresh - 0.5 for name, m in models.items()}
    whole = detect(image, models, threshold=threshold, max_memory=2 ** 40, exact_features=exact_features)
    got = bounded(image=image, models=models, threshold=threshold, exact_features=exact_features)
    assert list(got) == list(whole)
    for name in whole:
        assert_same(got[name], whole[name])
    # One group per model when the responses do not fit together, all together when they do.
    levels, _ = pyramid_plan(image, 8, 10)
    mods = models
    need = {n: bands._level_bytes(m, levels[10].shape, levels[0].shape, 4) for n, m in mods.items()}
    assert bands._groups(list(mods), mods, need, 1) == [[n] for n in mods]
    assert bands._groups(list(mods), mods, need, sum(need.values())) == [list(mods)]


def test_bounded_path_is_chosen_by_the_estimate(photo, monkeypatch):
    model = _resolve_models("voc2007/person")[0]
    models = {"person": model}
    small = bands.unbounded_peak(photo.shape[:2], models)
    # About 130 bytes per pixel were measured for this model (docs/limits.md).
    assert 60 * photo.shape[0] * photo.shape[1] < small - bands.BASE_BYTES < 200 * photo.shape[0] * photo.shape[1]
    assert bands.unbounded_peak((12000, 12000), models) > MAX_MEMORY
    assert bands.needs_bands(photo.shape[:2], models) == 0
    calls, cascaded = [], []
    real, real_cascade = bands.detect_raw_bounded, single.detect_cascade_raw_bounded
    monkeypatch.setattr(single, "detect_raw_bounded", lambda *a, **k: calls.append(k) or real(*a, **k))
    monkeypatch.setattr(single, "detect_cascade_raw_bounded",
                        lambda *a, **k: cascaded.append(k) or real_cascade(*a, **k))
    monkeypatch.setenv("DPM_MAX_MEMORY", str(small - 1))
    assert model.cascade is not None
    # The exact detector in bands, with the fast features by default.
    got = detect_one(photo, model, cascade=False)
    assert calls and calls[0]["max_memory"] == small - 1 and calls[0]["exact_features"] is None
    assert_same(got, detect_one(photo, model, max_memory=small + 1, cascade=False))
    got = detect_one(photo, model, exact_features=True, cascade=False)
    assert calls[1]["exact_features"] is True
    assert_same(got, detect_one(photo, model, max_memory=small + 1, exact_features=True, cascade=False))
    assert len(calls) == 2 and not cascaded
    # A model with a star-cascade: the cascade in bands, the detections of the cascade on the whole pyramid.
    got = detect_one(photo, model, threshold=model.cascade.threshold - 0.5)
    assert cascaded and cascaded[0]["max_memory"] == small - 1 and len(calls) == 2
    assert_same(got, detect_one(photo, model, max_memory=small + 1, threshold=model.cascade.threshold - 0.5))


def test_max_memory_is_checked():
    with pytest.raises(ValueError, match="max_memory"):
        bands.resolve_max_memory(-5)
    with pytest.raises(ValueError, match="max_memory"):
        bands.resolve_max_memory("lots")
    assert bands.resolve_max_memory("512M") == 512 * 2 ** 20
    assert bands.resolve_max_memory("1.5G") == 3 * 2 ** 29      # the default, as the help shows it
    with pytest.raises(ValueError, match="max_memory"):
        bands.resolve_max_memory("1.5")                          # a fraction of a byte
    assert bands.resolve_max_memory(None) == MAX_MEMORY


def test_cli_max_memory(photo, tmp_path, capsys):
    path = tmp_path / "p.png"
    from PIL import Image

    Image.fromarray(photo[:300, :400]).save(path)
    out = {}
    for mem in ("64G", "1M"):      # --exact: a huge image is detected by the exact detector, whatever the model
        target = tmp_path / f"{mem}.csv"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            assert detect_main(["person", str(path), "--max-memory", mem, "--threshold", "-2", "--nms", "1", "-o", str(target),
                                "--exact", "-q"]) == 0
        out[mem] = target.read_text()
    # Both paths compute the fast features (the default): the same bytes.
    assert len(out["64G"].splitlines()) > 2
    assert out["1M"] == out["64G"]
    with pytest.raises(SystemExit) as exc:
        detect_main(["person", str(path), "--max-memory", "3Q"])
    assert exc.value.code == 2
    assert "--max-memory" in capsys.readouterr().err
