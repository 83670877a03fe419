import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from dpm.cli.detect import main


@pytest.fixture(scope="module")
def inria(models_dir):
    return str(models_dir / "INRIA" / "inria_final.mat")


@pytest.fixture(scope="module")
def person(models_dir):
    return str(models_dir / "VOC2007" / "person_final.mat")


def run_main(capsys, *argv):
    status = main(["-q", *map(str, argv)])
    out, err = capsys.readouterr()
    return status, out, err


def test_voc_format_matches_original_boxes(capsys, person, models_dir, golden):
    status, out, err = run_main(capsys, person, models_dir / "000061.jpg", "--format", "voc", "--threshold", "0")
    assert status == 0, err
    lines = [line.split() for line in out.splitlines()]
    expected = golden("detect")["p061_clip0"]
    assert len(lines) == len(expected) == 2
    for fields, row in zip(lines, expected):
        assert fields[0] == "000061"
        np.testing.assert_allclose([float(v) for v in fields[2:]], row[:4], atol=1e-3)
        assert float(fields[1]) == pytest.approx(row[4], abs=1e-4)


def test_csv_json_and_output_file(capsys, person, models_dir, tmp_path):
    status, out, _ = run_main(capsys, person, models_dir / "000061.jpg", "--threshold", "0")
    assert status == 0
    rows = out.splitlines()
    assert rows[0] == "image,score,x1,y1,x2,y2,component,class" and len(rows) == 3
    assert all(r.endswith(',"person"') for r in rows[1:])   # the class of the model (person_final.mat)
    target = tmp_path / "d.json"
    status, out, _ = run_main(capsys, person, models_dir / "000061.jpg", "--threshold", "0",
                              "--format", "json", "-o", target)
    assert status == 0 and out == ""
    doc = json.loads(target.read_text())
    dets = doc["images"][0]["detections"]
    assert len(dets) == 2 and len(dets[0]["part_boxes"]) == 6 and dets[0]["component"] in (1, 2)
    assert {d["class"] for d in dets} == {"person"}


def test_parallel_equals_serial(capsys, inria, models_dir, tmp_path):
    for name in ("000034.jpg", "000061.jpg", "000084.jpg"):
        shutil.copy(models_dir / name, tmp_path / name)  # a throwaway folder outside the repository
    s1, out1, _ = run_main(capsys, inria, tmp_path, "--format", "voc", "-j", "1")
    s2, out2, _ = run_main(capsys, inria, tmp_path, "--format", "voc", "-j", "2")
    assert s1 == s2 == 0 and out1 == out2 and out1


def test_odd_images_are_converted(capsys, inria, tmp_path, rng):
    base = rng.integers(0, 256, size=(150, 90, 3), dtype=np.uint8)
    Image.fromarray(base[:, :, 0]).save(tmp_path / "grey.png")
    Image.fromarray(np.dstack([base, base[:, :, :1]])).save(tmp_path / "rgba.png")
    Image.fromarray(base).convert("P").save(tmp_path / "pal.png")
    Image.fromarray(base[:, :, 0].astype(np.uint16) * 256).save(tmp_path / "deep.png")
    status, out, err = run_main(capsys, inria, tmp_path, "--threshold", "-5", "--format", "voc")
    assert status == 0, err
    assert {line.split()[0] for line in out.splitlines()} == {"grey", "rgba", "pal", "deep"}


def test_image_smaller_than_model_is_reported(capsys, inria, models_dir, tmp_path, rng):
    Image.fromarray(rng.integers(0, 256, size=(30, 20, 3), dtype=np.uint8)).save(tmp_path / "tiny.png")
    shutil.copy(models_dir / "000061.jpg", tmp_path / "big.jpg")
    status, out, err = run_main(capsys, inria, tmp_path, "--format", "voc", "--threshold", "-1.5")
    assert status == 1 and "tiny.png" in err and "smaller than the model" in err and "--upsample" in err
    assert out and all(line.startswith("big ") for line in out.splitlines())


def test_bad_inputs_one_line_errors(capsys, inria, models_dir, tmp_path):
    status, out, err = run_main(capsys, inria, tmp_path / "missing.jpg")
    assert status == 1 and err.count("\n") == 1 and "missing.jpg" in err and "Traceback" not in err
    empty = tmp_path / "empty"
    empty.mkdir()
    status, _, err = run_main(capsys, inria, empty)
    assert status == 1 and "no image files" in err and err.count("\n") == 1
    notmodel = tmp_path / "model.npz"
    notmodel.write_bytes(b"garbage")
    status, _, err = run_main(capsys, notmodel, models_dir / "000061.jpg")
    assert status == 1 and "model.npz" in err and err.count("\n") == 1


def test_batch_goes_on_after_a_bad_image(capsys, inria, models_dir, tmp_path):
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (tmp_path / "text.png").write_text("hello")
    shutil.copy(models_dir / "000061.jpg", tmp_path / "good.jpg")
    status, out, err = run_main(capsys, inria, tmp_path, "--format", "voc", "--threshold", "-1.5")
    assert status == 1
    assert "2 of 3 image(s) failed" in err and "broken.jpg" in err and "text.png" in err
    assert out and all(line.startswith("good ") for line in out.splitlines())


def test_installed_command_runs():
    exe = shutil.which("dpm-detect")
    if exe is None:
        pytest.skip("dpm-detect is not installed on PATH (pip install -e .)")
    r = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "IMAGE_OR_DIR" in r.stdout


def test_module_entry_without_arguments_fails_cleanly():
    r = subprocess.run([sys.executable, "-c", "import sys; from dpm.cli.detect import main; sys.exit(main([]))"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "usage" in r.stderr


def test_progress_bar_knows_the_number_of_images(capsys, tmp_path, rng):
    # images given on the command line: the bar shows n/total and the time left, not "?"
    for k in range(3):
        Image.fromarray(rng.integers(0, 255, (120, 100, 3), dtype=np.uint8)).save(tmp_path / f"{k}.png")
    status = main(["person", str(tmp_path), "-j", "1"])
    err = capsys.readouterr().err
    assert status == 0, err
    assert "/3 [" in err and "/?" not in err, err
