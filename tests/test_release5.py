"""voc-release5 star models: reading, features, pyramid, bounded dt and score maps against the release.

The reference outputs (``../shared/golden/release5``, the release's MATLAB/C++
code under Octave) are read in place; tests skip where they are absent.
"""
import numpy as np
import pytest
import scipy.io as sio

import dpm
from dpm.detection.release5 import loc_features, star_levels
from dpm.dt_bounded import bounded_distance_transform
from dpm.features import FLIP_PERMUTATION, flip_features
from dpm.features.pyramid_r5 import TRUNCATION_CHANNEL, feature_pyramid_r5, hog32
from dpm.model.release5 import StarModel

from conftest import shared_path

IMAGES = ("000034", "000061", "000084")


@pytest.fixture(scope="module")
def r5_golden():
    return lambda name: sio.loadmat(shared_path("golden", "release5", name))


@pytest.fixture(scope="module")
def decoded(r5_golden):
    mat = r5_golden("images_decoded_octave.mat")
    return {k: mat[f"im_{k}"] for k in IMAGES}


@pytest.fixture(scope="module")
def person():
    return dpm.load_model(shared_path("models", "voc-release5", "VOC2007", "person_final.mat"))


def test_load_person_star_model(person):
    assert isinstance(person, StarModel)
    assert person.class_name == "person" and person.num_filters == 54
    assert [c.mirrored for c in person.components] == [False, True] * 3
    assert all(len(c.parts) == 8 and c.bbox_regressor.shape == (4, 19) for c in person.components)
    assert person.padding == (11, 7) and person.interval == 10 and person.sbin == 8
    assert person.thresh == pytest.approx(-1.442374, abs=1e-6)
    c0, c1 = person.components[:2]
    # A mirrored component holds the mirrored root filter and the negated bx of each deformation.
    np.testing.assert_array_equal(c1.root.filter, flip_features(c0.root.filter))
    assert c0.offset == c1.offset == pytest.approx(-0.44421239461790074 * 10)
    np.testing.assert_allclose(c0.loc, [0, -0.14023432, 0.1411334], atol=1e-8)   # block 3 of the struct
    assert c0.parts[0].anchor == (2, 0, 1) and c0.root.anchor == (0, 0, 0)
    np.testing.assert_array_equal(c0.root.deformation, [1000, 0, 1000, 0])


def test_inria_has_the_extra_octave():
    m = dpm.load_model(shared_path("models", "voc-release5", "INRIA", "inriaperson_final.mat"))
    assert m.class_name == "person" and m.extra_octave and len(m.components) == 2


def test_grammar_and_release4_models_are_refused(tmp_path):
    path = shared_path("models", "voc-release5", "VOC2007", "person_grammar_final.mat")
    with pytest.raises(ValueError, match=r"person_grammar_final\.mat: a voc-release5 grammar model \(type 'G'\), "
                                         r"not a star model") as info:
        dpm.load_model(path)
    assert "\n" not in str(info.value)
    f = tmp_path / "r4.mat"
    sio.savemat(f, {"model": {"symbols": np.zeros(2), "rules": np.zeros(2), "filters": np.zeros(2)}})
    with pytest.raises(ValueError, match=r"r4\.mat: a voc-release4 model"):
        dpm.load_model(f)


def test_flip_features_keeps_the_truncation_channel(rng):
    f = rng.normal(size=(3, 4, 32))
    g = flip_features(f)
    np.testing.assert_array_equal(g[:, :, 31], f[:, ::-1, 31])
    np.testing.assert_array_equal(g[:, :, :31], flip_features(f[:, :, :31]))
    np.testing.assert_array_equal(flip_features(g), f)
    assert FLIP_PERMUTATION.size == 31
    with pytest.raises(ValueError, match="31\\) or \\(H, W, 32\\)"):
        flip_features(np.zeros((2, 2, 30)))


def test_bounded_dt_matches_fast_bounded_dt(r5_golden):
    u = r5_golden("units_resize_dt.mat")
    w = u["def_w"].ravel()
    m, ix, iy = bounded_distance_transform(u["vals"], *w[:4], range=4)
    np.testing.assert_array_equal(m, u["dt_M"])                 # bit for bit
    np.testing.assert_array_equal(ix + 1, u["dt_Ix"])
    np.testing.assert_array_equal(iy + 1, u["dt_Iy"])
    # The window matters: the unbounded transform of the same values differs somewhere.
    assert not np.array_equal(m, u["udt_M"]) or not np.array_equal(ix + 1, u["udt_Ix"])


