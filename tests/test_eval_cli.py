"""dpm-eval: scoring a results file (and, where detection is available, a model)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import voc
from dpm.cli.eval import main

from conftest import REPO, shared_path


def _obj(name, box, difficult=0):
    x1, y1, x2, y2 = box
    return (f"<object><name>{name}</name><difficult>{difficult}</difficult><bndbox><xmin>{x1}</xmin>"
            f"<ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>")


@pytest.fixture
def tiny(tmp_path):
    """VOC folder: 3 test images, 3 non-difficult persons, 1 difficult, 1 dog."""
    root = tmp_path / "VOC"
    (root / "Annotations").mkdir(parents=True)
    (root / "ImageSets" / "Main").mkdir(parents=True)
    anns = {"a": [_obj("person", (10, 10, 50, 90)), _obj("person", (100, 10, 140, 90))],
            "b": [_obj("person", (20, 20, 60, 100)), _obj("person", (200, 20, 240, 100), 1)],
            "c": [_obj("dog", (1, 1, 30, 30))]}
    for image_id, objs in anns.items():
        (root / "Annotations" / f"{image_id}.xml").write_text(
            f"<annotation><filename>{image_id}.jpg</filename>{''.join(objs)}</annotation>")
    (root / "ImageSets" / "Main" / "test.txt").write_text("a\nb\nc\n")
    return root


def _write(path, lines):
    path.write_text("".join(line + "\n" for line in lines))
    return path


def test_results_file_scored(tiny, tmp_path, capsys):
    res_file = _write(tmp_path / "comp3_det_test_person.txt", [
        "a 0.9 10 10 50 90",        # TP
        "b 0.8 200 20 240 100",     # difficult: ignored
        "a 0.7 11 10 50 90",        # duplicate: FP
        "c 0.6 1 1 30 30",          # no person in c: FP
        "b 0.5 20 20 60 100",       # TP
    ])
    out = tmp_path / "out"
    assert main(["--results", str(res_file), "--voc", str(tiny), "--out", str(out), "-q"]) == 0
    stdout = capsys.readouterr().out
    assert len(stdout.splitlines()) == 2            # VOC AP, then the COCO metrics
    assert stdout.splitlines()[1].startswith("person test: COCO AP ")
    # expected from the devkit's rules by hand: tp [1 - 0 0 1], npos 3
    rec = np.array([1, 1, 1, 1, 2]) / 3
    prec = np.array([1, 1, 0.5, 1 / 3, 0.5])
    ap = voc.voc07_ap(rec, prec)
    ap_area = voc.area_ap(rec, prec)
    assert stdout.startswith(f"person test: AP {ap:.4f} (VOC2007 11-point), {ap_area:.4f} (all-point)")
    summary = json.loads((out / "person_test_summary.json").read_text())
    assert summary["ap"] == pytest.approx(ap) and summary["ap_area"] == pytest.approx(ap_area)
    assert summary["n_detections"] == 5 and summary["n_positives"] == 3
    assert summary["n_true_positives"] == 2 and summary["n_false_positives"] == 2
    assert summary["n_ignored"] == 1 and summary["recall"] == pytest.approx(2 / 3)
    assert summary["n_images"] == 3 and summary["seconds_per_image"] is None
    assert summary["class"] == "person" and summary["split"] == "test"
    png = out / "person_test_pr.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (out / "comp3_det_test_person.txt").exists()   # input is not rewritten


def test_results_default_out_is_results_folder(tiny, tmp_path, capsys):
    res_file = _write(tmp_path / "mydets.txt", ["a 1 10 10 50 90"])
    assert main(["--results", str(res_file), "--voc", str(tiny), "--class", "dog", "-q"]) == 0
    assert capsys.readouterr().out.startswith("dog test: AP 0.0000")
    assert (tmp_path / "dog_test_summary.json").exists() and (tmp_path / "dog_test_pr.png").exists()


def _fails(argv, capsys, *parts):
    status = main(argv)
    err = capsys.readouterr().err
    assert status == 1
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("dpm-eval: error: ")
    for p in parts:
        assert p in err, err
    return err


def test_bad_results_line(tiny, tmp_path, capsys):
    f = _write(tmp_path / "comp3_det_test_person.txt", ["a 0.9 10 10 50 90", "b 0.8 1 2 3"])
    _fails(["--results", str(f), "--voc", str(tiny)], capsys, f"{f}:2:", "expected 6 fields")


def test_results_image_not_in_split(tiny, tmp_path, capsys):
    f = _write(tmp_path / "comp3_det_test_person.txt", ["a 0.9 10 10 50 90", "zzz 0.8 1 2 3 4"])
    _fails(["--results", str(f), "--voc", str(tiny)], capsys, ":2:", "'zzz'", "not in the image set")


def test_missing_annotation(tiny, tmp_path, capsys):
    (tiny / "Annotations" / "b.xml").unlink()
    f = _write(tmp_path / "comp3_det_test_person.txt", ["a 0.9 10 10 50 90"])
    _fails(["--results", str(f), "--voc", str(tiny)], capsys, "b.xml", "annotation file not found")


def test_malformed_xml(tiny, tmp_path, capsys):
    (tiny / "Annotations" / "c.xml").write_text("<annotation><object>")
    f = _write(tmp_path / "comp3_det_test_person.txt", ["a 0.9 10 10 50 90"])
    _fails(["--results", str(f), "--voc", str(tiny)], capsys, "c.xml", "malformed XML")


def test_inverted_ground_truth_box(tiny, tmp_path, capsys):
    (tiny / "Annotations" / "c.xml").write_text(
        "<annotation>" + _obj("dog", (1, 1, 30, 30)) + _obj("person", (50, 1, 10, 30)) + "</annotation>")
    f = _write(tmp_path / "comp3_det_test_person.txt", ["a 0.9 10 10 50 90"])
    _fails(["--results", str(f), "--voc", str(tiny)], capsys, "c.xml", "object 2 (person)",
           "xmax 10 < xmin 50")


def test_inverted_detection_box(tiny, tmp_path, capsys):
    f = _write(tmp_path / "comp3_det_test_person.txt", ["a 0.9 50 10 10 90"])
    _fails(["--results", str(f), "--voc", str(tiny)], capsys, ":1:", "x2 < x1")


def test_class_and_split_problems(tiny, tmp_path, capsys):
    f = _write(tmp_path / "dets.txt", ["a 0.9 10 10 50 90"])
    _fails(["--results", str(f), "--voc", str(tiny)], capsys, "give --class")
    _fails(["--results", str(f), "--voc", str(tiny), "--class", "cat"], capsys,
           "no non-difficult 'cat' objects", "classes there: dog, person")
    _fails(["--results", str(f), "--voc", str(tiny), "--class", "person", "--split", "val"], capsys,
           "val.txt", "no such split file")
    _fails(["--results", str(tmp_path / "none.txt"), "--voc", str(tiny), "--class", "person"],
           capsys, "results file not found")
    _fails(["--results", str(f), "--voc", str(tmp_path / "nowhere"), "--class", "person"],
           capsys, "not a directory")


def test_usage_errors(tiny, tmp_path):
    f = _write(tmp_path / "comp3_det_test_person.txt", ["a 0.9 10 10 50 90"])
    for argv in (["--voc", str(tiny)],                                   # neither
                 ["m.mat", "--results", str(f), "--voc", str(tiny)],     # both
                 ["--results", str(f), "--voc", str(tiny), "--upsample", "2"]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2


def test_script_runs_in_place(tiny, tmp_path):
    f = _write(tmp_path / "comp3_det_test_person.txt", ["a 0.9 10 10 50 90", "b 0.5 20 20 60 100"])
    env = dict(os.environ, PYTHONPATH=str(REPO))
    p = subprocess.run([sys.executable, str(REPO / "bin" / "dpm-eval"), "--results", str(f),
                        "--voc", str(tiny), "-q"], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    ap = voc.voc07_ap([1 / 3, 2 / 3], [1.0, 1.0])         # 7 of the 11 recall levels reached
    assert ap == pytest.approx(7 / 11)
    assert p.stdout.startswith(f"person test: AP {ap:.4f} (VOC2007 11-point)"), p.stdout
    assert len(p.stdout.splitlines()) == 2 and p.stderr == ""
    assert json.loads((tmp_path / "person_test_summary.json").read_text())["ap"] == pytest.approx(ap)


# -- the whole pipeline: detection with the shipped INRIA model --------------------

def _detection_available():
    try:
        import dpm
        dpm.detect, dpm.read_image  # noqa: B018
        import dpm.detection.batch  # noqa: F401
    except (ImportError, AttributeError) as exc:
        return str(exc)
    return None


def test_model_on_three_pets_frames(tmp_path, capsys):
    reason = _detection_available()
    if reason:
        pytest.skip(f"detection is not available: {reason}")
    model = shared_path("models", "voc-release3.1", "INRIA", "inria_final.mat")
    data = shared_path("data", "person-voc")
    out = tmp_path / "out"
    assert main([str(model), "--voc", str(data), "--split", "test", "--limit", "3",
                 "--upsample", "2", "--out", str(out), "-q"]) == 0
    line = capsys.readouterr().out
    assert line.startswith("person test: AP ") and "3 images" in line and "s/image" in line
    summary = json.loads((out / "person_test_summary.json").read_text())
    assert summary["n_images"] == 3 and summary["upsample"] == 2 and summary["seconds_per_image"] > 0
    assert summary["class"] == "person"          # from the model (inria -> person)
    # The results file is complete and scoring it again gives the same AP.
    results_file = out / "comp3_det_test_person.txt"
    ds = voc.VOCDataset(data)
    ids = ds.image_ids("test")[:3]
    res = voc.read_results(results_file, image_ids=ids)
    assert len(res) == summary["n_detections"] > 0
    gt = voc.GroundTruth.from_arrays(ids, [ds.annotation(i).boxes("person") for i in ids],
                                     [ds.annotation(i).difficult("person") for i in ids])
    again = voc.evaluate(res, gt)
    assert again.ap == summary["ap"] and again.ap_area == summary["ap_area"]
    # The pretrained INRIA person model finds most of the people in these frames.
    assert summary["recall"] > 0.5 and summary["ap"] > 0.4


def test_results_file_scored_on_the_listed_images(tiny, tmp_path, capsys):
    lines = ["a 0.9 10 10 50 90", "c 0.8 1 1 30 30", "b 0.7 20 20 60 100", "c 0.6 5 5 40 40"]
    whole = _write(tmp_path / "comp3_det_test_person.txt", lines)
    (tmp_path / "only").mkdir()
    only = _write(tmp_path / "only" / "comp3_det_test_person.txt", [ln for ln in lines if not ln.startswith("c")])
    (tiny / "ImageSets" / "Main" / "ab.txt").write_text("a\nb\n")
    listing = _write(tmp_path / "ids.txt", ["b", "a"])
    assert main(["--results", str(whole), "--voc", str(tiny), "--list", str(listing), "--out",
                 str(tmp_path / "listed"), "-q"]) == 0
    listed = capsys.readouterr().out
    assert main(["--results", str(only), "--voc", str(tiny), "--split", "ab", "--out", str(tmp_path / "ab"),
                 "-q"]) == 0
    assert listed.replace("person test:", "person ab:") == capsys.readouterr().out
    assert "2 detections, 2 images" in listed
    # an image outside the split is still refused
    _write(whole, lines + ["zzz 0.5 1 1 9 9"])
    _fails(["--results", str(whole), "--voc", str(tiny), "--list", str(listing)], capsys, "'zzz'",
           "not in the image set")
