import numpy as np
import pytest

from dpm.features.flip import flip_features
from dpm.model import Model, load_model, model_blocks, model_from_blocks, save_model


def all_mat_models(models_dir):
    return sorted(models_dir.glob("*/*.mat"))


def assert_models_equal(a: Model, b: Model):
    assert (a.sbin, a.interval, a.thresh, a.class_name, a.info) == (b.sbin, b.interval, b.thresh, b.class_name, b.info)
    assert len(a.components) == len(b.components) and len(a.blocks) == len(b.blocks)
    for ca, cb in zip(a.components, b.components):
        np.testing.assert_array_equal(ca.root, cb.root)
        assert (ca.bias, ca.root_block, ca.bias_block) == (cb.bias, cb.root_block, cb.bias_block)
        if ca.bbox_regressor is None:
            assert cb.bbox_regressor is None
        else:
            np.testing.assert_array_equal(ca.bbox_regressor, cb.bbox_regressor)
        assert len(ca.parts) == len(cb.parts)
        for pa, pb in zip(ca.parts, cb.parts):
            np.testing.assert_array_equal(pa.filter, pb.filter)
            np.testing.assert_array_equal(pa.deformation, pb.deformation)
            assert (pa.anchor, pa.partner, pa.fake, pa.filter_block, pa.def_block) == \
                   (pb.anchor, pb.partner, pb.fake, pb.filter_block, pb.def_block)
    for ba, bb in zip(a.blocks, b.blocks):
        assert (ba.size, ba.regmult, ba.learnmult) == (bb.size, bb.regmult, bb.learnmult)
        np.testing.assert_array_equal(ba.lower_bounds, bb.lower_bounds)


def test_every_shipped_model_loads(models_dir):
    files = all_mat_models(models_dir)
    assert len(files) == 21
    for f in files:
        m = load_model(f)
        assert m.sbin == 8 and m.interval == 10
        assert all(len(c.parts) == 6 for c in m.components)
        assert m.class_name == ("person" if f.stem == "inria_final" else f.stem.replace("_final", ""))


def test_person_model_structure_matches_spec(models_dir):
    m = load_model(models_dir / "VOC2007" / "person_final.mat")
    assert len(m.components) == 2 and len(m.blocks) == 22
    assert m.maxsize == (11, 7) and m.minsize == (9, 4) and m.padding == (7, 5)
    assert m.components[0].dim(m) == 5142 and m.components[0].numblocks == 10
    assert m.thresh == pytest.approx(-1.908888)
    c = m.components[0]
    for p in c.parts:  # fake parts mirror their partners
        if p.fake:
            q = c.parts[p.partner]
            assert q.partner == c.parts.index(p)
            np.testing.assert_array_equal(p.filter, flip_features(q.filter))
            np.testing.assert_allclose(p.deformation, q.deformation * [1, -1, 1, 1])


def test_save_load_round_trip_exact(models_dir, tmp_path):
    for f in all_mat_models(models_dir)[:4]:
        m = load_model(f)
        out = save_model(m, tmp_path / "m.npz")
        assert_models_equal(m, load_model(out))
    assert not list(tmp_path.glob("*.tmp"))


def test_blocks_round_trip_is_parsemodel(models_dir):
    m = load_model(models_dir / "VOC2007" / "person_final.mat")
    blocks = model_blocks(m)
    assert [b.size for b in m.blocks] == [v.size for v in blocks]
    assert_models_equal(m, model_from_blocks(m, blocks))
    # the concatenated .mod layout works too, and new weights propagate to the fake partners
    vec = np.concatenate(blocks) * 2
    m2 = model_from_blocks(m, vec)
    c = m2.components[0]
    fake = next(p for p in c.parts if p.fake)
    np.testing.assert_allclose(fake.filter, flip_features(c.parts[fake.partner].filter))
    np.testing.assert_allclose(c.root, 2 * m.components[0].root)


def test_load_rejects_non_models(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.npz")
    junk = tmp_path / "junk.mat"
    junk.write_bytes(b"this is not a mat file at all" * 10)
    with pytest.raises(ValueError, match="junk.mat"):
        load_model(junk)
    txt = tmp_path / "notes.txt"
    txt.write_text("hello")
    with pytest.raises(ValueError, match="not a model file"):
        load_model(txt)
    other = tmp_path / "arrays.npz"
    np.savez(other, a=np.zeros(3))
    with pytest.raises(ValueError, match="not a dpm model file"):
        load_model(other)


def test_load_rejects_other_mat_and_newer_versions(tmp_path, models_dir):
    import scipy.io as sio

    f = tmp_path / "r5.mat"
    sio.savemat(f, {"model": {"symbols": np.zeros(2), "rules": np.zeros(2)}})
    with pytest.raises(ValueError, match="voc-release4 model.*voc-release5 star models"):
        load_model(f)
    f2 = tmp_path / "novar.mat"
    sio.savemat(f2, {"x": np.zeros(2)})
    with pytest.raises(ValueError, match="no variable named 'model'"):
        load_model(f2)
    m = load_model(models_dir / "INRIA" / "inria_final.mat")
    path = save_model(m, tmp_path / "m.npz")
    with np.load(path) as z:
        data = dict(z)
    data["format_version"] = np.array(99)
    np.savez(tmp_path / "new.npz", **data)
    with pytest.raises(ValueError, match="newer dpm"):
        load_model(tmp_path / "new.npz")
    del data["c0.root"]
    data["format_version"] = np.array(1)
    np.savez(tmp_path / "broken.npz", **data)
    with pytest.raises(ValueError, match="missing"):
        load_model(tmp_path / "broken.npz")
