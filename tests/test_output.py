"""dpm.output: one streaming, atomic results writer; partial files; drawing names."""
import csv
import errno
import io
import json
import os
from contextlib import contextmanager

import numpy as np
import pytest

from dpm.detection import Detections
from dpm.output import PARTIAL_MARK, Drawings, ResultsWriter, drawing_names, write_batch
from dpm.output import writer as writer_module


def dets(n, seed=0, shape=(80, 60)):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(1, 40, (n, 2))
    boxes = np.c_[xy, xy + rng.uniform(1, 20, (n, 2))]
    return Detections(boxes=boxes, scores=rng.normal(size=n), components=np.zeros(n, int),
                      root_boxes=boxes.copy(), part_boxes=np.zeros((n, 0, 4)),
                      levels=np.zeros(n, int), image_shape=shape)


WEIRD = ["plain.jpg", "with,comma.jpg", 'with "quotes".jpg', "with\nnewline.jpg", "#hash.jpg",
         " spaced .jpg", "ünïcödé.jpg", "semi;colon\r.jpg"]


def test_csv_round_trips_any_file_name(tmp_path):
    target = tmp_path / "d.csv"
    per_image = {name: dets(k + 1, seed=k) for k, name in enumerate(WEIRD)}
    with ResultsWriter(target, "csv", total=len(WEIRD)) as out:
        for name, d in per_image.items():
            out.write(name, d)
    with open(target, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["image", "score", "x1", "y1", "x2", "y2", "component", "class"]
    got = {}
    for r in rows[1:]:
        got.setdefault(r[0], []).append([float(v) for v in r[1:6]])
    assert list(got) == WEIRD                                       # names exact, input order
    for name, d in per_image.items():
        np.testing.assert_array_equal(np.array(got[name]), np.c_[d.scores, d.boxes])  # bit for bit
    assert not any(line.startswith("#") for line in target.read_text().splitlines())
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_json_is_streamed_and_complete(tmp_path):
    target = tmp_path / "d.json"
    with ResultsWriter(target, "json", total=3) as out:
        out.add("a.jpg", dets(2))
        out.add("b.jpg", ValueError("b.jpg: not an image"))
        out.add("c.jpg", dets(0))
    doc = json.loads(target.read_text())
    assert doc["complete"] is True and doc["n_images"] == 3 and doc["n_written"] == 2
    assert [i["image"] for i in doc["images"]] == ["a.jpg", "c.jpg"]
    assert doc["failures"] == [{"image": "b.jpg", "error": "b.jpg: not an image"}]
    assert len(doc["images"][0]["detections"]) == 2 and doc["images"][1]["detections"] == []


def test_stdout_streams_each_image_as_it_comes():
    buf = io.StringIO()
    with ResultsWriter(None, "voc", stream=buf) as out:
        out.write("x/a.jpg", dets(1))
        first = buf.getvalue()
        assert first.startswith("a ") and first.count("\n") == 1   # already out, before the end
        out.write("x/b.jpg", dets(2))
    assert buf.getvalue().count("\n") == 3


@pytest.mark.parametrize("fmt", ["csv", "json", "voc"])
def test_interrupt_keeps_finished_images_marked_partial(tmp_path, fmt):
    target = tmp_path / f"d.{fmt}"
    target.write_text("old results\n")
    with pytest.raises(KeyboardInterrupt):
        with ResultsWriter(target, fmt, total=10) as out:
            for k in range(10):
                if k == 4:
                    raise KeyboardInterrupt
                out.add(f"img{k}.jpg", dets(1, seed=k) if k != 2 else ValueError("bad"))
    text = target.read_text()
    assert "old results" not in text
    if fmt == "json":
        doc = json.loads(text)
        assert doc["complete"] is False and doc["n_done"] == 4 and doc["n_images"] == 10
        assert [i["image"] for i in doc["images"]] == ["img0.jpg", "img1.jpg", "img3.jpg"]
        assert doc["stopped"] == "interrupted"
    else:
        lines = text.splitlines()
        assert lines[-1] == f"{PARTIAL_MARK} 4 of 10 images done (3 written, 1 failed); " \
                            "the run stopped early: interrupted"
        assert sum(1 for line in lines if "img" in line) == 3
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_error_before_any_image_keeps_the_previous_file(tmp_path):
    target = tmp_path / "d.csv"
    target.write_text("old results\n")
    with pytest.raises(KeyboardInterrupt):
        with ResultsWriter(target, "csv", total=10):
            raise KeyboardInterrupt
    assert target.read_text() == "old results\n"
    assert sorted(os.listdir(tmp_path)) == ["d.csv", "d.csv.lock"]


class _FullDisk:
    """A file that takes ``room`` bytes and then fails like a full disk."""

    def __init__(self, fh, room):
        self.fh, self.room = fh, room

    def write(self, data):
        if len(data) > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self.fh.write(data)

    def __getattr__(self, name):
        return getattr(self.fh, name)


@pytest.mark.parametrize("room", [0, 200])
def test_full_disk_keeps_previous_file_and_names_path(tmp_path, monkeypatch, room):
    real = writer_module.atomic_file

    @contextmanager
    def filling(path, **kw):
        with real(path, **kw) as fh:
            yield _FullDisk(fh, room)

    monkeypatch.setattr(writer_module, "atomic_file", filling)
    target = tmp_path / "d.csv"
    target.write_text("old results\n")
    with pytest.raises(OSError) as e:
        with ResultsWriter(target, "csv", total=100) as out:
            for k in range(100):
                out.write(f"img{k}.jpg", dets(3, seed=k))
    assert e.value.errno == errno.ENOSPC and e.value.filename == str(target)
    assert "no space left on device" in e.value.strerror and "free some space" in e.value.strerror
    assert target.read_text() == "old results\n"
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_voc_refuses_what_it_cannot_hold_and_writes_the_rest(tmp_path):
    target = tmp_path / "comp3_det_test_person.txt"
    with ResultsWriter(target, "voc", total=4) as out:
        status = write_batch([("a/x.jpg", dets(1)), ("b/my photo.jpg", dets(1)), ("c/x.png", dets(1)),
                              ("c/y.jpg", dets(2))], out)
    assert [m for _, m in status.failures] == [
        "b/my photo.jpg: image id 'my photo' is empty or contains whitespace, which the VOC devkit's "
        "results format cannot hold; rename the file or use the csv or json format",
        "c/x.png: image id 'x' is already used by a/x.jpg in this VOC results file; rename one of "
        "them or use the csv or json format"]
    assert [line.split()[0] for line in target.read_text().splitlines()] == ["x", "y", "y"]
    assert status.written == 2 and status.done == 4


def test_non_finite_detections_are_a_per_image_failure(tmp_path):
    bad = dets(2)
    bad.scores[1] = np.nan
    for fmt in ("csv", "json", "voc"):
        with ResultsWriter(tmp_path / f"d.{fmt}", fmt) as out:
            assert out.add("bad.jpg", bad) is False and out.add("good.jpg", dets(1)) is True
        assert "NaN or infinite" in out.status.failures[0][1]
        text = (tmp_path / f"d.{fmt}").read_text()
        if fmt == "json":
            assert [i["image"] for i in json.loads(text)["images"]] == ["good.jpg"]
        else:
            assert "good" in text and "bad" not in text and "nan" not in text


def test_unwritable_targets_are_one_line_errors(tmp_path):
    with pytest.raises(ValueError, match="folder .* does not exist"):
        with ResultsWriter(tmp_path / "nowhere" / "d.csv", "csv"):
            pass
    with pytest.raises(ValueError, match="is a folder"):
        with ResultsWriter(tmp_path, "csv"):
            pass
    with pytest.raises(ValueError, match="unknown results format"):
        ResultsWriter(tmp_path / "d.x", "xml")


def test_drawing_names_never_collide_and_are_stable():
    paths = ["a/x.jpg", "b/x.jpg", "x.png", "c/x-2.jpg", "X.jpg", "y.jpg"]
    names = drawing_names(paths)
    assert names == ["x.png", "x-2.png", "x-3.png", "x-2-2.png", "X-4.png", "y.png"]
    assert len({n.casefold() for n in names}) == len(paths)
    assert drawing_names(paths) == names                  # same inputs, same names


def test_drawings_go_to_their_own_files_atomically(tmp_path, rng):
    from PIL import Image

    for sub, suffix in (("a", ".jpg"), ("b", ".jpg"), ("a", ".png")):
        (tmp_path / sub).mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(tmp_path / sub / f"x{suffix}")
    paths = [tmp_path / "a" / "x.jpg", tmp_path / "b" / "x.jpg", tmp_path / "a" / "x.png"]
    out_dir = tmp_path / "out"
    drawings = Drawings(out_dir, paths)
    written = [drawings.draw(p, dets(1, shape=(40, 50))) for p in paths]
    assert [p.name for p in written] == ["x.png", "x-2.png", "x-3.png"]
    assert sorted(os.listdir(out_dir)) == ["x-2.png", "x-3.png", "x.png"]   # no temporary files left
    for p in written:
        with Image.open(p) as im:
            assert im.size == (50, 40)


def test_special_files_are_written_in_place_and_links_followed(tmp_path):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    # A device is never replaced by a regular file (nor a lock file put next to it) ...
    with pytest.raises(OSError) as e:
        with ResultsWriter("/dev/full", "csv") as out:
            for k in range(2000):
                out.write(f"img{k}.jpg", dets(3))
    assert e.value.filename == "/dev/full" and "no space left on device" in e.value.strerror
    assert not os.path.isfile("/dev/full") and not os.path.exists("/dev/full.lock")
    # ... and a link keeps pointing at the results.
    real = tmp_path / "real.csv"
    real.write_text("old\n")
    (tmp_path / "link.csv").symlink_to(real)
    with ResultsWriter(tmp_path / "link.csv", "csv") as out:
        out.write("a.jpg", dets(1))
    assert (tmp_path / "link.csv").is_symlink() and real.read_text().startswith("image,score")
