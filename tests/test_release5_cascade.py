"""Release-5 models with the star-cascades of the release's published statistics.

* thresholds and part order from a few published positives against a hand
  computation of ``cascade_model.m``'s rule on the same rows (block columns
  read from the model's struct here, not through :class:`dpm.StarModel`);
* with every threshold at -inf, the cascade's raw detections are the exact
  detector's (window 4 = the bounded distance transform's range 4);
* ``dpm.detect`` uses the cascade by default, ``cascade=False`` the exact detector.
"""
import copy
import dataclasses
import shutil
import statistics

import numpy as np
import pytest
import scipy.io as sio

import dpm
from dpm.model.release5_cascade import cascade_from_published, published_coeff
from dpm.detection.release5 import detect_raw_star, detect_raw_star_cascade, detect_star
from dpm.detection.release5 import single as r5single

from conftest import builds_of, record_projection_dtypes, shared_path


def _release(*parts):
    return shared_path("models", "voc-release5", *parts)


@pytest.fixture(scope="module")
def person():
    return dpm.load_model(_release("VOC2007", "person_final.mat"))


@pytest.fixture(scope="module")
def image():
    images = sio.loadmat(shared_path("golden", "release5", "images_decoded_octave.mat"))
    return np.asarray(images["im_000034"], dtype=np.float64)


def _columns(struct, ci):
    """0-based score columns (1 + blocklabel - 1) of rule ``ci`` of the start symbol, from the struct."""
    rule = np.atleast_1d(struct.rules[int(struct.start) - 1])[ci]
    filters = np.atleast_1d(struct.filters)
    cols = {"offset": int(rule.offset.blocklabel), "loc": int(rule.loc.blocklabel), "parts": []}
    for j, sym in enumerate(np.atleast_1d(rule.rhs)):
        d = struct.rules[int(sym) - 1]
        d = np.atleast_1d(d)[0]
        fb = int(filters[int(struct.symbols[int(d.rhs) - 1].filter) - 1].blocklabel)
        if j == 0:
            cols["root"] = fb
        else:
            cols["parts"].append((int(d.__dict__["def"].blocklabel), fb))
    return cols


def _hand_rule(full, proj, cols, thresh):
    """cascade_model.m on the rows of one component, written out loop by loop."""
    def rows(a):
        out, off = [], []
        for r in a:
            if r[cols["offset"]] == 0:
                continue
            row = [0.0, r[cols["root"]]]
            for d, f in cols["parts"]:
                row += [r[d], r[f]]
            out.append(row)
            off.append(r[cols["offset"]] + r[cols["loc"]])
        return out, off
    s, off = rows(full)
    ps, poff = rows(proj)
    n = 1 + len(cols["parts"])
    totals = [[row[2 * i] + row[2 * i + 1] for i in range(1, n)] for row in s]
    order = []
    for _ in range(n - 1):
        best, pick = np.inf, 0
        for j in range(1, n):
            if j in order:
                continue
            left = [i for i in range(1, n) if i != j and i not in order]
            v = statistics.variance([sum(t[i - 1] for i in left) for t in totals]) if len(totals) > 1 else 0.0
            if v < best:
                best, pick = v, j
        order.append(pick)
    order = [0] + order
    S = [[p[2 * o + k] for o in order for k in (0, 1)] + [f[2 * o + k] for o in order for k in (0, 1)]
         for p, f in zip(ps, s)]
    t = []
    for j in range(1, 2 * n + 1):
        t.append(min(sum(row[:j]) + o for row, o in zip(S, poff)))
    for j in range(2, 2 * n + 1):
        t.append(min(sum(row[j - 1:j + 2 * n - 1]) + o for row, o in zip(S, off)))
    t.append(thresh)
    return order + order, np.array(t)


