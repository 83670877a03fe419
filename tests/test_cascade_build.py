"""Cascade statistics (§C.2), build_cascade, the cascade in the model file, and dpm-cascade."""
import hashlib
import warnings

import numpy as np
import pytest

import dpm
from conftest import make_voc, shared_path
from dpm.cascade import Cascade, CascadeComponent
from dpm.cascade.build import cascade_from_statistics
from dpm.cascade.pca import load_hog_pca
from dpm.cascade.statistics import CascadeStatistics, cascade_statistics
from dpm.data import builtin_model_path
from dpm.image import read_image
from dpm.model import load_model, model_from_blocks, model_from_payload, model_blocks, model_to_payload, save_model


@pytest.fixture(scope="module")
def person():
    """The built-in person model without the cascade it ships with (the tests build their own)."""
    m = load_model(builtin_model_path("person"))
    m.cascade = None
    m.info.pop("cascade", None)
    return m


@pytest.fixture(scope="module")
def voc_dir(tmp_path_factory):
    return make_voc(tmp_path_factory.mktemp("cascade-voc") / "VOC", n_pos=3, n_neg=1)


@pytest.fixture(scope="module")
def positives(voc_dir):
    import voc

    return voc.training_data(voc_dir, "person").positives


def _sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


# -- statistics ---------------------------------------------------------------------------------

def test_block_scores_sum_to_the_scores(person, positives):
    coeff = load_hog_pca()[0][:, :5]
    s = cascade_statistics(person, positives, coeff)
    assert s.boxes == 3 and s.detected == 6 and s.undetected == s.skipped == s.failed == 0
    n = 1 + len(person.components[0].parts)
    full, proj, off = s.full[0], s.projected[0], s.offset[0]
    assert full.shape == proj.shape == (6, 2 * n)
    np.testing.assert_allclose(full.sum(axis=1) + off, s.score[0], atol=1e-5)
    np.testing.assert_allclose(proj.sum(axis=1) + off, s.projected_score[0], atol=1e-5)
    assert (full[:, 0] == 0).all() and (proj[:, 0] == 0).all()           # the root has no deformation
    assert (full[:, 2::2] <= 0).all() and (proj[:, 2::2] <= 0).all()     # deformation scores are costs
    np.testing.assert_array_equal(off, person.components[0].bias)


def test_projection_onto_every_direction_is_the_full_model(person, positives):
    # With all 31 orthonormal directions the projected model scores exactly as the full one, so its
    # own distance transform places the parts where the full model's did.
    s = cascade_statistics(person, positives[:1], load_hog_pca()[0])
    np.testing.assert_allclose(s.projected[0], s.full[0], atol=1e-9)


def test_in_memory_positives_processes_and_mirrors(person, positives):
    coeff = load_hog_pca()[0][:, :5]
    pairs = [(read_image(p.path), p.box) for p in positives[:2]]
    a = cascade_statistics(person, pairs, coeff, mirror=False)
    b = cascade_statistics(person, positives[:2], coeff, n_jobs=2)
    assert a.detected == 2 and b.detected == 4
    np.testing.assert_array_equal(a.full[0], b.full[0][::2])         # rows: box, mirror, box, mirror
    np.testing.assert_array_equal(a.projected[0], b.projected[0][::2])


def test_small_boxes_are_skipped(person, positives):
    p = positives[0]
    s = cascade_statistics(person, [(p.path, (10, 10, 30, 60))], load_hog_pca()[0][:, :5])
    assert s.skipped == 1 and s.detected == 0


# -- building -----------------------------------------------------------------------------------

def _stats(scores, n=2, components=1):
    """Statistics of one component with these scores: root-only projected rows scored s - 1."""
    scores = np.asarray(scores, float)
    m = scores.size
    full = np.zeros((m, 2 * n))
    full[:, 1] = scores
    proj = full.copy()
    proj[:, 1] -= 1
    empty = np.zeros((0, 2 * n))
    return CascadeStatistics([scores] + [np.zeros(0)] * (components - 1), [np.zeros(m)] * components,
                             [full] + [empty] * (components - 1), [proj] + [empty] * (components - 1),
                             [scores - 1] + [np.zeros(0)] * (components - 1), boxes=m)


def test_thresholds_use_only_positives_at_or_above_the_threshold(person):
    coeff = np.eye(31)[:, :5]
    c = cascade_from_statistics(person, _stats([-3.0, 0.5, 1.0], n=7), coeff, 0.5)
    t = c.components[0].thresholds
    assert t[1] == -0.5 and t[-1] == 0.5 and c.threshold == 0.5      # -3 (-4 projected) is left out


