"""Models in and out of OpenCV's cascade DPM XML (dpm.model.opencv, dpm-convert)."""
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest

import dpm
from dpm.cli.convert import main as convert_main
from dpm.data import builtin_model_path
from dpm.files.opencv_storage import read_opencv_storage
from dpm.image import read_image
from dpm.boxes import predict_boxes
from dpm.model.opencv import (OPENCV_FEATURES, anchored_box_prediction, apply_box_prediction, opencv_entries,
                              read_opencv_star_model, read_opencv_xml, write_opencv_xml)

from conftest import shared_path

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def person():
    return dpm.load_model(builtin_model_path("person"))


def _same(a, b, atol=0.0):
    assert a.keys() == b.keys()
    for k in a:
        va, vb = a[k], b[k]
        if isinstance(va, list):
            assert len(va) == len(vb), k
            for x, y in zip(va, vb):
                np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=0, atol=atol, err_msg=k)
        else:
            np.testing.assert_allclose(va, vb, rtol=0, atol=atol, err_msg=k)


def test_round_trip_keeps_what_the_xml_holds(person, tmp_path):
    path = write_opencv_xml(person, tmp_path / "person.xml")
    back = read_opencv_xml(path)
    assert (back.sbin, back.interval) == (person.sbin, person.interval)
    for c, d in zip(person.components, back.components, strict=True):
        np.testing.assert_array_equal(c.root, d.root)
        assert c.bias == d.bias
        for p, q in zip(c.parts, d.parts, strict=True):
            np.testing.assert_array_equal(p.filter, q.filter)
            np.testing.assert_array_equal(p.deformation, q.deformation)
            assert tuple(p.anchor) == tuple(q.anchor)
    np.testing.assert_array_equal(person.cascade.coeff, back.cascade.coeff)
    assert back.cascade.threshold == person.cascade.threshold
    for a, b in zip(person.cascade.components, back.cascade.components, strict=True):
        np.testing.assert_array_equal(a.order, b.order)
        np.testing.assert_array_equal(a.thresholds, b.thresholds)
    # What the XML cannot hold: the bbox regressor, the learner's blocks, the class name.
    assert person.components[0].bbox_regressor is not None and back.components[0].bbox_regressor is None
    assert back.class_name == "person"  # the file's stem, not a field of the XML
    # ... but the regressor's anchored form (AnchoredBoxPrediction, dpm's addition) comes back.
    assert back.info["opencv"] and "box_prediction" in back.info["opencv"]
    # And the XML written again is the same file.
    write_opencv_xml(back, tmp_path / "again.xml")
    assert (tmp_path / "again.xml").read_bytes() == path.read_bytes()
    # The one loader of model files reads it too (by its first bytes, whatever its name).
    (tmp_path / "no-suffix").write_bytes(path.read_bytes())
    for p in (path, tmp_path / "no-suffix"):
        loaded = dpm.load_model(p)
        write_opencv_xml(loaded, tmp_path / "loaded.xml")
        assert (tmp_path / "loaded.xml").read_bytes() == path.read_bytes()


def test_export_layout(person):
    e = opencv_entries(person)
    c = person.components[0]
    assert e["NumFeatures"] == OPENCV_FEATURES and e["PCADim"] == person.cascade.dims + 1
    root = e["RootFilters"][0].reshape(c.root.shape[0], -1, OPENCV_FEATURES)
    np.testing.assert_array_equal(root[..., :31], c.root)
    assert not root[..., 31].any()                          # zero weight for the truncation feature
    assert e["PCAcoeff"][31].tolist() == [0.0] * person.cascade.dims + [1.0]
    assert [a.tolist() for a in e["Anchor"][:len(c.parts)]] == [[p.anchor[0] - 1, p.anchor[1] - 1] for p in c.parts]
    np.testing.assert_allclose(e["RootPCAFilters"][0].reshape(root.shape[0], root.shape[1], -1),
                               root @ e["PCAcoeff"])


