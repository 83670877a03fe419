"""The built-in model zoo (the original release's models) and detection with several models in one pass."""
import csv
import dataclasses
import io
import subprocess
import sys

import numpy as np
import pytest

import dpm
from dpm.cli.detect import main
from dpm.data import GROUPS, ZOO, builtin_model_path, builtin_models, resolve_models, zoo_source
from dpm.detection import detect_one
from dpm.model import import_mat_model, load_model, model_to_payload
from dpm.output import PerClassWriter

from conftest import REPO, shared_path

FIELDS = ("boxes", "scores", "components", "root_boxes", "part_boxes", "levels")


def assert_same(a, b, what):
    assert len(a) == len(b), what
    for f in FIELDS:
        assert np.array_equal(getattr(a, f), getattr(b, f)), (what, f)


def test_zoo_is_installed_with_its_licence():
    names = builtin_models()
    assert set(ZOO) <= set(names) and len(ZOO) == 21
    assert GROUPS["voc2007"] == tuple(n for n in ZOO if n.startswith("voc2007/"))
    licence = (REPO / "dpm" / "data" / "COPYING-voc-release3.1").read_text()
    assert "Felzenszwalb" in licence and "Permission is hereby granted" in licence
    assert sum(builtin_model_path(n).stat().st_size for n in ZOO) < 4_000_000


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_model_holds_the_mat_files_values_exactly(name):
    """Exact values; the person models also carry a star-cascade (built from person-voc)."""
    mat = import_mat_model(shared_path("models", "voc-release3.1", zoo_source(name)))
    zoo = load_model(builtin_model_path(name))
    assert (zoo.cascade is not None) == name.endswith("/person")
    zoo = dataclasses.replace(zoo, cascade=None, info={k: v for k, v in zoo.info.items() if k != "cascade"})
    (meta_a, arr_a), (meta_b, arr_b) = model_to_payload(mat), model_to_payload(zoo)
    assert meta_a == meta_b and sorted(arr_a) == sorted(arr_b)
    for key in arr_a:
        assert np.array_equal(arr_a[key], arr_b[key]), key


