"""voc-release5 star models in the project's model format and in the built-in zoo (r5/...).

The zoo's release-5 models must be the ``.mat`` files' models exactly, with the
star-cascade of the release's published statistics: the same payload, and the
same detections on 000034.jpg.  A few models run by default, all 41 with
``-m slow``.
"""
import csv
import dataclasses
import io
import json
import subprocess
import sys

import numpy as np
import pytest

import dpm
from dpm.cli.detect import main
from dpm.data import (ALIASES, GROUPS, ZOO_R5, builtin_model_path, builtin_models, model_table, resolve_model,
                      resolve_models, zoo_source)
from dpm.features.pyramid_r5 import feature_pyramid_r5, repad_pyramid
from dpm.model import Model, StarModel, import_mat_model, load_model, save_model
from dpm.model.native_star import star_to_payload

from conftest import REPO, shared_path

FIELDS = ("boxes", "scores", "components", "root_boxes", "part_boxes", "levels")
DEFAULT = ["r5/voc2007/car", "r5/voc2010/person", "r5/inria/person"]
SLOW = [n for n in ZOO_R5 if n not in DEFAULT]


def assert_same_detections(a, b, what):
    assert len(a) == len(b), what
    for f in FIELDS:
        assert np.array_equal(getattr(a, f), getattr(b, f)), (what, f)


def assert_same_star(a: StarModel, b: StarModel):
    """Every value of the two models (their payloads, the filters as used, the cascades) is equal."""
    (meta_a, arr_a), (meta_b, arr_b) = star_to_payload(a), star_to_payload(b)
    assert meta_a == meta_b
    assert sorted(arr_a) == sorted(arr_b)
    for key in arr_a:
        assert arr_a[key].dtype == arr_b[key].dtype and np.array_equal(arr_a[key], arr_b[key]), key
    for ca, cb in zip(a.components, b.components, strict=True):
        for fa, fb in zip(ca.filters, cb.filters, strict=True):
            assert np.array_equal(fa.filter, fb.filter) and fa.filter.dtype == fb.filter.dtype


def mat_model(name):
    return import_mat_model(shared_path("models", "voc-release5", zoo_source(name)))


@pytest.fixture(scope="module")
def image():
    return dpm.read_image(shared_path("models", "voc-release3.1", "000034.jpg"))


# --- the format -------------------------------------------------------------------------------------

def test_star_model_round_trips_exactly_and_reproducibly(tmp_path):
    zoo = load_model(builtin_model_path("r5/voc2007/car"))
    assert isinstance(zoo, StarModel) and zoo.cascade is not None
    a = save_model(zoo, tmp_path / "a.npz")
    again = load_model(a)
    assert_same_star(zoo, again)
    assert save_model(again, tmp_path / "b.npz").read_bytes() == a.read_bytes() \
        == builtin_model_path("r5/voc2007/car").read_bytes()
    # without its cascade, and with filters that are not stored once per mirrored pair
    bare = dataclasses.replace(zoo, cascade=None)
    for f in bare.components[1].filters:
        f.filter_block = -1
    assert_same_star(bare, load_model(save_model(bare, tmp_path / "c.npz")))


def test_mirrored_filters_are_stored_once(tmp_path):
    zoo = load_model(builtin_model_path("r5/voc2007/car"))
    _, arrays = star_to_payload(zoo)
    filters = [k for k in arrays if k.endswith(".filter")]
    assert len(filters) == sum(len(c.filters) for c in zoo.components) // 2
    with np.load(builtin_model_path("r5/voc2007/car")) as z:
        assert int(z["format_version"]) == 2
    with np.load(builtin_model_path("voc2007/car")) as z:   # release-3.1 models keep version 1
        assert int(z["format_version"]) == 1


def test_mat_model_round_trips_exactly(tmp_path):
    mat = mat_model("r5/inria/person")
    assert mat.cascade is not None and mat.extra_octave
    assert_same_star(mat, load_model(save_model(mat, tmp_path / "m.npz")))


def _payload(path):
    with np.load(path) as z:
        return dict(z)


def _save_npz(path, data):
    np.savez(path, **data)
    return path


def _error(path, capsys):
    """``dpm-detect`` on the file: the one-line error."""
    status = main(["-q", str(path), str(REPO / "docs" / "img" / "zoo_detections.png")])
    err = capsys.readouterr().err.strip()
    assert status != 0 and len(err.splitlines()) == 1, err
    return err


