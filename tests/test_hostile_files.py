"""Small files that declare huge contents, damaged models and huge images: refused in bounded memory.

Each case was reproduced first (``np.load`` / ``scipy.io.loadmat`` / Pillow
allocate what the file declares, ``load_model`` accepted ``nan`` weights and an
interval of 10**6); the peak-memory checks run the loader in a fresh process.
"""
import json
import struct
import zlib

import numpy as np
import pytest

import hostile
from dpm.files import read_mat, read_npz
from dpm.image import read_image
from dpm.limits import LimitError
from dpm.model import load_model, model_to_payload, save_model

PERSON = hostile.__file__.replace("tests/hostile.py", "dpm/data/person.npz")
LOAD = "import dpm\ntry:\n    dpm.load_model(sys.argv[1])\n    print('loaded')\nexcept ValueError as e:\n    print(e)"


@pytest.fixture(scope="module")
def person_arrays():
    return read_npz(PERSON)


def write_npz(path, arrays):
    hostile.write_zip(path, [hostile.npz_member(k, v) for k, v in arrays.items()])
    return path


# --- .npz decompression bombs ---------------------------------------------------------------

def test_20mb_npz_bomb_is_refused_in_under_100mb(tmp_path, person_arrays):
    bomb = tmp_path / "bomb.npz"
    hostile.model_npz_bomb(bomb, person_arrays, declared=20 * hostile.GiB)
    assert 15e6 < bomb.stat().st_size < 25e6
    rc, out, err, peak = hostile.run_measured(LOAD, bomb, address_space=2 * hostile.GiB)
    assert rc == 0, err
    assert len(out) == 1 and "bomb.npz" in out[0] and "20.0 GiB" in out[0] and "DPM_MAX_MODEL_BYTES" in out[0]
    assert peak < 100, f"peak memory {peak:.0f} MiB"


def test_member_that_inflates_past_its_declared_size_is_damaged(tmp_path, person_arrays):
    bomb = tmp_path / "liar.npz"    # declares 1 MiB, holds 2 GiB of zeros
    hostile.model_npz_bomb(bomb, person_arrays, declared=hostile.MiB, actual=2 * hostile.GiB)
    rc, out, err, peak = hostile.run_measured(LOAD, bomb, address_space=2 * hostile.GiB)
    assert rc == 0, err
    assert "liar.npz" in out[0] and ("damaged" in out[0] or "CRC" in out[0] or "c0.root" in out[0])
    assert peak < 100


def test_header_shape_that_disagrees_with_the_member_size(tmp_path, person_arrays):
    arrays = dict(person_arrays)
    path = tmp_path / "m.npz"
    members = [hostile.npz_member(k, v) for k, v in arrays.items() if k != "c0.root"]
    raw = hostile.npy_header((10 ** 9, 31)) + bytes(800)
    comp = zlib.compressobj(6, zlib.DEFLATED, -15)
    members.append(("c0.root.npy", comp.compress(raw) + comp.flush(), zlib.crc32(raw), len(raw), 8))
    hostile.write_zip(path, members)
    with pytest.raises(ValueError, match=r"m\.npz: member 'c0.root.npy' is damaged: its header describes"):
        load_model(path)


def test_object_arrays_and_other_members_are_refused(tmp_path, person_arrays):
    path = tmp_path / "pickle.npz"
    np.savez(path, **person_arrays, evil=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="member 'evil.npy' holds object values"):
        load_model(path)
    import zipfile
    path = tmp_path / "extra.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(ValueError, match="member 'readme.txt' is not a .npy array"):
        load_model(path)


def test_too_many_members_refused_before_listing(tmp_path):
    path = tmp_path / "many.npz"
    member = hostile.npz_member("a", np.zeros(1))
    hostile.write_zip(path, [(f"a{i}.npy",) + member[1:] for i in range(300)])
    with pytest.raises(ValueError, match="lists 300 members, more than the 100"):
        read_npz(path, max_members=100)


def test_limit_keyword_and_environment(tmp_path, monkeypatch, person_arrays):
    size = sum(a.nbytes for a in person_arrays.values())
    with pytest.raises(LimitError, match=r"person\.npz: the array data it declares is .* over the limit of "
                                         r"1\.0 KiB.*DPM_MAX_MODEL_BYTES=<number> or the keyword max_bytes="):
        load_model(PERSON, max_bytes=1024)
    monkeypatch.setenv("DPM_MAX_MODEL_BYTES", "1K")
    with pytest.raises(LimitError):
        load_model(PERSON)
    assert load_model(PERSON, max_bytes=10 * size).sbin == 8        # the keyword wins
    monkeypatch.setenv("DPM_MAX_MODEL_BYTES", "1M")
    assert load_model(PERSON).sbin == 8
    monkeypatch.setenv("DPM_MAX_MODEL_BYTES", "lots")
    with pytest.raises(ValueError, match="DPM_MAX_MODEL_BYTES='lots'"):
        load_model(PERSON)


