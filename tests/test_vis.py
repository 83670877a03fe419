"""Geometry of the model/feature pictures (spec §1.16) and of detection drawing."""
import math

import numpy as np
import pytest

from conftest import keys_cubic

from dpm.features.flip import flip_features
from dpm.model import Component, Model, Part, load_model
from dpm.vis import (DEF_SCALE, box_patch_geometry, draw_detections, features_picture, fold_hog,
                     hog_glyphs, hog_picture, imresize_bicubic, model_pictures, save_detections_image,
                     save_figure, show_features, show_model)

# --------------------------------------------------------------------------------------------
# Plain references, written from the original MATLAB
# --------------------------------------------------------------------------------------------


def ref_fold_hog(w):
    h, wd, _ = w.shape
    out = np.zeros((h, wd, 9))
    for y in range(h):
        for x in range(wd):
            for k in range(9):
                out[y, x, k] = max(w[y, x, k], 0) + max(w[y, x, k + 9], 0) + max(w[y, x, 18 + k], 0)
    return out


def ref_glyph_imrotate(bs, k):
    """imrotate(bar, -20*k, 'nearest', 'crop') by inverse mapping, pixel by pixel."""
    bar = np.zeros((bs, bs))
    c0 = int(math.floor(bs / 2 + 0.5)) - 1            # MATLAB round(bs/2), to 0-based
    bar[:, c0:c0 + 2] = 1
    out = np.zeros((bs, bs))
    c = (bs - 1) / 2
    t = math.radians(20 * k)                          # clockwise on screen (y down)
    for r in range(bs):
        for q in range(bs):
            dx, dy = q - c, r - c
            # rotate the output point back (counter-clockwise on screen) into the input
            sx = c + dx * math.cos(t) + dy * math.sin(t)
            sy = c - dx * math.sin(t) + dy * math.cos(t)
            ix, iy = int(math.floor(sx + 0.5)), int(math.floor(sy + 0.5))
            if 0 <= ix < bs and 0 <= iy < bs:
                out[r, q] = bar[iy, ix]
    return out


def ref_hog_picture(w9, bs):
    """HOGpicture.m's loop."""
    glyphs = hog_glyphs(bs)
    h, wd, _ = w9.shape
    im = np.zeros((h * bs, wd * bs))
    for i in range(h):
        for j in range(wd):
            for k in range(9):
                im[i * bs:(i + 1) * bs, j * bs:(j + 1) * bs] += glyphs[k] * max(w9[i, j, k], 0)
    return im


def ref_imresize_bicubic(im, scale):
    """imresize.m's contributions() for enlargement, one output sample at a time."""
    cubic = keys_cubic
    def resize_axis(v):
        n = len(v)
        out = []
        for u in range(1, math.ceil(n * scale) + 1):
            x = u / scale + 0.5 * (1 - 1 / scale)
            left = math.floor(x - 2)
            idx = [left + t for t in range(6)]
            wts = [cubic(x - i) for i in idx]
            aux = list(range(1, n + 1)) + list(range(n, 0, -1))
            src = [aux[(i - 1) % len(aux)] for i in idx]
            out.append(sum(wt * v[s - 1] for wt, s in zip(wts, src)) / sum(wts))
        return np.array(out)

    tmp = np.array([resize_axis(row) for row in im])
    return np.array([resize_axis(col) for col in tmp.T]).T


def principal_angle(img):
    """Angle (degrees in [0, 180)) of the principal axis of lit pixels, clockwise from vertical."""
    ys, xs = np.nonzero(img > 0)
    xs = xs - xs.mean()
    ys = ys - ys.mean()
    cov = np.cov(np.vstack([xs, ys]))
    vals, vecs = np.linalg.eigh(cov)
    vx, vy = vecs[:, np.argmax(vals)]
    # direction (sin a, -cos a) is "clockwise by a from up"
    return math.degrees(math.atan2(vx, -vy)) % 180.0


def symmetric(rng, h, w):
    f = rng.standard_normal((h, w, 31))
    return f + flip_features(f)


def tiny_model(root, parts=()):
    return Model(components=[Component(root=root, bias=0.0, parts=list(parts))], blocks=[])


# --------------------------------------------------------------------------------------------
# foldHOG / glyphs / HOGpicture
# --------------------------------------------------------------------------------------------

def test_fold_hog_matches_loop(rng):
    w = rng.standard_normal((5, 4, 31))
    np.testing.assert_array_equal(fold_hog(w), ref_fold_hog(w))
    assert fold_hog(w).shape == (5, 4, 9)


def test_fold_hog_rejects_wrong_shapes():
    with pytest.raises(ValueError, match="31"):
        fold_hog(np.zeros((3, 3, 9)))
    with pytest.raises(ValueError, match="31"):
        fold_hog(np.zeros((3, 31)))