def test_anchored_box_prediction(person):
    c = person.components[0]
    rh, rw = c.root_size
    rng = np.random.default_rng(0)
    x1, y1 = rng.uniform(1, 300, (2, 5))
    s = rng.uniform(4, 20, 5)                       # root cell side in pixels
    roots = np.c_[x1, y1, x1 + rw * s - 1, y1 + rh * s - 1]
    parts = np.stack([np.c_[x1 + (p.anchor[0] - 1) * s / 2, y1 + (p.anchor[1] - 1) * s / 2,
                            x1 + (p.anchor[0] - 1 + p.size[1]) * s / 2 - 1, y1 + (p.anchor[1] - 1 + p.size[0]) * s / 2 - 1]
                      for p in c.parts], axis=1)
    want = predict_boxes(roots, parts, np.zeros(5, int), [c.bbox_regressor])
    matrix = anchored_box_prediction(person)[0]
    np.testing.assert_allclose(apply_box_prediction(roots, matrix), want, atol=1e-9)
    # Without a regressor the matrix keeps the root box.
    plain = person.copy()
    plain.components[0].bbox_regressor = None
    np.testing.assert_allclose(apply_box_prediction(roots, anchored_box_prediction(plain)[0]), roots, atol=1e-9)
    # On real detections it lands near dpm's own prediction (parts move a little from their anchors).
    d = dpm.detect(read_image(shared_path("models", "voc-release3.1", "000034.jpg")), person, upsample=2,
                   clip=False, threshold=-0.5)
    gap = np.abs(apply_box_prediction(d.root_boxes, matrix) - d.boxes)
    assert len(d.boxes) and np.median(gap) < 3


def test_model_without_cascade_never_prunes(tmp_path, person):
    exact = person.copy()
    exact.cascade = None
    e = opencv_entries(exact)
    assert all(np.all(t == -np.inf) for t in e["PrunThreshold"])
    assert e["ScoreThreshold"] == exact.thresh
    back = read_opencv_xml(write_opencv_xml(exact, tmp_path / "exact.xml"))
    assert back.cascade is None


def test_inriaperson_reads_and_writes_back(tmp_path):
    src = shared_path("models", "opencv-dpm", "inriaperson.xml")
    with pytest.warns(UserWarning, match="truncation feature or the scale prior"):
        model = read_opencv_xml(src)
    assert len(model.components) == 2 and model.interval == 5 and model.cascade.dims == 5
    assert [len(c.parts) for c in model.components] == [8, 8]
    dpm.save_model(model, tmp_path / "inria.npz")
    again = dpm.load_model(tmp_path / "inria.npz")
    out = write_opencv_xml(again, tmp_path / "inria.xml")
    a, b = read_opencv_storage(src), read_opencv_storage(out)
    projected = ("RootPCAFilters", "PartPCAFilters")
    _same({k: v for k, v in a.items() if k not in projected}, {k: v for k, v in b.items() if k not in projected})
    # The projections are recomputed from the 6-decimal filters and coefficients of the sample.
    _same({k: a[k] for k in projected}, {k: b[k] for k in projected}, atol=5e-6)


def test_inriaperson_as_star_model():
    src = shared_path("models", "opencv-dpm", "inriaperson.xml")
    star = read_opencv_star_model(src)
    ref = dpm.load_model(shared_path("models", "voc-release5", "INRIA", "inriaperson_final.mat"))
    assert len(star.components) == len(ref.components)
    for c, r in zip(star.components, ref.components):
        assert abs(c.offset - r.offset) < 1e-6
        np.testing.assert_allclose(c.loc, r.loc, atol=1e-6)
        for f, g in zip(c.filters, r.filters):
            assert tuple(f.anchor) == tuple(g.anchor)
            np.testing.assert_allclose(f.filter, g.filter, atol=5e-7)


