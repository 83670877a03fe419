"""The COCO side of the commands: dpm-train --coco, dpm-eval --coco, dpm-detect --format coco,
dpm-dataset convert; COCO results files; the same data in two formats gives the same model."""
import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import coco
import voc
from conftest import REPO, write_good_image
from dpm.output import PARTIAL_MARK, ResultsWriter
from dpm.output.formats import CocoFormat
from dpm.training.schedule import train
from test_output import dets
from test_training_pipeline import CONFIG, UPDATES, make_voc


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    """The tiny training VOC folder and its COCO conversion."""
    root = tmp_path_factory.mktemp("both")
    src = make_voc(root / "VOC")
    coco.voc_to_coco(src, root / "coco")
    return src, root / "coco"


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_data_in_two_formats_gives_a_byte_identical_model(both, tmp_path):
    src, conv = both
    a = voc.training_data(src, "person")
    b = coco.training_data(conv / "trainval.json", src / "JPEGImages", "person",
                           negative_ids=conv / "train.json")
    assert a.fingerprint() == b.fingerprint()
    for data, out in ((a, tmp_path / "voc.npz"), (b, tmp_path / "coco.npz")):
        train(data, "person", out=out, config=CONFIG, max_updates=UPDATES, progress=False)
    assert _sha(tmp_path / "voc.npz") == _sha(tmp_path / "coco.npz")


def test_dpm_train_coco_builds_the_data_voc_builds(both, tmp_path, monkeypatch):
    """The command's --coco path hands dpm.train the same data as --voc (training itself is
    the library's, tested above)."""
    from dpm.cli.train import main
    from dpm.training import schedule

    seen = []

    def fake_train(data, cls, **kw):
        seen.append(data.fingerprint())
        raise ValueError("stop here")

    monkeypatch.setattr(schedule, "train", fake_train)
    src, conv = both
    assert main(["person", "--voc", str(src), "-q", "--out", str(tmp_path / "a.npz")]) == 1
    assert main(["person", "--coco", str(conv / "trainval.json"), "--images", str(src / "JPEGImages"),
                 "--negatives", str(conv / "train.json"), "-q", "--out", str(tmp_path / "b.npz")]) == 1
    assert len(seen) == 2 and seen[0] == seen[1]


def _run(cmd, *argv):
    return subprocess.run([sys.executable, str(REPO / "bin" / cmd), *map(str, argv)], capture_output=True,
                          text=True, env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=120)


@pytest.mark.parametrize("cls, edit, message", [
    ("cat", lambda d: d, "no category named 'cat' (categories: 'person')"),
    ("person", lambda d: "{\n  \"images\": [,]\n}", "malformed JSON at line 2, column 14"),
    ("person", lambda d: {**d, "images": d["images"] + d["images"][:1]}, "images[9]: duplicate id 5 (also images[0])"),
    ("person", lambda d: {**d, "annotations": [{**a, "bbox": [0, 0, 0, 5]} for a in d["annotations"]]},
     "no positives of category 'person'"),
])
def test_dpm_train_bad_coco_input_one_line_and_no_model(both, tmp_path, cls, edit, message):
    src, conv = both
    doc = edit(json.loads((conv / "trainval.json").read_text()))
    bad = tmp_path / "bad.json"
    bad.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    r = _run("dpm-train", cls, "--coco", bad, "--images",
             src / "JPEGImages", "--out", tmp_path / "m.npz", "-q")
    lines = [ln for ln in r.stderr.splitlines() if ln.strip() and ": warning: " not in ln]
    assert r.returncode == 1 and len(lines) == 1 and message in lines[0], r.stderr
    if "no positives" in message:               # the zero-width boxes were counted in one warning
        assert "5 annotation(s) with zero or negative width or height skipped" in r.stderr
    assert not (tmp_path / "m.npz").exists() and not (tmp_path / "m.npz.cache").exists()