def test_a_component_without_positives_gets_infinite_thresholds(person):
    two = person.copy()
    two.components.append(two.components[0])
    with pytest.warns(UserWarning, match="component 1 .* never fire"):
        c = cascade_from_statistics(two, _stats([1.0, 2.0], n=7, components=2), np.eye(31)[:, :5], 0.0)
    assert np.isposinf(c.components[1].thresholds).all()
    assert c.components[1].order.tolist() == list(range(7)) * 2
    assert np.isfinite(c.components[0].thresholds).all()


def test_all_positives_below_the_threshold(person):
    with pytest.raises(ValueError, match=r"threshold: all 3 scored positives are below threshold=5.0000 "
                                         r"\(best 1.0000\)"):
        cascade_from_statistics(person, _stats([1.0, -1.0, 0.0], n=7), np.eye(31)[:, :5], 5.0)


def test_no_positives(person):
    with pytest.raises(ValueError, match="^positives: no positives"):
        dpm.build_cascade(person, [])
    with pytest.raises(ValueError, match="^positives: none of the 1 positives could be scored"):
        cascade_from_statistics(person, CascadeStatistics([np.zeros(0)], [np.zeros(0)], [np.zeros((0, 14))],
                                                          [np.zeros((0, 14))], [np.zeros(0)], boxes=1, skipped=1),
                                np.eye(31)[:, :5], 0.0)


@pytest.mark.parametrize("kwargs, match", [({"dims": 0}, "^dims must be"), ({"dims": 32}, "^dims must be"),
                                           ({"coeff": np.eye(30)}, r"^coeff must be a finite \(31, k\)"),
                                           ({"coeff": np.eye(31)[:, :3]}, "^coeff has 3 columns, fewer than dims=5")])
def test_bad_dims_and_coeff(person, positives, kwargs, match):
    with pytest.raises(ValueError, match=match):
        dpm.build_cascade(person, positives, **kwargs)


def test_build_cascade(person, positives, tmp_path):
    model = dpm.build_cascade(person, positives, threshold=-10.0, dims=4)
    assert person.cascade is None                                     # the input is unchanged
    c = model.cascade
    n = 1 + len(person.components[0].parts)
    assert c.dims == 4 and c.threshold == -10.0 and model.thresh == person.thresh
    np.testing.assert_array_equal(c.coeff, load_hog_pca()[0][:, :4])
    comp = c.components[0]
    assert comp.order.shape == (2 * n,) and comp.thresholds.shape == (4 * n,)
    assert sorted(comp.order[:n].tolist()) == list(range(n)) and comp.thresholds[-1] == -10.0
    assert comp.thresholds[0] == person.components[0].bias            # stage 0: the offset alone
    assert "6 positive detections (6 at or above -10)" in model.info["cascade"]
    # the file keeps it exactly
    path = save_model(model, tmp_path / "m.npz")
    back = load_model(path)
    np.testing.assert_array_equal(back.cascade.coeff, c.coeff)
    np.testing.assert_array_equal(back.cascade.components[0].order, comp.order)
    np.testing.assert_array_equal(back.cascade.components[0].thresholds, comp.thresholds)
    assert (back.cascade.threshold, back.cascade.window) == (c.threshold, c.window)
    assert _sha(save_model(back, tmp_path / "again.npz")) == _sha(path)


# -- the model file -----------------------------------------------------------------------------

def test_files_without_a_cascade_are_unchanged(tmp_path):
    # the zoo's car model was written before cascades existed (format version 1): it loads without one,
    # and saving it again gives the same bytes; the built-in person model's cascade survives a round trip.
    car = load_model(builtin_model_path("voc2007/car"))
    assert car.cascade is None
    assert _sha(save_model(car, tmp_path / "c.npz")) == _sha(builtin_model_path("voc2007/car"))
    person = load_model(builtin_model_path("person"))
    assert person.cascade is not None
    assert _sha(save_model(person, tmp_path / "p.npz")) == _sha(builtin_model_path("person"))