def test_newer_or_damaged_star_model_files_are_one_line_errors(tmp_path, capsys):
    data = _payload(builtin_model_path("r5/voc2007/car"))
    newer = _save_npz(tmp_path / "newer.npz", dict(data, format_version=np.array(3)))
    with pytest.raises(ValueError, match=f"{newer}: written by a newer dpm .*version 3.* reads up to 2"):
        load_model(newer)
    assert "written by a newer dpm" in _error(newer, capsys) and str(newer) in _error(newer, capsys)
    meta = json.loads(str(data["meta"]))
    damages = {
        "missing": ({k: v for k, v in data.items() if k != "c0.f0.filter"}, "damaged dpm model file \\(missing"),
        "channels": (dict(data, **{"c0.f0.filter": data["c0.f0.filter"][:, :, :31]}), "expected \\(h, w, 32\\)"),
        "nan": (dict(data, **{"c2.f1.filter": np.full_like(data["c2.f1.filter"], np.nan)}), "not finite"),
        "strings": (dict(data, **{"c0.f0.filter": np.array("x")}), "expected floats"),
    }
    bad_ref = json.loads(json.dumps(meta))
    bad_ref["components"][1]["filters"][0]["same_as"] = [9, 9]
    damages["reference"] = (dict(data, meta=np.array(json.dumps(bad_ref))), "missing 'c9.f9.filter'")
    bad_cascade = json.loads(json.dumps(meta))
    bad_cascade["cascade"]["components"] = 5
    damages["cascade"] = (dict(data, meta=np.array(json.dumps(bad_cascade))), "cascade has 5 components")
    huge = json.loads(json.dumps(meta))
    huge["num_filters"] = 10 ** 12
    damages["numfilters"] = (dict(data, meta=np.array(json.dumps(huge))), "numfilters .* out of range")
    for what, (arrays, message) in damages.items():
        path = _save_npz(tmp_path / f"{what}.npz", arrays)
        with pytest.raises(ValueError, match=f"^{path}: .*{message}"):
            load_model(path)
        assert str(path) in _error(path, capsys), what
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(builtin_model_path("r5/voc2007/car").read_bytes()[:50_000])
    assert str(truncated) in _error(truncated, capsys)


def test_repadded_pyramid_equals_a_fresh_one(image):
    crop = image[100:260, 200:420]
    base = feature_pyramid_r5(crop, 8, 10, padx=0, pady=0)
    fresh = feature_pyramid_r5(crop, 8, 10, padx=11, pady=6)
    repad = repad_pyramid(repad_pyramid(base, padx=3, pady=9), padx=11, pady=6)
    assert (repad.padx, repad.pady) == (11, 6) and len(repad) == len(fresh)
    for a, b in zip(repad.levels, fresh.levels, strict=True):
        assert a.dtype == b.dtype and np.array_equal(a, b)


# --- the zoo ----------------------------------------------------------------------------------------

def test_release5_zoo_is_installed_with_its_licence():
    names = builtin_models()
    assert set(ZOO_R5) <= set(names) and len(ZOO_R5) == 41
    assert GROUPS["r5/voc2007"] == tuple(n for n in ZOO_R5 if n.startswith("r5/voc2007/"))
    assert GROUPS["r5/voc2010"] == tuple(n for n in ZOO_R5 if n.startswith("r5/voc2010/"))
    licence = (REPO / "dpm" / "data" / "COPYING-voc-release5").read_text()
    assert "Girshick" in licence and "Permission is hereby granted" in licence
    assert sum(builtin_model_path(n).stat().st_size for n in ZOO_R5) < 12_000_000


def test_shipped_licence_is_the_releases():
    assert (REPO / "dpm" / "data" / "COPYING-voc-release5").read_bytes() == \
        shared_path("models", "voc-release5", "COPYING").read_bytes()


@pytest.mark.parametrize("name", [*DEFAULT, *(pytest.param(n, marks=pytest.mark.slow) for n in SLOW)])
def test_zoo_model_is_the_mat_file_with_its_published_cascade(name, image):
    mat = mat_model(name)
    zoo = load_model(builtin_model_path(name))
    assert mat.cascade is not None and zoo.cascade is not None
    assert_same_star(mat, zoo)
    assert_same_detections(dpm.detect(image, zoo), dpm.detect(image, mat), name)


def test_conversion_of_one_model_gives_the_shipped_bytes(tmp_path):
    out = save_model(mat_model("r5/voc2007/car"), tmp_path / "car.npz")
    assert out.read_bytes() == builtin_model_path("r5/voc2007/car").read_bytes()


