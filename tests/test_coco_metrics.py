"""COCO metrics (coco.evaluate_coco) against the COCO API's own COCOeval (pycocotools), to 1e-6."""
import contextlib
import copy
import io

import numpy as np
import pytest

import coco
from conftest import shared_path

pycocotools = pytest.importorskip("pycocotools", reason="pycocotools (the test extra) is needed to compare with")
from pycocotools.coco import COCO  # noqa: E402
from pycocotools.cocoeval import COCOeval  # noqa: E402


def cocoapi(gt, dets, *, honour_ignore=False):
    """The COCO API's 12 stats, precision and recall.  ``honour_ignore``: keep the annotations'
    ``ignore`` flag, which COCOeval._prepare otherwise overwrites with ``iscrowd``."""
    flags = {a["id"]: bool(a.get("ignore", 0)) for a in gt["annotations"]}

    class Eval(COCOeval):
        def _prepare(self):
            super()._prepare()
            if honour_ignore:
                for anns in self._gts.values():
                    for a in anns:
                        a["ignore"] = a["ignore"] or flags[a["id"]]

    with contextlib.redirect_stdout(io.StringIO()):
        g = COCO()
        g.dataset = copy.deepcopy(gt)
        g.createIndex()
        d = g.loadRes(copy.deepcopy(dets)) if dets else COCO()
        e = Eval(g, d, "bbox")
        e.evaluate()
        e.accumulate()
        e.summarize()
    return e