def _with_cascade(model, **change):
    n = 1 + len(model.components[0].parts)
    order = np.concatenate([np.arange(n), np.arange(n)])
    parts = {"coeff": np.eye(31)[:, :5], "order": order, "thresholds": np.full(4 * n, -np.inf), "window": 4}
    parts.update(change)
    m = model.copy()
    m.cascade = Cascade(parts["coeff"], [CascadeComponent(np.asarray(parts["order"]), np.asarray(parts["thresholds"]))],
                        0.0, parts["window"])
    return m


def test_infinite_thresholds_round_trip(person, tmp_path):
    m = _with_cascade(person, thresholds=np.r_[np.full(27, -np.inf), np.inf])
    back = load_model(save_model(m, tmp_path / "inf.npz"))
    assert np.isneginf(back.cascade.components[0].thresholds[:-1]).all()
    assert np.isposinf(back.cascade.components[0].thresholds[-1])


@pytest.mark.parametrize("change, match", [
    ({"coeff": np.eye(30)[:, :5]}, r"cascade coeff has shape \(30, 5\), the model's features have 31"),
    ({"order": np.arange(12)}, "cascade component 0 order has shape"),
    ({"order": np.array([0, 1, 2, 3, 4, 5, 5] * 2)}, "is not .* a permutation of the parts 1..6"),
    ({"order": np.array([1, 0, 2, 3, 4, 5, 6] * 2)}, "is not .* a permutation"),
    ({"thresholds": np.zeros(27)}, "cascade component 0 thresholds have shape"),
    ({"thresholds": np.full(28, np.nan)}, "thresholds hold NaN"),
    ({"window": -1}, "cascade window must be a whole number"),
])
def test_a_cascade_that_does_not_fit_is_refused(person, tmp_path, change, match):
    m = _with_cascade(person, **change)
    with pytest.raises(ValueError, match=match) as err:
        model_from_payload(*model_to_payload(m))
    assert "\n" not in str(err.value)
    path = save_model(m, tmp_path / "bad.npz")                        # save does not check; load does
    with pytest.raises(ValueError, match=str(path)):
        load_model(path)


def test_a_cascade_of_another_model_is_refused(person):
    m = _with_cascade(person)
    m.cascade.components.append(m.cascade.components[0])
    with pytest.raises(ValueError, match="cascade has 2 components, the model 1; rebuild it"):
        model_from_payload(*model_to_payload(m))


def test_new_weights_drop_the_cascade(person):
    m = _with_cascade(person)
    assert m.copy().cascade is not None
    assert model_from_blocks(m, model_blocks(m)).cascade is None


# -- the command --------------------------------------------------------------------------------

def test_command(voc_dir, tmp_path, capsys):
    from dpm.cli.cascade import main

    out = tmp_path / "person_cascade.npz"
    assert main(["person", "--voc", str(voc_dir), "-o", str(out), "--threshold", "-10", "--dims", "3", "-q"]) == 0
    assert "wrote" in capsys.readouterr().err
    model = load_model(out)
    assert model.cascade.dims == 3 and model.cascade.threshold == -10.0
    assert main(["person", "--voc", str(voc_dir), "-o", str(tmp_path / "x.npz"), "--threshold", "100", "-q"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("dpm-cascade: error: threshold: all 6 scored positives are below") and "\n" not in err
    assert main(["person", "--voc", str(voc_dir), "-o", str(tmp_path / "y.npz"), "--dims", "40", "-q"]) == 1
    assert "dims must be" in capsys.readouterr().err


# -- person-voc ---------------------------------------------------------------------------------

def test_person_voc_positives(person):
    import voc

    data = voc.training_data(shared_path("data", "person-voc"), "person")
    pos = data.positives[:8]
    model = dpm.build_cascade(person, pos)
    stats = cascade_statistics(person, pos, load_hog_pca()[0][:, :5])
    comp, n = model.cascade.components[0], 7
    keep = stats.score[0] >= person.thresh
    assert stats.detected == 16 and 0 < keep.sum() and comp.thresholds[-1] == person.thresh
    # the end of the projected stages: the least projected score; the root's deformation (0) swapped: the
    # same; the full root filter replacing the projected one: the least of projected - projected root + root
    assert comp.thresholds[2 * n - 1] == pytest.approx(stats.projected_score[0][keep].min(), abs=1e-9)
    assert comp.thresholds[2 * n] == pytest.approx(comp.thresholds[2 * n - 1], abs=1e-9)
    swapped = stats.projected_score[0] - stats.projected[0][:, 1] + stats.full[0][:, 1]
    assert comp.thresholds[2 * n + 1] == pytest.approx(swapped[keep].min(), abs=1e-9)
