"""Faults around results files, through the commands: hostile inputs in big batches,
Ctrl+C, a full disk, two runs on one output, same-stem drawings."""
import csv
import errno
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import voc
from dpm.detection import batch as batch_module
from dpm.cli import detect as detect_cli
from dpm.cli import eval as eval_cli
from dpm.output import PARTIAL_MARK
from dpm.output import partial as partial_module

from conftest import HOSTILE, REPO, sigint_default, write_good_image, write_hostile_image

N_IMAGES = 200


def make_batch(folder, rng, hostile=HOSTILE, n=N_IMAGES):
    """``n`` images in ``folder``: the hostile ones spread among good ones. Returns (good, bad) names."""
    folder.mkdir(parents=True, exist_ok=True)
    n_good = n - len(hostile)
    good = [f"img{k:03d}.png" for k in range(n_good)]
    for name in good:
        write_good_image(folder / name, rng)
    bad = []
    for k, name in enumerate(hostile):   # names sort among the good ones
        target = f"img{(k + 1) * n_good // (len(hostile) + 1):03d}_{name}"
        write_hostile_image(folder / target, name.split(".")[0], rng)
        bad.append(target)
    return good, bad


def run_detect(capsys, *argv):
    status = detect_cli.main(["-q", *map(str, argv)])
    out, err = capsys.readouterr()
    return status, out, err


def _batch_case(tmp_path, capsys, rng, small_model_file, hostile):
    good, bad = make_batch(tmp_path / "in", rng, hostile)
    target = tmp_path / "dets.csv"
    status, out, err = run_detect(capsys, small_model_file, tmp_path / "in", "--threshold", "-10",
                                  "-o", target)
    assert status == 1 and out == ""
    with open(target, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))[1:]
    written = {os.path.basename(r[0]) for r in rows}
    assert written == set(good)                         # every good image, and only those
    lines = err.splitlines()
    assert lines[0] == (f"dpm-detect: error: {len(bad)} of {N_IMAGES} image(s) failed "
                        f"({len(good)} written):")
    assert len(lines) == 1 + len(bad)                  # one line per failure, nothing else
    for name, line in zip(bad, lines[1:]):
        assert line.startswith("  ") and name in line and "Traceback" not in line
    return lines


def test_detect_200_images_5_hostile(tmp_path, capsys, rng, small_model_file):
    lines = _batch_case(tmp_path, capsys, rng, small_model_file, HOSTILE)
    assert "smaller than the model" in lines[4]


def test_detect_200_images_4_hostile(tmp_path, capsys, rng, small_model_file):
    # The same batch without the decompression bomb: what passes before the bounded loader.
    lines = _batch_case(tmp_path, capsys, rng, small_model_file, HOSTILE[:4])
    assert "smaller than the model" in lines[4] and "truncated" in lines[2]


def _interrupt_after(monkeypatch, k):
    real = batch_module.detect_files

    def interrupted(*args, **kwargs):
        for i, item in enumerate(real(*args, **kwargs)):
            if i == k:
                raise KeyboardInterrupt
            yield item

    monkeypatch.setattr(batch_module, "detect_files", interrupted)


@pytest.mark.parametrize("fmt", ["csv", "json", "voc"])
def test_ctrl_c_keeps_finished_images_marked_partial(tmp_path, capsys, rng, small_model_file,
                                                     monkeypatch, fmt):
    good, _ = make_batch(tmp_path / "in", rng, hostile=(), n=12)
    target = tmp_path / f"dets.{fmt}"
    _interrupt_after(monkeypatch, 5)
    status, out, err = run_detect(capsys, small_model_file, tmp_path / "in", "--threshold", "-10",
                                  "--format", fmt, "-o", target)
    assert status == 130 and err.splitlines()[-1] == "dpm-detect: interrupted"
    assert f"{target}: partial results kept: 5 of 12 images done" in err
    text = target.read_text()
    if fmt == "json":
        doc = json.loads(text)
        assert doc["complete"] is False and [os.path.basename(i["image"]) for i in doc["images"]] == good[:5]
    else:
        assert text.splitlines()[-1].startswith(f"{PARTIAL_MARK} 5 of 12 images done")
        if fmt == "csv":
            names = {os.path.basename(r[0]) for r in list(csv.reader(text.splitlines()))[1:-1]}
            assert names == set(good[:5])
        else:
            assert {line.split()[0] for line in text.splitlines()[:-1]} == {g[:-4] for g in good[:5]}
    if fmt == "voc":
        with pytest.raises(ValueError, match=r":\d+: the file is marked partial"):
            voc.read_results(target)
        assert len(voc.read_results(target, allow_partial=True).image_ids) > 0
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_full_disk_names_the_file_and_keeps_the_previous_one(tmp_path, capsys, rng, small_model_file,
                                                             monkeypatch):
    make_batch(tmp_path / "in", rng, hostile=(), n=6)
    target = tmp_path / "dets.csv"
    target.write_text("previous results\n")

    def full(self, data):   # dpm-detect -o writes through FILE.partial (resumable)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(partial_module.PartialFile, "write", full)
    status, out, err = run_detect(capsys, small_model_file, tmp_path / "in", "-o", target)
    assert status == 1
    assert err == (f"dpm-detect: error: {target}: no space left on device writing the results; free "
                   "some space or choose another output file (the previous file, if any, is kept)\n")
    assert target.read_text() == "previous results\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dets.csv", "dets.csv.lock", "in"]