def test_read_npz_round_trips_plain_arrays(tmp_path, rng):
    arrays = {"f": rng.normal(size=(3, 4)), "i": np.arange(5, dtype=">i4"), "b": np.array([True, False]),
              "s": np.array("text"), "fortran": np.asfortranarray(rng.normal(size=(2, 3))),
              "empty": np.zeros((0, 3))}
    np.savez(tmp_path / "a.npz", **arrays)
    np.savez_compressed(tmp_path / "b.npz", **arrays)
    for name in ("a.npz", "b.npz"):
        out = read_npz(tmp_path / name)
        assert list(out) == list(arrays)
        for k, v in arrays.items():
            np.testing.assert_array_equal(out[k], v)
            assert out[k].dtype == v.dtype and out[k].shape == v.shape


# --- .mat bombs -------------------------------------------------------------------------------

MAT_LOAD = LOAD


def test_mat_that_expands_a_thousandfold_is_refused(tmp_path):
    path = tmp_path / "bomb.mat"
    # A MAT v5 variable holds at most 4 GiB; 2 MB that inflate to 2 GiB: about 1000x.
    size = hostile.mat_bomb(path, inflated=2 * hostile.GiB)
    assert size < 2.5e6
    rc, out, err, peak = hostile.run_measured(MAT_LOAD, path, address_space=2 * hostile.GiB)
    assert rc == 0, err
    assert "bomb.mat: inflated, a variable is 2.0 GiB, over the limit of 64.0 MiB" in out[0]
    assert peak < 100, f"peak memory {peak:.0f} MiB"


def test_mat_compressed_variable_that_lies_about_its_size(tmp_path):
    path = tmp_path / "liar.mat"
    hostile.mat_bomb(path, inflated=2 * hostile.GiB, declared=4096)
    rc, out, err, peak = hostile.run_measured(MAT_LOAD, path, address_space=2 * hostile.GiB)
    assert rc == 0, err
    assert "liar.mat: damaged .mat file" in out[0]
    assert peak < 100


def _mat_cell(dims, n_items):
    body = (struct.pack("<IIII", 6, 8, 1, 0) + struct.pack("<II", 5, 4 * len(dims)) + struct.pack(
        f"<{len(dims)}i", *dims) + b"\0" * (-4 * len(dims) % 8) + struct.pack("<II", 1, 5) + b"model\0\0\0"
        + struct.pack("<II", 14, 0) * n_items)
    return hostile.mat_header() + struct.pack("<II", 14, len(body)) + body


def test_mat_cell_declaring_a_billion_elements_is_refused_without_allocating(tmp_path):
    path = tmp_path / "cells.mat"
    path.write_bytes(_mat_cell((1000, 1000000), 3))
    rc, out, err, peak = hostile.run_measured(MAT_LOAD, path, address_space=2 * hostile.GiB)
    assert rc == 0, err
    assert "cells.mat: damaged .mat file (an array of dimensions (1000, 1000000) declares 1000000000" in out[0]
    assert peak < 100
    path.write_bytes(_mat_cell((1, 3), 3))       # the same, well formed, reads
    assert read_mat(path, squeeze_me=True)["model"].shape == (3,)


def test_mat_file_larger_than_the_limit(tmp_path, models_dir):
    f = models_dir / "INRIA" / "inria_final.mat"
    with pytest.raises(LimitError, match="inria_final.mat: the model file is 63.8 KiB, over the limit of 10.0 KiB"):
        load_model(f, max_bytes=10 * 1024)
    assert load_model(f, max_bytes=1024 * 1024).sbin == 8


def test_mat_sparse_and_hdf5_refused(tmp_path):
    import scipy.io as sio
    import scipy.sparse as sp
    sio.savemat(tmp_path / "s.mat", {"model": sp.eye(3).tocsc()})
    with pytest.raises(ValueError, match="s.mat: holds a MATLAB sparse array 'model'"):
        load_model(tmp_path / "s.mat")
    (tmp_path / "h.mat").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(600))
    with pytest.raises(ValueError, match="h.mat: MATLAB v7.3"):
        load_model(tmp_path / "h.mat")


# --- model fields -----------------------------------------------------------------------------

def _payload_file(tmp_path, change):
    meta, arrays = model_to_payload(load_model(PERSON))
    change(meta, arrays)
    arrays = dict(arrays, format=np.array("dpm-model"), format_version=np.array(1),
                  meta=np.array(json.dumps(meta)))
    return write_npz(tmp_path / "bad.npz", arrays)


