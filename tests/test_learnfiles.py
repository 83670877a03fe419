"""Tests of the learner interchange files (dpm.learnfiles) against the original's files."""
import struct

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from conftest import shared_path
from dpm import learnfiles as lf
from dpm.learn import BlockLayout, ExampleSet, score_examples

IO = ("golden", "learn-io")
STAGE1 = ("golden", "learn-stage1")


def _io_files():
    d = shared_path(*IO)
    return {k: d / f"person_io.{k}" for k in ("hdr", "dat", "mod", "lob")}


def _stage1_files():
    d = shared_path(*STAGE1)
    return {k: d / f"person_stage1.{k}" for k in ("hdr", "dat", "mod", "lob")}


def _ref_read_dat(raw, sizes, labelsize=5):
    """Plain reading of a .dat byte string: a list of (label ints, [(1-based label, values)])."""
    out = []
    off = 0
    while off < len(raw):
        head = struct.unpack_from(f"<{labelsize + 2}i", raw, off)
        dim = head[-1]
        vals = np.frombuffer(raw, dtype="<f4", count=dim, offset=off + 4 * (labelsize + 2))
        blocks, p = [], 0
        for _ in range(head[labelsize]):
            lab = int(vals[p])
            blocks.append((lab, vals[p + 1:p + 1 + sizes[lab - 1]]))
            p += 1 + sizes[lab - 1]
        assert p == dim
        out.append((list(head[:labelsize]), blocks))
        off += 4 * (labelsize + 2 + dim)
    return out


# --------------------------------------------------------------------------------------------
# The original's files
# --------------------------------------------------------------------------------------------

def test_read_learn_io_matches_io_info():
    f = _io_files()
    info = np.load(shared_path(*IO, "io_info.npz"))
    hdr = lf.read_hdr(f["hdr"])
    assert hdr.num == int(info["num"]) == 6 and hdr.labelsize == 5
    assert_array_equal(hdr.block_sizes, info["blocksizes"].astype(int))
    assert_allclose(hdr.regmult, info["regmult"], rtol=1e-7)
    assert_allclose(hdr.learnmult, info["learnmult"], rtol=1e-7)
    assert hdr.block_sizes.sum() == 8687
    ex = lf.read_dat(f["dat"], hdr)
    assert len(ex) == 6
    assert ex.label_ints[0].tolist() == [1, 1, 19, 18, 17]
    assert np.all(ex.label_ints[1:, :2] == [-1, 2])
    dims = ex.example_dims()
    assert dims[0] == 3567 and 28 + 4 * dims[0] == int(info["pos_bytes_end"])
    comp = info["neg_boxes"][:, 28].astype(int)
    assert_array_equal(dims[1:], np.where(comp == 1, 5142, 3567))
    assert np.diff(ex.example_ptr)[0] == 12
    assert ex.dat_nbytes == f["dat"].stat().st_size == 104_676
    assert_array_equal(lf.read_vector(f["mod"], 8687), np.zeros(8687))
    lob = lf.read_vector(f["lob"], 8687, what="lower bounds")
    assert set(np.unique(lob)) == {-100.0, 0.01}


def test_read_learn_io_blocks_and_scores_match_the_model(models_dir):
    from dpm.model import load_model, model_blocks
    f = _io_files()
    info = np.load(shared_path(*IO, "io_info.npz"))
    model = load_model(models_dir / "VOC2007" / "person_final.mat")
    hdr, layout = lf.read_layout(f["hdr"], f["lob"])
    mlayout = BlockLayout.from_blocks(model.blocks)
    assert_array_equal(layout.sizes, mlayout.sizes)
    assert_array_equal(layout.lower_bounds, mlayout.lower_bounds)
    assert_array_equal(layout.regmult, mlayout.regmult.astype(np.float32))
    assert_array_equal(layout.learnmult, mlayout.learnmult.astype(np.float32))
    ex = lf.read_dat(f["dat"], hdr)
    # every example lists its component's blocks: offset, root, then (part, def) per real part
    comps = [int(info["pos_boxes"][28])] + info["neg_boxes"][:, 28].astype(int).tolist()
    for i, c in enumerate(comps):
        comp = model.components[c - 1]
        expect = [comp.bias_block, comp.root_block]
        for p in comp.parts:
            if not p.fake:
                expect += [p.filter_block, p.def_block]
        assert ex.block_ids[ex.example_ptr[i]:ex.example_ptr[i + 1]].tolist() == expect
        _, blocks = ex.example(i)
        assert blocks[0][1].tolist() == [1.0]        # the offset feature
    # the written features reproduce detect's scores under the model's own weights
    w = np.concatenate(model_blocks(model))
    scores = score_examples(ex, layout, w)
    expect = np.concatenate([[info["pos_boxes"][29]], info["neg_boxes"][:, 29]])
    assert_allclose(scores, expect, atol=2e-6)


