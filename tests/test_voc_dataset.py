"""Reading VOC year folders: image sets, annotations, pascal_data.m's training data."""
import time
from pathlib import Path

import numpy as np
import pytest

import voc
from voc import VOCDataset, read_annotation

from conftest import shared_path


def _obj(name, box, difficult=0, truncated=0, pose="Left", extra=""):
    x1, y1, x2, y2 = box
    return (f"<object><name>{name}</name><pose>{pose}</pose><truncated>{truncated}</truncated>"
            f"<difficult>{difficult}</difficult>{extra}<bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin>"
            f"<xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>")


def _xml(image_id, objects, size=(500, 375, 3)):
    w, h, d = size
    return (f"<annotation><folder>VOC2007</folder><filename>{image_id}.jpg</filename>"
            f"<size><width>{w}</width><height>{h}</height><depth>{d}</depth></size>"
            f"<segmented>0</segmented>{''.join(objects)}</annotation>")


@pytest.fixture
def tiny(tmp_path):
    """A small VOC folder: 5 images, classes person/dog, splits train/val/trainval/test."""
    root = tmp_path / "VOC"
    (root / "Annotations").mkdir(parents=True)
    (root / "ImageSets" / "Main").mkdir(parents=True)
    (root / "JPEGImages").mkdir()
    anns = {
        "000001": [_obj("person", (10, 20, 110, 220)), _obj("dog", (5, 5, 50, 40))],
        "000002": [_obj("person", (1, 1, 30, 60), difficult=1),
                   # VOC2012-style: a part box inside the object must not be taken for it
                   _obj("person", (100.5, 50, 200, 300.25), truncated=1,
                        extra="<part><name>head</name><bndbox><xmin>1</xmin><ymin>1</ymin>"
                              "<xmax>2</xmax><ymax>2</ymax></bndbox></part>")],
        "000003": [_obj("dog", (7, 8, 9, 10))],
        "000004": [],
        "000005": [_obj("person", (3, 3, 40, 90))],
    }
    for image_id, objs in anns.items():
        (root / "Annotations" / f"{image_id}.xml").write_text(_xml(image_id, objs))
    main = root / "ImageSets" / "Main"
    main.joinpath("train.txt").write_text("000001\n000002\n000003\n000004\n")
    main.joinpath("val.txt").write_text("000005\n")
    main.joinpath("trainval.txt").write_text("000001\n000002\n000003\n000004\n000005\n\n")
    main.joinpath("test.txt").write_text("000002\n000003\n")
    main.joinpath("person_train.txt").write_text("000001  1\n000002  1\n000003 -1\n000004 -1\n")
    return root


def test_image_ids_and_splits(tiny):
    ds = VOCDataset(tiny)
    assert ds.image_ids("train") == ["000001", "000002", "000003", "000004"]
    assert ds.image_ids("trainval")[-1] == "000005"           # blank line skipped
    assert ds.image_ids("person_train") == ds.image_ids("train")  # '<id> <label>' lines
    assert ds.splits() == ["test", "train", "trainval", "val"]


def test_annotation_fields(tiny):
    ds = VOCDataset(tiny)
    a = ds.annotation("000002")
    assert a.image_id == "000002" and a.filename == "000002.jpg" and a.size == (500, 375, 3)
    assert len(a.objects) == 2
    o0, o1 = a.objects
    assert o0.name == "person" and o0.difficult and not o0.truncated and o0.pose == "Left"
    assert o0.bbox == (1, 1, 30, 60) and all(isinstance(v, int) for v in o0.bbox)
    assert o1.bbox == (100.5, 50, 200, 300.25) and o1.truncated and not o1.difficult
    np.testing.assert_array_equal(a.boxes("person"), [[1, 1, 30, 60], [100.5, 50, 200, 300.25]])
    np.testing.assert_array_equal(a.difficult("person"), [True, False])
    assert a.boxes("cat").shape == (0, 4)
    assert ds.annotation("000002") is a                        # cached
    assert ds.class_names("train") == ["dog", "person"]