def test_thresholds_from_published_statistics_follow_cascade_model(person, tmp_path):
    full = sio.loadmat(_release("star-cascade", "data", "person_2007_cascade_data_no_pca_2007.mat"))["scores"]
    proj = sio.loadmat(_release("star-cascade", "data", "person_2007_cascade_data_pca_5_2007.mat"))["pca_scores"]
    struct = sio.loadmat(_release("VOC2007", "person_final.mat"), squeeze_me=True,
                         struct_as_record=False)["model"]
    cols = [_columns(struct, ci) for ci in range(6)]
    thresh = person.thresh
    # A few positives of the first two aspect groups (components 0-1 and 2-3 share their blocks),
    # one below the threshold; none of the third (components 4-5 then never fire).
    picks = []
    for group, count in ((0, 4), (2, 3)):
        rows = np.flatnonzero((full[:, cols[group]["offset"]] != 0) & (full[:, 0] >= thresh))
        picks += rows[:count].tolist()
    below = np.flatnonzero((full[:, cols[0]["offset"]] != 0) & (full[:, 0] < thresh))[0]
    picks.append(below)
    sio.savemat(tmp_path / "no_pca.mat", {"scores": full[picks]})
    sio.savemat(tmp_path / "pca.mat", {"pca_scores": proj[picks]})
    with pytest.warns(UserWarning) as record:
        cascade = cascade_from_published(person, tmp_path / "no_pca.mat", tmp_path / "pca.mat",
                                         _release("star-cascade", "pca.mat"))
    assert sorted(str(w.message).split()[2] for w in record) == ["4", "5"]   # "cascade: component 4 has ..."
    keep = [p for p in picks if full[p, 0] >= thresh]
    for ci in range(4):
        order, t = _hand_rule(full[keep, 1:], proj[keep, 1:], {k: (v - 1 if k != "parts" else
                                                                    [(d - 1, f - 1) for d, f in v])
                                                                for k, v in cols[ci].items()}, thresh)
        assert cascade.components[ci].order.tolist() == order
        np.testing.assert_allclose(cascade.components[ci].thresholds, t, rtol=0, atol=1e-12)
        assert np.isfinite(t).all() and (np.diff(t[:18]) != 0).any()
    for ci in (4, 5):
        assert np.isposinf(cascade.components[ci].thresholds).all()
    assert cascade.threshold == thresh and cascade.window == 4


def test_published_coeff_keeps_the_truncation_feature():
    coeff = published_coeff(_release("star-cascade", "pca.mat"))
    raw = sio.loadmat(_release("star-cascade", "pca.mat"))["coeff"]
    assert coeff.shape == (32, 6)
    np.testing.assert_array_equal(coeff[:31, :5], raw[:, :5])
    assert coeff[31].tolist() == [0, 0, 0, 0, 0, 1] and coeff[:31, 5].tolist() == [0] * 31


def test_loaded_models_carry_the_published_cascade(person, tmp_path):
    assert person.cascade is not None and person.cascade.coeff.shape == (32, 6)
    assert len(person.cascade.components) == 6
    # Without the release's star-cascade folder beside it, a model loads without one.
    (tmp_path / "VOC2007").mkdir()
    shutil.copy(_release("VOC2007", "person_final.mat"), tmp_path / "VOC2007" / "person_final.mat")
    assert dpm.load_model(tmp_path / "VOC2007" / "person_final.mat").cascade is None


def test_bad_statistics_files_are_named(person, tmp_path):
    sio.savemat(tmp_path / "short.mat", {"scores": np.zeros((3, 10))})
    with pytest.raises(ValueError, match=r"short.mat: scores has shape \(3, 10\)"):
        cascade_from_published(person, tmp_path / "short.mat", tmp_path / "short.mat",
                               _release("star-cascade", "pca.mat"))
    with pytest.raises(ValueError, match="no variable named 'pca_scores'"):
        cascade_from_published(person, _release("star-cascade", "data", "person_2007_cascade_data_no_pca_2007.mat"),
                               tmp_path / "short.mat", _release("star-cascade", "pca.mat"))