def compare(gt, dets, *, honour_ignore=False):
    e = cocoapi(gt, dets, honour_ignore=honour_ignore)
    m = coco.evaluate_coco(coco.instances_from_dict(gt), dets, use_ignore_flag=honour_ignore)
    ours = np.array([-1.0 if np.isnan(v) else v for v in m.stats.values()])
    np.testing.assert_allclose(ours, e.stats, rtol=0, atol=1e-6)
    np.testing.assert_allclose(m.precision, e.eval["precision"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(m.recall, e.eval["recall"], rtol=0, atol=1e-6)
    return m, e


def random_fixture(seed, n_img=40, n_cat=3, crowd=0.1, ignore=0.0, many=0.0):
    """Random boxes and detections near them: crowd boxes, images without boxes, images without
    detections, tied scores (rounded to 0.01), sometimes more than 100 detections per image."""
    rng = np.random.default_rng(seed)
    images = [{"id": 7 * k + 3, "file_name": f"{k}.jpg", "width": 640, "height": 480} for k in range(n_img)]
    rng.shuffle(images)                                  # ids out of order in the file
    cats = [{"id": 2 * c + 1, "name": f"class{c}"} for c in range(n_cat)]
    anns, dets = [], []
    for im in images:
        n_gt = 0 if rng.random() < 0.2 else int(rng.integers(1, 9))
        own = []
        for _ in range(n_gt):
            w, h = rng.uniform(3, 220, 2)
            x, y = rng.uniform(0, 400, 2)
            if rng.random() < 0.3:
                x, y, w, h = (float(int(v)) for v in (x, y, w, h))
            a = {"id": len(anns) + 1, "image_id": im["id"], "category_id": cats[rng.integers(n_cat)]["id"],
                 "bbox": [x, y, w, h], "area": float(w * h * rng.uniform(0.4, 1.0)),
                 "iscrowd": int(rng.random() < crowd)}
            if rng.random() < ignore:
                a["ignore"] = 1
            anns.append(a)
            own.append(a)
        n_dt = 0 if rng.random() < 0.15 else int(rng.integers(1, 16))
        if rng.random() < many:
            n_dt = int(rng.integers(101, 180))
        crowded = n_dt > 100                             # all of one category: over maxDets[-1]
        for _ in range(n_dt):
            if own and rng.random() < 0.6:
                g = own[rng.integers(len(own))]
                x, y, w, h = g["bbox"]
                j = rng.normal(0, 0.12, 4) * np.array([w, h, w, h])
                box = [x + j[0], y + j[1], max(1.0, w + j[2]), max(1.0, h + j[3])]
                cat = g["category_id"] if rng.random() < 0.9 else cats[rng.integers(n_cat)]["id"]
            else:
                w, h = rng.uniform(3, 220, 2)
                x, y = rng.uniform(0, 400, 2)
                box, cat = [x, y, w, h], cats[rng.integers(n_cat)]["id"]
            cat = cats[0]["id"] if crowded else cat
            dets.append({"image_id": im["id"], "category_id": int(cat), "bbox": [float(v) for v in box],
                         "score": float(np.round(rng.random(), 2))})
    return {"images": images, "categories": cats, "annotations": anns}, dets


@pytest.mark.parametrize("seed, kw", [
    (0, {}),                                             # crowd boxes, empty images, 3 categories
    (1, {"many": 0.4}),                                  # > 100 detections on many images
    (2, {"crowd": 0.4, "n_cat": 5}),                     # many crowd boxes, 5 categories
    (3, {"n_img": 120, "many": 0.1, "crowd": 0.2}),
])
def test_equal_to_the_coco_api_on_random_fixtures(seed, kw):
    gt, dets = random_fixture(seed, **kw)
    per_image = {}
    for d in dets:
        per_image[(d["image_id"], d["category_id"])] = per_image.get((d["image_id"], d["category_id"]), 0) + 1
    ids_with_gt = {a["image_id"] for a in gt["annotations"]}
    ids_with_dt = {d["image_id"] for d in dets}
    all_ids = {im["id"] for im in gt["images"]}
    assert any(a["iscrowd"] for a in gt["annotations"])
    assert all_ids - ids_with_gt and all_ids - ids_with_dt          # images without boxes / detections
    if kw.get("many"):
        assert max(per_image.values()) > 100
    m, e = compare(gt, dets)
    assert 0 < m.stats["AP"] < 1 and m.stats["AP50"] > m.stats["AP75"]


def test_equal_to_the_coco_api_with_the_ignore_flag_honoured():
    """With ``ignore`` on some boxes: our default equals the COCO API made to keep the flag;
    use_ignore_flag=False equals the COCO API as it is (which disregards it)."""
    gt, dets = random_fixture(4, ignore=0.25, many=0.1)
    m_honour, _ = compare(gt, dets, honour_ignore=True)
    m_api, _ = compare(gt, dets, honour_ignore=False)
    assert m_honour.stats["AP"] != m_api.stats["AP"]


def test_hand_made_edge_cases():
    """One crowd box matched by two detections, an ignored box, a detection matching nothing, an
    image with boxes and no detections, an image with detections and no boxes, a category with
    no boxes at all (left out of the means), boxes in each size range."""
    gt = {"images": [{"id": i, "file_name": f"{i}.jpg"} for i in (1, 2, 3, 4)],
          "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "dog"}, {"id": 3, "name": "cat"}],
          "annotations": [
              {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20], "area": 400, "iscrowd": 0},
              {"id": 2, "image_id": 1, "category_id": 1, "bbox": [100, 100, 200, 200], "area": 40000,
               "iscrowd": 1},
              {"id": 3, "image_id": 1, "category_id": 1, "bbox": [300, 10, 50, 50], "area": 2500, "iscrowd": 0},
              {"id": 4, "image_id": 2, "category_id": 1, "bbox": [5, 5, 60, 120], "area": 7200, "iscrowd": 0},
              {"id": 5, "image_id": 2, "category_id": 2, "bbox": [50, 50, 150, 100], "area": 15000,
               "iscrowd": 0},
          ]}
    dets = [
        {"image_id": 1, "category_id": 1, "bbox": [10, 11, 20, 20], "score": 0.9},
        {"image_id": 1, "category_id": 1, "bbox": [110, 110, 50, 50], "score": 0.8},    # inside the crowd
        {"image_id": 1, "category_id": 1, "bbox": [150, 150, 60, 60], "score": 0.7},    # inside the crowd
        {"image_id": 1, "category_id": 1, "bbox": [302, 12, 48, 46], "score": 0.6},
        {"image_id": 3, "category_id": 1, "bbox": [0, 0, 40, 40], "score": 0.95},       # no boxes there
        {"image_id": 3, "category_id": 2, "bbox": [0, 0, 40, 40], "score": 0.5},
        {"image_id": 2, "category_id": 2, "bbox": [52, 48, 150, 104], "score": 0.4},
    ]
    m, e = compare(gt, dets)
    assert not any(np.isnan(v) for v in m.stats.values())              # boxes of every size
    assert (m.precision[:, :, 2] == -1).all()                           # 'cat': no boxes: undefined
    assert m.per_category_ap()["cat"] != m.per_category_ap()["cat"]     # NaN


def test_no_detections_at_all():
    gt, _ = random_fixture(5, n_img=10)
    m, e = compare(gt, [])
    assert m.stats["AP"] == 0 and m.stats["AR100"] == 0


def test_equal_to_the_coco_api_on_the_shared_ap_fixture():
    """The rafaelpadilla fixture (x y w h boxes, 7 images, 15 persons, 24 detections)."""
    root = shared_path("fixtures", "ap-rafaelpadilla")
    images, anns, dets = [], [], []
    for k, f in enumerate(sorted((root / "groundtruths").glob("*.txt")), start=1):
        images.append({"id": k, "file_name": f.stem + ".jpg"})
        for line in f.read_text().split("\n"):
            if line.split():
                x, y, w, h = (float(v) for v in line.split()[1:])
                anns.append({"id": len(anns) + 1, "image_id": k, "category_id": 1, "bbox": [x, y, w, h],
                             "area": w * h, "iscrowd": 0})
        for line in (root / "detections" / f.name).read_text().split("\n"):
            if line.split():
                s, x, y, w, h = (float(v) for v in line.split()[1:])
                dets.append({"image_id": k, "category_id": 1, "bbox": [x, y, w, h], "score": s})
    gt = {"images": images, "categories": [{"id": 1, "name": "person"}], "annotations": anns}
    assert len(anns) == 15 and len(dets) == 24
    m, e = compare(gt, dets)
    assert m.stats["AP50"] == pytest.approx(e.stats[1], abs=1e-12)


def test_voc_difficult_reads_as_ignore_and_scores_like_the_coco_api_honouring_it(tmp_path):
    """A VOC folder seen through coco.from_voc: difficult -> ignore; scored like the COCO API
    that keeps the flag, on the converted file."""
    import voc

    root = tmp_path / "VOC"
    (root / "Annotations").mkdir(parents=True)
    (root / "ImageSets" / "Main").mkdir(parents=True)

    def obj(box, difficult=0):
        return (f"<object><name>person</name><difficult>{difficult}</difficult><bndbox><xmin>{box[0]}</xmin>"
                f"<ymin>{box[1]}</ymin><xmax>{box[2]}</xmax><ymax>{box[3]}</ymax></bndbox></object>")
    anns = {"a": [obj((10, 10, 50, 90)), obj((100, 10, 140, 90))],
            "b": [obj((20, 20, 60, 100)), obj((200, 20, 240, 100), 1)], "c": []}
    for i, objs in anns.items():
        (root / "Annotations" / f"{i}.xml").write_text(f"<annotation>{''.join(objs)}</annotation>")
    (root / "ImageSets" / "Main" / "test.txt").write_text("a\nb\nc\n")
    inst = coco.from_voc(root, "test", image_sizes=False)
    assert [a.ignore for a in inst.annotations] == [False, False, False, True]
    ids = {im.file_name[:-4]: im.id for im in inst.images}
    corners = [("a", 0.9, (10, 10, 50, 90)), ("b", 0.8, (200, 20, 240, 100)), ("a", 0.7, (11, 10, 50, 90)),
               ("c", 0.6, (1, 1, 30, 30)), ("b", 0.5, (20, 20, 60, 100))]
    dets = [{"image_id": ids[i], "category_id": 1, "bbox": list(coco.to_xywh(b)), "score": s}
            for i, s, b in corners]
    gt = inst.to_dict()
    compare(gt, dets, honour_ignore=True)
    # and VOC AP on the same data, through the evaluation set, is the devkit's
    es = coco.voc_evaluation_set(root, "test")
    ap, m = es.evaluate("person", ([i for i, _, _ in corners], [s for _, s, _ in corners],
                                   [b for _, _, b in corners]))
    assert ap.ap == voc.evaluate(([i for i, _, _ in corners], [s for _, s, _ in corners],
                                  [b for _, _, b in corners]), voc.VOCDataset(root).ground_truth("person", "test")).ap
    assert m.stats["AP"] == pytest.approx(compare(gt, dets, honour_ignore=True)[0].stats["AP"], abs=1e-12)


def test_inclusive_voc_overlap_equals_the_continuous_iou_of_converted_boxes():
    import voc

    rng = np.random.default_rng(3)
    a = rng.integers(1, 100, (200, 2))
    a = np.column_stack([a, a + rng.integers(0, 60, (200, 2))]).astype(float)
    b = a + rng.integers(-20, 20, (200, 4))
    b[:, 2:] = np.maximum(b[:, 2:], b[:, :2])
    inclusive = voc.box_overlaps(a, b)
    xa = np.array([coco.to_xywh(r) for r in a], float)
    xb = np.array([coco.to_xywh(r) for r in b], float)
    cont = np.array([coco.box_iou_xywh(xa[k:k + 1], xb[k:k + 1], np.zeros(1, bool))[0, 0] for k in range(200)])
    np.testing.assert_allclose(np.where(np.isfinite(inclusive), inclusive, 0), cont, rtol=0, atol=1e-12)


def test_bad_results():
    gt, dets = random_fixture(6, n_img=5)
    inst = coco.instances_from_dict(gt)
    with pytest.raises(ValueError, match="image id 99999, which is not in the ground truth"):
        coco.evaluate_coco(inst, [{"image_id": 99999, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1}])
    with pytest.raises(ValueError, match="category id 42, which is not a category"):
        coco.evaluate_coco(inst, [{"image_id": gt["images"][0]["id"], "category_id": 42,
                                   "bbox": [0, 0, 1, 1], "score": 1}])
    with pytest.raises(ValueError, match="bbox must be"):
        coco.evaluate_coco(inst, [{"image_id": gt["images"][0]["id"], "category_id": 1, "bbox": [0, 0, 1],
                                   "score": 1}])
    with pytest.raises(ValueError, match="no category named 'zebra'"):
        coco.evaluate_coco(inst, dets, categories=["zebra"])
