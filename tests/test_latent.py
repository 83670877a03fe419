"""Latent placement and feature vectors against the original's outputs (latent.npz, learn-io/)."""
import numpy as np
import pytest

from dpm.features import feature_pyramid
from dpm.latent import detect_examples, detect_latent, fold_window, mround
from dpm.learn import ExampleSet
from dpm.model import load_model, model_blocks


@pytest.fixture(scope="module")
def person(models_dir):
    return load_model(models_dir / "VOC2007" / "person_final.mat")


@pytest.fixture(scope="module")
def io_set(person):
    from conftest import shared_path

    return ExampleSet.read_dat(shared_path("golden", "learn-io", "person_io.dat"), [b.size for b in person.blocks])


def assert_same_example(examples, i, placement, label, ident):
    label_ints, blocks = examples.example(i)
    assert list(label_ints) == [label, ident, placement.level, placement.xc, placement.yc]
    assert [b for b, _ in blocks] == [b for b, _ in placement.blocks]
    for (_, theirs), (_, ours) in zip(blocks, placement.blocks):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6)


def test_latent_positive_matches_original(golden, person, io_set):
    g = golden("latent")
    image = golden("features")["im_000061"]
    p = detect_latent(image, person, g["bbox"], float(g["overlap"]))
    assert p.component + 1 == int(g["component"])
    assert p.score == pytest.approx(float(g["score"]), abs=1e-6)
    np.testing.assert_allclose(np.concatenate([p.root_box, p.part_boxes.ravel()]), g["boxes"][:28], atol=1e-3)
    assert_same_example(io_set, 0, p, 1, 1)  # byte-for-byte the .dat record the original wrote


def test_hard_negatives_match_original(person, io_set):
    from conftest import shared_path

    info = np.load(shared_path("golden", "learn-io", "io_info.npz"))
    dets, placements = detect_examples(info["neg_image"], person, float(info["neg_thresh"]))
    np.testing.assert_allclose(dets.to_raw(), info["neg_boxes"], atol=1e-3)
    assert len(placements) == len(io_set) - 1 == 5
    for i, p in enumerate(placements):
        assert_same_example(io_set, i + 1, p, -1, 2)


def test_feature_vector_dot_weights_is_the_score(golden, person):
    w = model_blocks(person)
    image = golden("features")["im_000084"]
    _, placements = detect_examples(image, person, -1.2)
    assert placements
    for p in placements:
        score = sum(float(np.dot(w[b], v.astype(np.float64))) for b, v in p.blocks)
        assert score == pytest.approx(p.score, abs=1e-4)


def test_latent_without_overlap_returns_none(golden, person):
    image = golden("features")["im_000061"]
    assert detect_latent(image, person, [1, 1, 10, 10], 0.7) is None


def test_detect_examples_respects_cap_and_interval(golden, person):
    image = golden("features")["im_000084"]
    _, capped = detect_examples(image, person, -1.5, max_examples=3)
    assert len(capped) == 3
    pyr = feature_pyramid(image, 8, 5)
    _, coarse = detect_examples(image, person, -1.5, pyramid=pyr)
    assert all(p.level > 5 for p in coarse)


def test_fold_window_and_mround(rng):
    from dpm.features.flip import flip_features

    win = rng.normal(size=(3, 5, 31))
    half = rng.normal(size=(3, 3, 31))
    full = np.concatenate([half, flip_features(half[:, :2])], axis=1)  # symmetric filter from its half
    assert np.sum(full * win) == pytest.approx(np.sum(half * fold_window(win)))
    np.testing.assert_array_equal(mround([0.5, 1.5, 2.5, -0.5, 2.4999]), [1, 2, 3, -1, 2])