@pytest.mark.parametrize("bs", [20, 16, 10])
def test_glyphs_equal_nearest_neighbour_rotation_of_the_bar(bs):
    g = hog_glyphs(bs)
    assert g.shape == (9, bs, bs)
    for k in range(9):
        np.testing.assert_array_equal(g[k], ref_glyph_imrotate(bs, k), err_msg=f"glyph {k}, bs {bs}")


def test_glyphs_equal_skimage_rotation():
    rotate = pytest.importorskip("skimage.transform").rotate
    bar = np.zeros((20, 20))
    bar[:, 9:11] = 1
    g = hog_glyphs(20)
    for k in range(9):
        # skimage turns counter-clockwise for positive angles, like imrotate
        np.testing.assert_array_equal(g[k], rotate(bar, -20 * k, order=0, preserve_range=True))


@pytest.mark.parametrize("channel_offset", [0, 9, 18])
def test_single_orientation_draws_a_bar_at_that_bins_angle(channel_offset):
    bs = 40
    for k in range(9):
        w = np.zeros((1, 1, 31))
        w[0, 0, channel_offset + k] = 0.7
        pic = hog_picture(w, bs)
        assert pic.shape == (bs, bs)
        assert set(np.unique(pic)) == {0.0, 0.7}
        angle = principal_angle(pic)
        diff = abs((angle - 20 * k + 90) % 180 - 90)
        assert diff < 1.0, f"bin {k}: bar at {angle:.2f} degrees, expected {20 * k}"
        ys, xs = np.nonzero(pic)
        assert abs(xs.mean() - (bs - 1) / 2) < 0.6 and abs(ys.mean() - (bs - 1) / 2) < 0.6
    # bin 0 is a vertical stroke two pixels wide
    w = np.zeros((1, 1, 31))
    w[0, 0, channel_offset] = 1
    pic = hog_picture(w, bs)
    np.testing.assert_array_equal(np.nonzero(pic.any(axis=0))[0], [bs // 2 - 1, bs // 2])
    assert pic[:, bs // 2 - 1].all()


def test_bin_one_leans_like_its_gradient():
    # Bin 1's gradient points 20 degrees below +x (y down); the edge runs from
    # the top right to the bottom left, "/".
    pic = hog_glyphs(20)[1]
    top_cols = np.nonzero(pic[0])[0]
    bottom_cols = np.nonzero(pic[-1])[0]
    assert top_cols.mean() > 9.5 + 2 and bottom_cols.mean() < 9.5 - 2   # centre column 9.5


@pytest.mark.parametrize("shape,bs", [((3, 5), 20), ((7, 2), 8), ((1, 1), 5), ((4, 6), 11)])
def test_picture_of_h_by_w_filter_is_h_bs_by_w_bs(rng, shape, bs):
    h, w = shape
    f = rng.standard_normal((h, w, 31))
    pic = hog_picture(f, bs)
    assert pic.shape == (h * bs, w * bs)
    np.testing.assert_allclose(pic, ref_hog_picture(fold_hog(f), bs), rtol=0, atol=1e-12)
    assert hog_picture(fold_hog(f), bs).shape == (h * bs, w * bs)


def test_cell_lands_in_its_block(rng):
    f = np.zeros((4, 5, 31))
    f[2, 3, 4] = 1.0
    pic = hog_picture(f, 10)
    ys, xs = np.nonzero(pic)
    assert ys.min() >= 20 and ys.max() < 30 and xs.min() >= 30 and xs.max() < 40


def test_negative_weights_picture(rng):
    f = rng.standard_normal((3, 4, 31))
    np.testing.assert_array_equal(hog_picture(f, 12, negative=True), hog_picture(-f, 12))
    w9 = rng.standard_normal((3, 4, 9))
    np.testing.assert_allclose(hog_picture(w9, 12, negative=True), ref_hog_picture(-w9, 12), atol=1e-12)
    assert not np.array_equal(hog_picture(f, 12, negative=True), hog_picture(f, 12))


def test_symmetric_filter_gives_mirror_symmetric_picture(rng):
    for h, w in [(5, 4), (6, 7), (3, 1)]:
        s = symmetric(rng, h, w)
        for bs in (20, 21):
            pic = hog_picture(s, bs)
            # mirrored cells add the same glyph values in another order: equal up to rounding
            np.testing.assert_allclose(pic, pic[:, ::-1], rtol=0, atol=1e-12)
            np.testing.assert_array_equal(pic > 1e-9, (pic > 1e-9)[:, ::-1])
    # and an asymmetric one does not
    f = rng.standard_normal((5, 4, 31))
    assert not np.array_equal(hog_picture(f), hog_picture(f)[:, ::-1])


def test_hog_picture_rejects_bad_input():
    with pytest.raises(ValueError, match="channels"):
        hog_picture(np.zeros((2, 2, 12)))
    with pytest.raises(ValueError, match="shape"):
        hog_picture(np.zeros((2, 31)))
    with pytest.raises(ValueError, match="bs"):
        hog_glyphs(1)


# --------------------------------------------------------------------------------------------
# imresize (bicubic, 2x)
# --------------------------------------------------------------------------------------------

def test_imresize_matches_matlab_formula(rng):
    im = rng.standard_normal((7, 5))
    for scale in (2.0, 3.0, 1.5):
        out = imresize_bicubic(im, scale)
        assert out.shape == (math.ceil(7 * scale), math.ceil(5 * scale))
        np.testing.assert_allclose(out, ref_imresize_bicubic(im, scale), rtol=0, atol=1e-12)


def test_imresize_reproduces_linear_ramp_and_constants():
    y, x = np.mgrid[1:13, 1:10].astype(float)
    ramp = 3 * x - 2 * y
    out = imresize_bicubic(ramp, 2.0)
    u = np.arange(1, out.shape[1] + 1) / 2 + 0.25
    v = np.arange(1, out.shape[0] + 1) / 2 + 0.25
    expect = 3 * u[None, :] - 2 * v[:, None]
    # away from the reflected borders the cubic kernel is exact on linear functions
    np.testing.assert_allclose(out[4:-4, 4:-4], expect[4:-4, 4:-4], atol=1e-12)
    np.testing.assert_allclose(imresize_bicubic(np.full((3, 4), 2.5)), 2.5, atol=1e-12)
    with pytest.raises(ValueError, match="enlargement"):
        imresize_bicubic(ramp, 0.5)


# --------------------------------------------------------------------------------------------
# visualizemodel panels
# --------------------------------------------------------------------------------------------

def test_root_panel_geometry(rng):
    root = rng.standard_normal((3, 2, 31))
    pics = model_pictures(tiny_model(root), 0, bs=10, pad=2)
    assert list(pics) == ["root"]        # root-only component: one panel
    r = pics["root"]
    assert r.dtype == np.uint8 and r.shape == (2 * 3 * 10 + 4, 2 * 2 * 10 + 4)
    assert (r[:2] == 0).all() and (r[-2:] == 0).all() and (r[:, :2] == 0).all() and (r[:, -2:] == 0).all()
    # 255/max(folded root) scaling of the 2x bicubic picture, saturating like uint8()
    expect = imresize_bicubic(ref_hog_picture(ref_fold_hog(root), 10), 2.0) * (255 / ref_fold_hog(root).max())
    expect = np.clip(np.floor(np.maximum(expect, 0) + 0.5), 0, 255)
    np.testing.assert_array_equal(r[2:-2, 2:-2], expect)


def test_parts_are_drawn_at_their_anchors(rng):
    bs, pad = 10, 2
    root = np.zeros((4, 3, 31))
    root[0, 0, 0] = 1.0                               # sets the 255 scale
    parts = [Part(filter=np.abs(rng.standard_normal((2, 3, 31))) * 0.3, anchor=(2, 3),
                  deformation=np.array([0.1, 0.0, 0.05, 0.0])),
             Part(filter=np.abs(rng.standard_normal((3, 2, 31))) * 0.3, anchor=(5, 6),
                  deformation=np.array([0.02, 0.01, 0.08, -0.02]))]
    pics = model_pictures(tiny_model(root, parts), 0, bs=bs, pad=pad)
    assert set(pics) == {"root", "parts", "deformation"}
    im, dm = pics["parts"], pics["deformation"]
    assert im.shape == dm.shape == pics["root"].shape == (2 * 4 * bs + 2 * pad, 2 * 3 * bs + 2 * pad)
    painted = np.zeros(im.shape, bool)
    for p in parts:
        ph, pw = p.filter.shape[0] * bs + 2 * pad, p.filter.shape[1] * bs + 2 * pad
        y1 = (p.anchor[1] - 1) * bs + 1                # 1-based, visualizemodel.m
        x1 = (p.anchor[0] - 1) * bs + 1
        box = (slice(y1 - 1, y1 - 1 + ph), slice(x1 - 1, x1 - 1 + pw))
        painted[box] = True
        ring = np.ones((ph, pw), bool)
        ring[2 * pad:-2 * pad, 2 * pad:-2 * pad] = False
        assert (im[box][ring] == 128).all() and (dm[box][ring] == 128).all()
        # inside the grey border: the part's own glyph picture on the root's scale
        pic = np.pad(ref_hog_picture(ref_fold_hog(p.filter), bs), pad) * 255.0
        pic = np.clip(np.floor(pic + 0.5), 0, 255)
        np.testing.assert_array_equal(im[box][~ring], pic[~ring])
        # deformation: d . (px^2, px, py^2, py) * 500 about the box centre
        ys, xs = np.nonzero(~ring)
        px = ((pw + 1) / 2 - (xs + 1)) / bs
        py = ((ph + 1) / 2 - (ys + 1)) / bs
        ax, bx, ay, by = p.deformation
        cost = (ax * px ** 2 + bx * px + ay * py ** 2 + by * py) * DEF_SCALE
        np.testing.assert_array_equal(dm[box][~ring], np.clip(np.floor(np.maximum(cost, 0) + 0.5), 0, 255))
    # outside the parts: the root picture, and no deformation
    np.testing.assert_array_equal(im[~painted], pics["root"][~painted])
    assert (dm[~painted] == 0).all()
    # the deformation minimum of a pure quadratic sits at the box centre
    p = parts[0]
    y1, x1 = (p.anchor[1] - 1) * bs, (p.anchor[0] - 1) * bs
    inner = dm[y1 + 2 * pad:y1 + p.filter.shape[0] * bs, x1 + 2 * pad:x1 + p.filter.shape[1] * bs]
    cy, cx = np.unravel_index(np.argmin(inner), inner.shape)
    assert abs(cy + 2 * pad - (p.filter.shape[0] * bs + 2 * pad - 1) / 2) <= 3
    assert abs(cx + 2 * pad - (p.filter.shape[1] * bs + 2 * pad - 1) / 2) <= 4


def test_part_past_the_root_grows_the_panels():
    root = np.ones((2, 2, 31))
    part = Part(filter=np.ones((2, 2, 31)), anchor=(4, 1), deformation=np.array([0.1, 0, 0.1, 0]))
    pics = model_pictures(tiny_model(root, [part]), 0, bs=10, pad=2)
    assert pics["root"].shape == (44, 44)
    assert pics["parts"].shape == pics["deformation"].shape == (44, 30 + 24)


def test_bad_component_and_anchor():
    root = np.ones((2, 2, 31))
    with pytest.raises(ValueError, match="out of range"):
        model_pictures(tiny_model(root), 1)
    part = Part(filter=np.ones((1, 1, 31)), anchor=(0, 1), deformation=np.zeros(4))
    with pytest.raises(ValueError, match="1-based"):
        model_pictures(tiny_model(root, [part]), 0)


def test_symmetric_model_gives_symmetric_panels(rng):
    # root 3 cells wide -> 6 part cells; a centred self-symmetric part and a mirrored pair
    root = symmetric(rng, 4, 3)
    centre = Part(filter=symmetric(rng, 3, 2), anchor=(3, 1), deformation=np.array([0.05, 0.0, 0.03, 0.01]))
    left_f = rng.standard_normal((3, 2, 31))
    left = Part(filter=left_f, anchor=(1, 4), deformation=np.array([0.04, 0.02, 0.06, -0.01]), partner=2)
    right = Part(filter=flip_features(left_f), anchor=(2 * 3 + 2 - 1 - 2, 4),
                 deformation=np.array([0.04, -0.02, 0.06, -0.01]), partner=1, fake=True)
    pics = model_pictures(tiny_model(root, [centre, left, right]), 0)
    for name, panel in pics.items():
        np.testing.assert_array_equal(panel, panel[:, ::-1], err_msg=name)
    # moving one part off its mirrored anchor breaks it
    right.anchor = (right.anchor[0] - 1, right.anchor[1])
    pics = model_pictures(tiny_model(root, [centre, left, right]), 0)
    assert not np.array_equal(pics["parts"], pics["parts"][:, ::-1])


def test_person_model_panels(models_dir):
    m = load_model(models_dir / "VOC2007" / "person_final.mat")
    for ci, comp in enumerate(m.components):
        pics = model_pictures(m, ci)
        h, w = comp.root_size
        for panel in pics.values():
            assert panel.shape == (2 * h * 20 + 4, 2 * w * 20 + 4)
        # every part's grey frame is where its anchor says
        for p in comp.parts:
            y0, x0 = (p.anchor[1] - 1) * 20, (p.anchor[0] - 1) * 20
            ph, pw = p.size[0] * 20 + 4, p.size[1] * 20 + 4
            frame = pics["deformation"][y0:y0 + ph, x0:x0 + pw]
            assert frame.shape == (ph, pw)
    # component 2 (11x4 root, even width): root and parts are left/right mirror images
    # (the learned linear x cost of self-symmetric parts is not, so neither is the deformation panel)
    pics = model_pictures(m, 1)
    np.testing.assert_array_equal(pics["root"], pics["root"][:, ::-1])
    np.testing.assert_array_equal(pics["parts"], pics["parts"][:, ::-1])
    # the person's outline is bright: the head-top cells carry more glyph than the corners
    root = pics["root"].astype(float)
    assert root[4:80, 60:104].mean() > 2 * root[4:80, 4:40].mean()


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
