"""The built-in person model shipped in dpm/data: provenance, loading by name, detections."""
import json

import numpy as np
import pytest

from dpm.boxes import iou
from dpm.cli.detect import main
from dpm.data import builtin_model_path, builtin_models, resolve_model

from conftest import shared_path


def test_person_is_installed_and_described():
    assert "person" in builtin_models()
    model = resolve_model("person")
    assert model.class_name == "person"
    assert len(model.components) == 1
    assert all(len(c.parts) == 6 for c in model.components)
    assert all(c.bbox_regressor is not None for c in model.components)
    # how it was made travels with it
    assert model.info["trained_by"] == "dpm-train"
    assert model.info["seed"] == "0" and model.info["components"] == "1"
    assert model.info["box_scale"] == "0.6 0.75" and len(model.info["training_data"]) == 64
    assert builtin_model_path("person").stat().st_size < 200_000


def test_unknown_builtin_name_is_a_clear_error():
    with pytest.raises(FileNotFoundError, match="not a built-in model or group name "
                                                "\\(did you mean r5/voc2010/bicycle\\?"):
        resolve_model("voc2010/bicycle")
    with pytest.raises(FileNotFoundError, match="giraffe: no such model file, and not a built-in"):
        resolve_model("giraffe")


def test_detect_command_takes_the_builtin_name(capsys, tmp_path):
    rng = np.random.default_rng(0)
    from PIL import Image
    path = tmp_path / "noise.png"
    Image.fromarray(rng.integers(0, 255, size=(240, 200, 3), dtype=np.uint8)).save(path)
    status = main(["-q", "person", str(path), "--format", "json", "--threshold", "-1.5"])
    out, err = capsys.readouterr()
    assert status == 0, err
    doc = json.loads(out)
    assert [im["width"] for im in doc["images"]] == [200]
    assert isinstance(doc["images"][0]["detections"], list)


def test_finds_the_people_of_a_pets_frame():
    frame = shared_path("data", "person-voc", "JPEGImages", "pets_0001.jpg")
    ann = shared_path("data", "person-voc", "Annotations", "pets_0001.xml")
    import dpm
    from voc import read_annotation
    dets = dpm.detect(dpm.read_image(frame), resolve_model("person"), upsample=2)
    assert callable(dpm.detect)  # the function, even after the module dpm.detection was imported
    gt = [o.bbox for o in read_annotation(ann).objects if not o.difficult]
    found = sum(1 for g in gt if len(dets) and iou(np.asarray(g, float), dets.boxes).max() >= 0.5)
    assert found >= 0.6 * len(gt), (found, len(gt))


def test_list_models_needs_no_other_argument(capsys):
    status = main(["--list-models"])
    out, err = capsys.readouterr()
    assert status == 0, err
    lines = [line.split("\t") for line in out.splitlines()]
    assert lines[0] == ["name", "source", "components", "parts", "threshold", "cascade"]
    assert lines[1][0] == "person" and lines[1][2:4] == ["1", "6"] and lines[1][5] == "yes"


def test_missing_model_argument_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        main([])
    assert e.value.code == 2
    assert "no model given" in capsys.readouterr().err
