"""Tests of dpm.training.init (split.m, initmodel.m) and dpm.training.config."""
import math

import numpy as np
import pytest

from conftest import shared_path
from dpm.training import TrainConfig, initmodel, max_examples, random_negatives_per_image, root_shape, split
from dpm.training.init import box_array


def boxes_with(aspects, area=4000.0, x0=10, y0=20):
    """Boxes (1-based inclusive) with the given h/w and about ``area`` pixels."""
    out = []
    for a in aspects:
        w = math.sqrt(area / a)
        h = w * a
        out.append((x0, y0, x0 + round(w) - 1, y0 + round(h) - 1))
    return np.array(out, dtype=float)


def reference_root_shape(boxes):
    """Slow transcription of initmodel.m (hist, convn 'same', max, areas(floor(n*0.2)))."""
    h = boxes[:, 3] - boxes[:, 1] + 1
    w = boxes[:, 2] - boxes[:, 0] + 1
    xx = [-2 + 0.02 * k for k in range(201)]
    counts = [0] * 201
    for v in np.log(h / w):
        # MATLAB hist: nearest centre, ties to the upper bin, outer bins open
        k = 0
        while k < 200 and v >= (xx[k] + xx[k + 1]) / 2:
            k += 1
        counts[k] += 1
    smooth = []
    for i in range(201):
        s = 0.0
        for j in range(201):
            d = i - j
            if -100 <= d <= 100:
                s += counts[j] * math.exp(-d * d / 400)
        smooth.append(s)
    aspect = math.exp(xx[smooth.index(max(smooth))])
    areas = sorted(h * w)
    area = areas[max(int(math.floor(len(areas) * 0.2)), 1) - 1]
    area = max(min(area, 5000), 3000)
    ww = math.sqrt(area / aspect)
    hh = ww * aspect
    return int(math.floor(hh / 8 + 0.5)), int(math.floor(ww / 8 + 0.5))


def test_split_equal_count_bins():
    aspects = np.array([0.5, 2.0, 1.0, 0.7, 1.5, 3.0])
    groups = split(boxes_with(aspects, area=40000), 3)
    got = [sorted(np.round(aspects[g], 1)) for g in groups]
    assert got == [[0.5, 0.7], [1.0, 1.5], [2.0, 3.0]]
    assert sorted(np.concatenate(groups).tolist()) == list(range(6))


def test_split_bounds_follow_ceil_rule():
    # N = 5, n = 2: bounds at sorted[ceil(0)+1] = a1 and sorted[ceil(2.5)+1] = a4 -> 3 and 2
    boxes = np.array([(1, 1, 10, h) for h in (5, 10, 15, 20, 25)], dtype=float)
    groups = split(boxes, 2)
    assert [g.tolist() for g in groups] == [[0, 1, 2], [3, 4]]


def test_split_identical_aspects_leave_groups_empty():
    boxes = np.tile([1, 1, 64, 128], (10, 1)).astype(float)
    groups = split(boxes, 2)
    assert [len(g) for g in groups] == [0, 10]


def test_split_balance_ties_cuts_ranked_positives():
    boxes = np.tile([1, 1, 64, 128], (5, 1)).astype(float)
    boxes[3, 3] = 200  # the tallest
    groups = split(boxes, 2, balance_ties=True)
    assert [g.tolist() for g in groups] == [[0, 1, 2], [3, 4]]
    # a split the original rule does without empty groups is left alone
    aspects = np.array([0.5, 2.0, 1.0, 0.7, 1.5, 3.0])
    assert [g.tolist() for g in split(boxes_with(aspects, area=40000), 3, balance_ties=True)] == \
        [g.tolist() for g in split(boxes_with(aspects, area=40000), 3)]


def test_split_accepts_objects_with_box():
    class P:
        def __init__(self, box):
            self.box = box
    pos = [P((1, 1, 10, 30)), P((1, 1, 30, 10))]
    groups = split(pos, 2)
    assert [g.tolist() for g in groups] == [[1], [0]]


@pytest.mark.parametrize("bad", [0, -1, 1.5])
def test_split_rejects_bad_n(bad):
    with pytest.raises(ValueError, match="positive integer"):
        split(boxes_with([1.0]), bad)


def test_box_array_rejects_inverted_boxes():
    with pytest.raises(ValueError, match="inverted"):
        box_array([(10, 10, 5, 20)])


@pytest.mark.parametrize("aspect", [0.5, 1.0, 2.0, 3.0])
def test_initmodel_picks_aspect_mode(aspect):
    rng = np.random.default_rng(0)
    aspects = np.concatenate([np.full(40, aspect), rng.uniform(0.3, 4, 10)])
    m = initmodel(boxes_with(aspects, area=4000))
    h, w = m.components[0].root_size
    # 4000 px at 8 px per cell: h*w ~ 62 cells with h/w ~ aspect
    assert abs(h / w - aspect) / aspect < 0.35
    assert 40 <= h * w <= 90


