"""COCO datasets: reading and checking instances files, splits, training data, VOC <-> COCO conversion."""
import json
import logging

import numpy as np
import pytest

import coco
import voc
from conftest import shared_path, write_good_image


def doc(**over):
    d = {"images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 80},
                    {"id": 2, "file_name": "b.jpg", "width": 100, "height": 80},
                    {"id": 3, "file_name": "c.jpg"}],
         "categories": [{"id": 1, "name": "person"}, {"id": 5, "name": "dog"}],
         "annotations": [
             {"id": 1, "image_id": 1, "category_id": 1, "bbox": [9, 19, 30, 40], "area": 1200, "iscrowd": 0},
             {"id": 2, "image_id": 1, "category_id": 1, "bbox": [50, 10, 20.5, 30], "iscrowd": 1},
             {"id": 3, "image_id": 2, "category_id": 1, "bbox": [0, 0, 10, 10], "ignore": 1},
             {"id": 4, "image_id": 2, "category_id": 5, "bbox": [20, 20, 10, 10]},
             {"id": 5, "image_id": 1, "category_id": 1, "bbox": [60, 40, 10, 20]},
         ]}
    d.update(over)
    return d


def write(path, d):
    path.write_text(json.dumps(d) if not isinstance(d, str) else d)
    return path


@pytest.fixture
def dataset(tmp_path, rng):
    images = tmp_path / "images"
    images.mkdir()
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        write_good_image(images / name, rng, size=(80, 100))
    return write(tmp_path / "instances.json", doc()), images


def test_reading_and_the_box_convention(dataset):
    inst = coco.read_instances(dataset[0])
    assert [im.id for im in inst.images] == [1, 2, 3] and inst.image(3).size is None
    a = inst.annotations
    assert a[0].box == (10, 20, 39, 59) and isinstance(a[0].box[0], int)      # (x+1, y+1, x+w, y+h)
    assert a[1].box == (51, 11, 70.5, 40) and a[1].difficult and a[1].area == 20.5 * 30
    assert a[2].difficult and not a[2].iscrowd
    assert coco.to_xywh(a[0].box) == (9, 19, 30, 40)
    for box in [(1, 1, 1, 1), (17, 17, 80, 144), (3, 5, 2000, 9)]:
        assert coco.to_corners(coco.to_xywh(box)) == box
    assert [x.id for x in inst.annotations_of(1)] == [1, 2, 5]


def test_training_data_order_and_flags(dataset):
    path, images = dataset
    data = coco.training_data(path, images, "person")
    assert [(p.path.name, p.box, p.image_size) for p in data.positives] == [
        ("a.jpg", (10, 20, 39, 59), (100, 80)), ("a.jpg", (61, 41, 70, 60), (100, 80))]  # crowd, ignored out
    assert [n.path.name for n in data.negatives] == ["c.jpg"]    # b has an ignored person: not a negative
    dogs = coco.training_data(path, images, "dog", negative_ids=[3, 1])
    assert [n.path.name for n in dogs.negatives] == ["c.jpg", "a.jpg"]        # the split's order


def test_splits_by_id_list_and_by_json(dataset, tmp_path):
    path, images = dataset
    inst = coco.read_instances(path)
    ids = write(tmp_path / "ids.txt", "3  # comment\n1\n")
    assert coco.read_split(ids, inst) == [3, 1]
    sub = write(tmp_path / "sub.json", doc(images=[{"id": 2, "file_name": "b.jpg"}], annotations=[]))
    assert coco.read_split(sub, inst) == [2]
    with pytest.raises(ValueError, match=r"ids.txt: 1 of 2 image id\(s\) are not images of .*first: 9"):
        coco.read_split(write(tmp_path / "ids.txt", "1 9\n"), inst)
    with pytest.raises(ValueError, match=r"ids.txt:2: 'x' is not an integer image id"):
        coco.read_split(write(tmp_path / "ids.txt", "1\nx\n"), inst)
    with pytest.raises(ValueError, match="image id 1 is given more than once"):
        coco.read_split([1, 1], inst)
    bad = write(tmp_path / "bad.json", doc(images=[{"id": 2, "file_name": "other.jpg"}], annotations=[]))
    with pytest.raises(ValueError, match="do not describe the same images"):
        coco.read_split(bad, inst)


# -- bad input: one line each -----------------------------------------------------------------------