def test_optional_fields_default(tmp_path):
    p = tmp_path / "x.xml"
    p.write_text("<annotation><object><name>cat</name><bndbox><xmin>1</xmin><ymin>2</ymin>"
                 "<xmax>3</xmax><ymax>4</ymax></bndbox></object></annotation>")
    a = read_annotation(p)
    assert a.size is None and a.filename == "" and a.image_id == "x"
    assert a.objects[0] == voc.VOCObject("cat", (1, 2, 3, 4), "Unspecified", False, False)


def test_positives_and_negatives_follow_pascal_data(tiny):
    ds = VOCDataset(tiny)
    pos = ds.positives("person")        # trainval, difficult ones skipped
    assert [(p.image_id, p.box) for p in pos] == [
        ("000001", (10, 20, 110, 220)), ("000002", (100.5, 50, 200, 300.25)),
        ("000005", (3, 3, 40, 90))]
    assert all(p.flipped is False for p in pos)
    assert pos[0].path == tiny / "JPEGImages" / "000001.jpg"
    neg = ds.negatives("person")        # train, no person at all (000002 has a difficult one)
    assert [n.image_id for n in neg] == ["000003", "000004"]
    assert [n.image_id for n in ds.negatives("dog")] == ["000002", "000004"]
    assert [p.image_id for p in ds.positives("dog", "test")] == ["000003"]


def test_ground_truth(tiny):
    gt = VOCDataset(tiny).ground_truth("person", "trainval")
    assert gt.image_ids == ("000001", "000002", "000003", "000004", "000005")
    np.testing.assert_array_equal(gt.offsets, [0, 1, 3, 3, 3, 4])
    assert gt.n_positives == 3
    np.testing.assert_array_equal(gt.difficult, [False, True, False, False])


def test_image_path_falls_back_to_annotation_filename(tiny):
    (tiny / "Annotations" / "000004.xml").write_text(
        _xml("000004", []).replace("000004.jpg", "frame4.png"))
    ds = VOCDataset(tiny)
    assert ds.image_path("000004") == tiny / "JPEGImages" / "frame4.png"
    (tiny / "JPEGImages" / "000001.jpg").write_bytes(b"")
    assert ds.image_path("000001") == tiny / "JPEGImages" / "000001.jpg"


# -- errors: one line, naming the file and the problem ------------------------------

def _one_line(exc_info):
    msg = str(exc_info.value)
    assert "\n" not in msg
    return msg


def test_bad_root(tmp_path):
    with pytest.raises(ValueError, match="not a directory"):
        VOCDataset(tmp_path / "nope")
    with pytest.raises(ValueError, match="no Annotations/ inside"):
        VOCDataset(tmp_path)


def test_missing_split(tiny):
    with pytest.raises(ValueError) as e:
        VOCDataset(tiny).image_ids("tset")
    msg = _one_line(e)
    assert "tset.txt" in msg and "no such split file" in msg and "test, train, trainval, val" in msg
    with pytest.raises(ValueError, match="invalid split"):
        VOCDataset(tiny).image_ids("../x")


def test_missing_annotation(tiny):
    (tiny / "ImageSets" / "Main" / "bad.txt").write_text("000001\n009999\n")
    ds = VOCDataset(tiny)
    with pytest.raises(ValueError) as e:
        ds.positives("person", "bad")
    msg = _one_line(e)
    assert "009999.xml" in msg and "not found" in msg


def test_malformed_xml(tiny):
    (tiny / "Annotations" / "000003.xml").write_text("<annotation><object><name>dog</name>")
    with pytest.raises(ValueError) as e:
        VOCDataset(tiny).annotation("000003")
    msg = _one_line(e)
    assert "000003.xml" in msg and "malformed XML" in msg and "line 1" in msg


@pytest.mark.parametrize("box, what", [((50, 5, 10, 40), "xmax 10 < xmin 50"),
                                       ((5, 50, 10, 40), "ymax 40 < ymin 50")])
