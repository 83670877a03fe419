"""Geometry of the model and feature pictures (spec §1.16): foldHOG, glyphs, HOGpicture, imresize,
visualizemodel's panels."""
import math

import numpy as np
import pytest

from dpm.features.flip import flip_features
from dpm.model import Part, load_model
from dpm.vis import DEF_SCALE, fold_hog, hog_glyphs, hog_picture, imresize_bicubic, model_pictures
from vis_reference import (principal_angle, ref_fold_hog, ref_glyph_imrotate, ref_hog_picture,
                           ref_imresize_bicubic, symmetric, tiny_model)

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