def test_read_stage1_matches_reference_reader_and_runs():
    f = _stage1_files()
    hdr = lf.read_hdr(f["hdr"])
    assert (hdr.num, hdr.labelsize) == (4416, 5)
    assert hdr.block_sizes.tolist() == [1, 1209]
    assert hdr.regmult.tolist() == [0.0, 1.0] and hdr.learnmult.tolist() == [20.0, 1.0]
    ex = lf.read_dat(f["dat"], hdr)
    raw = f["dat"].read_bytes()
    ref = _ref_read_dat(raw, [1, 1209])
    assert len(ex) == len(ref) == 4416
    assert_array_equal(ex.label_ints, np.array([r[0] for r in ref]))
    for i in (0, 1, 2415, 2416, 4415):
        _, blocks = ex.example(i)
        assert [(b + 1) for b, _ in blocks] == [lab for lab, _ in ref[i][1]]
        for (_, v), (_, r) in zip(blocks, ref[i][1]):
            assert_array_equal(v, r)
    assert np.all(ex.labels[:2416] == 1) and np.all(ex.labels[2416:] == -1)
    assert_array_equal(ex.label_ints[:2416, 1], np.arange(1, 2417))
    assert_array_equal(ex.label_ints[2416:, 1], np.arange(1, 2001))
    assert np.all(ex.label_ints[:, 2:] == 0)
    assert np.all(ex.example_dims() == 1212)
    # the recorded runs' weights give the recorded .inf scores and objectives
    runs = np.load(shared_path(*STAGE1, "learn_runs.npz"))
    layout = hdr.layout(lf.read_vector(f["lob"], 1210))
    from dpm.learn import lsvm_objective
    for r in (1, 2, 3):
        assert_allclose(score_examples(ex, layout, runs[f"w_run{r}"]), runs[f"inf_score_run{r}"], atol=5.1e-7)
        obj = lsvm_objective(ex, layout, float(runs["C"]), float(runs["J"]), runs[f"w_run{r}"])
        assert_allclose(obj, [runs["objective"][r - 1], runs["obj_reg"][r - 1], runs["obj_loss_pos"][r - 1],
                              runs["obj_loss_neg"][r - 1]], rtol=1e-10)
    obj0 = lsvm_objective(ex, layout, 0.002, 1.0, np.zeros(1210)).objective
    assert_allclose(obj0, float(runs["objective_at_zero"]), rtol=1e-12)


@pytest.mark.parametrize("which", ["io", "stage1"])
def test_rewrite_golden_files_byte_identical(tmp_path, which):
    f = _io_files() if which == "io" else _stage1_files()
    hdr = lf.read_hdr(f["hdr"])
    ex = lf.read_dat(f["dat"], hdr)
    ex.write_dat(tmp_path / "x.dat")
    assert (tmp_path / "x.dat").read_bytes() == f["dat"].read_bytes()
    lf.write_hdr(tmp_path / "x.hdr", hdr.num, hdr.block_sizes, hdr.regmult, hdr.learnmult)
    assert (tmp_path / "x.hdr").read_bytes() == f["hdr"].read_bytes()
    n = int(hdr.block_sizes.sum())
    lf.write_vector(tmp_path / "x.lob", lf.read_vector(f["lob"], n))
    assert (tmp_path / "x.lob").read_bytes() == f["lob"].read_bytes()


def test_inf_format_matches_recorded_runs(tmp_path):
    runs = np.load(shared_path(*STAGE1, "learn_runs.npz"))
    path = tmp_path / "x.inf"
    lf.write_inf(path, runs["inf_label"], runs["inf_score_run1"], runs["inf_unique"])
    lines = path.read_text().splitlines()
    assert len(lines) == 4416
    assert lines[0] == "1\t%f\t1" % runs["inf_score_run1"][0]
    lab, score, uniq = lf.read_inf(path)
    assert_array_equal(lab, runs["inf_label"])
    assert_array_equal(score, runs["inf_score_run1"])
    assert_array_equal(uniq, runs["inf_unique"])


# --------------------------------------------------------------------------------------------
# Round trips of synthetic sets
# --------------------------------------------------------------------------------------------