def test_bounded_dt_brute_force(rng):
    vals = rng.normal(size=(9, 12)) * 3
    ax, bx, ay, by, r = 0.05, 0.02, 0.08, -0.03, 2
    m, ix, iy = bounded_distance_transform(vals, ax, bx, ay, by, range=r)
    for y in range(9):
        for x in range(12):
            best = max(vals[sy, sx] - (ax * (x - sx) ** 2 + bx * (x - sx) + ay * (y - sy) ** 2 + by * (y - sy))
                       for sy in range(max(0, y - r), min(9, y + r + 1))
                       for sx in range(max(0, x - r), min(12, x + r + 1)))
            assert m[y, x] == pytest.approx(best, abs=1e-12)
            assert abs(ix[y, x] - x) <= r and abs(iy[y, x] - y) <= r
    with pytest.raises(ValueError, match="ax and ay must be > 0"):
        bounded_distance_transform(vals, 0, 0, 1, 0)


@pytest.mark.parametrize("name", IMAGES)
def test_features_match_release5(name, decoded, r5_golden):
    gold = r5_golden(f"features_sbin8_{name}.mat")["feat"]
    ours = hog32(decoded[name], 8)
    assert ours.dtype == np.float32 and ours.shape == gold.shape
    assert np.abs(ours.astype(np.float64) - gold).max() < 1e-5
    assert not ours[:, :, TRUNCATION_CHANNEL].any()


def test_every_pyramid_level_matches_release5(person, decoded, r5_golden):
    gold = r5_golden("featpyramid_person_000061.mat")
    pady, padx = person.padding
    assert (pady, padx) == (int(gold["pady"].item()), int(gold["padx"].item()))
    pyra = feature_pyramid_r5(decoded["000061"], person.sbin, person.interval, padx=padx, pady=pady,
                              extra_octave=person.extra_octave)
    assert len(pyra) == gold["feat"].shape[0] == 45
    np.testing.assert_array_equal(pyra.scales, gold["scales"].ravel())
    for lev, ours in enumerate(pyra.levels):
        theirs = gold["feat"][lev, 0]
        assert ours.shape == theirs.shape, lev
        assert np.abs(ours.astype(np.float64) - theirs).max() < 1e-5, lev
        np.testing.assert_array_equal(ours[:, :, TRUNCATION_CHANNEL], theirs[:, :, TRUNCATION_CHANNEL])


def test_fast_pyramid_is_close_to_release5(person, decoded, r5_golden):
    # The single-precision features (the detection default): the same levels, scales and
    # truncation feature; values within float32 rounding except where a near-zero gradient's
    # orientation is decided by rounding (docs/release5.md).
    gold = r5_golden("featpyramid_person_000061.mat")
    pady, padx = person.padding
    pyra = feature_pyramid_r5(decoded["000061"], person.sbin, person.interval, padx=padx, pady=pady,
                              extra_octave=person.extra_octave, exact=False)
    np.testing.assert_array_equal(pyra.scales, gold["scales"].ravel())
    for lev, ours in enumerate(pyra.levels):
        theirs = gold["feat"][lev, 0]
        assert ours.dtype == np.float32 and ours.shape == theirs.shape, lev
        np.testing.assert_array_equal(ours[:, :, TRUNCATION_CHANNEL], theirs[:, :, TRUNCATION_CHANNEL])
        diff = np.abs(ours.astype(np.float64) - theirs)
        assert diff.max() < 0.1 and np.mean(diff > 1e-4) < 1e-3, lev
    exact = feature_pyramid_r5(decoded["000061"], person.sbin, person.interval, padx=padx, pady=pady,
                               extra_octave=person.extra_octave)
    assert any(not np.array_equal(a, b) for a, b in zip(pyra.levels, exact.levels))


def test_fast_features_detect_as_the_release_does(person, decoded):
    image = decoded["000061"]
    fast = dpm.detect(image, person)                      # the default: single-precision features
    exact = dpm.detect(image, person, exact_features=True)
    assert len(fast) == len(exact) > 10
    assert np.abs(fast.boxes - exact.boxes).max() < 0.5
    assert np.abs(fast.scores - exact.scores).max() < 1e-3
    assert not np.array_equal(fast.scores, exact.scores)


def test_start_scores_match_release5(person, decoded, r5_golden):
    gold = r5_golden("startscore_person_000061.mat")["start_score"]
    pady, padx = person.padding
    pyra = feature_pyramid_r5(decoded["000061"], person.sbin, person.interval, padx=padx, pady=pady)
    n = 0
    for lev in star_levels(pyra, person):
        theirs = gold[0, lev.level].astype(np.float64)
        assert lev.start.shape == theirs.shape, lev.level
        finite = np.isfinite(theirs)
        np.testing.assert_array_equal(np.isfinite(lev.start), finite)
        assert finite.any() == (lev.level >= person.interval)       # parts live one octave below
        if finite.any():
            assert np.abs(lev.start[finite] - theirs[finite]).max() < 1e-4, lev.level
        n += 1
    assert n == 45


def test_loc_features():
    f = loc_features(25, 10)
    np.testing.assert_array_equal(f.sum(axis=0), np.ones(25))
    assert f[0, :10].all() and f[1, 10:20].all() and f[2, 20:].all()
    np.testing.assert_array_equal(loc_features(5, 10)[0], np.ones(5))
