"""dpm-detect over a list of paths (a file or stdin): streamed, missing paths listed, --resume after a kill."""
import io
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO, write_good_image
from dpm.detection.batch import read_image_list
from dpm.cli import detect as detect_cli
from dpm.output import ResultsWriter


@pytest.fixture
def images(tmp_path, rng):
    folder = tmp_path / "in"
    folder.mkdir()
    return [write_good_image(folder / f"{i:02d}.png", rng).name for i in range(12)]


def test_list_from_stdin_missing_paths_listed_at_the_end(tmp_path, images, small_model_file, capsys,
                                                         monkeypatch):
    monkeypatch.chdir(tmp_path)
    lines = [f"in/{n}" for n in images[:5]] + ["in/gone-1.png"] + [f"in/{n}" for n in images[5:]] + ["in/gone-2.png"]
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(lines) + "\n\n"))
    status = detect_cli.main([str(small_model_file), "--list", "-", "--threshold", "-10", "-o", "d.csv", "-q"])
    err = capsys.readouterr().err.splitlines()
    assert status == 1
    assert err == ["dpm-detect: error: 2 of 14 image(s) failed (12 written):",
                   "  in/gone-1.png: no such file", "  in/gone-2.png: no such file"]
    rows = (tmp_path / "d.csv").read_text().splitlines()[1:]
    assert {r.split(",")[0].strip('"') for r in rows} == {f"in/{n}" for n in images}
    # the same images given as a folder: the same file
    assert detect_cli.main([str(small_model_file), "in", "--threshold", "-10", "-o", "f.csv", "-q"]) == 0
    assert (tmp_path / "f.csv").read_text().splitlines()[1:] == rows


def test_list_is_read_lazily(tmp_path):
    listing = tmp_path / "l.txt"
    listing.write_text("a.png\r\n\nb c.png\n")
    it = read_image_list(listing)
    assert next(it) == "a.png" and next(it) == "b c.png"
    assert list(it) == []


def test_failures_are_counted_and_the_first_ones_kept(tmp_path, capsys):
    from dpm.cli._common import report_failures

    with ResultsWriter(tmp_path / "d.json", "json") as out:
        out.status.max_listed = 3
        for i in range(5):
            out.add(f"x{i}.png", ValueError("unreadable"))
    doc = json.loads((tmp_path / "d.json").read_text())
    assert doc["n_done"] == 5 and len(doc["failures"]) == 3 and doc["failures_not_listed"] == 2
    assert report_failures("dpm-detect", out.status) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "dpm-detect: error: 5 of 5 image(s) failed (0 written):"
    assert err[-1] == "  ... and 2 more (only the first 3 are listed)"


# The first sync comes after 2 s or 1,000 images, whichever is first: with 1,500 images at
# least 500 are still to do then, however fast the machine, so the kill lands mid-run.
N_RESUME = 1500