def _synthetic(rng, sizes=(1, 5, 3, 4), n=25):
    ex = ExampleSet(sizes)
    for k in range(n):
        blocks = [(b, rng.normal(size=sizes[b])) for b in rng.permutation(len(sizes))[: rng.integers(0, 4)]]
        ex.append([1 if k % 3 else -1, k, int(rng.integers(0, 9)), int(rng.integers(-5, 5)), 7], blocks)
    return ex


def test_write_then_read_round_trip(tmp_path, rng):
    sizes = (1, 5, 3, 4)
    ex = _synthetic(rng, sizes)
    assert np.any(np.diff(ex.example_ptr) == 0)       # examples without blocks too
    ex.write_dat(tmp_path / "a.dat")
    lf.write_hdr(tmp_path / "a.hdr", len(ex), sizes, [0, 1, 1, 10], [20, 1, 1, 0.1])
    hdr = lf.read_hdr(tmp_path / "a.hdr")
    assert hdr.num == len(ex) and hdr.block_sizes.tolist() == list(sizes)
    assert_array_equal(hdr.learnmult, np.float32([20, 1, 1, 0.1]))
    back = lf.read_dat(tmp_path / "a.dat", hdr)
    for name in ("label_ints", "example_ptr", "block_ids", "block_ptr", "data"):
        assert_array_equal(getattr(back, name), getattr(ex, name))
    assert back.dat_nbytes == (tmp_path / "a.dat").stat().st_size
    back.write_dat(tmp_path / "b.dat")
    assert (tmp_path / "b.dat").read_bytes() == (tmp_path / "a.dat").read_bytes()
    w = rng.normal(size=13)
    lf.write_vector(tmp_path / "a.mod", w)
    assert_array_equal(lf.read_vector(tmp_path / "a.mod", 13), w)
    sub = ex.subset([0, 3, 4])
    sub.write_dat(tmp_path / "s.dat")
    back = lf.read_dat(tmp_path / "s.dat", sizes, num=3)
    assert_array_equal(back.label_ints, ex.label_ints[[0, 3, 4]])


# --------------------------------------------------------------------------------------------
# Bad files
# --------------------------------------------------------------------------------------------

def _record(label_ints, blocks, dim=None, numblocks=None):
    vals = []
    for lab, v in blocks:
        vals += [float(lab)] + list(v)
    dim = len(vals) if dim is None else dim
    numblocks = len(blocks) if numblocks is None else numblocks
    return struct.pack("<7i", *label_ints, numblocks, dim) + np.asarray(vals, dtype="<f4").tobytes()


GOOD = _record([1, 1, 0, 0, 0], [(1, [1.0]), (2, [0.5, 0.25])])


@pytest.mark.parametrize("payload,num,match", [
    (GOOD[:20], 1, r"example 0 \(byte offset 0\): truncated .dat: the example header needs 28"),
    (GOOD + GOOD[:-4], 2, r"example 1 \(byte offset 48\): truncated .dat: dim 5 needs 20"),
    (GOOD, 2, r"example 1 \(byte offset 48\): truncated"),
    (GOOD + GOOD, 1, r"48 bytes left at byte offset 48 after the 1 examples"),
    (GOOD + _record([1, 1, 0, 0, 0], [(3, [1.0])]), 2, r"example 1 \(byte offset 48\): block label 3 at byte "
                                                       r"offset 76 is not an integer in 1..2"),
    (_record([1, 1, 0, 0, 0], [(0, [1.0])]), 1, r"block label 0 .* not an integer in 1..2"),
    (_record([1, 1, 0, 0, 0], [(1.5, [1.0])]), 1, r"block label 1.5 .* not an integer"),
    (_record([1, 1, 0, 0, 0], [(np.nan, [1.0])]), 1, r"block label nan .* not an integer"),
    (_record([0, 1, 0, 0, 0], [(1, [1.0])]), 1, r"example 0 \(byte offset 0\): label 0 is not \+1 or -1"),
    (GOOD + _record([2, 1, 0, 0, 0], [(1, [1.0])]), 2, r"example 1 .*: label 2 is not \+1 or -1"),
    (_record([1, 1, 0, 0, 0], [(1, [1.0]), (2, [0.5, 0.25])], numblocks=3), 1,
     r"its 5 values end inside block 3 of 3"),
    (_record([1, 1, 0, 0, 0], [(1, [1.0]), (2, [0.5, 0.25])], numblocks=1), 1,
     r"1 blocks use 2 values but dim is 5"),
    (_record([1, 1, 0, 0, 0], [(1, [1.0]), (2, [0.5, 0.25])], dim=4), 1, r"block 2 \(label 2, 2 values\) runs past"),
    (_record([1, 1, 0, 0, 0], [(1, [1.0])], dim=-1), 1, r"negative numblocks 1 or dim -1"),
    (GOOD + _record([-1, 1, 0, 0, 0], [(1, [1.0]), (2, [np.nan, 0.25])]), 2,
     r"example 1: NaN or infinite value at byte offset 88 \(block 2\)"),
    (_record([-1, 1, 0, 0, 0], [(2, [0.0, -np.inf])]), 1, r"example 0: NaN or infinite value at byte offset 36"),
], ids=lambda v: None if isinstance(v, bytes) else str(v)[:20])
def test_read_dat_rejects_bad_files(tmp_path, payload, num, match):
    path = tmp_path / "bad.dat"
    path.write_bytes(payload)
    with pytest.raises(ValueError, match=match):
        lf.read_dat(path, [1, 2], num=num)