def test_initmodel_area_is_clamped():
    small = initmodel(boxes_with(np.full(20, 2.0), area=500))
    large = initmodel(boxes_with(np.full(20, 2.0), area=50000))
    # the aspect is the histogram bin centre exp(0.70) (log 2 = 0.693); the area is
    # clamped to 3000 and 5000 px: w = sqrt(area/aspect), h = w*aspect -> round([h w]/8)
    aspect = math.exp(0.70)
    for m, area in ((small, 3000), (large, 5000)):
        w = math.sqrt(area / aspect)
        assert m.components[0].root_size == (int(math.floor(w * aspect / 8 + 0.5)), int(math.floor(w / 8 + 0.5)))
    assert small.components[0].root_size == (10, 5) and large.components[0].root_size == (13, 6)


def test_initmodel_area_uses_20th_percentile():
    boxes = np.array([(1, 1, s, 2 * s) for s in (45, 46, 47, 48, 49, 50, 60, 70, 80, 90)], dtype=float)
    # floor(10*0.2) = 2 -> second smallest area 46*92 = 4232
    w = math.sqrt(46 * 92 / 2.0)
    assert root_shape(boxes) == (int(math.floor(2 * w / 8 + 0.5)), int(math.floor(w / 8 + 0.5)))


def test_initmodel_matches_slow_reference(rng):
    for _ in range(5):
        n = int(rng.integers(5, 60))
        w = rng.uniform(20, 200, n)
        h = w * np.exp(rng.normal(0.4, 0.5, n))
        boxes = np.stack([np.ones(n), np.ones(n), np.round(w), np.round(h)], axis=1)
        assert root_shape(boxes) == reference_root_shape(boxes)


def test_initmodel_blocks_and_layout():
    m = initmodel(boxes_with(np.full(10, 2.0), area=4000))
    h, w = m.components[0].root_size
    c = m.components[0]
    assert (m.sbin, m.interval) == (8, 10)
    assert len(m.blocks) == 2 and (c.bias_block, c.root_block) == (0, 1)
    off, root = m.blocks
    assert (off.size, off.regmult, off.learnmult) == (1, 0.0, 20.0)
    assert off.lower_bounds.tolist() == [-100.0]
    assert (root.size, root.regmult, root.learnmult) == (math.ceil(w / 2) * h * 31, 1.0, 1.0)
    assert np.all(root.lower_bounds == -100.0) and root.lower_bounds.shape == (root.size,)
    assert not c.root.any() and c.root.shape == (h, w, 31) and c.bias == 0.0
    assert c.dim(m) == 3 + root.size
    assert m.maxsize == m.minsize == (h, w)


def test_initmodel_few_positives_and_explicit_size():
    m = initmodel(boxes_with([2.0, 2.0]))  # floor(2*0.2) = 0: smallest area is used
    assert m.components[0].root_size[0] > m.components[0].root_size[1]
    m = initmodel(boxes_with([2.0]), size=(7, 3))
    assert m.components[0].root_size == (7, 3) and m.blocks[1].size == 2 * 7 * 31
    with pytest.raises(ValueError, match="zero positives"):
        initmodel(np.zeros((0, 4)))


def test_initmodel_person_voc_gives_13x6():
    root = shared_path("data", "person-voc")
    from voc.dataset import VOCDataset
    pos = [p for p in VOCDataset(root).positives("person", "trainval") if p.image_id.startswith("inria")]
    assert len(pos) == 1208
    m = initmodel(pos)
    assert m.components[0].root_size == (13, 6)
    assert m.components[0].dim(m) == 1212   # golden learn-stage1: dim 1212, root block 1209


def test_config_defaults_and_caps():
    cfg = TrainConfig()
    assert (cfg.sbin, cfg.interval, cfg.num_parts, cfg.overlap) == (8, 10, 6, 0.7)
    assert cfg.C(1) == pytest.approx(0.002) and cfg.C(3) == pytest.approx(0.006)
    assert cfg.final_C(2) == pytest.approx(0.006) and cfg.final_J == 2.0
    assert (cfg.hard_negative_threshold, cfg.latent_interval, cfg.mining_interval) == (-1.05, 5, 2)
    names = [s.name for s in cfg.schedule()]
    assert names == ["random", "hard", "parts", "parts2", "mine"]
    mine = cfg.schedule()[-1]
    assert mine.C(2) == pytest.approx(0.006) and mine.J == 2.0 and mine.num_negatives is None
    assert max_examples(2 ** 28, 1212) == 55370
    # golden learn-stage1 README: 264 random windows per image
    assert random_negatives_per_image(2 ** 28, 1212, 2416, 200) == 264
    with pytest.raises(ValueError, match="sbin"):
        TrainConfig(sbin=7)
    with pytest.raises(Exception):
        cfg.sbin = 4  # frozen