def _set(key, value):
    def change(meta, arrays):
        if key in arrays:
            arrays[key] = arrays[key].copy()
            arrays[key].flat[0] = value
        else:
            target, *path = key.split("/")
            obj = meta
            for p in path[:-1]:
                obj = obj[int(p)] if isinstance(obj, list) else obj[p]
            last = path[-1] if path else target
            if isinstance(obj, list):
                obj[int(last)] = value
            else:
                (obj if path else meta)[last] = value
    return change


def _more_components(meta, arrays, n):
    for ci in range(1, n + 1):
        meta["components"].append(meta["components"][0])
        arrays.update({k.replace("c0.", f"c{ci}.", 1): v for k, v in list(arrays.items()) if k.startswith("c0.")})


@pytest.mark.parametrize("change,message", [
    (_set("interval", 10 ** 6), r"interval must be a whole number in 1\.\.100, got 1000000"),
    (_set("interval", 0), "interval must be"),
    (_set("sbin", 7), "sbin must be an even number"),
    (_set("sbin", 1024), r"sbin must be a whole number in 2\.\.64"),
    (_set("thresh", float("nan")), "thresh holds a non-finite value"),
    (_set("c0.root", np.nan), "component 0 root filter holds a non-finite value"),
    (_set("c0.p2.filter", np.inf), "component 0 part 2 filter holds a non-finite value"),
    (_set("c0.p0.deformation", -np.inf), "component 0 part 0 deformation holds a non-finite value"),
    (_set("c0.p0.deformation", -0.5), "negative quadratic cost"),
    (_set("c0.bbox_regressor", np.nan), "component 0 bbox regressor holds a non-finite value"),
    (_set("b0.lower_bounds", np.nan), "block 0 lower bounds hold NaN"),
    (_set("c0.root", 1e308), r"component 0 root filter holds 1e\+308, out of the range"),
    (_set("thresh", -1e7), "thresh holds -1e\\+07, out of the range"),
    (lambda m, a: m["components"][0].update(bias=float("inf")), "component 0 bias holds a non-finite value"),
    (lambda m, a: m["components"][0]["parts"][0].update(anchor=[10 ** 6, 1]), "anchor .* outside"),
    (lambda m, a: m["components"][0]["parts"][0].update(anchor=[0, 1]), "anchor .* outside"),
    (lambda m, a: m["components"][0]["parts"][0].update(partner=99), "invalid partner 99"),
    (lambda m, a: m["components"][0].update(root_block=10 ** 9), "refers to block 1000000000"),
    (lambda m, a: m["blocks"][0].update(regmult=float("nan")), "block 0 regmult must be a finite number"),
    (lambda m, a: a.update({"c0.root": np.zeros((65, 6, 31))}), r"each side must be a whole number in 1\.\.64"),
    (lambda m, a: a.update({"c0.root": np.zeros((13, 6, 31), dtype=complex)}), "holds complex128 values"),
    (lambda m, a: _more_components(m, a, 40), r"number of components must be .* 1\.\.32"),
])
def test_model_fields_out_of_range_are_refused_at_load(tmp_path, change, message):
    path = _payload_file(tmp_path, change)
    with pytest.raises(ValueError, match=message) as info:
        load_model(path)
    text = str(info.value)
    assert text.startswith(str(path)) and "\n" not in text


def test_untouched_payload_loads(tmp_path):
    assert load_model(_payload_file(tmp_path, lambda m, a: None)).sbin == 8


def test_original_models_pass_every_check(models_dir):
    for f in sorted(models_dir.glob("*/*.mat")):
        m = load_model(f)
        assert all(c.bbox_regressor is not None for c in m.components)
        assert m.thresh < 0       # thresholds may be negative


def test_empty_mat_regressor_fields_mean_no_regressor(tmp_path, models_dir):
    import scipy.io as sio
    mat = sio.loadmat(models_dir / "INRIA" / "inria_final.mat", squeeze_me=False, struct_as_record=True)
    comps = mat["model"]["components"][0, 0]
    for k in ("x1", "y1", "x2", "y2"):
        comps[0, 0][0, 0][k] = np.zeros((0, 0))
    sio.savemat(tmp_path / "inria_final.mat", {"model": mat["model"]}, do_compression=True)
    m = load_model(tmp_path / "inria_final.mat")
    assert m.components[0].bbox_regressor is None and m.class_name == "person"


def test_nan_model_cannot_be_saved_and_reloaded_silently(tmp_path):
    m = load_model(PERSON)
    m.components[0].root[0, 0, 0] = np.nan
    save_model(m, tmp_path / "nan.npz")
    with pytest.raises(ValueError, match="nan.npz: component 0 root filter holds a non-finite value"):
        load_model(tmp_path / "nan.npz")