def test_own_truncation_row_round_trips(tmp_path):
    src = shared_path("models", "opencv-dpm", "inriaperson.xml")
    text = src.read_text()
    head, rest = text.split("<PCAcoeff", 1)
    block, tail = rest.split("</PCAcoeff>", 1)
    rows = block.split("<data>")[1].split("</data>")[0].split("\n")
    last = [i for i, r in enumerate(rows) if r.strip()][-1]
    rows[last] = "0.1 0.2 0.3 0.4 0.5 0.6"        # a truncation row mixed into every direction
    block = block.split("<data>")[0] + "<data>" + "\n".join(rows) + "</data>"
    odd = tmp_path / "odd.xml"
    odd.write_text(head + "<PCAcoeff" + block + "</PCAcoeff>" + tail)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = read_opencv_xml(odd)
    assert model.cascade.dims == 6                 # no direction is the truncation feature alone
    out = read_opencv_storage(write_opencv_xml(model, tmp_path / "again.xml"))
    np.testing.assert_array_equal(out["PCAcoeff"], read_opencv_storage(odd)["PCAcoeff"])


def test_release5_star_model_exports(tmp_path):
    ref = dpm.load_model(shared_path("models", "voc-release5", "VOC2007", "person_final.mat"))
    star = read_opencv_star_model(write_opencv_xml(ref, tmp_path / "r5.xml"))
    assert len(star.components) == len(ref.components)
    for c, r in zip(star.components, ref.components):
        assert c.offset == r.offset
        np.testing.assert_array_equal(c.loc, r.loc)
        for f, g in zip(c.filters, r.filters, strict=True):
            np.testing.assert_array_equal(f.filter, g.filter)
            assert tuple(f.anchor) == tuple(g.anchor)
            if g.anchor[2]:
                np.testing.assert_array_equal(f.deformation, g.deformation)
    assert star.maxsize == tuple(int(np.ceil(v)) for v in ref.maxsize)