@pytest.mark.parametrize("text, message", [
    ('{"images": [1, 2,\n  ]}', r"malformed JSON at line 2, column 3"),
    ('[1, 2]', "not a COCO instances file"),
    ('{"images": [], "annotations": []}', r"'categories' is missing"),
    (json.dumps(doc(images=[{"id": 1, "file_name": "a.jpg"}, {"id": 1, "file_name": "b.jpg"}],
                    annotations=[])), r"images\[1\]: duplicate id 1 \(also images\[0\]\)"),
    (json.dumps(doc(categories=[{"id": 1, "name": "person"}, {"id": 1, "name": "dog"}])),
     r"categories\[1\]: duplicate id 1"),
    (json.dumps(doc(categories=[{"id": 1, "name": "person"}, {"id": 2, "name": "person"}])),
     r"categories\[1\]: duplicate name 'person'"),
    (json.dumps(doc(annotations=[{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1]}] * 2)),
     r"annotations\[1\]: duplicate id 1"),
    (json.dumps(doc(annotations=[{"id": 1, "image_id": 7, "category_id": 1, "bbox": [0, 0, 1, 1]},
                                 {"id": 2, "image_id": 8, "category_id": 1, "bbox": [0, 0, 1, 1]}])),
     r"2 annotation\(s\) refer to image ids that are not in 'images' \(first: annotations\[0\].image_id 7\)"),
    (json.dumps(doc(annotations=[{"id": 1, "image_id": 1, "category_id": 3, "bbox": [0, 0, 1, 1]}])),
     r"1 annotation\(s\) refer to category ids that are not in 'categories' .*categories: 1='person', 5='dog'"),
    (json.dumps(doc(annotations=[{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1]}])),
     r"annotations\[0\].bbox: expected \[x, y, w, h\]"),
    (json.dumps(doc(annotations=[{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, "1", 1]}])),
     r"annotations\[0\].bbox: expected a finite number"),
    (json.dumps(doc(annotations=[{"id": "a", "image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1]}])),
     r"annotations\[0\].id: expected an integer id"),
    (json.dumps(doc(annotations=[{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1],
                                  "iscrowd": 2}])), r"annotations\[0\].iscrowd: expected 0 or 1"),
    (json.dumps(doc(images=[{"id": 1, "file_name": "a.jpg", "width": -3}], annotations=[])),
     r"images\[0\].width: expected a positive whole number"),
    (json.dumps(doc(images=[{"id": 1}], annotations=[])), r"images\[0\]: has no 'file_name'"),
])
def test_bad_instances_files_one_line_error(tmp_path, text, message):
    path = write(tmp_path / "instances.json", text)
    with pytest.raises(ValueError, match=message) as e:
        coco.read_instances(path)
    assert str(e.value).startswith(str(path)) and "\n" not in str(e.value)


def test_not_utf8_too_big_missing(tmp_path, monkeypatch):
    path = tmp_path / "x.json"
    path.write_bytes(b'{"images": "\xff"}')
    with pytest.raises(ValueError, match="not UTF-8 text at byte 12"):
        coco.read_instances(path)
    write(path, doc())
    with pytest.raises(ValueError, match="over the limit of 10 bytes.*DPM_MAX_ANNOTATION_BYTES"):
        coco.read_instances(path, max_bytes=10)
    monkeypatch.setenv("DPM_MAX_ANNOTATION_BYTES", "100")
    with pytest.raises(ValueError, match="over the limit of 100 bytes"):
        coco.read_instances(path)
    with pytest.raises(ValueError, match="instances file not found"):
        coco.read_instances(tmp_path / "none.json")


def test_zero_and_negative_widths_are_skipped_with_one_warning(tmp_path, caplog):
    anns = [{"id": k, "image_id": 1, "category_id": 1, "bbox": b}
            for k, b in enumerate([[0, 0, 0, 5], [0, 0, 5, -1], [1, 1, 4, 4], [0, 0, -2, 3]], start=1)]
    path = write(tmp_path / "i.json", doc(annotations=anns))
    with caplog.at_level(logging.WARNING, logger="coco"):
        inst = coco.read_instances(path)
    assert [a.id for a in inst.annotations] == [3]
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert "3 annotation(s) with zero or negative width or height skipped (first: annotations[0])" in warnings[0]


def test_missing_category_lists_those_present(dataset):
    with pytest.raises(ValueError, match=r"no category named 'cat' \(categories: 'person', 'dog'\)"):
        coco.training_data(*dataset, "cat")


def test_images_without_files_are_skipped_with_a_count(dataset, caplog):
    path, images = dataset
    (images / "c.jpg").unlink()
    with caplog.at_level(logging.WARNING, logger="coco"):
        data = coco.training_data(path, images, "dog")
    assert [n.path.name for n in data.negatives] == ["a.jpg"]
    assert "1 of 2 negative image(s) are not in" in caplog.text and "first: c.jpg" in caplog.text
    (images / "a.jpg").unlink()
    with pytest.raises(ValueError, match="no negative images for category 'dog'"):
        coco.training_data(path, images, "dog")
    with pytest.raises(ValueError, match="no positives of category 'person'"):
        coco.training_data(path, images, "person")


# -- conversion --------------------------------------------------------------------------------------

def _voc(root, rng):
    from test_training_pipeline import make_voc

    make_voc(root, n_pos=4, n_neg=3, extra_positive_boxes=[(5, 5, 30, 60)])
    # a difficult object and a second class, and a test split
    xml = root / "Annotations" / "pos01.xml"
    xml.write_text(xml.read_text().replace(
        "</annotation>", "<object><name>person</name><difficult>1</difficult><bndbox><xmin>2</xmin><ymin>3</ymin>"
        "<xmax>20</xmax><ymax>40</ymax></bndbox></object><object><name>dog</name><bndbox><xmin>60</xmin>"
        "<ymin>50</ymin><xmax>90</xmax><ymax>70</ymax></bndbox></object></annotation>"))
    (root / "ImageSets" / "Main" / "test.txt").write_text("pos02\nneg01\n")
    return root


def test_voc_to_coco_to_voc_round_trip(tmp_path, rng):
    src = _voc(tmp_path / "VOC", rng)
    written = coco.voc_to_coco(src, tmp_path / "coco")
    assert sorted(p.name for p in written) == ["test.json", "train.json", "trainval.json"]
    trainval = coco.read_instances(tmp_path / "coco" / "trainval.json")
    test = coco.read_instances(tmp_path / "coco" / "test.json")
    # ids shared between the split files
    assert {im.file_name: im.id for im in test.images}.items() <= \
        {im.file_name: im.id for im in trainval.images}.items()
    assert [c.name for c in trainval.categories] == ["dog", "person"]
    ds = voc.VOCDataset(src)
    for split, inst in (("trainval", trainval), ("test", test)):
        back = coco.coco_to_voc(inst, src / "JPEGImages", tmp_path / f"back-{split}", split=split)
        ds2 = voc.VOCDataset(back)
        assert ds2.image_ids(split) == ds.image_ids(split)
        for i in ds.image_ids(split):
            a, b = ds.annotation(i), ds2.annotation(i)
            assert [(o.name, o.bbox, o.difficult) for o in a.objects] == \
                [(o.name, o.bbox, o.difficult) for o in b.objects]
            assert a.size == b.size
            assert ds2.image_path(i).resolve() == ds.image_path(i).resolve()
    # the same training data (the fingerprint decides the model) from the COCO files
    a = voc.training_data(src, "person")
    b = coco.training_data(tmp_path / "coco" / "trainval.json", src / "JPEGImages", "person",
                           negative_ids=tmp_path / "coco" / "train.json")
    assert a.fingerprint() == b.fingerprint()
    assert [(p.path.name, p.box) for p in a.positives] == [(p.path.name, p.box) for p in b.positives]


def test_coco_to_voc_refuses_two_images_with_one_stem(tmp_path):
    d = doc(images=[{"id": 1, "file_name": "x/a.jpg"}, {"id": 2, "file_name": "y/a.png"}], annotations=[])
    with pytest.raises(ValueError, match="have the same name 'a'"):
        coco.coco_to_voc(coco.instances_from_dict(d), tmp_path, tmp_path / "out", images="none")


def test_person_voc_converted_gives_the_same_training_data(tmp_path):
    """The must-show: person-voc and its COCO conversion give the same fingerprint (and so the
    same model, which the fingerprint and the order decide)."""
    root = shared_path("data", "person-voc")
    coco.voc_to_coco(root, tmp_path, splits=["trainval", "train"])
    a = voc.training_data(root, "person")
    b = coco.training_data(tmp_path / "trainval.json", root / "JPEGImages", "person",
                           negative_ids=tmp_path / "train.json")
    assert len(a.positives) == len(b.positives) > 1000 and len(a.negatives) == len(b.negatives) > 1000
    assert a.fingerprint() == b.fingerprint()


def test_ground_truth_for_voc_ap(dataset):
    inst = coco.read_instances(dataset[0])
    gt = coco.ground_truth(inst, "person")
    assert gt.image_ids == ("1", "2", "3")
    np.testing.assert_array_equal(gt.boxes, [[10, 20, 39, 59], [51, 11, 70.5, 40], [61, 41, 70, 60], [1, 1, 10, 10]])
    assert gt.difficult.tolist() == [False, True, False, True] and gt.n_positives == 2


def test_image_ids_of_files(dataset, tmp_path):
    path, images = dataset
    assert coco.image_ids_of_files(path, [images / "c.jpg", tmp_path / "a.jpg"]) == [3, 1]
    with pytest.raises(ValueError, match=r"1 of 2 image\(s\) are not listed there by file name \(first: .*z.jpg"):
        coco.image_ids_of_files(path, [images / "c.jpg", tmp_path / "z.jpg"])