def test_inverted_box(tiny, box, what):
    (tiny / "Annotations" / "000003.xml").write_text(
        _xml("000003", [_obj("dog", (1, 1, 2, 2)), _obj("cat", box)]))
    with pytest.raises(ValueError) as e:
        VOCDataset(tiny).annotation("000003")
    msg = _one_line(e)
    assert "000003.xml" in msg and "object 2 (cat)" in msg and what in msg


@pytest.mark.parametrize("xml, what", [
    ("<annotation><object><name>a</name></object></annotation>", "object 1 (a) has no <bndbox>"),
    ("<annotation><object><bndbox/></object></annotation>", "object 1 has no <name>"),
    ("<annotation><object><name>a</name><bndbox><xmin>1</xmin><ymin>x</ymin><xmax>3</xmax>"
     "<ymax>4</ymax></bndbox></object></annotation>", "<ymin> is 'x', not a number"),
    ("<annotation><object><name>a</name><difficult>2</difficult><bndbox><xmin>1</xmin>"
     "<ymin>1</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></object></annotation>",
     "<difficult> is '2', expected 0 or 1"),
    ("<notvoc/>", "root element is <notvoc>"),
])
def test_malformed_fields(tmp_path, xml, what):
    p = tmp_path / "a.xml"
    p.write_text(xml)
    with pytest.raises(ValueError) as e:
        read_annotation(p)
    msg = _one_line(e)
    assert str(p) in msg and what in msg


# -- the shared person-voc dataset --------------------------------------------------

@pytest.fixture(scope="module")
def person_voc():
    return VOCDataset(shared_path("data", "person-voc"))


def test_person_voc_reads_fast_and_counts(person_voc):
    ds = VOCDataset(person_voc.root)          # fresh cache
    ids = sorted({i for s in ("trainval", "test", "train") for i in ds.image_ids(s)})
    t0 = time.perf_counter()
    anns = [ds.annotation(i) for i in ids]
    elapsed = time.perf_counter() - t0
    assert len(anns) == 4351
    assert elapsed < 5.0, f"reading 4351 annotations took {elapsed:.2f} s"
    # README: 1,208 INRIA crops with one person each, box (17, 17, 80, 144)
    pos = ds.positives("person")
    assert len(pos) == 1208
    inria = [p for p in pos if p.image_id.startswith("inria_")]
    assert len(inria) == 1208 and all(p.box == (17, 17, 80, 144) for p in inria)
    assert all(p.path.exists() for p in pos[:20])


def test_person_voc_negatives_have_no_person(person_voc):
    neg = person_voc.negatives("person")
    neg_ids = {n.image_id for n in neg}
    train = person_voc.image_ids("train")
    assert len(neg) > 2000 and neg_ids <= set(train)
    for image_id in train:
        has_person = any(o.name == "person" for o in person_voc.annotation(image_id).objects)
        assert has_person != (image_id in neg_ids)
    assert not any(i.startswith("pets_") for i in neg_ids)
    assert any(i.startswith("photo_") for i in neg_ids)


def test_person_voc_test_ground_truth(person_voc):
    gt = person_voc.ground_truth("person", "test")
    assert len(gt) == 80
    assert gt.n_positives == 446                      # README: 446 scored persons
    assert gt.difficult.any()                         # boxes not to be scored are difficult
    # every ground-truth box, as a detection, gives AP 1; difficult ones are ignored
    ids = [gt.image_ids[k] for k in np.repeat(np.arange(len(gt)), np.diff(gt.offsets))]
    res = voc.evaluate((ids, np.linspace(1, 0, len(ids)), gt.boxes), person_voc, "person", "test")
    assert res.ap == pytest.approx(1.0, abs=1e-15) and res.ap_area == 1.0
    assert res.n_ignored == int(gt.difficult.sum())
    assert Path(person_voc.image_path(gt.image_ids[0])).exists()


def test_voc_does_not_import_dpm_or_matplotlib():
    import subprocess
    import sys

    from conftest import REPO
    code = ("import sys, voc; bad = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('dpm', 'matplotlib')); print(bad); sys.exit(1 if bad else 0)")
    p = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