@pytest.mark.parametrize("text, message", [
    (b"<a/>", "root element <a>"),
    (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><opencv_storage/>', "DTD"),
    (b"<opencv_storage><SBin>8</SBin>", "not an XML file"),
    (b"<opencv_storage><SBin>8</SBin></opencv_storage>", "no <NumComponents>"),
    (b'<opencv_storage><PCAcoeff type_id="opencv-matrix"><rows>99999999</rows><cols>1</cols><dt>d</dt>'
     b"<data>1</data></PCAcoeff></opencv_storage>", "<PCAcoeff> <rows>"),
    (b'<opencv_storage><PCAcoeff type_id="opencv-matrix"><rows>2</rows><cols>2</cols><dt>d</dt>'
     b"<data>1 2 3</data></PCAcoeff></opencv_storage>", "declares 2x2 values and holds 3"),
    (b"<opencv_storage><Bias>1 x</Bias></opencv_storage>", "<Bias> holds 'x'"),
])
def test_bad_xml_one_line(tmp_path, text, message):
    path = tmp_path / "bad.xml"
    path.write_bytes(text)
    with pytest.raises(ValueError, match=message) as err:
        read_opencv_xml(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("text, message", [
    (b"<opencv_storage>" + b"<_/>" * 100_001 + b"</opencv_storage>", "more than 100000 XML elements"),
    (b'<opencv_storage><PCAcoeff type_id="opencv-matrix"><rows>65536</rows><cols>65536</cols><dt>d</dt>'
     b"<data>1</data></PCAcoeff></opencv_storage>", "more than 4194304"),
    (b'<opencv_storage><PCAcoeff type_id="opencv-matrix"><rows>1</rows><cols>1</cols><dt>d</dt>'
     b"<data>" + b" " * 100 + b"1</data></PCAcoeff></opencv_storage>", "more data than its 1x1 values"),
    (b"<opencv_storage><Bias>" + b"1 " * (1 << 20) + b"</Bias></opencv_storage>", "characters of numbers"),
])
def test_bounded_reader(tmp_path, text, message):
    path = tmp_path / "big.xml"
    path.write_bytes(text)
    with pytest.raises(ValueError, match=message) as err:
        read_opencv_storage(path)
    assert str(path) in str(err.value)


def test_size_limit(tmp_path):
    path = tmp_path / "big.xml"
    path.write_bytes(b"<opencv_storage>" + b" " * 4096 + b"</opencv_storage>")
    with pytest.raises(ValueError, match="over the limit"):
        read_opencv_xml(path, max_bytes=1024)


def test_damaged_model_names_element(tmp_path, person):
    text = write_opencv_xml(person, tmp_path / "p.xml").read_text()
    bad = tmp_path / "bad.xml"
    bad.write_text(text.replace("<NumFeatures>32</NumFeatures>", "<NumFeatures>31</NumFeatures>"))
    with pytest.raises(ValueError, match="<NumFeatures> is 31"):
        read_opencv_xml(bad)


def test_cli_converts_by_type(tmp_path, capsys):
    assert convert_main(["person", str(tmp_path / "p.xml")]) == 0
    assert convert_main([str(tmp_path / "p.xml"), str(tmp_path / "p.npz")]) == 0
    model = dpm.load_model(tmp_path / "p.npz")
    assert model.cascade is not None
    capsys.readouterr()
    assert convert_main([str(tmp_path / "p.xml"), str(tmp_path / "p.xml2")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "converts to a dpm .npz" in err
    (tmp_path / "x.xml").write_text("<html/>")
    assert convert_main([str(tmp_path / "x.xml"), str(tmp_path / "x.npz")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "x.xml" in err and "not an OpenCV XML file" in err


def test_cli_refuses_grammar_model(tmp_path, capsys):
    src = shared_path("models", "voc-release5", "VOC2007", "person_grammar_final.mat")
    assert convert_main([str(src), str(tmp_path / "g.xml")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "person_grammar_final.mat" in err and "not a star model" in err


def _opencv_available():
    if shutil.which("pkg-config") is None or shutil.which("g++") is None:
        return False
    return subprocess.run(["pkg-config", "--exists", "opencv4"]).returncode == 0


@pytest.fixture(scope="module")
def opencv_tool(tmp_path_factory):
    if not _opencv_available():
        pytest.skip("OpenCV's C++ library (pkg-config opencv4) or g++ is not installed")
    if not Path("/usr/include/opencv4/opencv2/dpm.hpp").exists() and subprocess.run(
            ["sh", "-c", "echo '#include <opencv2/dpm.hpp>' | g++ -E -x c++ - $(pkg-config --cflags opencv4)"],
            capture_output=True).returncode:
        pytest.skip("OpenCV is installed without opencv_contrib's dpm module (opencv2/dpm.hpp)")
    exe = tmp_path_factory.mktemp("opencv") / "opencv_dpm_detect"
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "opencv4"], capture_output=True, text=True,
                           check=True).stdout.split()
    subprocess.run(["g++", "-O1", "-o", str(exe), str(ROOT / "tools" / "opencv_dpm_detect.cpp"), *flags],
                   check=True)
    return exe


def test_exported_person_runs_in_opencv(opencv_tool, person, tmp_path):
    image = shared_path("models", "voc-release3.1", "000034.jpg")
    xml = write_opencv_xml(person, tmp_path / "person.xml")
    out = subprocess.run([str(opencv_tool), str(xml), "2", str(image)], capture_output=True, text=True, check=True)
    rows = np.array([[float(v) for v in line.split()[1:]] for line in out.stdout.splitlines()]).reshape(-1, 5)
    assert len(rows) >= 1
    assert (rows[:, 4] >= person.cascade.threshold).all()
    ours = dpm.detect(read_image(image), person, upsample=2, bbox_prediction=False)
    # Every OpenCV detection is a person dpm finds too: its box (0-based) within a few pixels of one of ours.
    for x1, y1, x2, y2, _ in rows:
        gap = np.abs(ours.boxes - (np.array([x1, y1, x2, y2]) + 1)).max(axis=1).min()
        assert gap < 8, (rows, ours.boxes)
