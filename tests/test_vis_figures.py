"""Figures of models and features, and detection drawing (dpm.vis)."""
import math

import numpy as np
import pytest

from dpm.model import Part, load_model
from dpm.vis import (box_patch_geometry, draw_detections, features_picture, fold_hog, model_pictures,
                     save_detections_image, save_figure, show_features, show_model)
from vis_reference import principal_angle, tiny_model

# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------

def _axes_grid(fig):
    """(row, col) -> image array of each axes, from the axes' subplot positions."""
    out = {}
    for ax in fig.axes:
        ss = ax.get_subplotspec()
        images = ax.get_images()
        assert len(images) == 1
        out[(ss.rowspan.start, ss.colspan.start)] = (ax, np.asarray(images[0].get_array()))
    return out


def test_person_figure_has_two_rows_of_three_panels(models_dir, tmp_path):
    m = load_model(models_dir / "VOC2007" / "person_final.mat")
    fig = show_model(m)
    grid = _axes_grid(fig)
    assert sorted(grid) == [(r, c) for r in range(2) for c in range(3)]
    for r in range(2):
        pics = model_pictures(m, r)
        for c, name in enumerate(["root", "parts", "deformation"]):
            ax, arr = grid[(r, c)]
            assert ax.get_title() == name
            np.testing.assert_array_equal(arr, pics[name])
    # rows are stacked top to bottom, columns left to right
    pos = {k: v[0].get_position() for k, v in grid.items()}
    assert pos[(0, 0)].y0 > pos[(1, 0)].y1 and pos[(0, 0)].x1 < pos[(0, 1)].x0 < pos[(0, 2)].x0
    out = save_figure(fig, tmp_path / "person.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_figure_subset_negative_and_root_only(models_dir, rng):
    m = load_model(models_dir / "VOC2007" / "person_final.mat")
    fig = show_model(m, components=[1], negative=True)
    grid = _axes_grid(fig)
    assert sorted(grid) == [(0, 0), (0, 1), (0, 2)]
    np.testing.assert_array_equal(grid[(0, 0)][1], model_pictures(m, 1, negative=True)["root"])
    assert "negative" in fig._suptitle.get_text()
    with pytest.raises(ValueError, match="out of range"):
        show_model(m, components=[2])
    fig = show_model(tiny_model(rng.standard_normal((3, 3, 31))))
    assert len(fig.axes) == 1


def test_box_geometry_uses_pixel_centres():
    # 1-based pixels x1..x2 are imshow columns x1-1..x2-1, whose outer edges are x1-1.5 and x2-0.5
    assert box_patch_geometry([11, 6, 30, 20]) == (9.5, 4.5, 20.0, 15.0)
    assert box_patch_geometry([1, 1, 1, 1]) == (-0.5, -0.5, 1.0, 1.0)


class _Dets:
    def __init__(self, boxes, scores, part_boxes):
        self.boxes, self.scores, self.part_boxes = np.asarray(boxes, float), np.asarray(scores, float), \
            np.asarray(part_boxes, float)


def test_draw_detections_patches():
    from matplotlib.patches import Rectangle

    image = np.zeros((60, 80, 3), np.uint8)
    dets = _Dets([[11, 21, 40, 50], [50, 30, 70, 55]], [0.5, -0.3],
                 [[[12, 22, 20, 30], [25, 35, 35, 45]], [[51, 31, 60, 40], [61, 41, 69, 54]]])
    ax = draw_detections(image, dets, parts=True)
    rects = [p for p in ax.patches if isinstance(p, Rectangle)]
    roots = [r for r in rects if r.get_linewidth() == 2.0]
    parts = [r for r in rects if r.get_linewidth() == 1.0]
    assert len(roots) == 2 and len(parts) == 4
    # lowest score first, so the best one is drawn on top
    assert (roots[0].get_x(), roots[0].get_y()) == (48.5, 28.5)
    assert (roots[1].get_x(), roots[1].get_y(), roots[1].get_width(), roots[1].get_height()) == (9.5, 19.5, 30, 30)
    assert {p.get_x() for p in parts} == {10.5, 23.5, 49.5, 59.5}
    assert sorted(t.get_text() for t in ax.texts) == ["-0.30", "0.50"]
    assert len(draw_detections(image, dets, parts=False).patches) == 2
    assert ax.get_xlim() == (-0.5, 79.5) and ax.get_ylim() == (59.5, -0.5)


def test_saved_detection_image_has_boxes_on_their_pixels(tmp_path):
    from PIL import Image

    image = np.zeros((60, 90, 3), np.uint8)
    image[:, :, 1] = 40
    x1, y1, x2, y2 = 21, 16, 60, 45                    # 1-based inclusive
    dets = _Dets([[x1, y1, x2, y2]], [1.25], [[[30, 20, 40, 30]]])
    out = save_detections_image(tmp_path / "d.png", image, dets, parts=True)
    got = np.asarray(Image.open(out).convert("RGB")).astype(int)
    assert got.shape == image.shape
    red = (got[:, :, 0] > 150) & (got[:, :, 2] < 100)
    blue = (got[:, :, 2] > 150) & (got[:, :, 0] < 100)
    rows = slice(y1 + 5, y2 - 5)
    # the root outline straddles the boundary between pixel x1-1 and x1 (1-based),
    # i.e. 0-based columns x1-2 and x1-1
    cols = np.nonzero(red[rows].any(axis=0))[0]
    left = cols[cols < (x1 + x2) / 2]
    right = cols[cols > (x1 + x2) / 2]
    assert abs(left.mean() - (x1 - 1.5)) <= 1.0 and abs(right.mean() - (x2 - 0.5)) <= 1.0
    assert left.max() - left.min() <= 3 and right.max() - right.min() <= 3
    # inside the box, away from edges and the part, the image is untouched
    np.testing.assert_array_equal(got[y1 + 20:y2 - 5, x1 + 25:x2 - 5], image[y1 + 20:y2 - 5, x1 + 25:x2 - 5])
    assert blue[20:30, 28:31].any() and not blue[:, 65:].any()
    # score label sits above the box
    assert (got[:y1 - 2, x1 - 1:x1 + 15, 0] > 150).any()


def test_draw_accepts_plain_box_arrays(tmp_path):
    image = np.full((30, 40), 128, np.uint8)
    ax = draw_detections(image, np.array([[5, 5, 20, 20, 0.9]]))
    assert len(ax.patches) == 1 and ax.texts[0].get_text() == "0.90"
    ax = draw_detections(image, np.zeros((0, 4)))
    assert len(ax.patches) == 0
    with pytest.raises(ValueError, match="box array"):
        draw_detections(image, np.zeros((3, 7)))


def test_save_figure_rejects_bad_paths(tmp_path):
    from matplotlib.figure import Figure

    fig = Figure()
    with pytest.raises(ValueError, match="does not exist"):
        save_figure(fig, tmp_path / "missing" / "x.png")
    with pytest.raises(ValueError, match="directory"):
        save_figure(fig, tmp_path)
    with pytest.raises(ValueError, match="suffix"):
        save_figure(fig, tmp_path / "x.notaformat")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------
# Features of images (needs the HOG kernel)
# --------------------------------------------------------------------------------------------

def _hog():
    try:
        from dpm.features import hog
        hog(np.zeros((32, 32, 3)), 8)
    except (ImportError, AttributeError) as exc:
        pytest.skip(f"dpm.features.hog is not available ({exc})")
    return hog


@pytest.mark.parametrize("k", range(9))
def test_image_edge_shows_as_a_glyph_along_the_edge(k):
    hog = _hog()
    # a soft straight edge whose gradient points along bin k's direction (y down);
    # soft, so that pixel gradients are not staircased onto the axes
    t = math.radians(20 * k)
    y, x = np.mgrid[0:96, 0:96].astype(float)
    d = (x - 47.5) * math.cos(t) + (y - 47.5) * math.sin(t)
    image = np.repeat((20.0 + 200.0 / (1.0 + np.exp(-d / 2.0)))[:, :, None], 3, axis=2)
    feats = hog(image, 8)
    folded = fold_hog(feats)
    # cells the edge crosses through the middle
    c = feats.shape[0] // 2 - 1
    cell = folded[c:c + 2, c:c + 2].sum(axis=(0, 1))
    assert np.argmax(cell) == k
    pic = features_picture(feats[c:c + 2, c:c + 2], 40)
    assert pic.max() == 1.0 and pic.min() == 0.0
    angle = principal_angle(pic > 0.5)
    assert abs((angle - 20 * k + 90) % 180 - 90) < 5


def test_show_features_figure():
    _hog()
    image = np.zeros((80, 120, 3), np.uint8)
    image[:, 60:] = 255
    fig = show_features(image, 8)
    assert len(fig.axes) == 2
    im_ax, hog_ax = fig.axes
    np.testing.assert_array_equal(np.asarray(im_ax.get_images()[0].get_array()), image)
    arr = np.asarray(hog_ax.get_images()[0].get_array())
    assert arr.shape == (8 * 16, 13 * 16)              # (80/8 - 2) x (120/8 - 2) cells at bs = 16
    # the HOG picture is drawn over the pixels its cells summarise
    assert hog_ax.get_images()[0].get_extent() == [7.5, 14 * 8 - 0.5, 9 * 8 - 0.5, 7.5]


def test_several_classes_are_drawn_in_their_own_colours_with_labels():
    from matplotlib.colors import to_rgba

    from dpm.detection import Detections
    from dpm.vis.figures import CLASS_COLOURS, draw_detections

    def one(cls, x):
        b = np.array([[x, 5.0, x + 10, 20.0]])
        return Detections(b, np.array([0.5]), np.zeros(1, int), b.copy(), np.zeros((1, 0, 4)),
                          np.zeros(1, int), (40, 60), cls)

    ax = draw_detections(np.zeros((40, 60, 3)), {"car": one("car", 5), "cat": one("cat", 30)})
    assert sorted(t.get_text() for t in ax.texts) == ["car 0.50", "cat 0.50"]
    edges = [p.get_edgecolor() for p in ax.patches]
    assert edges == [to_rgba(CLASS_COLOURS[0]), to_rgba(CLASS_COLOURS[1])]


def test_release5_star_component_is_drawn_like_its_release31_equivalent(rng):
    # A release-5 component (filters behind deformation rules, 0-based anchors (ax, ay, ds), 32
    # channels) gives the panels of the release-3.1 component with the same filters and 1-based anchors.
    from dpm.model.release5 import StarComponent, StarFilter

    bs, pad = 10, 2
    root = np.abs(rng.standard_normal((4, 3, 32)))
    p31 = [Part(filter=np.abs(rng.standard_normal((2, 3, 31))) * 0.3, anchor=(1, 3),
                deformation=np.array([0.1, 0.0, 0.05, 0.0])),
           Part(filter=np.abs(rng.standard_normal((3, 2, 31))) * 0.3, anchor=(5, 6),
                deformation=np.array([0.02, 0.01, 0.08, -0.02]))]
    filters = [StarFilter(filter=root, filter_index=1, anchor=(0, 0, 0), deformation=np.zeros(4))]
    filters += [StarFilter(filter=np.concatenate([p.filter, np.ones(p.filter.shape[:2] + (1,))], axis=2),
                           filter_index=k + 2, anchor=(p.anchor[0] - 1, p.anchor[1] - 1, 1),
                           deformation=p.deformation) for k, p in enumerate(p31)]
    star = StarComponent(filters=filters, offset=0.0, loc=np.zeros(3), detwindow=(4, 3), shiftwindow=(0, 0))

    class Star:
        components = [star]

    got = model_pictures(Star(), 0, bs=bs, pad=pad)
    want = model_pictures(tiny_model(root[:, :, :31], p31), 0, bs=bs, pad=pad)
    assert set(got) == set(want) == {"root", "parts", "deformation"}
    for name in want:
        np.testing.assert_array_equal(got[name], want[name])
