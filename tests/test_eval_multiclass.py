"""dpm-eval over several classes in one pass (table, figures, summaries), --list and --resume."""
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

import coco
from dpm.cli.eval import main

from conftest import REPO, make_two_class_voc

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def two_class_voc(tmp_path_factory):
    return make_two_class_voc(tmp_path_factory.mktemp("two-class") / "VOC")


def _models(files, *classes):
    return ",".join(str(files[c]) for c in classes)


def _run(capsys, *argv):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def _summary(folder, cls, split="test"):
    return json.loads((folder / f"{cls}_{split}_summary.json").read_text())


def _text_table(text):
    """{row name: {column: cell}} of the text table (the row names are the text before the first number)."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    header = lines[0].split()
    rows = {}
    for ln in lines[1:1 + 3]:
        cells = ln.split()
        rows[" ".join(cells[:-len(header)])] = dict(zip(header, cells[-len(header):]))
    return header, rows, lines[4:]


def _markdown_table(text):
    lines = text.splitlines()
    table = [ln for ln in lines if ln.startswith("|")]
    header = [c.strip() for c in table[0].strip("|").split("|")]
    assert set(table[1].replace("|", "").replace("-", "").replace(":", "")) == set()
    rows = {}
    for ln in table[2:]:
        cells = [c.strip() for c in ln.strip("|").split("|")]
        rows[cells[0]] = dict(zip(header[1:], cells[1:]))
    return header[1:], rows, [ln for ln in lines if ln and not ln.startswith("|")]


def test_classes_in_one_pass_equal_single_class_runs(two_class_voc, class_model_files, tmp_path, capsys):
    multi = tmp_path / "multi"
    status, out, err = _run(capsys, _models(class_model_files, "person", "bar", "cat"), "--voc", two_class_voc,
                            "--threshold", "-10", "--out", multi)
    assert status == 0, err
    warnings = [ln for ln in err.splitlines() if "warning" in ln]
    assert warnings == [f"dpm-eval: warning: no ground truth (non-difficult objects) in split test of "
                        f"{two_class_voc} for 1 of 3 classes: cat; reported as such and left out of the mean"]
    singles = {}
    for cls in ("person", "bar"):
        single = tmp_path / f"single-{cls}"
        status, line, err = _run(capsys, class_model_files[cls], "--voc", two_class_voc, "--threshold", "-10",
                                 "--out", single, "-q")
        assert status == 0, err
        singles[cls] = _summary(single, cls)
        got = _summary(multi, cls)
        for key in ("ap", "ap_area", "recall", "n_detections", "n_positives", "n_true_positives", "coco"):
            assert got[key] == singles[cls][key], (cls, key)
        # the same detections, the same figure, the same COCO results
        for name in (f"comp3_det_test_{cls}.txt", f"coco_det_test_{cls}.json", f"{cls}_test_pr.png"):
            assert (multi / name).read_bytes() == (single / name).read_bytes(), name
        assert (multi / f"{cls}_test_pr.png").read_bytes()[:8] == PNG
    assert singles["person"]["ap"] > 0 and singles["bar"]["ap"] > 0 and singles["person"]["ap"] != singles["bar"]["ap"]
    # one figure per class with ground truth; cat: its detections and a summary without scores
    assert sorted(p.name for p in multi.glob("*_pr.png")) == ["bar_test_pr.png", "person_test_pr.png"]
    cat = _summary(multi, "cat")
    assert cat["ap"] is None and cat["n_positives"] == 0 and cat["coco"] is None and cat["n_detections"] > 0
    assert (multi / "comp3_det_test_cat.txt").stat().st_size > 0

    mean = math.fsum([singles["person"]["ap"], singles["bar"]["ap"]]) / 2
    mean_area = math.fsum([singles["person"]["ap_area"], singles["bar"]["ap_area"]]) / 2
    doc = json.loads((multi / "ap_test.json").read_text())
    assert doc["classes"] == ["person", "bar", "cat"] and doc["no_ground_truth"] == ["cat"]
    assert doc["mean"]["ap"] == mean and doc["mean"]["ap_area"] == mean_area
    assert doc["mean_over"] == ["person", "bar"] and doc["per_class"]["cat"]["ap"] is None
    assert doc["per_class"]["bar"]["coco_ap"] == singles["bar"]["coco"]["AP"]

    text = (multi / "ap_test.txt").read_text()
    assert out == text                                   # the table is what dpm-eval prints
    header, rows, notes = _text_table(text)
    assert header == ["person", "bar", "cat", "mean"]
    assert rows["AP"] == {"person": f"{singles['person']['ap']:.3f}", "bar": f"{singles['bar']['ap']:.3f}",
                          "cat": "-", "mean": f"{mean:.3f}"}
    assert rows["AP all-point"]["mean"] == f"{mean_area:.3f}" and rows["COCO AP"]["cat"] == "-"
    assert notes == ["no ground truth in test: cat (left out of the mean)"]
    md_header, md_rows, md_notes = _markdown_table((multi / "ap_test.md").read_text())
    assert md_header == header and md_rows == rows and md_notes == notes


def test_coco_dataset_by_category_name(two_class_voc, class_model_files, tmp_path, capsys):
    coco.voc_to_coco(two_class_voc, tmp_path / "coco", splits=["test"])
    on_voc, on_coco = tmp_path / "on-voc", tmp_path / "on-coco"
    models = _models(class_model_files, "bar", "person", "cat")
    assert _run(capsys, models, "--voc", two_class_voc, "--threshold", "-10", "--out", on_voc, "-q")[0] == 0
    status, out, err = _run(capsys, models, "--coco", tmp_path / "coco" / "test.json", "--images",
                            two_class_voc / "JPEGImages", "--threshold", "-10", "--out", on_coco, "-q")
    assert status == 0, err
    assert "no ground truth in test: cat" in out
    for cls in ("bar", "person"):
        a, b = _summary(on_voc, cls), _summary(on_coco, cls)
        assert a["ap"] == b["ap"] and a["ap_area"] == b["ap_area"]
        assert a["coco"] == pytest.approx(b["coco"], nan_ok=True)
        assert (on_coco / f"{cls}_test_pr.png").exists()
    assert (on_voc / "ap_test.txt").read_text() == (on_coco / "ap_test.txt").read_text()


@pytest.mark.parametrize("case", ["twice", "out-is-file", "unknown", "class-option", "list-unknown"])
def test_bad_input_is_one_line(two_class_voc, class_model_files, tmp_path, capsys, case):
    models = _models(class_model_files, "person", "bar")
    argv = [models, "--voc", two_class_voc, "--out", tmp_path / "out"]
    expect = []
    if case == "twice":
        argv[0] = _models(class_model_files, "person", "bar", "person")
        expect = ["class 'person' is given twice"]
    elif case == "out-is-file":
        (tmp_path / "out").write_text("")
        expect = ["is a file, not a folder"]
    elif case == "unknown":
        argv[0] = "voc2007/car,nosuchmodel"
        expect = ["nosuchmodel", "voc2007 (all 20 of voc2007/...)", "r5/voc2010", "bare class names"]
    elif case == "class-option":
        argv += ["--class", "person"]
        expect = ["--class names the class of one model"]
    else:
        (tmp_path / "l.txt").write_text("pos00\nzzz\n")
        argv += ["--list", tmp_path / "l.txt"]
        expect = ["list", "1 image(s) not in split 'test'", "'zzz'"]
    status, out, err = _run(capsys, *argv)
    assert status == 1 and out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("dpm-eval: error: "), err
    for part in expect:
        assert part in err, err


def test_list_restricts_the_split(two_class_voc, class_model_files, tmp_path, capsys, monkeypatch):
    import io

    models = _models(class_model_files, "person", "bar")
    chosen = ["neg03", "pos01", "neg00", "pos02"]
    (two_class_voc / "ImageSets" / "Main" / "some.txt").write_text("pos01\npos02\nneg00\nneg03\n")
    by_split = tmp_path / "by-split"
    assert _run(capsys, models, "--voc", two_class_voc, "--split", "some", "--threshold", "-10",
                "--out", by_split, "-q")[0] == 0
    # ids, paths and file names, in any order, from stdin
    lines = ["neg03", str(two_class_voc / "JPEGImages" / "pos01.jpg"), "neg00.jpg", "pos02"]
    assert [ln.split("/")[-1].split(".")[0] for ln in lines] == chosen
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(lines) + "\n"))
    by_list = tmp_path / "by-list"
    assert _run(capsys, models, "--voc", two_class_voc, "--list", "-", "--threshold", "-10",
                "--out", by_list, "-q")[0] == 0
    for cls in ("person", "bar"):
        assert _summary(by_list, cls)["ap"] == _summary(by_split, cls, "some")["ap"]
        assert _summary(by_list, cls)["n_images"] == 4
        assert (by_list / f"comp3_det_test_{cls}.txt").read_bytes() == \
            (by_split / f"comp3_det_some_{cls}.txt").read_bytes()


def test_resume_after_sigkill_gives_the_uninterrupted_outputs(tmp_path, class_model_files, capsys, monkeypatch):
    data = make_two_class_voc(tmp_path / "VOC", copies=8)            # 64 images
    ids = (data / "ImageSets" / "Main" / "test.txt").read_text().split()
    (tmp_path / "list.txt").write_text("\n".join(ids[:-6]) + "\n")  # the split less six images
    monkeypatch.chdir(tmp_path)
    args = [_models(class_model_files, "person", "bar", "cat"), "--voc", "VOC", "--list", "list.txt",
            "--threshold", "-10", "--out", "out"]
    assert _run(capsys, *args, "-q")[0] == 0
    (tmp_path / "out").rename(tmp_path / "whole")
    # the killed run records its state every 4 images (tests/eval_driver.py): the kill lands mid-run
    proc = subprocess.Popen([sys.executable, str(REPO / "tests" / "eval_driver.py"), *map(str, args), "-q"],
                            env=dict(os.environ, PYTHONPATH=str(REPO)), stderr=subprocess.DEVNULL,
                            start_new_session=True)
    state = tmp_path / "out" / "comp3_det_test.resume"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if state.exists() and json.loads(state.read_text())["owner"]["done"] >= 8:
            break
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    done = json.loads(state.read_text())["owner"]["done"]
    assert 0 < done < len(ids) - 6
    assert not (tmp_path / "out" / "ap_test.txt").exists()
    status, out, err = _run(capsys, *args, "--resume")
    assert status == 0, err
    assert f"resuming after {done} image(s) done" in err
    assert f"detected in {len(ids) - 6 - done}" in err
    assert out == (tmp_path / "whole" / "ap_test.txt").read_text()
    names = sorted(p.name for p in (tmp_path / "whole").iterdir())
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == names
    assert not state.exists() and not list((tmp_path / "out").glob("*.partial"))
    for name in names:
        a, b = (tmp_path / "whole" / name).read_bytes(), (tmp_path / "out" / name).read_bytes()
        if name.endswith(("summary.json", "ap_test.json")):
            # the same but for the time detection took
            a, b = json.loads(a), json.loads(b)
            assert a.pop("seconds_per_image") > 0 and b.pop("seconds_per_image") > 0
        assert a == b, name
    shutil.rmtree(tmp_path / "whole")


def test_resume_refuses_another_model_or_list(two_class_voc, class_model_files, tmp_path, capsys, monkeypatch):
    from dpm.detection import batch

    models = _models(class_model_files, "person", "bar")

    def argv(threshold="-10", out="out"):
        return [models, "--voc", two_class_voc, "--threshold", threshold, "--out", tmp_path / out, "-q"]

    args = argv()
    real = batch.detect_files

    def interrupted(*a, **k):      # stops after 3 images, keeping the .partial files
        for i, pair in enumerate(real(*a, **k)):
            if i == 3:
                raise KeyboardInterrupt
            yield pair

    monkeypatch.setattr(batch, "detect_files", interrupted)
    assert _run(capsys, *args)[0] == 130
    monkeypatch.setattr(batch, "detect_files", real)
    status, _, err = _run(capsys, *argv(threshold="-5"), "--resume")
    assert status == 1 and "the interrupted run used other options" in err and "threshold" in err
    (tmp_path / "l.txt").write_text("pos00\npos01\n")
    status, _, err = _run(capsys, *args, "--list", tmp_path / "l.txt", "--resume")
    assert status == 1 and "images" in err
    status, _, err = _run(capsys, *args, "--resume")
    assert status == 0, err
    assert _run(capsys, *argv(out="whole"))[0] == 0
    for name in ("comp3_det_test_person.txt", "comp3_det_test_bar.txt", "ap_test.txt", "ap_test.md"):
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()