def _listing(tmp_path, images, n):
    path = tmp_path / "list.txt"
    path.write_text("".join(f"in/{images[k % len(images)]}\n" for k in range(n)) + "in/gone.png\n")
    return path


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_resume_after_sigkill_gives_the_uninterrupted_file(tmp_path, images, small_model_file, capsys,
                                                           monkeypatch, fmt):
    monkeypatch.chdir(tmp_path)
    _listing(tmp_path, images, N_RESUME)
    args = [str(small_model_file), "--list", "list.txt", "--threshold", "-10", "--format", fmt]
    assert detect_cli.main(args + ["-o", "whole", "-q"]) == 1
    proc = subprocess.Popen([sys.executable, str(REPO / "bin" / "dpm-detect"), *args, "-o", "cut", "-q"],
                            env=dict(os.environ, PYTHONPATH=str(REPO)), stderr=subprocess.DEVNULL,
                            start_new_session=True)
    state = tmp_path / "cut.resume"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if state.exists() and json.loads(state.read_text())["done"] > 0:
            break
        time.sleep(0.02)
    time.sleep(0.1)   # records past the last sync: a resume cuts them off
    os.killpg(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    assert (tmp_path / "cut.partial").exists() and not (tmp_path / "cut").exists()
    done = json.loads(state.read_text())["done"]
    assert 0 < done < N_RESUME
    capsys.readouterr()
    assert detect_cli.main(args + ["-o", "cut", "--resume"]) == 1
    err = capsys.readouterr().err
    assert f"resuming after {done} image(s) done" in err and f"1 of {N_RESUME + 1} image(s) failed ({N_RESUME} written)" in err
    assert (tmp_path / "cut").read_bytes() == (tmp_path / "whole").read_bytes()
    assert not (tmp_path / "cut.partial").exists() and not state.exists()


def test_resume_refuses_other_options_and_other_inputs(tmp_path, images, small_model_file, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    listing = _listing(tmp_path, images, 30)
    args = [str(small_model_file), "--list", "list.txt", "-o", "d.csv", "-q"]

    def interrupted(*a, **k):   # the run stops after 10 images, keeping d.csv.partial
        from dpm.detection import batch

        for i, pair in enumerate(real(*a, **k)):
            if i == 10:
                raise KeyboardInterrupt
            yield pair

    from dpm.detection import batch
    real = batch.detect_files
    monkeypatch.setattr(batch, "detect_files", interrupted)
    assert detect_cli.main(args + ["--threshold", "-10"]) == 130
    assert "partial: 10 images done" in (tmp_path / "d.csv").read_text()
    monkeypatch.setattr(batch, "detect_files", real)
    capsys.readouterr()
    assert detect_cli.main(args + ["--threshold", "-5", "--resume"]) == 1
    assert "the interrupted run used other options" in capsys.readouterr().err
    listing.write_text("in/other.png\n" * 30)
    assert detect_cli.main(args + ["--threshold", "-10", "--resume"]) == 1
    assert "the inputs differ from the interrupted run's: image 10 was in/" in capsys.readouterr().err
    _listing(tmp_path, images, 30)
    assert detect_cli.main(args + ["--threshold", "-10", "--resume"]) == 1
    assert detect_cli.main(args[:-3] + ["-o", "whole.csv", "-q", "--threshold", "-10"]) == 1
    assert (tmp_path / "d.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()


def test_resume_one_file_per_class(tmp_path, images, class_model_files, capsys, monkeypatch):
    """--format voc with several models: every class's file continues from the same image."""
    from dpm.detection import batch

    monkeypatch.chdir(tmp_path)
    models = ",".join(str(class_model_files[c]) for c in ("person", "bar", "cat"))
    args = [models, "in", "--threshold", "-10", "--format", "voc", "-q"]
    real = batch.detect_files

    def interrupted(*a, **k):   # the run stops after 5 images
        for i, pair in enumerate(real(*a, **k)):
            if i == 5:
                raise KeyboardInterrupt
            yield pair

    monkeypatch.setattr(batch, "detect_files", interrupted)
    assert detect_cli.main(args + ["-o", "cut"]) == 130
    assert "# partial: 5 of 12 images done" in (tmp_path / "cut" / "comp3_det_test_bar.txt").read_text()
    monkeypatch.setattr(batch, "detect_files", real)
    capsys.readouterr()
    assert detect_cli.main(args[:-1] + ["-o", "cut", "--resume"]) == 0
    assert "cut/comp3_det_test_cat.txt: resuming after 5 image(s) done" in capsys.readouterr().err
    assert detect_cli.main(args + ["-o", "whole"]) == 0
    for c in ("person", "bar", "cat"):
        name = f"comp3_det_test_{c}.txt"
        assert (tmp_path / "cut" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()
    assert sorted(p.name for p in (tmp_path / "cut").iterdir() if not p.name.endswith(".lock")) == \
        [f"comp3_det_test_{c}.txt" for c in ("bar", "cat", "person")]


def test_one_file_per_class_counts_failed_images(tmp_path, images, class_model_files, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in" / "zz-broken.png").write_text("not an image\n")
    models = ",".join(str(class_model_files[c]) for c in ("person", "bar"))
    assert detect_cli.main([models, "in", "--format", "voc", "-o", "out", "-q"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "dpm-detect: error: 1 of 13 image(s) failed (12 written):" and "zz-broken.png" in err[1]