def test_read_dat_good_record(tmp_path):
    path = tmp_path / "good.dat"
    path.write_bytes(GOOD + GOOD)
    ex = lf.read_dat(path, [1, 2])
    assert len(ex) == 2 and ex.data.tolist() == [1.0, 0.5, 0.25] * 2


def test_read_hdr_rejects_bad_files(tmp_path):
    path = tmp_path / "bad.hdr"
    good = struct.pack("<5i", 3, 5, 2, 1, 4) + np.float32([0, 1, 20, 1]).tobytes()
    path.write_bytes(good)
    assert lf.read_hdr(path).block_sizes.tolist() == [1, 4]
    for payload, match in [
        (good[:8], "truncated .hdr: 8 bytes"),
        (good[:-4], "truncated .hdr: 32 bytes, 2 blocks need 36"),
        (good + b"\0", "trailing bytes in .hdr"),
        (struct.pack("<3i", -1, 5, 2) + good[12:], "byte offset 0: negative example count"),
        (struct.pack("<3i", 3, 0, 2) + good[12:], "byte offset 4: label size 0"),
        (struct.pack("<3i", 3, 5, 0), "byte offset 8: number of blocks 0"),
        (good[:16] + struct.pack("<i", 0) + good[20:], "byte offset 16: block 2 has size 0"),
        (good[:20] + np.float32([np.nan]).tobytes() + good[24:], "byte offset 20: regmult of block 1"),
        (good[:32] + np.float32([-1]).tobytes(), "byte offset 32: learnmult of block 2"),
    ]:
        path.write_bytes(payload)
        with pytest.raises(ValueError, match=match):
            lf.read_hdr(path)


def test_read_vector_and_inf_reject_bad_files(tmp_path):
    path = tmp_path / "x.lob"
    path.write_bytes(np.zeros(4).tobytes())
    with pytest.raises(ValueError, match="lower bounds file of the wrong size: 32 bytes, the blocks need 5"):
        lf.read_vector(path, 5, what="lower bounds")
    path.write_bytes(np.zeros(4).tobytes() + b"\0\0")
    with pytest.raises(ValueError, match="wrong size"):
        lf.read_vector(path, 4)
    path.write_bytes(np.array([0.0, np.nan]).tobytes())
    with pytest.raises(ValueError, match="byte offset 8: NaN"):
        lf.read_vector(path, 2)
    inf = tmp_path / "x.inf"
    inf.write_text("1\t0.5\t1\n-1\tabc\t0\n")
    with pytest.raises(ValueError, match="line 2"):
        lf.read_inf(inf)


def test_fit_on_learn_io_with_the_model_as_layout(models_dir):
    from dpm.learn import fit_lsvm
    from dpm.model import load_model, model_blocks, model_from_blocks
    f = _io_files()
    model = load_model(models_dir / "VOC2007" / "person_final.mat")
    ex = lf.read_dat(f["dat"], lf.read_hdr(f["hdr"]))
    res = fit_lsvm(ex, model, 0.002, 1.0, seed=0, max_updates=3_000)
    assert res.num_groups == 6 and res.updates >= 3_000
    assert np.all(res.w >= BlockLayout.from_blocks(model.blocks).lower_bounds)
    # the learned blocks go back into the model, fake parts mirrored from their partners
    new = model_from_blocks(model, res.blocks())
    assert_array_equal(np.concatenate(model_blocks(new)), res.w)
    # positives end up above the negatives
    assert res.scores[0] > res.scores[1:].max()
