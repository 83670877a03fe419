"""Star-cascade detection (spec star-cascade.md §C.5): against the exact detector and a NumPy reference."""
import dataclasses

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, builds_of, record_projection_dtypes, shared_path
from dpm import load_model
from dpm.cascade import Cascade, CascadeComponent
from dpm.detection import cascade as cascade_detect
from dpm.detection.cascade import CascadeStats, detect_cascade, detect_cascade_raw, project_pyramid
from dpm.data import builtin_model_path
from dpm.detection import detect, detect_raw
from dpm.features import feature_pyramid

MODELS = {"builtin": REPO / "dpm" / "data" / "person.npz", "voc2007/person": None}


@pytest.fixture(scope="module", params=sorted(MODELS))
def model(request):
    """The model without the cascade it may ship with (the tests give it their own)."""
    import dataclasses

    return dataclasses.replace(load_model(MODELS[request.param] or builtin_model_path(request.param)), cascade=None)


def synthetic_image(seed=0, size=(200, 150)):
    """Noise with two bright standing figures: some structure for the filters to respond to."""
    rng = np.random.default_rng(seed)
    h, w = size
    img = rng.integers(0, 90, size=(h, w, 3)).astype(np.uint8)
    for x0, y0, fw, fh in ((10, 15, 40, 110), (60, 30, 30, 80)):
        img[y0:y0 + fh // 4, x0 + fw // 3:x0 + 2 * fw // 3] = 220          # head
        img[y0 + fh // 4:y0 + 2 * fh // 3, x0:x0 + fw] = 200               # body
        img[y0 + 2 * fh // 3:y0 + fh, x0 + fw // 6:x0 + fw // 3] = 210     # legs
        img[y0 + 2 * fh // 3:y0 + fh, x0 + 2 * fw // 3:x0 + 5 * fw // 6] = 210
    return img


def demo_image(name, scale=None):
    img = Image.open(shared_path("models", "voc-release3.1", name)).convert("RGB")
    if scale is not None:
        img = img.resize((round(img.width * scale), round(img.height * scale)), Image.BILINEAR)
    return np.asarray(img)


def pca_coeff(image, k=5):
    """Top-k eigenvectors of the second moment of the image's HOG cells (plain NumPy)."""
    pyr = feature_pyramid(image, 8, 10, dtype=np.float64)
    cells = np.concatenate([level.reshape(-1, level.shape[2]) for level in pyr.levels])
    values, vectors = np.linalg.eigh(cells.T @ cells / len(cells))
    return np.ascontiguousarray(vectors[:, np.argsort(values)[::-1][:k]])


def open_cascade(model, coeff, threshold=None):
    """Every threshold at -inf, parts in index order: no pruning."""
    comps = []
    for comp in model.components:
        n = 1 + len(comp.parts)
        comps.append(CascadeComponent(np.array(list(range(n)) * 2, dtype=np.int64), np.full(4 * n, -np.inf)))
    return Cascade(coeff, comps, model.thresh if threshold is None else threshold)


def threshold_for(image, model, pyr, count):
    """A threshold halfway between the exact detector's ``count``-th and next highest scores."""
    scores = np.sort(detect_raw(image, model, -np.inf, pyramid=pyr, dtype=np.float64).scores)[::-1]
    return float((scores[count - 1] + scores[count]) / 2)


def covering_window(pyr, model):
    """A window half-width that covers every padded part level."""
    pady, padx = model.padding
    return int(max(max(f.shape[0] + 4 * pady, f.shape[1] + 4 * padx) for f in pyr.levels))


def assert_same(a, b, tol=1e-6):
    assert len(a) == len(b)
    np.testing.assert_array_equal(a.components, b.components)
    np.testing.assert_array_equal(a.levels, b.levels)
    np.testing.assert_array_equal(a.root_boxes, b.root_boxes)
    np.testing.assert_array_equal(a.part_boxes, b.part_boxes)
    np.testing.assert_array_equal(a.boxes, b.boxes)
    np.testing.assert_allclose(a.scores, b.scores, rtol=0, atol=tol)


def detection_keys(dets, model, pyr):
    """(level, component, rx, ry) of each detection, from its root box."""
    pady, padx = model.padding
    cell = model.sbin / pyr.scales[dets.levels]
    rx = np.rint((dets.root_boxes[:, 0] - 1) / cell + padx - 1).astype(int)
    ry = np.rint((dets.root_boxes[:, 1] - 1) / cell + pady - 1).astype(int)
    return list(zip(dets.levels.tolist(), dets.components.tolist(), rx.tolist(), ry.tolist()))


# -- exact equality without pruning -----------------------------------------------------------

def exactness_case(model, image, count):
    pyr = feature_pyramid(image, model.sbin, model.interval, dtype=np.float64)
    threshold = threshold_for(image, model, pyr, count)
    cascade = open_cascade(model, pca_coeff(image))
    exact = detect_raw(image, model, threshold, pyramid=pyr, dtype=np.float64)
    found = detect_cascade_raw(image, model, cascade, threshold, pyramid=pyr, window=covering_window(pyr, model),
                               skip_border=False)
    return exact, found


@pytest.mark.parametrize("seed", [0, 1])
def test_unpruned_cascade_with_covering_window_is_exact_detection_on_synthetic_images(model, seed):
    image = synthetic_image(seed)
    exact, found = exactness_case(model, image, 150)
    assert len(exact) == 150
    assert_same(found, exact)


@pytest.mark.parametrize("name", ["000034.jpg", "000061.jpg"])
def test_unpruned_cascade_with_covering_window_is_exact_detection_on_demo_images(model, name):
    # Reduced so that a window covering the level stays affordable (the search is then quadratic).
    exact, found = exactness_case(model, demo_image(name, 0.4), 150)
    assert len(exact) == 150
    assert_same(found, exact)


def test_unpruned_detect_cascade_finishes_as_detect(model):
    image = synthetic_image(2, size=(90, 70))
    cascade = open_cascade(model, pca_coeff(image))
    threshold = threshold_for(image, model, feature_pyramid(image, 8, 10, dtype=np.float64), 300)
    exact = detect(image, model, threshold=threshold, upsample=2, dtype=np.float64)
    found = detect_cascade(image, model, cascade, threshold=threshold, upsample=2, window=200, skip_border=False)
    assert len(exact) > 0
    assert_same(found, exact)


def test_skip_border_visits_the_positions_cascade_cc_visits(model):
    image = synthetic_image(3)
    pyr = feature_pyramid(image, model.sbin, model.interval, dtype=np.float64)
    threshold = threshold_for(image, model, pyr, 400)
    cascade = open_cascade(model, pca_coeff(image))
    window = covering_window(pyr, model)
    every = detect_cascade_raw(image, model, cascade, threshold, pyramid=pyr, window=window, skip_border=False)
    inner = detect_cascade_raw(image, model, cascade, threshold, pyramid=pyr, window=window)
    pady, padx = model.padding
    bx, by = -(-padx // 2), -(-pady // 2)
    keep = []
    for i, (lev, c, rx, ry) in enumerate(detection_keys(every, model, pyr)):
        h, w = (s + 2 * p - r + 1 for s, p, r in zip(pyr.levels[lev].shape[:2], model.padding,
                                                      model.components[c].root_size))
        keep.append(bx <= rx < w - bx and by <= ry < h - by)
    keep = np.array(keep)
    assert 0 < keep.sum() < len(every)   # the border positions hold detections at this threshold
    assert_same(inner, every[np.flatnonzero(keep)], tol=0)


# -- the window: a NumPy reference --------------------------------------------------------------

def padded(features, pady, padx):
    return np.pad(features, ((pady, pady), (padx, padx), (0, 0)))


def windowed_score(model, pyr, key, window):
    """The full model's score at a root placement with each part restricted to its window."""
    lev, c, rx, ry = key
    comp = model.components[c]
    pady, padx = model.padding
    root_level = padded(pyr.levels[lev], pady, padx)
    part_level = padded(pyr.levels[lev - pyr.interval], 2 * pady, 2 * padx)
    rh, rw = comp.root_size
    score = np.sum(root_level[ry:ry + rh, rx:rx + rw] * comp.root) + comp.bias
    for part in comp.parts:
        ph, pw = part.size
        px, py = 2 * rx + part.anchor[0], 2 * ry + part.anchor[1]
        ax, bx, ay, by = part.deformation
        best = -np.inf
        for y in range(max(py - window, 0), min(py + window, part_level.shape[0] - ph) + 1):
            for x in range(max(px - window, 0), min(px + window, part_level.shape[1] - pw) + 1):
                r = np.sum(part_level[y:y + ph, x:x + pw] * part.filter)
                kx, ky = px - x, py - y
                best = max(best, r - (ax * kx * kx + bx * kx + ay * ky * ky + by * ky))
        score += best
    return score


@pytest.mark.parametrize("source", ["synthetic", "000084.jpg"])
def test_survivor_scores_are_the_full_scores_with_parts_in_their_windows(model, source):
    image = synthetic_image(4) if source == "synthetic" else demo_image(source)
    pyr = feature_pyramid(image, model.sbin, model.interval, dtype=np.float64)
    cascade = open_cascade(model, pca_coeff(image))
    found = detect_cascade_raw(image, model, cascade, threshold_for(image, model, pyr, 200), pyramid=pyr)
    assert len(found) > 0
    keys = detection_keys(found, model, pyr)
    pick = np.random.default_rng(0).permutation(len(found))[:40]
    for i in pick:
        assert found.scores[i] == pytest.approx(windowed_score(model, pyr, keys[i], 4), abs=1e-9)


# -- pruning ---------------------------------------------------------------------------------------

def thresholds_from_blocks(blocks, offset):
    """§C.4's rule on per-stage (deformation, filter) scores ``(N, 2n, 2)`` of some detections."""
    S = blocks.reshape(len(blocks), -1)
    n2 = S.shape[1] // 2                       # 2n
    cum = np.cumsum(S, axis=1) + offset
    t = np.empty(2 * n2)
    t[:n2] = cum[:, :n2].min(axis=0)
    for j in range(2, n2 + 1):                 # 1-based, as in the spec
        t[j + n2 - 2] = (S[:, j - 1:j + n2 - 1].sum(axis=1) + offset).min()
    t[-1] = -np.inf
    return t - 1e-9   # the kernel sums in another order: keep the positives clear of rounding


def pruning_case(model, image):
    """An unpruned run, and a cascade whose thresholds come from its 5 best detections per component."""
    pyr = feature_pyramid(image, model.sbin, model.interval, dtype=np.float64)
    cascade = open_cascade(model, pca_coeff(image))
    stats = CascadeStats(blocks=True)
    threshold = threshold_for(image, model, pyr, 300)
    open_dets = detect_cascade_raw(image, model, cascade, threshold, pyramid=pyr, stats=stats)
    blocks = stats.recorded[0]
    comps, positives = [], []
    for c, comp in enumerate(model.components):
        n = 1 + len(comp.parts)
        mine = np.flatnonzero(open_dets.components == c)
        best = mine[np.argsort(open_dets.scores[mine])[::-1][:5]]
        positives += best.tolist()
        t = thresholds_from_blocks(blocks[best, :2 * n], comp.bias) if best.size else np.full(4 * n, np.inf)
        comps.append(CascadeComponent(cascade.components[c].order, t))
    return pyr, open_dets, threshold, Cascade(cascade.coeff, comps, threshold), positives


def test_pruning_only_removes_detections():
    model = dataclasses.replace(load_model(MODELS["builtin"]), cascade=None)
    image = demo_image("000084.jpg")
    pyr, open_dets, threshold, pruned, positives = pruning_case(model, image)
    where = {k: i for i, k in enumerate(detection_keys(open_dets, model, pyr))}
    # Hypothesis thresholds only: a subset with the very same scores, the positives included.
    hyp_only = Cascade(pruned.coeff, [CascadeComponent(c.order, np.where(np.arange(c.thresholds.size) % 2 == 1,
                                                                          c.thresholds, -np.inf))
                                      for c in pruned.components], threshold)
    stats = CascadeStats()
    found = detect_cascade_raw(image, model, hyp_only, threshold, pyramid=pyr, stats=stats)
    idx = [where[k] for k in detection_keys(found, model, pyr)]
    assert 0 < len(found) < len(open_dets)
    assert idx == sorted(idx) and set(positives) <= set(idx)
    assert_same(found, open_dets[np.array(idx)], tol=1e-12)
    # Deformation pruning too: still a subset; a survivor's part may lose pruned placements
    # (cascade.cc's rule: a response not yet memoised is skipped by the deformation test), never
    # gain any.
    both_stats = CascadeStats()
    both = detect_cascade_raw(image, model, pruned, threshold, pyramid=pyr, stats=both_stats)
    idx = [where[k] for k in detection_keys(both, model, pyr)]
    assert 0 < len(both) <= len(found)
    assert np.all(both.scores <= open_dets.scores[idx] + 1e-12)
    assert both_stats.responses[0] < stats.responses[0]


def test_stats_count_what_was_pruned():
    model = dataclasses.replace(load_model(MODELS["builtin"]), cascade=None)
    image = demo_image("000084.jpg")
    pyr, open_dets, threshold, pruned, positives = pruning_case(model, image)
    stats = CascadeStats()
    detect_cascade_raw(image, model, pruned, threshold, pyramid=pyr, stats=stats)
    n = 1 + len(model.components[0].parts)
    row = stats.passed[0]
    assert np.all(np.diff(row[:2 * n + 1]) <= 0) and row[0] > row[2 * n] > 0
    fractions = stats.pruned()[0]
    assert len(fractions) == 2 * n - 1 and 0 < sum(fractions) < 1
    assert sum(fractions) == pytest.approx(1 - row[2 * n] / row[0])
    assert set(stats.seconds) >= {"features", "projection", "projected root", "part stages", "full stages"}


# -- builds, inputs ------------------------------------------------------------------------------

@pytest.mark.parametrize("build", builds_of("dpm.detection._cascade"))
def test_builds_give_the_same_bits(build, monkeypatch):
    import importlib

    model = dataclasses.replace(load_model(MODELS["builtin"]), cascade=None)
    image = synthetic_image(5)
    cascade = open_cascade(model, pca_coeff(image))
    threshold = threshold_for(image, model, feature_pyramid(image, 8, 10, dtype=np.float64), 100)
    reference = detect_cascade_raw(image, model, cascade, threshold)
    monkeypatch.setattr(cascade_detect, "_kernel", importlib.import_module(build))
    found = detect_cascade_raw(image, model, cascade, threshold)
    assert len(reference) > 0
    assert_same(found, reference, tol=0)


def test_projected_pyramid_is_levels_times_coeff():
    image = synthetic_image(6)
    pyr = feature_pyramid(image, 8, 10, dtype=np.float64)
    coeff = pca_coeff(image, k=3)
    for level, proj in zip(pyr.levels, project_pyramid(pyr, coeff)):
        np.testing.assert_allclose(proj, np.einsum("hwd,dk->hwk", level, coeff), atol=1e-12)


def test_projections_follow_the_pyramids_precision(monkeypatch):
    # float32 projections (a documented departure) for the default single-precision features; the
    # original's float64 with exact_features=True.  The float32 projected pyramid is the float64 one
    # rounded, to float32 accuracy.
    model = load_model(builtin_model_path("person"))
    image = demo_image("000034.jpg")
    seen = record_projection_dtypes(monkeypatch, cascade_detect)
    detect_cascade_raw(image, model, model.cascade)
    detect_cascade_raw(image, model, model.cascade, exact_features=True)
    assert seen == [np.float32, np.float64]
    pyr = feature_pyramid(synthetic_image(3), 8, 10, dtype=np.float32, exact=False)
    for p32, p64 in zip(project_pyramid(pyr, model.cascade.coeff, np.float32),
                        project_pyramid(pyr, model.cascade.coeff, np.float64)):
        assert p32.dtype == np.float32
        np.testing.assert_allclose(p32, p64, rtol=1e-5, atol=1e-5 * np.abs(p64).max())


def test_a_cascade_for_another_model_is_refused():
    model = dataclasses.replace(load_model(MODELS["builtin"]), cascade=None)
    other = load_model(builtin_model_path("voc2007/person"))
    image = synthetic_image(7)
    coeff = pca_coeff(image)
    with pytest.raises(ValueError, match="cascade has 2 components, the model 1; rebuild it"):
        detect_cascade(image, model, open_cascade(other, coeff))
    bad = open_cascade(model, coeff)
    bad.components[0].order = bad.components[0].order[::-1].copy()
    with pytest.raises(ValueError, match=r"component 0 order .* is not \[0, o_1 .. o_6\] twice"):
        detect_cascade(image, model, bad)
    with pytest.raises(ValueError, match=r"coeff has shape \(30, 5\), the model's features have 31"):
        detect_cascade(image, model, open_cascade(model, coeff[:30]))
    with pytest.raises(ValueError, match="window must be a non-negative integer"):
        detect_cascade(image, model, open_cascade(model, coeff), window=-1)


def test_a_model_with_a_cascade_is_detected_with_it_by_default(monkeypatch):
    """``dpm.detect`` and the one-model and several-model paths choose the cascade unless told not to."""
    import dataclasses

    import dpm
    from dpm.detection import detect_one

    base = dataclasses.replace(load_model(MODELS["builtin"]), cascade=None)
    image = synthetic_image(3)
    model = dataclasses.replace(base, cascade=open_cascade(base, pca_coeff(image)))
    seen = []
    real = cascade_detect.detect_cascade_raw

    def spy(*args, **kwargs):
        seen.append(True)
        return real(*args, **kwargs)

    monkeypatch.setattr(cascade_detect, "detect_cascade_raw", spy)
    from dpm.detection import multiclass, single
    monkeypatch.setattr(single, "detect_cascade_raw", spy, raising=False)
    monkeypatch.setattr(multiclass, "detect_cascade_raw", spy)
    cascaded = detect_one(image, model, threshold=-1.5)
    assert seen == [True]
    several = dpm.detect(image, {"person": model}, threshold=-1.5)
    assert seen == [True, True]
    assert_same(several["person"], cascaded, tol=0)
    exact = detect_one(image, model, threshold=-1.5, cascade=False)
    assert seen == [True, True]
    assert_same(exact, detect_one(image, base, threshold=-1.5))
    with pytest.raises(ValueError, match=r"has no star-cascade; add one with dpm.build_cascade"):
        detect_one(image, base, cascade=True)


def test_exact_flag_of_the_commands(tmp_path, monkeypatch):
    """``dpm-detect --exact`` passes cascade=False to the detector; without it the model decides."""
    import dataclasses

    from dpm.cli.detect import main
    from dpm.detection import batch
    from dpm.model import save_model

    base = dataclasses.replace(load_model(MODELS["builtin"]), cascade=None)
    image = synthetic_image(4)
    Image.fromarray(image).save(tmp_path / "a.png")
    save_model(dataclasses.replace(base, cascade=open_cascade(base, pca_coeff(image))), tmp_path / "m.npz")
    seen = []
    real = batch.detect

    def spy(image, models, **kwargs):
        seen.append(kwargs.get("cascade"))
        return real(image, models, **kwargs)

    monkeypatch.setattr(batch, "detect", spy)
    for extra in ([], ["--exact"]):
        assert main([str(tmp_path / "m.npz"), str(tmp_path / "a.png"), "-j", "1", "-q",
                     "-o", str(tmp_path / f"out{len(extra)}.csv")] + extra) == 0
    assert seen == [None, False]