def test_unpruned_cascade_is_the_exact_detector(person, image):
    """Every threshold at -inf, every root position: the exact detector's raw detections, in order."""
    crop = image[:240, :400]
    open_cascade = copy.deepcopy(person.cascade)
    for c in open_cascade.components:
        c.thresholds[:] = -np.inf
    exact = detect_raw_star(crop, person, -1.8)
    ours = detect_raw_star_cascade(crop, person, open_cascade, -1.8, skip_border=False)
    assert len(exact) > 20
    assert len(ours) == len(exact)
    np.testing.assert_array_equal(ours.levels, exact.levels)
    np.testing.assert_allclose(ours.ds, exact.ds, rtol=0, atol=1e-9)
    np.testing.assert_allclose(ours.bs, exact.bs, rtol=0, atol=1e-9)
    # The published thresholds prune: fewer, never better-scoring, detections.
    pruned = detect_raw_star_cascade(crop, person, None, -1.8)
    assert len(pruned) < len(exact)
    assert pruned.scores.max() <= exact.scores.max() + 1e-9


@pytest.mark.parametrize("build", builds_of("dpm.detection._cascade"))
def test_builds_prune_the_same(build, person, image, monkeypatch):
    """The published thresholds (deformation pruning on): every build gives the same bits and the
    same response counts as the package's (the window-row passes have vector code in the AVX2 build)."""
    import importlib

    from dpm.detection import cascade as cascade_detect
    from dpm.detection.cascade import CascadeStats

    crop = image[:240, :400]
    ref_stats = CascadeStats()
    reference = detect_raw_star_cascade(crop, person, None, -1.8, stats=ref_stats)
    monkeypatch.setattr(cascade_detect, "_kernel", importlib.import_module(build))
    stats = CascadeStats()
    found = detect_raw_star_cascade(crop, person, None, -1.8, stats=stats)
    assert len(reference) > 5
    assert stats.responses == ref_stats.responses
    np.testing.assert_array_equal(found.levels, reference.levels)
    np.testing.assert_array_equal(found.ds, reference.ds)
    np.testing.assert_array_equal(found.bs, reference.bs)


def test_detect_uses_the_cascade_by_default(person, image, monkeypatch):
    seen = []
    real = r5single.detect_raw_star_cascade

    def spy(*args, **kwargs):
        seen.append(True)
        return real(*args, **kwargs)

    monkeypatch.setattr(r5single, "detect_raw_star_cascade", spy)
    crop = image[:240, :400]
    default = dpm.detect(crop, person)
    assert seen == [True]
    exact = dpm.detect(crop, person, cascade=False)
    assert seen == [True]
    reference = detect_star(crop, dataclasses.replace(person, cascade=None))
    np.testing.assert_array_equal(exact.boxes, reference.boxes)
    np.testing.assert_array_equal(exact.scores, reference.scores)
    assert len(default) and default.scores[0] == pytest.approx(exact.scores[0], abs=1e-9)
    with pytest.raises(ValueError, match=r"has no star-cascade; give it one"):
        dpm.detect(crop, dataclasses.replace(person, cascade=None), cascade=True)


def test_exact_features_give_float64_projections(person, image, monkeypatch):
    # The default projects onto the cascade's directions in float32 (a documented departure);
    # exact_features=True (through dpm.detect, alone or with other models) gives cascade.cc's float64.
    import dpm.detection.release5.cascade as rc

    seen = record_projection_dtypes(monkeypatch, rc)
    fast = dpm.detect(image, person)
    exact = dpm.detect(image, person, exact_features=True)
    from dpm.data import resolve_model

    both = dpm.detect(image, [person, resolve_model("car")], exact_features=True)
    assert seen == [np.float32, np.float64, np.float64, np.float64]
    assert len(fast.scores) and len(exact.scores) == len(both["person"].scores)
    np.testing.assert_array_equal(exact.boxes, both["person"].boxes)