# --- images -----------------------------------------------------------------------------------

def test_400kb_png_of_20000x20000_is_refused_from_its_header(tmp_path):
    path = tmp_path / "huge.png"
    size = hostile.huge_png(path, 20000, 20000)
    assert size < 500_000
    code = "import dpm\ntry:\n    dpm.read_image(sys.argv[1])\n    print('loaded')\nexcept ValueError as e:\n    print(e)"
    rc, out, err, peak = hostile.run_measured(code, path, address_space=2 * hostile.GiB)
    assert rc == 0, err
    assert out == [f"{path}: the image is 400,000,000 pixels, over the limit of 150,000,000 pixels; "
                   "if you trust the file, raise the limit with the environment variable DPM_MAX_PIXELS=<number> "
                   "or the keyword max_pixels="]
    assert peak < 100


def test_png_of_12000x12000_is_read_and_one_over_the_limit_refused_with_its_size(tmp_path):
    path = tmp_path / "big.png"
    hostile.huge_png(path, 12000, 12000)
    code = "import dpm\ntry:\n    print(dpm.read_image(sys.argv[1]).shape)\nexcept ValueError as e:\n    print(e)"
    rc, out, err, peak = hostile.run_measured(code, path, address_space=3 * hostile.GiB)
    assert rc == 0, err
    assert out == ["(12000, 12000, 3)"]
    hostile.huge_png(path, 13000, 12000)
    rc, out, err, peak = hostile.run_measured(code, path, address_space=2 * hostile.GiB)
    assert out == [f"{path}: the image is 13000x12000 = 156,000,000 pixels, over the limit of 150,000,000 pixels; "
                   "if you trust the file, raise the limit with the environment variable DPM_MAX_PIXELS=<number> "
                   "or the keyword max_pixels="]
    assert peak < 100


def test_pixel_limit_keyword_and_environment(tmp_path, monkeypatch):
    path = tmp_path / "wide.png"
    hostile.huge_png(path, 400, 300)
    with pytest.raises(LimitError, match="400x300 = 120,000 pixels, over the limit of 100,000 pixels"):
        read_image(path, max_pixels=100_000)
    monkeypatch.setenv("DPM_MAX_PIXELS", "100000")
    with pytest.raises(LimitError):
        read_image(path)
    assert read_image(path, max_pixels=120_000).shape == (300, 400, 3)


def test_pillow_bomb_error_is_one_line(tmp_path):
    path = tmp_path / "bomb.png"
    hostile.huge_png(path, 200_000, 1000)       # 200 million pixels: Pillow's own error threshold
    with pytest.raises(ValueError, match="bomb.png: cannot read image .*exceeds limit.*MAX_IMAGE_PIXELS"):
        read_image(path, max_pixels=10 ** 9)


def test_truncated_and_corrupt_images_name_the_file(tmp_path, rng):
    from PIL import Image
    a = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    Image.fromarray(a).save(tmp_path / "ok.png")
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    bad = bytearray(data)
    bad[len(bad) // 2] ^= 0xFF
    (tmp_path / "flip.png").write_bytes(bytes(bad))
    for name in ("cut.png", "flip.png"):
        with pytest.raises(ValueError, match=f"{name}: cannot read image") as info:
            read_image(tmp_path / name)
        assert "\n" not in str(info.value)


# --- dpm-show sizes ---------------------------------------------------------------------------

@pytest.mark.parametrize("args,message", [
    (["--features", "x.png", "--sbin", "1000000"], r"--sbin must be an even number in 2\.\.64, got 1000000"),
    (["--features", "x.png", "--dpi", "1e9"], r"--dpi must be a number in \(0, 2400\], got 1e\+09"),
    (["--features", "x.png", "--dpi", "nan"], "--dpi must be a number"),
])
def test_show_size_options_are_range_checked(capsys, args, message):
    from dpm.cli.show import main
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("dpm-show: error:")
    import re
    assert re.search(message, err)


def test_show_figure_pixel_limit(tmp_path, capsys):
    from dpm.cli.show import main
    assert main([PERSON, "--out", str(tmp_path / "m.png"), "--dpi", "2400"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("dpm-show: error: a figure of ") and "use a lower dpi" in err and "\n" not in err
    assert not (tmp_path / "m.png").exists()


def test_show_features_library_checks_sbin():
    from dpm.vis import show_features
    with pytest.raises(ValueError, match=r"sbin must be an even number in 2\.\.64, got 1000000"):
        show_features(np.zeros((32, 32, 3)), 10 ** 6)
