"""voc-release5 star-model detection against the release's own outputs, step by step of ``process.m``.

For each (model, image, threshold) case of ``../shared/golden/release5/dets_*.mat``:
the raw detections (``ds_raw``, ``bs_raw``) and the boxes after each step
(clipboxes, bboxpred_get(reduceboxes), clipboxes, nms) equal the release's:
same count and order, coordinates within 1e-3 pixel, scores within 1e-5.

Named tie: the release sums filter responses in float32 (``fconv_32``), this
port in float64, so scores differ by up to ~2e-6.  In ``person_000034`` two raw
detections, rows 631 and 632 (1-based; scores -1.4135962 and -1.4135959 in the
release, 6e-8 apart here), come out in swapped order.  Nothing else differs;
after bboxpred_get (which regroups rows by component) the order agrees again.
Four cases run by default, all thirteen with ``-m slow``.
"""
import numpy as np
import pytest
import scipy.io as sio

import dpm
from dpm.detection.release5 import detect_raw_star, process_star

from conftest import shared_path

MODELS = {"person": ("VOC2007", "person_final.mat"), "car": ("VOC2007", "car_final.mat"),
          "bicycle": ("VOC2007", "bicycle_final.mat"), "inriaperson": ("INRIA", "inriaperson_final.mat")}
DEFAULT = ["person_000061_modelthresh", "person_000061_minus1", "person_000034_modelthresh",
           "inriaperson_000061_modelthresh"]
SLOW = [f"{m}_{i}_modelthresh" for m in ("bicycle", "car", "inriaperson", "person")
        for i in ("000034", "000061", "000084")]
SLOW = [c for c in SLOW if c not in DEFAULT]
# Raw rows (0-based) that come out in swapped order because of a float32/float64 near-tie.
KNOWN_SWAPS = {"person_000034_modelthresh": {(630, 631)}}


@pytest.fixture(scope="module")
def cache():
    return {}


def _case(name, cache):
    gold = sio.loadmat(shared_path("golden", "release5", f"dets_{name}.mat"))
    mname, img, _ = name.split("_")
    key = (mname, img)
    if key not in cache:
        images = sio.loadmat(shared_path("golden", "release5", "images_decoded_octave.mat"))
        model = dpm.load_model(shared_path("models", "voc-release5", *MODELS[mname]))
        cache.clear()     # one case at a time in memory
        cache[key] = (model, images[f"im_{img}"], {})
    model, image, raws = cache[key]
    thresh = float(gold["thresh"].item())
    if thresh not in raws:
        raws[thresh] = detect_raw_star(image, model, thresh)
    return model, image, raws[thresh], gold


def _swaps(ours, theirs):
    """Pairs of adjacent rows that are swapped between the two (boxes compared within 1e-3)."""
    differ = np.flatnonzero(np.abs(ours[:, :4] - theirs[:, :4]).max(axis=1) > 1e-3)
    pairs = set()
    for i in differ:
        if i + 1 < len(ours) and np.abs(ours[i, :5] - theirs[i + 1, :5]).max() <= 1e-3 \
                and np.abs(ours[i + 1, :5] - theirs[i, :5]).max() <= 1e-3:
            pairs.add((int(i), int(i) + 1))
    covered = {k for p in pairs for k in p}
    assert covered == set(differ.tolist()), f"rows differ beyond adjacent swaps: {sorted(set(differ) - covered)}"
    return pairs


def _same(ours, theirs, what, perm=None):
    theirs = np.asarray(theirs, dtype=np.float64)
    if theirs.size == 0:
        assert ours.shape[0] == 0, what
        return
    assert ours.shape == theirs.shape, (what, ours.shape, theirs.shape)
    if perm is not None:
        theirs = theirs[perm]
    assert np.abs(ours[:, :-1] - theirs[:, :-1]).max() <= 1e-3, what
    assert np.abs(ours[:, -1] - theirs[:, -1]).max() <= 1e-5, what


def _check(name, cache):
    model, image, raw, gold = _case(name, cache)
    perm = None
    if gold["ds_raw"].size:
        assert len(raw) == gold["ds_raw"].shape[0]
        swaps = _swaps(raw.ds, gold["ds_raw"])
        assert swaps == KNOWN_SWAPS.get(name, set())
        perm = np.arange(len(raw))
        for i, j in swaps:
            perm[[i, j]] = perm[[j, i]]
            assert abs(raw.ds[i, 5] - raw.ds[j, 5]) < 1e-5
    _same(raw.ds, gold["ds_raw"], "ds_raw", perm)
    _same(raw.bs, gold["bs_raw"], "bs_raw", perm)
    steps = process_star(raw, model, image.shape[:2])
    _same(steps.clip1[0], gold["ds_clip1"], "ds_clip1", perm)
    _same(steps.clip1[1], gold["bs_clip1"], "bs_clip1", perm)
    for step, label in ((steps.bbpred, "bbpred"), (steps.clip2, "clip2"), (steps.final, "final")):
        _same(step[0], gold[f"ds_{label}"], f"ds_{label}")
        _same(step[1], gold[f"bs_{label}"], f"bs_{label}")
    np.testing.assert_array_equal(steps.nms, gold["nms_idx"].ravel().astype(np.intp) - 1)


@pytest.mark.parametrize("name", DEFAULT)
def test_detections_match_release5(name, cache):
    _check(name, cache)


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW)
def test_detections_match_release5_all_cases(name, cache):
    _check(name, cache)


def test_detect_runs_a_star_model(cache):
    model, image, raw, gold = _case("person_000061_modelthresh", cache)
    dets = dpm.detect(image, model, cascade=False)   # the model carries its published cascade
    final = np.asarray(gold["ds_final"], dtype=np.float64)
    assert len(dets) == final.shape[0] == 18
    assert np.abs(dets.boxes - final[:, :4]).max() <= 1e-3
    assert np.abs(dets.scores - final[:, 4]).max() <= 1e-5
    assert dets.part_boxes.shape == (18, 8, 4) and dets.class_name == "person"
    # The root boxes are the kept rows' detection windows among the raw detections.
    gaps = np.abs(dets.root_boxes[:, None, :] - raw.ds[None, :, :4]).max(axis=2).min(axis=1)
    assert gaps.max() == 0