def test_dpm_train_coco_needs_images(both, tmp_path):
    r = _run("dpm-train", "person", "--coco", both[1] / "trainval.json")
    assert r.returncode == 2 and "--coco and --images go together" in r.stderr
    r = _run("dpm-train", "person", "--voc", both[0], "--coco", both[1] / "trainval.json")
    assert r.returncode == 2 and "not allowed with argument" in r.stderr


def test_dpm_eval_gives_the_same_numbers_on_either_format(both, tmp_path, capsys):
    """VOC AP and the COCO metrics of one results file on the VOC folder and on its conversion."""
    from dpm.cli.eval import main

    src, conv = both
    rng = np.random.default_rng(0)
    ds = voc.VOCDataset(src)
    ids = ds.image_ids("trainval")
    lines, corners = [], []
    for i in ids:
        for b in ds.annotation(i).boxes("person").tolist() + [[10, 10, 60, 90]]:
            jitter = rng.integers(-6, 7, 4)
            box = [max(1, b[0] + jitter[0]), max(1, b[1] + jitter[1]), b[2] + jitter[2], b[3] + jitter[3]]
            lines.append(f"{i} {rng.random():.3f} {' '.join(map(str, box))}")
            corners.append((i, float(lines[-1].split()[1]), box))
    res = tmp_path / "comp3_det_trainval_person.txt"
    res.write_text("\n".join(lines) + "\n")
    assert main(["--results", str(res), "--voc", str(src), "--out", str(tmp_path / "v"), "-q"]) == 0
    voc_out = capsys.readouterr().out.splitlines()
    # the same detections as a COCO results file, on the COCO conversion
    inst = coco.read_instances(conv / "trainval.json")
    to_id = {im.file_name[:-4]: im.id for im in inst.images}
    coco.write_results(tmp_path / "dets.json", ([to_id[i] for i, _, _ in corners], [s for _, s, _ in corners],
                                                 [b for _, _, b in corners]), category_id=inst.category("person").id)
    assert main(["--results", str(tmp_path / "dets.json"), "--coco", str(conv / "trainval.json"), "--images",
                 str(src / "JPEGImages"), "--out", str(tmp_path / "c"), "-q"]) == 0
    coco_out = capsys.readouterr().out.splitlines()
    assert [ln.split(":", 1)[1] for ln in voc_out] == [ln.split(":", 1)[1] for ln in coco_out]
    a = json.loads((tmp_path / "v" / "person_trainval_summary.json").read_text())
    b = json.loads((tmp_path / "c" / "person_trainval_summary.json").read_text())
    assert a["ap"] == b["ap"] and a["coco"] == b["coco"] and a["coco"]["AP"] > 0.2
    # and the COCO API, on the converted file (no ignore flags here), agrees
    from test_coco_metrics import cocoapi

    e = cocoapi(json.loads((conv / "trainval.json").read_text()), json.loads((tmp_path / "dets.json").read_text()))
    assert b["coco"]["AP"] == pytest.approx(e.stats[0], abs=1e-6)
    assert b["coco"]["AR100"] == pytest.approx(e.stats[8], abs=1e-6)


