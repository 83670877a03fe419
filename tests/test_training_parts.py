"""Tests of dpm.training.merge (mergemodels.m) and dpm.training.parts (addparts.m)."""
import numpy as np
import pytest

from dpm.features.flip import FLIP_PERMUTATION, flip_features
from dpm.model import model_blocks, model_from_blocks, save_model, load_model
from dpm.training import addparts, initmodel, mergemodels
from dpm.training.parts import part_energy, part_shapes, place_parts
from dpm.training.imresize import imresize


def symmetric_root(h, w, rng):
    """A left/right symmetric root filter (mirror-invariant, centre column included)."""
    half = rng.normal(size=(h, (w + 1) // 2, 31))
    if w % 2:
        c = half[:, -1]
        half[:, -1] = 0.5 * (c + c[:, FLIP_PERMUTATION])
    full = np.empty((h, w, 31))
    full[:, :half.shape[1]] = half
    if w // 2:
        full[:, w - w // 2:] = flip_features(half[:, :w // 2])
    return full


def root_model(h, w, rng=None):
    m = initmodel(np.array([[1, 1, 8 * w, 8 * h]], dtype=float), size=(h, w))
    if rng is not None:
        m.components[0].root = symmetric_root(h, w, rng)
    return m


# ------------------------------------------------------------------------------------------
# mergemodels
# ------------------------------------------------------------------------------------------

def test_merge_renumbers_offsets_then_roots(rng):
    a, b, c = root_model(13, 6, rng), root_model(9, 9, rng), root_model(5, 12, rng)
    m = mergemodels([a, b, c])
    assert [comp.root_size for comp in m.components] == [(13, 6), (9, 9), (5, 12)]
    assert [comp.bias_block for comp in m.components] == [0, 1, 2]
    assert [comp.root_block for comp in m.components] == [3, 4, 5]
    assert [blk.size for blk in m.blocks] == [1, 1, 1, 3 * 13 * 31, 5 * 9 * 31, 6 * 5 * 31]
    assert [blk.learnmult for blk in m.blocks] == [20, 20, 20, 1, 1, 1]
    assert m.maxsize == (13, 12) and m.minsize == (5, 6)
    for src, comp in zip((a, b, c), m.components):
        np.testing.assert_array_equal(comp.root, src.components[0].root)
    # the inputs are untouched and the merged weights round-trip through the block layout
    assert a.components[0].root_block == 1 and len(a.blocks) == 2
    again = model_from_blocks(m, model_blocks(m))
    for x, y in zip(m.components, again.components):
        np.testing.assert_allclose(x.root, y.root)


def test_merge_with_parts_puts_parts_then_defs(rng):
    a = addparts(root_model(8, 6, rng), 0, 3)
    b = addparts(root_model(6, 8, rng), 0, 2)
    m = mergemodels([a, b])
    na = sum(not p.fake for p in a.components[0].parts)
    nb = sum(not p.fake for p in b.components[0].parts)
    filt = [p.filter_block for c in m.components for p in c.parts if not p.fake]
    defs = [p.def_block for c in m.components for p in c.parts if not p.fake]
    assert filt == list(range(4, 4 + na + nb))
    assert defs == list(range(4 + na + nb, 4 + 2 * (na + nb)))
    assert all(m.blocks[d].size == 4 and m.blocks[d].regmult == 10 for d in defs)
    for src, comp in zip((a, b), m.components):
        for p, q in zip(src.components[0].parts, comp.parts):
            assert (p.anchor, p.partner, p.fake) == (q.anchor, q.partner, q.fake)
            if not p.fake:
                assert m.blocks[q.filter_block].size == src.blocks[p.filter_block].size


def test_merge_rejects_nothing_and_mixed_sbin(rng):
    with pytest.raises(ValueError, match="at least one"):
        mergemodels([])
    a, b = root_model(5, 5), root_model(5, 5)
    b.sbin = 4
    with pytest.raises(ValueError, match="sbin"):
        mergemodels([a, b])


# ------------------------------------------------------------------------------------------
# addparts
# ------------------------------------------------------------------------------------------

def test_part_energy_is_symmetric_and_uses_bicubic(rng):
    root = symmetric_root(7, 5, rng)
    root2x, energy = part_energy(root)
    assert root2x.shape == (14, 10, 31)
    np.testing.assert_allclose(root2x, imresize(root, (14, 10), method="bicubic"))
    np.testing.assert_array_equal(energy, energy[:, ::-1])
    # a symmetric root stays symmetric after upsampling
    np.testing.assert_allclose(root2x, flip_features(root2x), atol=1e-12)
    e = (np.maximum(root2x, 0) ** 2).sum(2)
    np.testing.assert_allclose(energy, e + e[:, ::-1])


def test_part_shapes_rule():
    shapes = part_shapes((15, 5), 6)         # INRIA root: target 50 cells at 2x
    assert shapes == [(7, 8), (8, 7), (9, 6), (10, 6)]
    for h, w in part_shapes((9, 7), 6):
        assert 42 <= h * w <= 1.2 * 42 and abs(h - w) <= 4 and 3 <= h <= 16 and 3 <= w <= 12


def test_place_parts_planted_blob_gets_a_centred_part():
    energy = np.zeros((20, 12))
    energy[5:11, 3:9] = 1.0                  # centred 6x6 blob
    (x, y, h, w, paired), = place_parts(energy, [(6, 6)], 1)
    assert (x, y, h, w, paired) == (3, 5, 6, 6, False)


def test_place_parts_off_centre_blob_gives_a_pair():
    energy = np.zeros((20, 16))
    energy[2:8, 1:5] = 5.0                   # left blob and its mirror
    energy[2:8, 11:15] = 5.0
    chosen = place_parts(energy, [(6, 4)], 2)
    assert chosen == [(1, 2, 6, 4, True)]    # the left placement is the real part


def test_place_parts_forbids_crossing_the_centre():
    energy = np.zeros((10, 12))
    energy[:, 4:8] = 1.0                      # all energy around the centre line
    energy[0, 0] = 0.1
    chosen = place_parts(energy, [(4, 5)], 2)
    for x, y, h, w, paired in chosen:
        xm = 12 - x - w
        assert xm == x or abs(xm - x) >= w    # centred or not overlapping its mirror
    # odd width in an even map can never be centred: the first part must be a pair
    x, y, h, w, paired = chosen[0]
    assert paired


def test_place_parts_last_part_must_be_centred():
    energy = np.zeros((12, 12))
    energy[0:4, 0:4] = energy[0:4, 8:12] = 10.0   # strong mirrored pair
    energy[6:10, 4:8] = 1.0                       # weak centre blob
    chosen = place_parts(energy, [(4, 4)], 3)
    assert chosen[0] == (0, 0, 4, 4, True)
    assert chosen[1][4] is False and 12 - chosen[1][0] - 4 == chosen[1][0]
    # with only one part there is no pair at all, even though the pair is stronger
    only = place_parts(energy, [(4, 4)], 1)
    assert only[0][4] is False


def test_place_parts_raises_when_nothing_fits():
    with pytest.raises(ValueError, match="no allowed placement"):
        place_parts(np.ones((10, 10)), [(3, 3)], 1)   # odd width, even map, one part
    with pytest.raises(ValueError, match="no candidate"):
        place_parts(np.ones((10, 10)), [], 1)


def test_addparts_structure_blocks_and_partners(rng):
    m = root_model(9, 7, rng)
    new = addparts(m, 0, 6)
    comp = new.components[0]
    assert len(comp.parts) == 6 and m.components[0].parts == []
    W = 14
    for i, p in enumerate(comp.parts):
        x, y = p.anchor
        h, w = p.size
        assert 1 <= x and x + w - 1 <= W and 1 <= y and y + h - 1 <= 18
        if p.fake:
            src = comp.parts[p.partner]
            assert src.partner == i and not src.fake and p.partner == i - 1
            assert x == W - src.anchor[0] - w + 2 and y == src.anchor[1]     # mirror anchor
            np.testing.assert_array_equal(p.filter, flip_features(src.filter))
            assert (p.filter_block, p.def_block) == (-1, -1)
        elif p.partner >= 0:
            assert comp.parts[p.partner].fake and x < W - x - w + 2
        else:
            assert x == W - x - w + 2                                         # centred
    reals = [p for p in comp.parts if not p.fake]
    assert [p.filter_block for p in reals] == list(range(2, 2 + 2 * len(reals), 2))
    assert [p.def_block for p in reals] == list(range(3, 3 + 2 * len(reals), 2))
    for p in reals:
        fb, db = new.blocks[p.filter_block], new.blocks[p.def_block]
        h, w = p.size
        assert fb.size == (w if p.partner >= 0 else (w + 1) // 2) * h * 31
        assert (fb.regmult, fb.learnmult) == (1, 1) and np.all(fb.lower_bounds == -100)
        assert (db.size, db.regmult, db.learnmult) == (4, 10, 0.1)
        assert db.lower_bounds.tolist() == [0.01, -100, 0.01, -100]
        assert p.deformation.tolist() == [0.1, 0.0, 0.1, 0.0]
    assert comp.dim(new) == 3 + new.blocks[1].size + sum(6 + new.blocks[p.filter_block].size for p in reals)
    # the part filters are crops of the 2x root
    root2x, _ = part_energy(comp.root)
    for p in comp.parts:
        x, y = p.anchor
        h, w = p.size
        np.testing.assert_allclose(p.filter, root2x[y - 1:y - 1 + h, x - 1:x - 1 + w], atol=1e-12)


def test_addparts_planted_energy_gets_the_first_part(rng):
    h, w = 10, 8
    root = np.zeros((h, w, 31))
    root[1:4, 0, 0] = 3.0                           # blob at the left edge ...
    root[1:4, 7, FLIP_PERMUTATION[0]] = 3.0         # ... and its mirror at the right edge
    root += 0.001 * symmetric_root(h, w, rng)
    m = root_model(h, w)
    m.components[0].root = root
    comp = addparts(m, 0, 6).components[0]
    first = comp.parts[0]
    x, y = first.anchor
    ph, pw = first.size
    # no centred part can reach both blobs (2x columns 1-2 and 15-16): the first part
    # is a pair whose real half covers the left blob (2x rows 3..8)
    assert first.partner == 1 and comp.parts[1].fake and comp.parts[1].partner == 0
    assert x == 1 and y <= 3 and y + ph - 1 >= 8
    assert comp.parts[1].anchor == (16 - pw + 1, y)


def test_addparts_each_component_and_round_trip(rng, tmp_path):
    m = mergemodels([root_model(9, 7, rng), root_model(12, 5, rng)])
    for c in range(2):
        m = addparts(m, c, 6)
    assert [len(c.parts) for c in m.components] == [6, 6]
    path = save_model(m, tmp_path / "m.npz")
    back = load_model(path)
    for a, b in zip(m.components, back.components):
        assert [(p.anchor, p.partner, p.fake) for p in a.parts] == [(p.anchor, p.partner, p.fake) for p in b.parts]
    # the learner layout rebuilds the same filters (self-symmetric parts fold exactly)
    again = model_from_blocks(m, model_blocks(m))
    for a, b in zip(m.components, again.components):
        for p, q in zip(a.parts, b.parts):
            np.testing.assert_allclose(p.filter, q.filter, atol=1e-12)


def test_addparts_rejects_bad_arguments(rng):
    m = root_model(9, 7, rng)
    with pytest.raises(ValueError, match="component 3"):
        addparts(m, 3, 6)
    with pytest.raises(ValueError, match="numparts"):
        addparts(m, 0, -1)
    assert addparts(m, 0, 0).components[0].parts == []