@pytest.mark.slow
def test_conversion_gives_the_shipped_bytes():
    """The conversion and the person models' cascades (built from person-voc: a few minutes)."""
    release = shared_path("models", "voc-release3.1")
    dataset = shared_path("data", "person-voc")
    res = subprocess.run([sys.executable, str(REPO / "tools" / "convert_zoo.py"), str(release), "--check",
                          "--cascades", str(dataset), "-j", "2"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_all_voc2007_classes_in_one_pass_equal_the_mat_models_alone():
    """The zoo through the one-pass path gives, per class, exactly the .mat model's own detections
    (exact detection; the person model's cascade is compared with its own below)."""
    models_dir = shared_path("models", "voc-release3.1")
    image = dpm.read_image(models_dir / "000034.jpg")
    multi = dpm.detect(image, resolve_models("voc2007"), cascade=False)
    assert list(multi) == [n.split("/")[1] for n in GROUPS["voc2007"]]
    found = 0
    for name, dets in multi.items():
        alone = detect_one(image, import_mat_model(models_dir / "VOC2007" / f"{name}_final.mat"))
        assert dets.class_name == alone.class_name == name
        assert_same(dets, alone, name)
        found += len(dets)
    assert found > 100            # the default thresholds find things in this image
    person = load_model(builtin_model_path("voc2007/person"))
    assert_same(dpm.detect(image, resolve_models("voc2007"))["person"], detect_one(image, person), "cascade")


def test_inria_person_through_the_zoo_equals_the_mat_file():
    models_dir = shared_path("models", "voc-release3.1")
    image = dpm.read_image(models_dir / "000061.jpg")
    assert_same(dpm.detect(image, resolve_models("inria/person")[0], cascade=False),
                detect_one(image, import_mat_model(models_dir / "INRIA" / "inria_final.mat")), "inria")


def test_models_with_different_sbin_work_in_one_pass():
    image = dpm.read_image(shared_path("models", "voc-release3.1", "000034.jpg"))[100:260, 200:420]
    car = load_model(builtin_model_path("voc2007/car"))
    coarse = dataclasses.replace(load_model(builtin_model_path("voc2007/bus")), sbin=10, interval=5)
    multi = dpm.detect(image, {"car": car, "bus": coarse}, threshold=-1.5)
    assert_same(multi["car"], detect_one(image, car, threshold=-1.5), "car")
    assert_same(multi["bus"], detect_one(image, coarse, threshold=-1.5), "sbin 10")
    assert len(multi["car"]) and multi["bus"].class_name == "bus"


def test_bad_model_lists_are_clear_errors():
    # the message names the groups, the models outside them and the bare-name rule (not all 62 names)
    with pytest.raises(FileNotFoundError, match=r"groups: voc2007 \(all 20 of voc2007/\.\.\.\), r5/voc2007 .*"
                                                r"models: person, inria/person, r5/inria/person; bare class names"):
        resolve_models("voc2008")
    with pytest.raises(ValueError, match="class 'car' is given twice"):
        resolve_models("voc2007/car,voc2007/bus,voc2007/car")
    with pytest.raises(ValueError, match="class 'person' is given twice"):
        resolve_models("voc2007,inria/person")
    with pytest.raises(ValueError, match="empty entry"):
        resolve_models("voc2007/car,")
    car = resolve_models("voc2007/car")[0]
    with pytest.raises(ValueError, match="given twice"):
        dpm.detect(np.zeros((50, 50, 3)), [car, car])


def run_cli(capsys, *args):
    status = main(["-q", *map(str, args)])
    out, err = capsys.readouterr()
    return status, out, err


def test_cli_several_models_csv_and_voc_folder(capsys, tmp_path):
    image = shared_path("models", "voc-release3.1", "000034.jpg")
    status, out, err = run_cli(capsys, "voc2007/car,voc2007/person", image, "--threshold", "0")
    assert status == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {r["class"] for r in rows} == {"car", "person"}
    status, out, err = run_cli(capsys, "voc2007/car,voc2007/person", image, "--format", "voc", "-o",
                               tmp_path / "res", "--split", "val", "--threshold", "0")
    assert status == 0 and out == "", err
    for cls in ("car", "person"):
        lines = (tmp_path / "res" / f"comp3_det_val_{cls}.txt").read_text().splitlines()
        assert lines and all(line.split()[0] == "000034" for line in lines)
        n = sum(r["class"] == cls for r in rows)
        assert len(lines) == n


@pytest.mark.parametrize("args, message", [
    (["voc2008"], "not a built-in model or group name"),
    (["voc2007/car,voc2007/car"], "given twice"),
    (["voc2007/car,voc2007/bus", "--format", "voc", "-o", "{file}"], "is a file, not a folder"),
    (["voc2007/car,voc2007/bus", "--format", "voc"], "give a folder with -o"),
])
def test_cli_bad_input_is_one_line(capsys, tmp_path, args, message):
    image = tmp_path / "x.png"
    from PIL import Image
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(image)
    (tmp_path / "afile").write_text("")
    args = [a.replace("{file}", str(tmp_path / "afile")) for a in args]
    status, out, err = run_cli(capsys, args[0], image, *args[1:])
    assert status == 1 and message in err and len(err.strip().splitlines()) == 1, err


def test_per_class_writer_marks_every_file_partial_on_interruption(tmp_path):
    from dpm.detection import Detections
    d = {c: Detections.empty(0, (10, 10), c) for c in ("a", "b")}
    with pytest.raises(KeyboardInterrupt):
        with PerClassWriter(tmp_path, ["a", "b"], total=3) as out:
            assert out.add("img1.jpg", d)
            raise KeyboardInterrupt
    for c in ("a", "b"):
        assert "# partial:" in (tmp_path / f"comp3_det_test_{c}.txt").read_text()