@pytest.mark.slow
def test_release5_conversion_gives_the_shipped_bytes():
    release = shared_path("models", "voc-release5")
    res = subprocess.run([sys.executable, str(REPO / "tools" / "convert_zoo.py"), "--release5", str(release),
                          "--check"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_bare_class_names_mean_the_release5_voc2007_models():
    assert set(ALIASES) == {n.split("/")[-1] for n in GROUPS["r5/voc2007"]} - {"person"}
    car, dog = resolve_model("car"), resolve_model("dog")
    assert isinstance(car, StarModel) and car.class_name == "car" and car.cascade is not None
    assert_same_star(car, load_model(builtin_model_path("r5/voc2007/car")))
    assert_same_star(dog, load_model(builtin_model_path("r5/voc2007/dog")))
    person = resolve_model("person")        # the project's own model, as before
    assert isinstance(person, Model) and person.info["trained_by"] == "dpm-train"
    assert [m.class_name for m in resolve_models("car,person")] == ["car", "person"]


def test_bare_name_loses_to_an_existing_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    save_model(load_model(builtin_model_path("voc2007/car")), tmp_path / "car")
    assert isinstance(resolve_model("car"), Model)


def test_list_models_shows_the_release5_models_and_the_rule(capsys):
    assert main(["--list-models"]) == 0
    out, err = capsys.readouterr()
    rows = {line.split("\t")[0]: line.split("\t") for line in out.splitlines()}
    assert len(rows) == 1 + 1 + 21 + 41 + 3 + 1
    assert rows["r5/voc2007/car"][1:] == ["voc-release5 VOC2007/car_final.mat", "6", "8/8/8/8/8/8", "-1.24", "yes"]
    assert rows["r5/inria/person"][1:3] == ["voc-release5 INRIA/inriaperson_final.mat", "2"]
    assert rows["voc2007/car"][5] == "no" and rows["person"][5] == "yes"
    assert rows["r5/voc2010"][1] == "group: the 20 models r5/voc2010/<class>"
    assert "means r5/voc2007/<class>" in rows["<class>"][1] and "person means the project's own" in rows["<class>"][1]
    assert [r for r in model_table()][1:] == [tuple(line.split("\t")) for line in out.splitlines()][1:]


# --- several models at once -------------------------------------------------------------------------

def test_star_and_release31_models_in_one_call_equal_each_alone(image):
    crop = image[60:400, 100:500]
    models = resolve_models("r5/voc2007/car,voc2007/bus,r5/voc2007/person")
    inria = load_model(builtin_model_path("r5/inria/person"))
    models = {"car": models[0], "bus": models[1], "person": models[2], "pedestrian": inria}
    thresholds = {"car": -1.5, "person": None, "pedestrian": -0.5}
    multi = dpm.detect(crop, models, threshold=thresholds)
    assert list(multi) == ["car", "bus", "person", "pedestrian"]
    for name, m in models.items():
        alone = dpm.detect(crop, m, threshold=thresholds.get(name))
        assert_same_detections(multi[name], alone, name)
        assert multi[name].class_name == name
    assert len(multi["car"]) and len(multi["person"])
    exact = dpm.detect(crop, models, cascade=False)
    assert_same_detections(exact["car"], dpm.detect(crop, models["car"], cascade=False), "exact car")


def test_cli_two_release5_models(capsys, image):
    path = shared_path("models", "voc-release3.1", "000034.jpg")
    status = main(["-q", "r5/voc2007/car,r5/voc2007/person", str(path)])
    out, err = capsys.readouterr()
    assert status == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    for cls in ("car", "person"):
        alone = dpm.detect(image, load_model(builtin_model_path(f"r5/voc2007/{cls}")))
        mine = [r for r in rows if r["class"] == cls]
        assert len(mine) == len(alone) > 0
        assert np.allclose([float(r["score"]) for r in mine], alone.scores, rtol=0, atol=1e-9)
    status = main(["-q", "car,voc2007/bus,person", str(path), "--format", "json"])   # bare names, mixed
    out, err = capsys.readouterr()
    assert status == 0, err
    classes = {d["class"] for im in json.loads(out)["images"] for d in im["detections"]}
    assert "car" in classes and classes <= {"car", "bus", "person"}


def test_same_class_from_two_releases_is_refused():
    with pytest.raises(ValueError, match="class 'car' is given twice"):
        resolve_models("car,voc2007/car")