def test_same_stem_inputs_get_their_own_drawings(tmp_path, capsys, rng, small_model_file):
    for sub, name in (("a", "x.jpg"), ("b", "x.jpg"), ("a", "x.png")):
        (tmp_path / sub).mkdir(exist_ok=True)
        write_good_image(tmp_path / sub / name, rng)
    draw = tmp_path / "draw"
    status, out, err = run_detect(capsys, small_model_file, tmp_path / "a" / "x.jpg", tmp_path / "b",
                                  tmp_path / "a" / "x.png", "--threshold", "-10", "--draw", draw)
    assert status == 0, err
    assert sorted(p.name for p in draw.iterdir()) == ["x-2.png", "x-3.png", "x.png"]


def test_second_run_on_one_output_fails_naming_the_first(tmp_path, rng, small_model_file):
    make_batch(tmp_path / "in", rng, hostile=(), n=120)
    target = tmp_path / "dets.csv"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cmd = [sys.executable, str(REPO / "bin" / "dpm-detect"), "-q", str(small_model_file),
           str(tmp_path / "in"), "-o", str(target)]
    # The first run draws every image, which keeps it busy for a few seconds.
    first = subprocess.Popen(cmd + ["--draw", str(tmp_path / "draw")], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=sigint_default)
    try:
        lock = tmp_path / "dets.csv.lock"
        deadline = time.monotonic() + 120
        while not (lock.exists() and lock.read_text() == str(first.pid)):
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first run never took the lock"
            time.sleep(0.05)
        second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert second.returncode == 1 and second.stdout == ""
        assert second.stderr == (f"dpm-detect: error: {target}: results file is in use by process "
                                 f"{first.pid} (lock file {lock}); wait for it to finish or choose "
                                 "another output\n")
    finally:
        if first.poll() is None:
            first.send_signal(signal.SIGINT)
        _, err = first.communicate(timeout=120)
    # Interrupted or finished, the first run's file reads as CSV and says which it is.
    text = target.read_text()
    assert text.startswith("image,score") and (
        first.returncode == 0 or (first.returncode == 130 and PARTIAL_MARK in text.splitlines()[-1])), err


# -- dpm-eval -------------------------------------------------------------------------------------

def _voc_folder(root, rng, hostile=HOSTILE, n=N_IMAGES):
    """A VOC folder of ``n`` test images, one person each; the hostile ones spread among them."""
    for sub in ("Annotations", "ImageSets/Main", "JPEGImages"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    step = n // (len(hostile) + 1)
    bad_at = {(k + 1) * step: name for k, name in enumerate(hostile)}
    ids, bad = [], []
    for k in range(n):
        image_id = f"{k:06d}"
        ids.append(image_id)
        name = bad_at.get(k)
        filename = f"{image_id}.jpg" if name is None else f"{image_id}{os.path.splitext(name)[1]}"
        if name is None:
            write_good_image(root / "JPEGImages" / filename, rng)
        else:
            write_hostile_image(root / "JPEGImages" / filename, name.split(".")[0], rng)
            bad.append(image_id)
        (root / "Annotations" / f"{image_id}.xml").write_text(
            f"<annotation><filename>{filename}</filename><object><name>person</name>"
            "<difficult>0</difficult><bndbox><xmin>5</xmin><ymin>5</ymin><xmax>40</xmax>"
            "<ymax>56</ymax></bndbox></object></annotation>")
    (root / "ImageSets" / "Main" / "test.txt").write_text("".join(i + "\n" for i in ids))
    return ids, bad


def _eval_case(tmp_path, capsys, rng, small_model_file, hostile):
    ids, bad = _voc_folder(tmp_path / "VOC", rng, hostile)
    out = tmp_path / "out"
    status = eval_cli.main([str(small_model_file), "--voc", str(tmp_path / "VOC"), "--class", "person",
                            "--threshold", "-10", "--out", str(out), "-q"])
    stdout, err = capsys.readouterr()
    assert status == 1
    assert stdout.startswith("person test: AP ") and f"{N_IMAGES} images" in stdout
    lines = err.splitlines()
    assert lines[0] == (f"dpm-eval: error: {len(bad)} of {N_IMAGES} image(s) failed "
                        f"({N_IMAGES - len(bad)} written):")
    assert len(lines) == 1 + len(bad)
    for image_id, line in zip(bad, lines[1:]):
        assert image_id in line and "Traceback" not in line
    results_file = out / "comp3_det_test_person.txt"
    res = voc.read_results(results_file, image_ids=ids)
    assert set(res.image_ids) == set(ids) - set(bad)
    summary = json.loads((out / "person_test_summary.json").read_text())
    assert summary["n_failed_images"] == len(bad) and len(summary["failed_images"]) == len(bad)
    # As the devkit: the failed images' objects count, as missed (200 positives, not 195).
    gt = voc.VOCDataset(tmp_path / "VOC").ground_truth("person", "test")
    again = voc.evaluate(res, gt)
    assert summary["n_positives"] == N_IMAGES and again.ap == summary["ap"]


def test_eval_200_images_5_hostile(tmp_path, capsys, rng, small_model_file):
    _eval_case(tmp_path, capsys, rng, small_model_file, HOSTILE)


def test_eval_200_images_4_hostile(tmp_path, capsys, rng, small_model_file):
    _eval_case(tmp_path, capsys, rng, small_model_file, HOSTILE[:4])