def test_dpm_eval_coco_needs_images_and_names_a_missing_class(both, tmp_path):
    r = _run("dpm-eval", "--results", tmp_path / "x.json", "--coco", both[1] / "test.json")
    assert r.returncode == 2 and "--coco and --images go together" in r.stderr
    (tmp_path / "x.json").write_text("[]")
    r = _run("dpm-eval", "--results", tmp_path / "x.json", "--coco", both[1] / "trainval.json",
             "--images", both[0] / "JPEGImages", "--class", "zebra")
    assert r.returncode == 1 and "no non-difficult 'zebra' objects" in r.stderr and "(classes there: person)" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_dpm_detect_format_coco(small_model_file, tmp_path, rng):
    images = tmp_path / "imgs"
    images.mkdir()
    for name in ("000000000042.jpg", "7.png", "photo.jpg"):
        write_good_image(images / name, rng)
    out = tmp_path / "dets.json"
    r = _run("dpm-detect", small_model_file, images / "000000000042.jpg", images / "7.png", "--format", "coco",
             "-o", out, "--threshold", "-10", "-q")
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    assert {d["image_id"] for d in doc} == {42, 7} and {d["category_id"] for d in doc} == {1}
    back = coco.read_results(out)
    assert len(back) == len(doc) > 0 and (back.bboxes[:, 2:] > 0).all()
    # a name that is not a number: a per-image failure naming the remedy, the others written
    r = _run("dpm-detect", small_model_file, images, "--format", "coco", "-o", out, "--threshold", "-10", "-q")
    assert r.returncode == 1 and "photo.jpg" in r.stderr and "--coco instances.json" in r.stderr
    assert {d["image_id"] for d in json.loads(out.read_text())} == {42, 7}
    # with --coco the file names are looked up, and the category is the model's class
    inst = {"images": [{"id": 5, "file_name": "sub/photo.jpg"}, {"id": 6, "file_name": "7.png"},
                       {"id": 9, "file_name": "000000000042.jpg"}],
            "categories": [{"id": 3, "name": "x"}], "annotations": []}
    (tmp_path / "inst.json").write_text(json.dumps(inst))
    r = _run("dpm-detect", small_model_file, images, "--format", "coco", "--coco", tmp_path / "inst.json",
             "--class", "x", "-o", out, "--threshold", "-10", "-q")
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    assert {d["image_id"] for d in doc} == {5, 6, 9} and {d["category_id"] for d in doc} == {3}
    r = _run("dpm-detect", small_model_file, images, "--format", "csv", "--coco", tmp_path / "inst.json")
    assert r.returncode == 2 and "--coco only applies with --format coco" in r.stderr


def test_coco_results_box_convention_and_partial_files(tmp_path):
    d = dets(3)
    target = tmp_path / "r.json"
    with ResultsWriter(target, CocoFormat(4)) as out:
        out.write("12.jpg", d)
        out.write("x.jpg", dets(0), image_id=13)                # no detections: nothing written
    doc = json.loads(target.read_text())
    assert [x["image_id"] for x in doc] == [12] * 3 and doc[0]["category_id"] == 4
    for x, box in zip(doc, d.boxes):
        assert x["bbox"] == pytest.approx([box[0] - 1, box[1] - 1, box[2] - box[0] + 1, box[3] - box[1] + 1])
    with pytest.raises(KeyboardInterrupt):
        with ResultsWriter(target, "coco", total=5) as out:
            out.write("1.jpg", dets(2))
            out.write("2.jpg", dets(2, seed=1))
            raise KeyboardInterrupt
    text = target.read_text()
    assert text.splitlines()[-1].startswith(PARTIAL_MARK)
    with pytest.raises(ValueError, match=r"r.json:\d+: the file is marked partial"):
        coco.read_results(target)
    assert len(coco.read_results(target, allow_partial=True)) == 4


def test_dpm_dataset_convert_both_ways(both, tmp_path):
    src, _ = both
    r = _run("dpm-dataset", "convert", src, tmp_path / "c", "--to", "coco", "-q")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["train.json", "trainval.json"]
    r = _run("dpm-dataset", "convert", tmp_path / "c" / "train.json", tmp_path / "v", "--to", "voc",
             "--images", src / "JPEGImages", "-q")
    assert r.returncode == 0, r.stderr
    assert voc.VOCDataset(tmp_path / "v").image_ids("train") == voc.VOCDataset(src).image_ids("train")
    r = _run("dpm-dataset", "convert", tmp_path / "c" / "train.json", tmp_path / "v", "--to", "voc")
    assert r.returncode == 2 and "needs --images" in r.stderr
    (tmp_path / "bad.json").write_text('{"images": []\n"x": 1}')
    r = _run("dpm-dataset", "convert", tmp_path / "bad.json", tmp_path / "v2", "--to", "voc",
             "--image-files", "none")
    assert r.returncode == 1 and "malformed JSON at line 2, column 1" in r.stderr
    assert not (tmp_path / "v2").exists()
